//! Internal errors to the Kafka error codes clients act on.

use kafka_protocol::ResponseError;

use crate::log::LogError;
use crate::metadata::records::Refusal;
use crate::partition::PartitionError;
use crate::topic::TopicError;

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
    }
}

/// The Kafka error for a failed partition read or write.
pub fn partition_error(e: &PartitionError) -> ResponseError {
    match e {
        PartitionError::Log(l) => log_error(l),
        PartitionError::ExtraBytes(_) => ResponseError::InvalidRecord,
        PartitionError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        PartitionError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
        PartitionError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
    }
}

/// The Kafka error for a log failure.
pub fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
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
