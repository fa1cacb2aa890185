//! The records a consumer-protocol (KIP-848) group keeps in
//! `__consumer_offsets`, in Kafka's layout, so a coordinator that loads the
//! partition (after a failover or a restart) resumes the group with its
//! members, epochs and assignments:
//!
//! | type | key              | value                                            |
//! |------|------------------|--------------------------------------------------|
//! | 3    | group            | group epoch                                      |
//! | 5    | group, member    | member metadata (client, subscription, timeouts) |
//! | 6    | group            | epoch of the target assignment                   |
//! | 7    | group, member    | the member's target assignment                   |
//! | 8    | group, member    | the member's current assignment and epochs       |
//!
//! Keys are the type (int16) then non-flexible strings; values are a
//! version (int16, 0) then a flexible struct. A key without a value deletes.
//! Partitions are named by topic id, as Kafka does. Pure encode, decode,
//! and the records that turn one stored group into another.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Record type of the group epoch.
pub const GROUP_EPOCH: i16 = 3;
/// Record type of a member's metadata.
pub const MEMBER: i16 = 5;
/// Record type of the target assignment's epoch.
pub const ASSIGNMENT_EPOCH: i16 = 6;
/// Record type of a member's target assignment.
pub const TARGET: i16 = 7;
/// Record type of a member's current assignment.
pub const CURRENT: i16 = 8;

/// Partitions by topic id.
pub type Partitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// A member as its type-5 record says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRecord {
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscriptions: BTreeSet<String>,
    /// Rebalance timeout (ms), -1 when the client sent none.
    pub rebalance_timeout_ms: i32,
    /// Server-side assignor the member asked for.
    pub server_assignor: Option<String>,
}

/// How far a member is with its assignment (Kafka's `MemberState`).
pub mod member_state {
    /// It owns exactly its assignment.
    pub const STABLE: i8 = 0;
    /// It still owns partitions it must give up.
    pub const UNREVOKED_PARTITIONS: i8 = 1;
    /// It waits for partitions others still own.
    pub const UNRELEASED_PARTITIONS: i8 = 2;
}

/// A member's current assignment (type 8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    /// Member epoch.
    pub epoch: i32,
    /// The epoch before, still accepted from the member.
    pub previous_epoch: i32,
    /// One of `member_state`.
    pub state: i8,
    /// What the member has been told to own.
    pub assigned: Partitions,
    /// What it still owns and must give up.
    pub pending_revocation: Partitions,
}

/// One member: its three records, each present once written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMember {
    /// Type 5.
    pub metadata: Option<MemberRecord>,
    /// Type 7.
    pub target: Option<Partitions>,
    /// Type 8.
    pub current: Option<CurrentAssignment>,
}

/// A consumer group as its records say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredConsumerGroup {
    /// Group epoch (type 3).
    pub epoch: i32,
    /// Target assignment epoch (type 6).
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, StoredMember>,
}

/// One record: what it is about and its value (`None`: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerGroupRecord {
    /// Type 3.
    GroupEpoch {
        /// Group id.
        group: String,
        /// The epoch.
        epoch: Option<i32>,
    },
    /// Type 5.
    Member {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
        /// The metadata.
        value: Option<MemberRecord>,
    },
    /// Type 6.
    AssignmentEpoch {
        /// Group id.
        group: String,
        /// The epoch.
        epoch: Option<i32>,
    },
    /// Type 7.
    Target {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
        /// The target assignment.
        value: Option<Partitions>,
    },
    /// Type 8.
    Current {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
        /// The current assignment.
        value: Option<CurrentAssignment>,
    },
}

impl ConsumerGroupRecord {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            ConsumerGroupRecord::GroupEpoch { group, .. }
            | ConsumerGroupRecord::Member { group, .. }
            | ConsumerGroupRecord::AssignmentEpoch { group, .. }
            | ConsumerGroupRecord::Target { group, .. }
            | ConsumerGroupRecord::Current { group, .. } => group,
        }
    }

    /// The record's key and value.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = BytesMut::new();
        let value = match self {
            ConsumerGroupRecord::GroupEpoch { group, epoch } => {
                key_of(&mut key, GROUP_EPOCH, group, None);
                epoch.map(|e| value_of(|v| v.put_i32(e)))
            }
            ConsumerGroupRecord::AssignmentEpoch { group, epoch } => {
                key_of(&mut key, ASSIGNMENT_EPOCH, group, None);
                epoch.map(|e| value_of(|v| v.put_i32(e)))
            }
            ConsumerGroupRecord::Member {
                group,
                member,
                value,
            } => {
                key_of(&mut key, MEMBER, group, Some(member));
                value.as_ref().map(|m| value_of(|v| put_member(v, m)))
            }
            ConsumerGroupRecord::Target {
                group,
                member,
                value,
            } => {
                key_of(&mut key, TARGET, group, Some(member));
                value.as_ref().map(|p| value_of(|v| put_partitions(v, p)))
            }
            ConsumerGroupRecord::Current {
                group,
                member,
                value,
            } => {
                key_of(&mut key, CURRENT, group, Some(member));
                value.as_ref().map(|c| {
                    value_of(|v| {
                        v.put_i32(c.epoch);
                        v.put_i32(c.previous_epoch);
                        v.put_i8(c.state);
                        put_partitions(v, &c.assigned);
                        put_partitions(v, &c.pending_revocation);
                    })
                })
            }
        };
        (key.freeze(), value)
    }

    /// Reads a record of type `kind` whose key (after the type) is `key`;
    /// `None` when it is not a consumer-group record or cannot be read.
    pub fn decode(kind: i16, mut key: &[u8], value: Option<&[u8]>) -> Option<Self> {
        let group = get_string(&mut key)?;
        let member = match kind {
            MEMBER | TARGET | CURRENT => Some(get_string(&mut key)?),
            GROUP_EPOCH | ASSIGNMENT_EPOCH => None,
            _ => return None,
        };
        let mut v = match value {
            Some(mut v) => {
                // Value version 0 is the only one there is.
                if v.remaining() < 2 || v.get_i16() != 0 {
                    return None;
                }
                Some(v)
            }
            None => None,
        };
        let record = match (kind, member) {
            (GROUP_EPOCH, _) => ConsumerGroupRecord::GroupEpoch {
                group,
                epoch: read(v.as_mut(), get_epoch)?,
            },
            (ASSIGNMENT_EPOCH, _) => ConsumerGroupRecord::AssignmentEpoch {
                group,
                epoch: read(v.as_mut(), get_epoch)?,
            },
            (MEMBER, Some(member)) => ConsumerGroupRecord::Member {
                group,
                member,
                value: read(v.as_mut(), get_member)?,
            },
            (TARGET, Some(member)) => ConsumerGroupRecord::Target {
                group,
                member,
                value: read(v.as_mut(), |v| {
                    let p = get_partitions(v)?;
                    skip_tagged(v)?;
                    Some(p)
                })?,
            },
            (CURRENT, Some(member)) => ConsumerGroupRecord::Current {
                group,
                member,
                value: read(v.as_mut(), get_current)?,
            },
            _ => return None,
        };
        Some(record)
    }
}

impl StoredConsumerGroup {
    /// Applies one record of `groups`' partition.
    pub fn apply(groups: &mut BTreeMap<String, StoredConsumerGroup>, rec: ConsumerGroupRecord) {
        use ConsumerGroupRecord as R;
        // The member a record is about; a tombstone creates none.
        fn member_of(
            g: &mut StoredConsumerGroup,
            id: String,
            create: bool,
        ) -> Option<&mut StoredMember> {
            if create {
                Some(g.members.entry(id).or_default())
            } else {
                g.members.get_mut(&id)
            }
        }
        match rec {
            R::GroupEpoch { group, epoch: None } => {
                groups.remove(&group);
            }
            R::GroupEpoch {
                group,
                epoch: Some(e),
            } => groups.entry(group).or_default().epoch = e,
            R::AssignmentEpoch { group, epoch } => {
                groups.entry(group).or_default().assignment_epoch = epoch.unwrap_or_default()
            }
            R::Member {
                group,
                member,
                value: None,
            } => {
                groups.entry(group).or_default().members.remove(&member);
            }
            R::Member {
                group,
                member,
                value,
            } => {
                if let Some(m) = member_of(groups.entry(group).or_default(), member, true) {
                    m.metadata = value;
                }
            }
            R::Target {
                group,
                member,
                value,
            } => {
                if let Some(m) =
                    member_of(groups.entry(group).or_default(), member, value.is_some())
                {
                    m.target = value;
                }
            }
            R::Current {
                group,
                member,
                value,
            } => {
                if let Some(m) =
                    member_of(groups.entry(group).or_default(), member, value.is_some())
                {
                    m.current = value;
                }
            }
        }
    }

    /// The records that turn `old` into `new` for `group` (`None`: no
    /// group), in the order Kafka writes them: members' metadata, the group
    /// epoch, targets, the assignment epoch, current assignments; a member
    /// or group that goes away loses its records in the reverse order.
    pub fn changes(
        group: &str,
        old: Option<&Self>,
        new: Option<&Self>,
    ) -> Vec<ConsumerGroupRecord> {
        use ConsumerGroupRecord as R;
        let empty = StoredConsumerGroup::default();
        let before = old.unwrap_or(&empty);
        let after = new.unwrap_or(&empty);
        let g = || group.to_string();
        let mut out = Vec::new();
        for (id, m) in &before.members {
            if !after.members.contains_key(id) {
                out.push(R::Current {
                    group: g(),
                    member: id.clone(),
                    value: None,
                });
                out.push(R::Target {
                    group: g(),
                    member: id.clone(),
                    value: None,
                });
                if m.metadata.is_some() {
                    out.push(R::Member {
                        group: g(),
                        member: id.clone(),
                        value: None,
                    });
                }
            }
        }
        if new.is_none() {
            if old.is_some() {
                out.push(R::AssignmentEpoch {
                    group: g(),
                    epoch: None,
                });
                out.push(R::GroupEpoch {
                    group: g(),
                    epoch: None,
                });
            }
            return out;
        }
        let member = |id, value| R::Member {
            group: g(),
            member: id,
            value,
        };
        changed_parts(&mut out, before, after, |m| &m.metadata, member);
        if old.is_none() || before.epoch != after.epoch {
            out.push(R::GroupEpoch {
                group: g(),
                epoch: Some(after.epoch),
            });
        }
        let target = |id, value| R::Target {
            group: g(),
            member: id,
            value,
        };
        changed_parts(&mut out, before, after, |m| &m.target, target);
        if old.is_none() || before.assignment_epoch != after.assignment_epoch {
            out.push(R::AssignmentEpoch {
                group: g(),
                epoch: Some(after.assignment_epoch),
            });
        }
        let current = |id, value| R::Current {
            group: g(),
            member: id,
            value,
        };
        changed_parts(&mut out, before, after, |m| &m.current, current);
        out
    }
}

/// Records of one part of each member (`part`) that `after` holds and
/// `before` does not hold the same.
fn changed_parts<T: PartialEq + Clone>(
    out: &mut Vec<ConsumerGroupRecord>,
    before: &StoredConsumerGroup,
    after: &StoredConsumerGroup,
    part: impl Fn(&StoredMember) -> &Option<T>,
    record: impl Fn(String, Option<T>) -> ConsumerGroupRecord,
) {
    for (id, m) in &after.members {
        let now = part(m);
        if now.is_some() && before.members.get(id).map(&part) != Some(now) {
            out.push(record(id.clone(), now.clone()));
        }
    }
}

fn key_of(buf: &mut BytesMut, kind: i16, group: &str, member: Option<&str>) {
    buf.put_i16(kind);
    for s in std::iter::once(group).chain(member) {
        buf.put_i16(s.len() as i16);
        buf.put_slice(s.as_bytes());
    }
}

/// Version 0, the fields `put` writes, no tagged fields.
fn value_of(put: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut v = BytesMut::new();
    v.put_i16(0);
    put(&mut v);
    put_no_tags(&mut v);
    v.freeze()
}

fn put_no_tags(buf: &mut BytesMut) {
    buf.put_u8(0);
}

/// Reads a value if there is one: `Some(None)` for a tombstone, `None`
/// when the value cannot be read.
fn read<T>(v: Option<&mut &[u8]>, get: impl FnOnce(&mut &[u8]) -> Option<T>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(v) => get(v).map(Some),
    }
}

// kafka-protocol keeps its field codecs private, so the few compact types
// these records use are written here.

fn put_uvarint(buf: &mut BytesMut, mut n: usize) {
    while n >= 0x80 {
        buf.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

/// A compact (nullable) string: length + 1 as a varint, 0 for null.
fn put_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        None => put_uvarint(buf, 0),
        Some(s) => {
            put_uvarint(buf, s.len() + 1);
            buf.put_slice(s.as_bytes());
        }
    }
}

fn put_member(buf: &mut BytesMut, m: &MemberRecord) {
    put_str(buf, m.instance_id.as_deref());
    put_str(buf, m.rack_id.as_deref());
    put_str(buf, Some(&m.client_id));
    put_str(buf, Some(&m.client_host));
    put_uvarint(buf, m.subscriptions.len() + 1);
    for t in &m.subscriptions {
        put_str(buf, Some(t));
    }
    // No regular-expression subscription.
    put_str(buf, None);
    buf.put_i32(m.rebalance_timeout_ms);
    put_str(buf, m.server_assignor.as_deref());
}

fn put_partitions(buf: &mut BytesMut, p: &Partitions) {
    put_uvarint(buf, p.len() + 1);
    for (topic, parts) in p {
        buf.put_slice(topic.as_bytes());
        put_uvarint(buf, parts.len() + 1);
        for part in parts {
            buf.put_i32(*part);
        }
        put_no_tags(buf);
    }
}

fn get_string(buf: &mut &[u8]) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = usize::try_from(buf.get_i16()).ok()?;
    if buf.remaining() < len {
        return None;
    }
    let s = String::from_utf8(buf[..len].to_vec()).ok()?;
    buf.advance(len);
    Some(s)
}

fn get_uvarint(buf: &mut &[u8]) -> Option<usize> {
    let mut n: u64 = 0;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return usize::try_from(n).ok();
        }
    }
    None
}

/// A compact array's length (`None` for a null array, read as empty).
fn get_len(buf: &mut &[u8]) -> Option<usize> {
    let n = get_uvarint(buf)?.saturating_sub(1);
    // Every element takes at least a byte: a length beyond what is left is corrupt.
    (n <= buf.remaining()).then_some(n)
}

fn get_str(buf: &mut &[u8]) -> Option<Option<String>> {
    let Some(len) = get_uvarint(buf)?.checked_sub(1) else {
        return Some(None);
    };
    if buf.remaining() < len {
        return None;
    }
    let s = String::from_utf8(buf[..len].to_vec()).ok()?;
    buf.advance(len);
    Some(Some(s))
}

fn get_i32(buf: &mut &[u8]) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

/// Skips a tagged-field section (fields written by a newer Kafka).
fn skip_tagged(buf: &mut &[u8]) -> Option<()> {
    for _ in 0..get_uvarint(buf)? {
        get_uvarint(buf)?;
        let size = get_uvarint(buf)?;
        if buf.remaining() < size {
            return None;
        }
        buf.advance(size);
    }
    Some(())
}

fn get_epoch(buf: &mut &[u8]) -> Option<i32> {
    let e = get_i32(buf)?;
    skip_tagged(buf)?;
    Some(e)
}

fn get_member(buf: &mut &[u8]) -> Option<MemberRecord> {
    let instance_id = get_str(buf)?;
    let rack_id = get_str(buf)?;
    let client_id = get_str(buf)?.unwrap_or_default();
    let client_host = get_str(buf)?.unwrap_or_default();
    let mut subscriptions = BTreeSet::new();
    for _ in 0..get_len(buf)? {
        subscriptions.insert(get_str(buf)?.unwrap_or_default());
    }
    let _regex = get_str(buf)?;
    let rebalance_timeout_ms = get_i32(buf)?;
    let server_assignor = get_str(buf)?;
    skip_tagged(buf)?;
    Some(MemberRecord {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscriptions,
        rebalance_timeout_ms,
        server_assignor,
    })
}

fn get_partitions(buf: &mut &[u8]) -> Option<Partitions> {
    let mut out = Partitions::new();
    for _ in 0..get_len(buf)? {
        if buf.remaining() < 16 {
            return None;
        }
        let topic = Uuid::from_slice(&buf[..16]).ok()?;
        buf.advance(16);
        let parts = out.entry(topic).or_default();
        for _ in 0..get_len(buf)? {
            parts.insert(get_i32(buf)?);
        }
        skip_tagged(buf)?;
    }
    Some(out)
}

fn get_current(buf: &mut &[u8]) -> Option<CurrentAssignment> {
    let epoch = get_i32(buf)?;
    let previous_epoch = get_i32(buf)?;
    if buf.remaining() < 1 {
        return None;
    }
    let state = buf.get_i8();
    let assigned = get_partitions(buf)?;
    let pending_revocation = get_partitions(buf)?;
    skip_tagged(buf)?;
    Some(CurrentAssignment {
        epoch,
        previous_epoch,
        state,
        assigned,
        pending_revocation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(topic: Uuid, list: &[i32]) -> Partitions {
        Partitions::from([(topic, list.iter().copied().collect())])
    }

    fn member(topic: Uuid, assigned: &[i32], epoch: i32) -> StoredMember {
        StoredMember {
            metadata: Some(MemberRecord {
                instance_id: None,
                rack_id: Some("r1".into()),
                client_id: "consumer-1".into(),
                client_host: "10.0.0.1".into(),
                subscriptions: BTreeSet::from(["t".to_string()]),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("uniform".into()),
            }),
            target: Some(parts(topic, assigned)),
            current: Some(CurrentAssignment {
                epoch,
                previous_epoch: epoch - 1,
                state: member_state::STABLE,
                assigned: parts(topic, assigned),
                pending_revocation: Partitions::new(),
            }),
        }
    }

    /// Writes the records, reads them back and applies them.
    fn replay(records: &[ConsumerGroupRecord], groups: &mut BTreeMap<String, StoredConsumerGroup>) {
        for rec in records {
            let (key, value) = rec.encode();
            let mut k = &key[..];
            let kind = k.get_i16();
            let back = ConsumerGroupRecord::decode(kind, k, value.as_deref()).expect("readable");
            assert_eq!(&back, rec);
            StoredConsumerGroup::apply(groups, back);
        }
    }

    #[test]
    fn a_group_is_rebuilt_from_the_changes_written_along_the_way() {
        let t = Uuid::new_v4();
        let one = StoredConsumerGroup {
            epoch: 1,
            assignment_epoch: 1,
            members: BTreeMap::from([("a".to_string(), member(t, &[0, 1], 1))]),
        };
        let two = StoredConsumerGroup {
            epoch: 2,
            assignment_epoch: 2,
            members: BTreeMap::from([
                ("a".to_string(), member(t, &[0], 2)),
                ("b".to_string(), member(t, &[1], 2)),
            ]),
        };
        let three = StoredConsumerGroup {
            epoch: 3,
            assignment_epoch: 3,
            members: BTreeMap::from([("b".to_string(), member(t, &[0, 1], 3))]),
        };
        let mut groups = BTreeMap::new();
        let steps = [
            (None, Some(&one)),
            (Some(&one), Some(&two)),
            (Some(&two), Some(&two)),
            (Some(&two), Some(&three)),
        ];
        for (old, new) in steps {
            replay(&StoredConsumerGroup::changes("g", old, new), &mut groups);
            assert_eq!(groups.get("g"), new);
        }
        assert!(StoredConsumerGroup::changes("g", Some(&two), Some(&two)).is_empty());
        let gone = StoredConsumerGroup::changes("g", Some(&three), None);
        let kinds: Vec<i16> = gone
            .iter()
            .map(|r| r.encode().0.slice(..2).get_i16())
            .collect();
        assert_eq!(
            kinds,
            [CURRENT, TARGET, MEMBER, ASSIGNMENT_EPOCH, GROUP_EPOCH]
        );
        replay(&gone, &mut groups);
        assert!(groups.is_empty());
    }

    #[test]
    fn values_are_kafkas_bytes() {
        // Group epoch 7: version 0, int32, empty tagged fields.
        let (key, value) = ConsumerGroupRecord::GroupEpoch {
            group: "g".into(),
            epoch: Some(7),
        }
        .encode();
        assert_eq!(&key[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(value.as_deref(), Some(&[0, 0, 0, 0, 0, 7, 0][..]));
        // A target of partitions 0 and 2 of one topic.
        let t = Uuid::from_u128(1);
        let (_, value) = ConsumerGroupRecord::Target {
            group: "g".into(),
            member: "m".into(),
            value: Some(parts(t, &[0, 2])),
        }
        .encode();
        let mut want = vec![0, 0, 2];
        want.extend_from_slice(t.as_bytes());
        want.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(value.as_deref(), Some(&want[..]));
    }

    #[test]
    fn unknown_tagged_fields_are_skipped_and_damage_is_refused() {
        // A type-3 value with tag 0 (Kafka 4.1's metadata hash) set.
        let value = [0, 0, 0, 0, 0, 9, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42];
        assert_eq!(
            ConsumerGroupRecord::decode(GROUP_EPOCH, &[0, 1, b'g'], Some(&value)),
            Some(ConsumerGroupRecord::GroupEpoch {
                group: "g".into(),
                epoch: Some(9)
            })
        );
        let cases: [(i16, &[u8], &[u8]); 4] = [
            (GROUP_EPOCH, &[0, 1, b'g'], &[0, 0, 0, 0]),
            (GROUP_EPOCH, &[0, 1, b'g'], &[0, 1, 0, 0, 0, 9, 0]),
            (TARGET, &[0, 1, b'g'], &[0, 0, 1, 0]),
            (TARGET, &[0, 1, b'g', 0, 1, b'm'], &[0, 0, 200, 1]),
        ];
        for (kind, key, value) in cases {
            assert_eq!(ConsumerGroupRecord::decode(kind, key, Some(value)), None);
        }
    }
}
