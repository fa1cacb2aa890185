//! Records of the internal `__consumer_offsets` topic, in Kafka's layout:
//! an offset commit is keyed by (version 1, group, topic, partition) and
//! its value is (version 3, offset, leader epoch, metadata, commit time); a
//! key with no value deletes the commit. Pure encode and decode.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::offsets::Committed;

/// Key version of an offset commit.
const OFFSET_KEY_VERSION: i16 = 1;
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
    /// A removed commit (tombstone).
    Delete {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
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

/// Reads a record back; `None` for records that are not offset commits
/// (group metadata) or cannot be read.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetRecord> {
    let mut k = key;
    if k.remaining() < 2 {
        return None;
    }
    let version = k.get_i16();
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
        // Group metadata keys (version 2) and damaged keys are skipped.
        assert_eq!(decode(&[0, 2, 0, 1, b'g'], None), None);
        assert_eq!(decode(&k[..k.len() - 2], None), None);
    }
}
