//! Internal errors to the Kafka error codes clients act on.

use kafka_protocol::ResponseError;

use crate::group::GroupError;
use crate::log::LogError;
use crate::metadata::records::Refusal;
use crate::partition::PartitionError;
use crate::replica_manager::produce::ProduceError;
use crate::replica_manager::ReplicaError;
use crate::topic::TopicError;
use crate::txn::error::TxnError;

/// The Kafka error for a failed topic administration call.
pub fn topic_error(e: &TopicError) -> ResponseError {
    match e {
        TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
        TopicError::Exists(_) => ResponseError::TopicAlreadyExists,
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        TopicError::Config(_) => ResponseError::InvalidConfig,
        TopicError::Internal(_) => ResponseError::InvalidRequest,
        TopicError::Partition { source, .. } => partition_error(source),
        TopicError::Controller(_) => ResponseError::RequestTimedOut,
        TopicError::Refused(r) => refusal_error(r),
    }
}

/// The Kafka error for a change the controller refused.
pub fn refusal_error(r: &Refusal) -> ResponseError {
    match r {
        Refusal::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
        Refusal::TopicExists(_) => ResponseError::TopicAlreadyExists,
        Refusal::StaleBrokerEpoch(_) => ResponseError::StaleBrokerEpoch,
        Refusal::DuplicateBroker(_) => ResponseError::DuplicateBrokerRegistration,
        Refusal::FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
        Refusal::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion,
        Refusal::IneligibleReplica(_) => ResponseError::IneligibleReplica,
        Refusal::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        Refusal::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        Refusal::PreferredLeaderNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
        Refusal::ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded,
        Refusal::NoReassignmentInProgress(_) => ResponseError::NoReassignmentInProgress,
        Refusal::ResourceNotFound(_) => ResponseError::ResourceNotFound,
    }
}

/// The Kafka error for a refusal of the group coordinator.
pub fn group_error(e: &GroupError) -> ResponseError {
    match e {
        GroupError::NotCoordinator | GroupError::CoordinatorMoved => ResponseError::NotCoordinator,
        GroupError::LoadInProgress => ResponseError::CoordinatorLoadInProgress,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::MissingGroupId
        | GroupError::MissingSubscription
        | GroupError::RegexSubscription => ResponseError::InvalidRequest,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::InconsistentProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::UnknownMember => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::FencedInstance => ResponseError::FencedInstanceId,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        GroupError::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        GroupError::UnreleasedInstance => ResponseError::UnreleasedInstanceId,
        GroupError::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
        // Both send an admin client on to the other protocol's APIs.
        GroupError::GroupNotFound
        | GroupError::ClassicGroupInUse
        | GroupError::NotConsumerGroup(_) => ResponseError::GroupIdNotFound,
        GroupError::NotEmpty => ResponseError::NonEmptyGroup,
        GroupError::SubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        GroupError::MetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        GroupError::ReplicationTimedOut => ResponseError::RequestTimedOut,
        GroupError::Storage => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error for a failed partition read or write.
pub fn partition_error(e: &PartitionError) -> ResponseError {
    match e {
        PartitionError::Log(l) => log_error(l),
        // Files of the replica's state on disk: its log directory fails.
        PartitionError::Snapshot(_) => ResponseError::KafkaStorageError,
        PartitionError::ExtraBytes(_) => ResponseError::InvalidRecord,
        PartitionError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        PartitionError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
        PartitionError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        PartitionError::InvalidTxnState { .. } | PartitionError::Unverified { .. } => {
            ResponseError::InvalidTxnState
        }
        // Kafka's LogValidator: InvalidRecordException.
        PartitionError::ControlBatch => ResponseError::InvalidRecord,
        PartitionError::CoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
    }
}

/// The Kafka error for a partition that cannot be served as asked.
pub fn replica_error(e: &ReplicaError) -> ResponseError {
    match e {
        ReplicaError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        ReplicaError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
        ReplicaError::NotStoredHere => ResponseError::NotLeaderOrFollower,
        ReplicaError::Partition(p) => partition_error(p),
        ReplicaError::DeleteOnCompacted => ResponseError::PolicyViolation,
        ReplicaError::OffsetNotAvailable { .. } => ResponseError::OffsetNotAvailable,
    }
}

/// The Kafka error for a write refused or not confirmed.
pub fn produce_error(e: &ProduceError) -> ResponseError {
    match e {
        ProduceError::InvalidAcks(_) => ResponseError::InvalidRequiredAcks,
        ProduceError::NoRecords => ResponseError::InvalidRecord,
        ProduceError::Replica(r) => replica_error(r),
        ProduceError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        ProduceError::NotEnoughReplicasAfterAppend { .. } => {
            ResponseError::NotEnoughReplicasAfterAppend
        }
        ProduceError::LostLeadership => ResponseError::NotLeaderOrFollower,
        ProduceError::TimedOut => ResponseError::RequestTimedOut,
        ProduceError::NotInTransaction { abortable: true } => ResponseError::TransactionAbortable,
        ProduceError::NotInTransaction { abortable: false } => ResponseError::InvalidTxnState,
        // As Kafka answers: a producer expects INVALID_PRODUCER_EPOCH when
        // fenced, and a coordinator that cannot answer yet is reported as
        // NOT_ENOUGH_REPLICAS, which every client retries without
        // refreshing its metadata.
        ProduceError::Unverified(TxnError::ProducerFenced) => ResponseError::InvalidProducerEpoch,
        ProduceError::Unverified(e) if e.is_retriable() => ResponseError::NotEnoughReplicas,
        ProduceError::Unverified(e) => e.code(0, 0),
        // From Produce v12 Kafka hands CONCURRENT_TRANSACTIONS back as it
        // is once its leader stops asking to add (KAFKA-18662).
        ProduceError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
    }
}

/// The Kafka error for a log failure.
pub fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::KeylessOnCompacted => ResponseError::InvalidRecord,
        LogError::Batch(b) => match b {
            crate::log::batch::BatchError::UnsupportedMagic { .. } => {
                ResponseError::UnsupportedForMessageFormat
            }
            // Kafka answers a batch cut short, records that do not decode,
            // or one too large once decompressed, with INVALID_RECORD.
            crate::log::batch::BatchError::Truncated { .. }
            | crate::log::batch::BatchError::Records { .. }
            | crate::log::batch::BatchError::DecompressedTooLarge { .. } => {
                ResponseError::InvalidRecord
            }
            _ => ResponseError::CorruptMessage,
        },
        _ => ResponseError::KafkaStorageError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_transactional_writes_table() {
        // As Kafka's partition leaders answer a write its transaction's
        // coordinator did not confirm.
        let cases = [
            (
                ProduceError::NotInTransaction { abortable: true },
                ResponseError::TransactionAbortable,
            ),
            (
                ProduceError::NotInTransaction { abortable: false },
                ResponseError::InvalidTxnState,
            ),
            (
                ProduceError::Unverified(TxnError::ProducerFenced),
                ResponseError::InvalidProducerEpoch,
            ),
            (
                ProduceError::Unverified(TxnError::Concurrent),
                ResponseError::NotEnoughReplicas,
            ),
            (
                ProduceError::ConcurrentTransactions,
                ResponseError::ConcurrentTransactions,
            ),
            (
                ProduceError::Unverified(TxnError::NotCoordinator),
                ResponseError::NotEnoughReplicas,
            ),
            (
                ProduceError::Unverified(TxnError::NotAvailable("down".into())),
                ResponseError::NotEnoughReplicas,
            ),
            (
                ProduceError::Unverified(TxnError::InvalidProducerIdMapping),
                ResponseError::InvalidProducerIdMapping,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(produce_error(&e), want, "{e:?}");
        }
        assert_eq!(
            ProduceError::Unverified(TxnError::LoadInProgress).to_string(),
            "unable to verify the partition has been added to the transaction: the transaction log is being loaded"
        );
    }

    #[test]
    fn group_errors_table() {
        // The refusals clients act on differently from their name.
        let cases = [
            (GroupError::CoordinatorMoved, ResponseError::NotCoordinator),
            (
                GroupError::LoadInProgress,
                ResponseError::CoordinatorLoadInProgress,
            ),
            (GroupError::MissingGroupId, ResponseError::InvalidRequest),
            (GroupError::InvalidGroupId, ResponseError::InvalidGroupId),
            (GroupError::RegexSubscription, ResponseError::InvalidRequest),
            (
                GroupError::MissingSubscription,
                ResponseError::InvalidRequest,
            ),
            (
                GroupError::ClassicGroupInUse,
                ResponseError::GroupIdNotFound,
            ),
            (
                GroupError::NotConsumerGroup("g".into()),
                ResponseError::GroupIdNotFound,
            ),
            (GroupError::NotEmpty, ResponseError::NonEmptyGroup),
            (
                GroupError::MetadataTooLarge,
                ResponseError::OffsetMetadataTooLarge,
            ),
            (
                GroupError::ReplicationTimedOut,
                ResponseError::RequestTimedOut,
            ),
            (GroupError::Storage, ResponseError::KafkaStorageError),
            (
                GroupError::FencedMemberEpoch,
                ResponseError::FencedMemberEpoch,
            ),
            (
                GroupError::StaleMemberEpoch,
                ResponseError::StaleMemberEpoch,
            ),
            (GroupError::FencedInstance, ResponseError::FencedInstanceId),
        ];
        for (e, want) in cases {
            assert_eq!(group_error(&e), want, "{e:?}");
        }
    }
}
