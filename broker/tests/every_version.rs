//! Every API at every version Gregor advertises gets an answer that encodes:
//! a request naming a real topic goes through the handler and back out at
//! that version. This catches response fields set where a version lacks them.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;

use gregor_broker::config::BrokerConfig;
use gregor_broker::handlers::dispatch::handle_frame;
use gregor_broker::log::batch;
use gregor_broker::node::Node;
use gregor_broker::protocol::{versions, ConnectionInfo};
use gregor_broker::topic::NewTopic;

const TOPIC: &str = "sweep";
const TXN: &str = "sweep-txn";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn records() -> Bytes {
    let record = (
        Some(Bytes::from_static(b"k")),
        Some(Bytes::from_static(b"v")),
        1_700_000_000_000,
    );
    batch::encode([record], Compression::None)
        .expect("encode records")
        .freeze()
}

/// A request of `api` at `version` that refers to the test topic where the
/// API takes topics.
fn sample(api: ApiKey, version: i16, topic_id: uuid::Uuid) -> RequestKind {
    let name = TopicName(s(TOPIC));
    let group = GroupId(s("sweep-group"));
    match api {
        ApiKey::Produce => {
            let mut p = produce_request::PartitionProduceData::default();
            p.records = Some(records());
            let mut t = produce_request::TopicProduceData::default();
            t.name = name;
            t.topic_id = topic_id;
            t.partition_data = vec![p];
            let mut r = ProduceRequest::default();
            r.acks = -1;
            r.timeout_ms = 1000;
            r.topic_data = vec![t];
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => {
            let mut p = fetch_request::FetchPartition::default();
            p.partition_max_bytes = 1 << 20;
            let mut t = fetch_request::FetchTopic::default();
            if version >= 13 {
                t.topic_id = topic_id;
            } else {
                t.topic = name;
            }
            t.partitions = vec![p];
            let mut r = FetchRequest::default();
            r.replica_id = BrokerId(-1);
            r.max_bytes = 1 << 20;
            r.topics = vec![t];
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.timestamp = 1_600_000_000_000;
            let mut t = list_offsets_request::ListOffsetsTopic::default();
            t.name = name;
            t.partitions = vec![p];
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics = vec![t];
            RequestKind::ListOffsets(r)
        }
        ApiKey::Metadata => {
            let mut t = metadata_request::MetadataRequestTopic::default();
            t.name = Some(name);
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![t]);
            RequestKind::Metadata(r)
        }
        ApiKey::OffsetCommit => {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.committed_offset = 1;
            p.committed_metadata = Some(s("m"));
            let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
            t.name = name;
            t.partitions = vec![p];
            let mut r = OffsetCommitRequest::default();
            r.group_id = group;
            r.generation_id_or_member_epoch = -1;
            r.topics = vec![t];
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            if version >= 8 {
                let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
                t.name = name;
                t.partition_indexes = vec![0];
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = group;
                g.topics = Some(vec![t]);
                r.groups = vec![g];
            } else {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = name;
                t.partition_indexes = vec![0];
                r.group_id = group;
                r.topics = Some(vec![t]);
            }
            RequestKind::OffsetFetch(r)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if version >= 4 {
                r.coordinator_keys = vec![s("sweep-group")];
            } else {
                r.key = s("sweep-group");
            }
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => {
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = s("range");
            let mut r = JoinGroupRequest::default();
            r.group_id = GroupId(s(&format!("join-{version}")));
            r.session_timeout_ms = 10_000;
            r.rebalance_timeout_ms = 10_000;
            r.protocol_type = s("consumer");
            r.protocols = vec![p];
            RequestKind::JoinGroup(r)
        }
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![group, GroupId(s("join-0"))];
            RequestKind::DescribeGroups(r)
        }
        ApiKey::CreateTopics => {
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = TopicName(s(&format!("created-{version}")));
            t.num_partitions = 1;
            t.replication_factor = 1;
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![t];
            r.timeout_ms = 1000;
            RequestKind::CreateTopics(r)
        }
        ApiKey::DeleteRecords => {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.offset = 0;
            let mut t = delete_records_request::DeleteRecordsTopic::default();
            t.name = name;
            t.partitions = vec![p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![t];
            RequestKind::DeleteRecords(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.leader_epoch = 0;
            let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            t.topic = name;
            t.partitions = vec![p];
            let mut r = OffsetForLeaderEpochRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics = vec![t];
            RequestKind::OffsetForLeaderEpoch(r)
        }
        ApiKey::DescribeConfigs => {
            let mut res = describe_configs_request::DescribeConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s(TOPIC);
            let mut b = describe_configs_request::DescribeConfigsResource::default();
            b.resource_type = 4;
            b.resource_name = s("1");
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![res, b];
            r.include_synonyms = version >= 1;
            r.include_documentation = version >= 3;
            RequestKind::DescribeConfigs(r)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default();
            r.transaction_timeout_ms = 60_000;
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
            RequestKind::InitProducerId(r)
        }
        ApiKey::AddPartitionsToTxn => {
            let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
            t.name = TopicName(s(TOPIC));
            t.partitions = vec![0, 1];
            let mut r = AddPartitionsToTxnRequest::default();
            let mut txn = add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default();
            txn.transactional_id = TransactionalId(s(TXN));
            txn.producer_id = ProducerId(1);
            txn.verify_only = true;
            if version >= 4 {
                txn.topics = vec![t];
                r.transactions = vec![txn];
            } else {
                r.v3_and_below_transactional_id = txn.transactional_id;
                r.v3_and_below_producer_id = txn.producer_id;
                r.v3_and_below_topics = vec![t];
            }
            RequestKind::AddPartitionsToTxn(r)
        }
        ApiKey::DescribeTopicPartitions => {
            // One partition of the two per answer: the answer has a cursor.
            let mut t = describe_topic_partitions_request::TopicRequest::default();
            t.name = name;
            let mut r = DescribeTopicPartitionsRequest::default();
            r.topics = vec![t];
            r.response_partition_limit = 1;
            RequestKind::DescribeTopicPartitions(r)
        }
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::UpdateFeatures => {
            // The level the cluster already runs, so the sweep changes
            // nothing (v0 has no validate_only).
            let mut u = update_features_request::FeatureUpdateKey::default();
            u.feature = s("transaction.version");
            u.max_version_level = 2;
            u.upgrade_type = 1;
            let mut r = UpdateFeaturesRequest::default();
            r.feature_updates = vec![u];
            r.validate_only = version >= 1;
            RequestKind::UpdateFeatures(r)
        }
        other => RequestKind::default_for(other),
    }
}

trait DefaultFor {
    fn default_for(api: ApiKey) -> Self;
}

impl DefaultFor for RequestKind {
    fn default_for(api: ApiKey) -> Self {
        match api {
            ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
            ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
            ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
            ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
            ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
            ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
            ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
            ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
            ApiKey::IncrementalAlterConfigs => {
                RequestKind::IncrementalAlterConfigs(Default::default())
            }
            ApiKey::ConsumerGroupHeartbeat => {
                let mut r = ConsumerGroupHeartbeatRequest::default();
                r.group_id = GroupId(s("sweep-consumer-group"));
                r.rebalance_timeout_ms = 30_000;
                r.subscribed_topic_names = Some(vec![TopicName(s(TOPIC))]);
                r.topic_partitions = Some(vec![]);
                RequestKind::ConsumerGroupHeartbeat(r)
            }
            ApiKey::ConsumerGroupDescribe => {
                let mut r = ConsumerGroupDescribeRequest::default();
                r.group_ids = vec![
                    GroupId(s("sweep-consumer-group")),
                    GroupId(s("sweep-group")),
                ];
                RequestKind::ConsumerGroupDescribe(r)
            }
            ApiKey::DescribeLogDirs => {
                let mut t = describe_log_dirs_request::DescribableLogDirTopic::default();
                t.topic = TopicName(s(TOPIC));
                t.partitions = vec![0, 1];
                let mut r = DescribeLogDirsRequest::default();
                r.topics = Some(vec![t]);
                RequestKind::DescribeLogDirs(r)
            }
            ApiKey::OffsetDelete => {
                let mut r = OffsetDeleteRequest::default();
                r.group_id = GroupId(s("sweep-group"));
                RequestKind::OffsetDelete(r)
            }
            ApiKey::ElectLeaders => {
                let mut t = elect_leaders_request::TopicPartitions::default();
                t.topic = TopicName(s(TOPIC));
                t.partitions = vec![0, 1];
                let mut r = ElectLeadersRequest::default();
                r.topic_partitions = Some(vec![t]);
                RequestKind::ElectLeaders(r)
            }
            ApiKey::AlterPartitionReassignments => {
                let mut p = alter_partition_reassignments_request::ReassignablePartition::default();
                p.partition_index = 0;
                p.replicas = Some(vec![BrokerId(1)]);
                let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
                t.name = TopicName(s(TOPIC));
                t.partitions = vec![p];
                let mut r = AlterPartitionReassignmentsRequest::default();
                r.topics = vec![t];
                RequestKind::AlterPartitionReassignments(r)
            }
            ApiKey::ListPartitionReassignments => {
                RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
            }
            // On this PLAINTEXT listener: answered ILLEGAL_SASL_STATE.
            ApiKey::SaslHandshake => {
                let mut r = SaslHandshakeRequest::default();
                r.mechanism = s("PLAIN");
                RequestKind::SaslHandshake(r)
            }
            ApiKey::SaslAuthenticate => {
                RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
            }
            ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default(),
            ),
            ApiKey::AlterUserScramCredentials => {
                let mut u =
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
                u.name = s("sweeper");
                u.mechanism = 2;
                u.iterations = 4096;
                u.salt = Bytes::from_static(b"salt");
                u.salted_password = Bytes::from_static(b"salted");
                let mut r = AlterUserScramCredentialsRequest::default();
                r.upsertions = vec![u];
                RequestKind::AlterUserScramCredentials(r)
            }
            ApiKey::CreateAcls => {
                let mut c = create_acls_request::AclCreation::default();
                c.resource_type = 2;
                c.resource_name = s(TOPIC);
                c.resource_pattern_type = 3;
                c.principal = s("User:sweeper");
                c.host = s("*");
                c.operation = 3;
                c.permission_type = 3;
                let mut r = CreateAclsRequest::default();
                r.creations = vec![c];
                RequestKind::CreateAcls(r)
            }
            ApiKey::DescribeAcls => {
                let mut r = DescribeAclsRequest::default();
                r.resource_type_filter = 1;
                r.pattern_type_filter = 1;
                r.operation = 1;
                r.permission_type = 1;
                RequestKind::DescribeAcls(r)
            }
            ApiKey::DeleteAcls => {
                let mut f = delete_acls_request::DeleteAclsFilter::default();
                f.resource_type_filter = 2;
                f.resource_name_filter = Some(s(TOPIC));
                f.pattern_type_filter = 3;
                f.operation = 1;
                f.permission_type = 1;
                let mut r = DeleteAclsRequest::default();
                r.filters = vec![f];
                RequestKind::DeleteAcls(r)
            }
            ApiKey::AlterClientQuotas => {
                let mut e = alter_client_quotas_request::EntityData::default();
                e.entity_type = s("user");
                e.entity_name = Some(s("sweeper"));
                let mut op = alter_client_quotas_request::OpData::default();
                op.key = s("producer_byte_rate");
                op.value = 1_048_576.0;
                let mut entry = alter_client_quotas_request::EntryData::default();
                entry.entity = vec![e];
                entry.ops = vec![op];
                let mut r = AlterClientQuotasRequest::default();
                r.entries = vec![entry];
                RequestKind::AlterClientQuotas(r)
            }
            ApiKey::DescribeClientQuotas => {
                RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default())
            }
            ApiKey::AddOffsetsToTxn => {
                let mut r = AddOffsetsToTxnRequest::default();
                r.transactional_id = TransactionalId(s(TXN));
                r.producer_id = ProducerId(1);
                r.group_id = GroupId(s("sweep-group"));
                RequestKind::AddOffsetsToTxn(r)
            }
            ApiKey::EndTxn => {
                let mut r = EndTxnRequest::default();
                r.transactional_id = TransactionalId(s(TXN));
                r.producer_id = ProducerId(1);
                r.committed = true;
                RequestKind::EndTxn(r)
            }
            ApiKey::TxnOffsetCommit => {
                let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
                p.committed_offset = 1;
                let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
                t.name = TopicName(s(TOPIC));
                t.partitions = vec![p];
                let mut r = TxnOffsetCommitRequest::default();
                r.transactional_id = TransactionalId(s(TXN));
                r.group_id = GroupId(s("sweep-group"));
                r.producer_id = ProducerId(1);
                r.generation_id = -1;
                r.topics = vec![t];
                RequestKind::TxnOffsetCommit(r)
            }
            ApiKey::WriteTxnMarkers => {
                let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
                t.name = TopicName(s(TOPIC));
                t.partition_indexes = vec![0];
                let mut m = write_txn_markers_request::WritableTxnMarker::default();
                m.producer_id = ProducerId(1);
                m.topics = vec![t];
                let mut r = WriteTxnMarkersRequest::default();
                r.markers = vec![m];
                RequestKind::WriteTxnMarkers(r)
            }
            ApiKey::DescribeTransactions => {
                let mut r = DescribeTransactionsRequest::default();
                r.transactional_ids = vec![TransactionalId(s(TXN))];
                RequestKind::DescribeTransactions(r)
            }
            ApiKey::ListTransactions => {
                RequestKind::ListTransactions(ListTransactionsRequest::default())
            }
            ApiKey::DescribeProducers => {
                let mut t = describe_producers_request::TopicRequest::default();
                t.name = TopicName(s(TOPIC));
                t.partition_indexes = vec![0, 1];
                let mut r = DescribeProducersRequest::default();
                r.topics = vec![t];
                RequestKind::DescribeProducers(r)
            }
            other => panic!("no sample request for {other:?}; add one to this test"),
        }
    }
}

fn frame(api: ApiKey, version: i16, request: &RequestKind) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 42;
    header.client_id = Some(s("sweep"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .expect("encode header");
    request
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("encode {api:?} v{version}: {e}"));
    buf.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "node.id=1\nlisteners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\ngroup.initial.rebalance.delay.ms=0\n",
        dir.path().display()
    );
    let path = dir.path().join("server.properties");
    std::fs::write(&path, text).expect("write config");
    let config = BrokerConfig::load(&path, Vec::new()).expect("config");
    let node: Arc<Node> = Node::start(config).await.expect("node");
    let new = NewTopic {
        name: TOPIC.to_string(),
        partitions: 2,
        replication_factor: 1,
        configs: Default::default(),
    };
    node.topic_changes()
        .create(&new, None, false)
        .await
        .expect("create topic");
    let topic = node.topics.get(TOPIC).expect("topic");

    for &(api, min, max) in versions::SUPPORTED {
        for version in min..=max {
            if !versions::is_supported(api, version) {
                continue;
            }
            let request = sample(api, version, topic.id);
            let conn = ConnectionInfo {
                peer: "127.0.0.1".into(),
                listener: "PLAINTEXT".into(),
                principal: "User:ANONYMOUS".into(),
            };
            let answer = handle_frame(node.clone(), frame(api, version, &request), conn).await;
            match answer {
                Ok(answer) => match answer.response {
                    Some(bytes) => {
                        assert!(bytes.len() > 8, "{api:?} v{version}: empty response")
                    }
                    None => panic!("{api:?} v{version}: no response"),
                },
                Err(e) => panic!("{api:?} v{version}: {e}"),
            }
        }
    }
}
