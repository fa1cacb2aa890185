//! The active controller: the Raft leader of the metadata quorum. Brokers
//! send it registrations, heartbeats and changes; it turns them into
//! metadata records, and it fences brokers whose heartbeats stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use openraft::error::{ClientWriteError, RaftError};
use openraft::Raft;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

use super::image::ClusterImage;
use super::placement::{self, Candidate};
use super::records::{Applied, BrokerEndpoint, MetadataRecord, Refusal};
use super::store::MetadataView;
use super::TypeConfig;

/// How long a proposal may wait to be committed. openraft leaves a write
/// pending forever when a deposed leader's log is replaced by a snapshot
/// (it answers pending writes only when their entries are truncated), so
/// a node that was cut off while active would otherwise hang the request
/// and, with it, its own registration.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request to the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// A broker starts.
    Register {
        /// `node.id`.
        id: i32,
        /// This process.
        incarnation: Uuid,
        /// Its storage (see `MetadataRecord::RegisterBroker`).
        #[serde(default)]
        storage: Uuid,
        /// Advertised listeners.
        endpoints: Vec<BrokerEndpoint>,
        /// `broker.rack`.
        rack: Option<String>,
        /// Its controller listener, when it is not a voter: the metadata
        /// log is replicated to it there.
        controller_address: Option<String>,
    },
    /// A broker is alive (or, with `shutting_down`, wants to stop).
    Heartbeat {
        /// Broker.
        id: i32,
        /// Registration epoch.
        epoch: i64,
        /// Move its leaderships away and fence it.
        shutting_down: bool,
    },
    /// Create a topic, placing replicas unless `assignment` is given.
    CreateTopic {
        /// Name.
        name: String,
        /// Partition count (ignored with an assignment).
        partitions: i32,
        /// Replication factor (ignored with an assignment).
        replication_factor: i16,
        /// Overrides.
        configs: BTreeMap<String, String>,
        /// Explicit replicas per partition.
        assignment: Option<Vec<Vec<i32>>>,
        /// Only check.
        validate_only: bool,
    },
    /// Grow a topic to `count` partitions.
    CreatePartitions {
        /// Topic.
        name: String,
        /// New total.
        count: i32,
        /// Replicas of the new partitions.
        assignment: Option<Vec<Vec<i32>>>,
        /// Only check.
        validate_only: bool,
    },
    /// A record the sender built in full.
    Propose(MetadataRecord),
    /// Records the sender built in full, each committed on its own (a
    /// leader's ISR changes, sent together as Kafka's AlterPartition
    /// carries many partitions). Only controllers whose heartbeat answers
    /// say `takes_batches` know it.
    ProposeAll(Vec<MetadataRecord>),
}

/// The active controller's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// The record was committed at `index` with this outcome.
    Applied {
        /// Metadata log index.
        index: u64,
        /// Outcome.
        applied: Applied,
    },
    /// A heartbeat's answer.
    Heartbeat {
        /// Whether the broker is fenced now.
        fenced: bool,
        /// False when the broker must register again.
        registered: bool,
        /// This controller takes `ProposeAll`; an earlier release leaves
        /// the field out, and then it reads as false.
        #[serde(default)]
        takes_batches: bool,
    },
    /// The outcome of each record of a `ProposeAll`, in order.
    AppliedAll(Vec<ControllerResponse>),
    /// This node is not the active controller.
    NotController {
        /// The active controller, if known.
        leader: Option<u64>,
        /// Its controller listener, if known.
        address: Option<String>,
    },
    /// The quorum could not take the change (no majority, shutting down).
    Unavailable(String),
}

/// Leader-side state: when each broker was last heard from.
pub struct Controller {
    raft: Raft<TypeConfig>,
    view: tokio::sync::watch::Receiver<MetadataView>,
    session_timeout: Duration,
    cluster_id: String,
    /// What a new cluster starts with (`gregor format`).
    bootstrap: Vec<MetadataRecord>,
    preferred_leader_check: Option<Duration>,
    heard: Mutex<HashMap<i32, Instant>>,
    membership: tokio::sync::Mutex<()>,
}

impl Controller {
    /// A controller over `raft`, fencing brokers silent for
    /// `session_timeout`, naming a new cluster `cluster_id`, and (every
    /// `preferred_leader_check`) moving leadership back to preferred
    /// replicas.
    pub fn new(
        raft: Raft<TypeConfig>,
        view: tokio::sync::watch::Receiver<MetadataView>,
        session_timeout: Duration,
        cluster_id: String,
        bootstrap: Vec<MetadataRecord>,
        preferred_leader_check: Option<Duration>,
    ) -> Self {
        Controller {
            raft,
            view,
            session_timeout,
            cluster_id,
            bootstrap,
            preferred_leader_check,
            heard: Mutex::new(HashMap::new()),
            membership: tokio::sync::Mutex::new(()),
        }
    }

    fn image(&self) -> Arc<ClusterImage> {
        self.view.borrow().image.clone()
    }

    fn heard(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Instant>> {
        self.heard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles a request on this node, if it is the active controller;
    /// otherwise says who is.
    pub async fn handle(&self, req: ControllerRequest) -> ControllerResponse {
        let (me, leader, address) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let address = m.current_leader.and_then(|l| {
                m.membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| n.addr.clone())
            });
            (m.id, m.current_leader, address)
        };
        if leader != Some(me) {
            return ControllerResponse::NotController { leader, address };
        }
        match req {
            ControllerRequest::Register {
                id,
                incarnation,
                storage,
                endpoints,
                rack,
                controller_address,
            } => {
                if let Some(addr) = controller_address {
                    self.add_learner(id, addr).await;
                }
                let resp = self
                    .propose(MetadataRecord::RegisterBroker {
                        id,
                        incarnation,
                        storage,
                        endpoints,
                        rack,
                    })
                    .await;
                if matches!(
                    resp,
                    ControllerResponse::Applied {
                        applied: Applied::BrokerEpoch(_),
                        ..
                    }
                ) {
                    self.heard().insert(id, Instant::now());
                }
                resp
            }
            ControllerRequest::Heartbeat {
                id,
                epoch,
                shutting_down,
            } => self.heartbeat(id, epoch, shutting_down).await,
            ControllerRequest::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
                assignment,
                validate_only,
            } => {
                let image = self.image();
                // An existing topic is reported before its placement.
                if image.topics.contains_key(&name) {
                    return refused(Refusal::TopicExists(name));
                }
                let assignment = match assignment {
                    Some(a) => a,
                    None => match place(&image, 0, partitions, replication_factor) {
                        Ok(a) => a,
                        Err(r) => return refused(r),
                    },
                };
                if let Err(r) = check_brokers(&image, &assignment) {
                    return refused(r);
                }
                if validate_only {
                    return ControllerResponse::Applied {
                        index: 0,
                        applied: Applied::Done,
                    };
                }
                self.propose(MetadataRecord::CreateTopic {
                    name,
                    id: Uuid::new_v4(),
                    configs,
                    assignment,
                })
                .await
            }
            ControllerRequest::CreatePartitions {
                name,
                count,
                assignment,
                validate_only,
            } => {
                let image = self.image();
                let Some(topic) = image.topics.get(&name) else {
                    return refused(Refusal::UnknownTopicOrPartition(format!(
                        "topic `{name}` does not exist"
                    )));
                };
                let current = topic.partitions.len() as i32;
                let rf = topic
                    .partitions
                    .first()
                    .map(|p| (p.replicas.len() - p.adding.len()) as i16)
                    .unwrap_or(1);
                let assignment = match assignment {
                    Some(a) => a,
                    None => match place(&image, current, count - current, rf) {
                        Ok(a) => a,
                        Err(r) => return refused(r),
                    },
                };
                if let Err(r) = check_brokers(&image, &assignment) {
                    return refused(r);
                }
                if validate_only {
                    return ControllerResponse::Applied {
                        index: 0,
                        applied: Applied::Done,
                    };
                }
                self.propose(MetadataRecord::CreatePartitions { name, assignment })
                    .await
            }
            ControllerRequest::Propose(record) => self.propose(record).await,
            ControllerRequest::ProposeAll(records) => {
                let each = join_all(records.into_iter().map(|r| self.propose(r))).await;
                batch_outcome(each)
            }
        }
    }

    async fn heartbeat(&self, id: i32, epoch: i64, shutting_down: bool) -> ControllerResponse {
        let image = self.image();
        let Some(b) = image.brokers.get(&id).filter(|b| b.epoch == epoch) else {
            return ControllerResponse::Heartbeat {
                fenced: true,
                registered: false,
                takes_batches: true,
            };
        };
        self.heard().insert(id, Instant::now());
        let fenced = b.fenced;
        let change = match (fenced, shutting_down) {
            (true, false) => Some(MetadataRecord::UnfenceBroker { id, epoch }),
            (false, true) => Some(MetadataRecord::FenceBroker { id, epoch }),
            _ => None,
        };
        let Some(change) = change else {
            return ControllerResponse::Heartbeat {
                fenced,
                registered: true,
                takes_batches: true,
            };
        };
        match self.propose(change).await {
            ControllerResponse::Applied {
                applied: Applied::Done,
                ..
            } => ControllerResponse::Heartbeat {
                fenced: shutting_down,
                registered: true,
                takes_batches: true,
            },
            ControllerResponse::Applied {
                applied: Applied::Refused(_),
                ..
            } => ControllerResponse::Heartbeat {
                fenced: true,
                registered: false,
                takes_batches: true,
            },
            other => other,
        }
    }

    /// Makes a broker-only node a learner of the quorum, so the metadata
    /// log is replicated to it (nothing changes if it already is one).
    /// Membership changes go one at a time, so concurrent registrations wait
    /// their turn.
    async fn add_learner(&self, id: i32, addr: String) {
        let _one_at_a_time = self.membership.lock().await;
        for _ in 0..50 {
            let known = self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&(id as u64))
                .is_some_and(|n| n.addr == addr);
            if known {
                return;
            }
            let adding =
                self.raft
                    .add_learner(id as u64, openraft::BasicNode::new(addr.clone()), false);
            match tokio::time::timeout(COMMIT_TIMEOUT, adding).await {
                Ok(Ok(_)) => return,
                Err(_) => {
                    tracing::debug!(broker = id, "adding a learner: not committed in time");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(broker = id, error = %e, "adding a learner; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tracing::warn!(
            broker = id,
            "cannot add the broker as a learner of the metadata log"
        );
    }

    /// Proposes `record` and waits until it is committed and applied.
    pub async fn propose(&self, record: MetadataRecord) -> ControllerResponse {
        let Ok(written) =
            tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(record)).await
        else {
            return ControllerResponse::Unavailable(format!(
                "not committed within {COMMIT_TIMEOUT:?}: leadership was probably lost"
            ));
        };
        match written {
            Ok(r) => ControllerResponse::Applied {
                index: r.log_id.index,
                applied: r.data,
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                ControllerResponse::NotController {
                    leader: f.leader_id,
                    address: f.leader_node.map(|n| n.addr),
                }
            }
            Err(e) => ControllerResponse::Unavailable(e.to_string()),
        }
    }

    /// While this node is the active controller, names the cluster if it
    /// has no id yet, fences brokers whose heartbeats stopped, and restores
    /// preferred leaders. Runs until the node stops.
    pub async fn run(self: Arc<Self>) {
        let mut metrics = self.raft.metrics();
        let mut active_since: Option<Instant> = None;
        let mut last_rebalance = Instant::now();
        // Fencing happens at most a tick after a session runs out.
        let tick = (self.session_timeout / 4)
            .min(Duration::from_millis(250))
            .max(Duration::from_millis(50));
        loop {
            let leader = {
                let m = metrics.borrow_and_update();
                m.current_leader == Some(m.id)
            };
            if !leader {
                active_since = None;
                // Act as soon as elected: a new cluster's brokers wait for
                // the cluster id before they serve.
                if let Ok(Err(_)) = tokio::time::timeout(tick, metrics.changed()).await {
                    return; // Raft has stopped.
                }
                continue;
            }
            // A new active controller gives every broker a full session
            // before fencing it: it has not heard from anyone yet.
            let since = *active_since.get_or_insert_with(Instant::now);
            let image = self.image();
            if image.cluster_id.is_empty() {
                self.propose(MetadataRecord::InitCluster {
                    cluster_id: self.cluster_id.clone(),
                    bootstrap: self.bootstrap.clone(),
                })
                .await;
            }
            let now = Instant::now();
            let silent: Vec<(i32, i64)> = {
                let heard = self.heard();
                image
                    .live_brokers()
                    .filter(|b| {
                        let last = heard.get(&b.id).copied().unwrap_or(since).max(since);
                        now.duration_since(last) > self.session_timeout
                    })
                    .map(|b| (b.id, b.epoch))
                    .collect()
            };
            for (id, epoch) in silent {
                tracing::warn!(
                    broker = id,
                    "no heartbeat within broker.session.timeout.ms; fencing it"
                );
                self.propose(MetadataRecord::FenceBroker { id, epoch })
                    .await;
            }
            if let Some(every) = self.preferred_leader_check {
                if now.duration_since(last_rebalance) >= every {
                    last_rebalance = now;
                    for (topic, partition) in image.preferred_leader_elections() {
                        tracing::info!(%topic, partition, "moving leadership back to the preferred replica");
                        self.propose(MetadataRecord::ElectPreferredLeader { topic, partition })
                            .await;
                    }
                }
            }
            tokio::time::sleep(tick).await;
        }
    }
}

/// The answer to a `ProposeAll` from each record's outcome. When none
/// was committed, the first outcome stands for all of them (this node is
/// not the active controller, or it could not commit), so the sender
/// tries again where it should; committing a record twice is harmless,
/// as every record is checked against the epochs it was built from.
fn batch_outcome(mut each: Vec<ControllerResponse>) -> ControllerResponse {
    let committed = each
        .iter()
        .any(|r| matches!(r, ControllerResponse::Applied { .. }));
    match committed || each.is_empty() {
        true => ControllerResponse::AppliedAll(each),
        false => each.swap_remove(0),
    }
}

fn refused(r: Refusal) -> ControllerResponse {
    ControllerResponse::Applied {
        index: 0,
        applied: Applied::Refused(r),
    }
}

/// Replicas for new partitions over the live brokers.
fn place(
    image: &ClusterImage,
    first: i32,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, Refusal> {
    let candidates: Vec<Candidate> = image
        .live_brokers()
        .map(|b| Candidate {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect();
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    placement::assign(&candidates, first, count, rf).ok_or_else(|| {
        Refusal::InvalidReplicationFactor(format!(
            "replication factor {replication_factor} is larger than the {} available broker(s)",
            candidates.len()
        ))
    })
}

fn check_brokers(image: &ClusterImage, assignment: &[Vec<i32>]) -> Result<(), Refusal> {
    match assignment
        .iter()
        .flatten()
        .find(|b| !image.brokers.contains_key(b))
    {
        Some(b) => Err(Refusal::InvalidReplicaAssignment(format!(
            "replica assignment names broker {b}, which is not registered"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(index: u64) -> ControllerResponse {
        ControllerResponse::Applied {
            index,
            applied: Applied::Done,
        }
    }

    fn not_controller() -> ControllerResponse {
        ControllerResponse::NotController {
            leader: Some(2),
            address: None,
        }
    }

    fn unavailable() -> ControllerResponse {
        ControllerResponse::Unavailable("lost leadership".into())
    }

    #[test]
    fn a_batch_is_answered_per_record_once_any_was_committed() {
        let cases = [
            ("all committed", vec![applied(1), applied(2)], "AppliedAll"),
            (
                "some committed",
                vec![applied(1), unavailable()],
                "AppliedAll",
            ),
            (
                "not the controller",
                vec![not_controller(), not_controller()],
                "NotController",
            ),
            (
                "nothing committed",
                vec![unavailable(), unavailable()],
                "Unavailable",
            ),
            ("empty", vec![], "AppliedAll"),
        ];
        for (what, each, want) in cases {
            let n = each.len();
            let got = batch_outcome(each);
            let kind = format!("{got:?}");
            assert!(kind.starts_with(want), "{what}: {kind}");
            if let ControllerResponse::AppliedAll(each) = got {
                assert_eq!(each.len(), n, "{what}: one outcome per record");
            }
        }
    }

    #[test]
    fn an_earlier_releases_heartbeat_answer_reads_as_taking_no_batches() {
        let earlier = r#"{"Heartbeat":{"fenced":false,"registered":true}}"#;
        let answer: ControllerResponse = serde_json::from_str(earlier).expect("parses");
        assert!(matches!(
            answer,
            ControllerResponse::Heartbeat {
                takes_batches: false,
                ..
            }
        ));
    }
}
