//! The topics a classic `consumer` group's members subscribe to, read from
//! the protocol metadata each member sent in JoinGroup: Kafka's consumer
//! protocol subscription (a version, then the versioned struct), the same
//! bytes the group's stored membership keeps.

use std::collections::HashSet;

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use super::state::Group;

/// Newest subscription version the codec reads; newer clients write
/// compatible fields first, so it is read as this one.
const NEWEST: i16 = 3;

/// Topics the members of a `consumer` group subscribe to (none for groups
/// of other protocol types, whose metadata is opaque).
pub fn subscribed_topics(group: &Group) -> HashSet<String> {
    if group.protocol_type.as_deref() != Some("consumer") {
        return HashSet::new();
    }
    group
        .members
        .values()
        .flat_map(|m| m.protocols.iter())
        .flat_map(|(_, metadata)| topics(metadata.clone()))
        .collect()
}

/// The topics of one subscription; none when it does not decode.
fn topics(mut metadata: bytes::Bytes) -> Vec<String> {
    if metadata.remaining() < 2 {
        return Vec::new();
    }
    let version = metadata.get_i16();
    ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, NEWEST))
        .map(|sub| sub.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn subscription(version: i16, topics: &[&str]) -> Bytes {
        let mut sub = ConsumerProtocolSubscription::default();
        sub.topics = topics
            .iter()
            .map(|t| StrBytes::from_string(t.to_string()))
            .collect();
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        sub.encode(&mut buf, version.clamp(0, NEWEST))
            .expect("encode");
        buf.freeze()
    }

    #[test]
    fn subscriptions_table() {
        let cases: [(Bytes, &[&str]); 5] = [
            (subscription(0, &["a", "b"]), &["a", "b"]),
            (subscription(3, &["c"]), &["c"]),
            // A newer client's subscription starts like version 3's.
            (subscription(5, &["d"]), &["d"]),
            (Bytes::from_static(b"\x00"), &[]),
            (Bytes::from_static(b"\x00\x00\xff\xff\xff"), &[]),
        ];
        for (metadata, want) in cases {
            assert_eq!(topics(metadata.clone()), want, "{metadata:?}");
        }
    }
}
