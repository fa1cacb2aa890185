//! Records of the internal `__consumer_offsets` topic, in Kafka's layout:
//! an offset commit is keyed by (version 1, group, topic, partition) and
//! its value is (version 3, offset, leader epoch, metadata, commit time); a
//! classic group's membership is keyed by (version 2, group) with a
//! GroupMetadataValue v3; the consumer protocol's groups leave the records
//! of `consumer_records` (types 3 to 8). A key with no value deletes. Pure
//! encode and decode.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::consumer_records::ConsumerGroupRecord;

/// Key version of an offset commit.
const OFFSET_KEY_VERSION: i16 = 1;
/// Key version of group metadata.
const GROUP_KEY_VERSION: i16 = 2;
/// Group metadata value version written (the last non-flexible one).
const GROUP_VALUE_VERSION: i16 = 3;

/// One committed offset, as an offset commit record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Next offset the group will read.
    pub offset: i64,
    /// Leader epoch the client saw, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata.
    pub metadata: String,
}

/// A classic group as stored: enough to resume it after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadata {
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol (assignor).
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group last changed state (ms).
    pub state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberMetadata>,
}

/// One member as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Its subscription (the chosen protocol's metadata).
    pub subscription: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}
/// Value version written.
const OFFSET_VALUE_VERSION: i16 = 3;

/// What one record of the topic says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    /// A committed offset.
    Commit {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The commit.
        committed: Committed,
    },
    /// A classic group's membership, or its removal (`None`).
    Group {
        /// Group id.
        group: String,
        /// The metadata.
        metadata: Option<GroupMetadata>,
    },
    /// A removed commit (tombstone).
    Delete {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A record of a consumer-protocol group.
    ConsumerGroup(ConsumerGroupRecord),
}

/// The `__consumer_offsets` partition of a group, as Kafka computes it
/// (Java's `String.hashCode`, sign bit cleared, modulo the count).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32));
    (hash & 0x7fff_ffff) % partitions.max(1)
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn get_nullable(buf: &mut &[u8]) -> Option<Option<String>> {
    if buf.remaining() >= 2 && i16::from_be_bytes([buf[0], buf[1]]) == -1 {
        buf.advance(2);
        return Some(None);
    }
    get_string(buf).map(Some)
}

fn get_bytes(buf: &mut &[u8]) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = buf.get_i32();
    if len < 0 {
        return Some(Bytes::new());
    }
    if buf.remaining() < len as usize {
        return None;
    }
    let b = Bytes::copy_from_slice(&buf[..len as usize]);
    buf.advance(len as usize);
    Some(b)
}

/// The record key of a classic group's metadata.
pub fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(GROUP_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

/// The record value of a classic group's metadata.
pub fn group_value(g: &GroupMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut buf, &g.protocol_type);
    buf.put_i32(g.generation);
    put_nullable(&mut buf, g.protocol.as_deref());
    put_nullable(&mut buf, g.leader.as_deref());
    buf.put_i64(g.state_timestamp);
    buf.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_string(&mut buf, &m.member_id);
        put_nullable(&mut buf, m.instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

fn decode_group_value(mut v: &[u8]) -> Option<GroupMetadata> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = get_string(&mut v)?;
    if v.remaining() < 4 {
        return None;
    }
    let generation = v.get_i32();
    let protocol = get_nullable(&mut v)?;
    let leader = get_nullable(&mut v)?;
    let state_timestamp = if version >= 2 {
        if v.remaining() < 8 {
            return None;
        }
        v.get_i64()
    } else {
        -1
    };
    if v.remaining() < 4 {
        return None;
    }
    let count = v.get_i32().max(0) as usize;
    let mut members = Vec::with_capacity(count.min(v.remaining()));
    for _ in 0..count {
        let member_id = get_string(&mut v)?;
        let instance_id = if version >= 3 {
            get_nullable(&mut v)?
        } else {
            None
        };
        let client_id = get_string(&mut v)?;
        let client_host = get_string(&mut v)?;
        let need = if version >= 1 { 8 } else { 4 };
        if v.remaining() < need {
            return None;
        }
        let rebalance_timeout_ms = if version >= 1 { v.get_i32() } else { -1 };
        let session_timeout_ms = v.get_i32();
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberMetadata {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

fn get_string(buf: &mut &[u8]) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return None;
    }
    let s = String::from_utf8(buf[..len as usize].to_vec()).ok()?;
    buf.advance(len as usize);
    Some(s)
}

/// The record key of a group's commit for one partition.
pub fn key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(10 + group.len() + topic.len());
    buf.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// The record value of a commit.
pub fn value(committed: &Committed, commit_time_ms: i64) -> Bytes {
    let mut buf = BytesMut::with_capacity(32 + committed.metadata.len());
    buf.put_i16(OFFSET_VALUE_VERSION);
    buf.put_i64(committed.offset);
    buf.put_i32(committed.leader_epoch);
    put_string(&mut buf, &committed.metadata);
    buf.put_i64(commit_time_ms);
    buf.freeze()
}

/// Reads a record back; `None` for records it does not know (share and
/// streams groups, the retired type 4) or cannot read.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetRecord> {
    let mut k = key;
    if k.remaining() < 2 {
        return None;
    }
    let version = k.get_i16();
    if version == GROUP_KEY_VERSION {
        let group = get_string(&mut k)?;
        let metadata = match value {
            Some(v) => Some(decode_group_value(v)?),
            None => None,
        };
        return Some(OffsetRecord::Group { group, metadata });
    }
    if (3..=8).contains(&version) {
        return ConsumerGroupRecord::decode(version, k, value).map(OffsetRecord::ConsumerGroup);
    }
    if version != 0 && version != 1 {
        return None;
    }
    let group = get_string(&mut k)?;
    let topic = get_string(&mut k)?;
    if k.remaining() < 4 {
        return None;
    }
    let partition = k.get_i32();
    let Some(mut v) = value else {
        return Some(OffsetRecord::Delete {
            group,
            topic,
            partition,
        });
    };
    if v.remaining() < 2 {
        return None;
    }
    let value_version = v.get_i16();
    if v.remaining() < 8 {
        return None;
    }
    let offset = v.get_i64();
    let leader_epoch = if value_version >= 3 {
        if v.remaining() < 4 {
            return None;
        }
        v.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut v)?;
    Some(OffsetRecord::Commit {
        group,
        topic,
        partition,
        committed: Committed {
            offset,
            leader_epoch,
            metadata,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partitions_match_kafka() {
        // Java's "a".hashCode() is 97; the others were worked out from
        // String.hashCode's definition over UTF-16 units.
        let cases = [
            ("", 0),
            ("a", 47),
            ("zero", 8),
            ("console-consumer-12345", 6),
            ("Gruppe-ä", 26),
        ];
        for (group, want) in cases {
            assert_eq!(partition_for(group, 50), want, "{group}");
        }
    }

    #[test]
    fn commits_and_tombstones_round_trip() {
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
        };
        let k = key("g", "t", 7);
        let v = value(&c, 1_700_000_000_000);
        assert_eq!(
            decode(&k, Some(&v)),
            Some(OffsetRecord::Commit {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                committed: c
            })
        );
        assert_eq!(
            decode(&k, None),
            Some(OffsetRecord::Delete {
                group: "g".into(),
                topic: "t".into(),
                partition: 7
            })
        );
        // Unknown key versions and damaged keys are skipped.
        assert_eq!(decode(&[0, 9, 0, 1, b'g'], None), None);
        assert_eq!(decode(&k[..k.len() - 2], None), None);
    }

    #[test]
    fn group_metadata_round_trips() {
        let g = GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 99,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                instance_id: Some("static-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"plan"),
            }],
        };
        let k = group_key("g");
        let v = group_value(&g);
        let want = OffsetRecord::Group {
            group: "g".into(),
            metadata: Some(g),
        };
        assert_eq!(decode(&k, Some(&v)), Some(want));
        assert_eq!(
            decode(&k, None),
            Some(OffsetRecord::Group {
                group: "g".into(),
                metadata: None
            })
        );
        assert_eq!(decode(&k, Some(&v[..v.len() - 1])), None);
    }
}
