//! The API versions this broker serves, and the ApiVersions answer that
//! advertises them.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// `(api, min, max)` for every API Gregor answers. The ranges are what the
/// handlers implement, within what the `kafka-protocol` crate can decode.
/// Produce advertises 0 as its minimum although the crate cannot decode
/// versions 0-2: librdkafka disables compression when a broker's Produce
/// range does not start at 0, and modern clients never send those versions
/// (they are refused when they arrive).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 5),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    // Produce 12, EndTxn 5, AddPartitionsToTxn 5 and TxnOffsetCommit 5
    // are transaction version 2 (KIP-890 part 2).
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    // Kafka 4 serves WriteTxnMarkers from 1 (KIP-896 dropped 0); v2 adds
    // the markers' transaction version (KIP-1228).
    (ApiKey::WriteTxnMarkers, 1, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
];

/// Every API and the range served.
pub fn advertised() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    r
}

/// The range served for `key`, if any.
pub fn range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// Whether `version` of `key` is served and decodable.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    match range(key) {
        // Produce 0-2 is advertised but not decodable (see above).
        Some(_) if key == ApiKey::Produce && version < 3 => false,
        Some((min, max)) => (min..=max).contains(&version),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_within_what_the_codec_knows() {
        for (key, min, max) in SUPPORTED {
            let codec = key.valid_versions();
            let decodable_min = if *key == ApiKey::Produce { 3 } else { *min };
            assert!(codec.min <= decodable_min && *max <= codec.max, "{key:?}");
        }
    }

    #[test]
    fn produce_advertises_zero_but_refuses_old_versions() {
        assert_eq!(range(ApiKey::Produce), Some((0, 12)));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(is_supported(ApiKey::Produce, 3));
        assert!(!is_supported(ApiKey::Fetch, 99));
    }
}
