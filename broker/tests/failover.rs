//! Failover of the stateful core, in one process: three nodes (each broker
//! and controller) on loopback ports, spoken to over TCP with Gregor's own
//! client. A node crashes by stopping without a controlled shutdown: its
//! listeners close, its tasks (heartbeats, replica fetchers, group
//! sessions) end and its Raft member stops, so the controller fences it
//! only when its broker session runs out, as after a kill -9. The tests
//! assert what survives (acknowledged records, a group's members and
//! offsets, a restarted broker's registration), waiting for each with a
//! deadline.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use gregor_broker::bind;
use gregor_broker::clock;
use gregor_broker::config::BrokerConfig;
use gregor_broker::node::Node;
use gregor_broker::server;
use gregor_client::Connection;

const NODES: i32 = 3;
const TOPIC: &str = "orders";
const GROUP: &str = "billing";
/// How long anything a test waits for may take before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A free loopback port (the kernel's pick; released for the node to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A node that is serving.
struct Running {
    node: Arc<Node>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<()>,
}

/// Three nodes, any of which may be crashed and started again on the same
/// directories and ports.
struct Cluster {
    _dir: tempfile::TempDir,
    configs: Vec<PathBuf>,
    kafka_ports: Vec<u16>,
    running: Vec<Option<Running>>,
}

impl Cluster {
    /// Starts three nodes with `broker.session.timeout.ms` of `session_ms`.
    async fn start(session_ms: u64) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let kafka_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let controller_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let voters: Vec<String> = controller_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
            .collect();
        let configs = (0..NODES as usize)
            .map(|i| {
                let text = format!(
                    "node.id={id}\n\
                     process.roles=broker,controller\n\
                     listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}\n\
                     listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                     inter.broker.listener.name=PLAINTEXT\n\
                     controller.listener.names=CONTROLLER\n\
                     controller.quorum.voters={voters}\n\
                     log.dirs={data}\n\
                     min.insync.replicas=2\n\
                     offsets.topic.replication.factor=3\n\
                     offsets.topic.num.partitions=3\n\
                     group.initial.rebalance.delay.ms=0\n\
                     broker.session.timeout.ms={session_ms}\n\
                     broker.heartbeat.interval.ms=500\n",
                    id = i + 1,
                    kafka = kafka_ports[i],
                    controller = controller_ports[i],
                    voters = voters.join(","),
                    data = dir.path().join(format!("node-{}", i + 1)).display(),
                );
                let path = dir.path().join(format!("node-{}.properties", i + 1));
                std::fs::write(&path, text).expect("write config");
                path
            })
            .collect::<Vec<_>>();
        let mut cluster = Cluster {
            _dir: dir,
            configs,
            kafka_ports,
            running: (0..NODES).map(|_| None).collect(),
        };
        // Each start waits for a quorum and for enough brokers to create the
        // offsets topic: all three start together.
        let started = futures_util::future::join_all(
            (1..=NODES).map(|id| run(cluster.configs[slot(id)].clone())),
        );
        for (i, r) in started.await.into_iter().enumerate() {
            cluster.running[i] = Some(r);
        }
        cluster
    }

    fn node(&self, id: i32) -> &Arc<Node> {
        &self.running[slot(id)]
            .as_ref()
            .expect("node is running")
            .node
    }

    fn address(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.kafka_ports[slot(id)])
    }

    async fn connect(&self, id: i32) -> Connection {
        Connection::connect(self.address(id), "failover-test")
            .await
            .expect("connect")
    }

    /// Stops node `id` as a crash would: no controlled shutdown. Returns
    /// once nothing refers to it any more (its directories are free).
    async fn crash(&mut self, id: i32) {
        let Running { node, stop, served } =
            self.running[slot(id)].take().expect("node is running");
        let _ = stop.send(());
        served.await.expect("server ended");
        assert!(
            node.tasks.stop(Duration::from_secs(10)).await,
            "node {id}'s tasks did not end"
        );
        node.quorum.shutdown().await;
        // Every task that held the node has ended: this is the last
        // reference, and dropping it unlocks the log directories.
        wait_for(&format!("node {id} released"), || {
            let n = Arc::strong_count(&node);
            async move { (n == 1).then_some(()) }
        })
        .await;
        drop(node);
    }

    /// Starts node `id` again on its directories and ports.
    async fn restart(&mut self, id: i32) {
        let r = run(self.configs[slot(id)].clone()).await;
        self.running[slot(id)] = Some(r);
    }

    /// The partition's leader as node `asked` sees it, once it is one of
    /// `allowed`.
    async fn leader(&self, asked: i32, allowed: &[i32]) -> i32 {
        let addr = self.address(asked);
        let allowed = allowed.to_vec();
        wait_for("a leader", || {
            let addr = addr.clone();
            let allowed = allowed.clone();
            async move {
                let mut c = Connection::connect(addr, "failover-test").await.ok()?;
                let mut t = metadata_request::MetadataRequestTopic::default();
                t.name = Some(TopicName(s(TOPIC)));
                let mut r = MetadataRequest::default();
                r.topics = Some(vec![t]);
                let m = c.send(&r, 12).await.ok()?;
                let leader = m.topics.first()?.partitions.first()?.leader_id.0;
                allowed.contains(&leader).then_some(leader)
            }
        })
        .await
    }
}

fn slot(id: i32) -> usize {
    (id - 1) as usize
}

/// Starts a node from `config` and serves its Kafka listener.
async fn run(config: PathBuf) -> Running {
    let config = BrokerConfig::load(&config, Vec::new()).expect("config");
    let node = Node::start(config).await.expect("node starts");
    let listeners: Vec<_> = node.config.kafka_listeners().cloned().collect();
    let bound = bind::bind_all(&listeners).await.expect("bind");
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(
        node.clone(),
        bound,
        Default::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Running { node, stop, served }
}

/// Retries `probe` until it gives a value; fails the test after
/// [`PATIENCE`].
async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_topic(c: &mut Connection) {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(s(TOPIC));
    t.num_partitions = 1;
    t.replication_factor = 3;
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 30_000;
    let answer = c.send(&r, 7).await.expect("create topics");
    assert_eq!(answer.topics[0].error_code, 0, "{answer:?}");
}

/// Produces one batch of `count` records with acks=all; the base offset.
async fn produce(c: &mut Connection, first: usize, count: usize) -> Result<i64, i16> {
    // The time of writing: older records may go to retention at any moment.
    let now = clock::now_ms();
    let records = (first..first + count).map(|i| {
        (
            Some(Bytes::from(format!("k{i}"))),
            Some(Bytes::from(format!("v{i}"))),
            now,
        )
    });
    let batch = gregor_client::batch::encode(records, Compression::None).expect("encode");
    let mut p = produce_request::PartitionProduceData::default();
    p.records = Some(batch.freeze());
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(s(TOPIC));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 30_000;
    r.topic_data = vec![t];
    let answer = c.send(&r, 9).await.expect("produce");
    let p = &answer.responses[0].partition_responses[0];
    if p.error_code == 0 {
        Ok(p.base_offset)
    } else {
        Err(p.error_code)
    }
}

/// Every record value of the partition from offset 0, read from node `id`
/// (its leader).
async fn read_all(c: &mut Connection) -> Vec<Bytes> {
    let mut values = Vec::new();
    loop {
        let mut p = fetch_request::FetchPartition::default();
        p.fetch_offset = values.len() as i64;
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(s(TOPIC));
        t.partitions = vec![p];
        let mut r = FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.max_bytes = 1 << 20;
        r.topics = vec![t];
        let answer = c.send(&r, 12).await.expect("fetch");
        let p = &answer.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch: {p:?}");
        let before = values.len();
        if let Some(mut data) = p.records.clone() {
            for set in RecordBatchDecoder::decode_all(&mut data).expect("decode") {
                for record in set.records {
                    if record.offset as usize == values.len() {
                        values.push(record.value.unwrap_or_default());
                    }
                }
            }
        }
        if values.len() as i64 >= p.high_watermark || values.len() == before {
            return values;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_their_leaders_crash() {
    let mut cluster = Cluster::start(3_000).await;
    create_topic(&mut cluster.connect(1).await).await;
    let leader = cluster.leader(1, &[1, 2, 3]).await;
    let mut c = cluster.connect(leader).await;
    for round in 0..10 {
        let base = produce(&mut c, round * 50, 50)
            .await
            .expect("acks=all write");
        assert_eq!(base, (round * 50) as i64);
    }
    drop(c);

    cluster.crash(leader).await;
    let others: Vec<i32> = (1..=NODES).filter(|n| *n != leader).collect();
    let successor = cluster.leader(others[0], &others).await;
    let mut c = cluster.connect(successor).await;
    let values = read_all(&mut c).await;
    let expected: Vec<Bytes> = (0..500).map(|i| Bytes::from(format!("v{i}"))).collect();
    assert_eq!(
        values, expected,
        "the new leader lost or reordered acknowledged records"
    );
    // The partition takes writes again with two of three replicas.
    let base = produce(&mut c, 500, 10)
        .await
        .expect("write after failover");
    assert_eq!(base, 500);
}

/// Sends a group request to whichever node coordinates the group, as
/// node `asked` names it; retries while coordination moves.
async fn coordinator(cluster: &Cluster, asked: i32, not: Option<i32>) -> i32 {
    let addr = cluster.address(asked);
    wait_for("a group coordinator", || {
        let addr = addr.clone();
        async move {
            let mut c = Connection::connect(addr, "failover-test").await.ok()?;
            let mut r = FindCoordinatorRequest::default();
            r.key_type = 0;
            r.coordinator_keys = vec![s(GROUP)];
            let answer = c.send(&r, 4).await.ok()?;
            let found = answer.coordinators.first()?;
            (found.error_code == 0 && Some(found.node_id.0) != not).then_some(found.node_id.0)
        }
    })
    .await
}

async fn join(c: &mut Connection, member: &str) -> JoinGroupResponse {
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x06orders\xff\xff\xff\xff");
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.session_timeout_ms = 30_000;
    r.rebalance_timeout_ms = 30_000;
    r.member_id = s(member);
    r.protocol_type = s("consumer");
    r.protocols = vec![p];
    c.send(&r, 7).await.expect("join group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_keeps_its_member_and_offsets_when_its_coordinator_crashes() {
    let mut cluster = Cluster::start(3_000).await;
    create_topic(&mut cluster.connect(1).await).await;
    let first = coordinator(&cluster, 1, None).await;
    // The coordinator checks a commit's topic against its own topics,
    // which may not have the new topic yet (a client would retry); they
    // follow its metadata image a little later.
    wait_for("the coordinator to know the topic", || {
        let known = cluster.node(first).topics.exists(TOPIC, 0);
        async move { known.then_some(()) }
    })
    .await;
    let mut c = cluster.connect(first).await;

    // Join (the first answer hands out the member id), sync as leader,
    // commit.
    let asked = join(&mut c, "").await;
    assert_eq!(asked.error_code, ResponseError::MemberIdRequired.code());
    let joined = join(&mut c, &asked.member_id).await;
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let member = joined.member_id.clone();
    let generation = joined.generation_id;
    let mut a = sync_group_request::SyncGroupRequestAssignment::default();
    a.member_id = member.clone();
    a.assignment = Bytes::from_static(
        b"\x00\x01\x00\x00\x00\x01\x00\x06orders\x00\x00\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff",
    );
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.generation_id = generation;
    r.member_id = member.clone();
    r.assignments = vec![a];
    let synced = c.send(&r, 5).await.expect("sync group");
    assert_eq!(synced.error_code, 0);
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 42;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s(TOPIC));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.generation_id_or_member_epoch = generation;
    r.member_id = member.clone();
    r.topics = vec![t];
    let committed = c.send(&r, 8).await.expect("commit");
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    drop(c);

    cluster.crash(first).await;
    let alive = (1..=NODES).find(|n| *n != first).expect("a live node");
    let second = coordinator(&cluster, alive, Some(first)).await;

    // The new coordinator knows the member in its generation: its heartbeat
    // is accepted (answers while the group loads are retried).
    let addr = cluster.address(second);
    let member_id = member.clone();
    wait_for("the member's heartbeat accepted", || {
        let addr = addr.clone();
        let member_id = member_id.clone();
        async move {
            let mut c = Connection::connect(addr, "failover-test").await.ok()?;
            let mut r = HeartbeatRequest::default();
            r.group_id = GroupId(s(GROUP));
            r.generation_id = generation;
            r.member_id = member_id;
            let answer = c.send(&r, 4).await.ok()?;
            let code = answer.error_code;
            let moving = [
                ResponseError::CoordinatorLoadInProgress.code(),
                ResponseError::CoordinatorNotAvailable.code(),
                ResponseError::NotCoordinator.code(),
            ];
            assert!(
                code == 0 || moving.contains(&code),
                "heartbeat of a restored member answered {code}"
            );
            (code == 0).then_some(())
        }
    })
    .await;

    let mut c = cluster.connect(second).await;
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(s(GROUP))];
    let described = c.send(&r, 5).await.expect("describe");
    let group = &described.groups[0];
    assert_eq!(group.group_state.as_str(), "Stable");
    let members: Vec<&str> = group.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(members, vec![member.as_str()]);

    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = TopicName(s(TOPIC));
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(GROUP));
    r.topics = Some(vec![t]);
    let fetched = c.send(&r, 7).await.expect("offset fetch");
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_registers_without_waiting_out_its_old_session() {
    // A session far longer than the test's patience for the restart: a
    // broker that had to wait for its old registration to be fenced could
    // not be serving in time.
    let session = Duration::from_secs(120);
    let mut cluster = Cluster::start(session.as_millis() as u64).await;
    let before = cluster.node(1).image().brokers[&3].incarnation;
    cluster.crash(3).await;
    tokio::time::timeout(session / 4, cluster.restart(3))
        .await
        .expect("the restarted broker registered while its old session was still valid");
    let image = cluster.node(1).clone();
    wait_for("the new registration seen by another node", || {
        let image = image.image();
        async move {
            let b = image.brokers.get(&3)?;
            (b.incarnation != before && !b.fenced).then_some(())
        }
    })
    .await;
    create_topic(&mut cluster.connect(3).await).await;
}
