//! Records of the internal `__transaction_state` topic, in Kafka's layout:
//! the key is (version 0, transactional id); the value is a
//! TransactionLogValue (producer id and epoch, timeout, state, the
//! partitions in the transaction, last update and start times; version 1,
//! written for producers of transaction version 2, adds the previous and
//! next producer ids and the client's transaction version as tagged
//! fields). A key with no value deletes the transactional id. Pure encode and decode, so
//! `kafka-dump-log --transaction-log-decoder` reads Gregor's segments.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState, EPOCH_BUMP_VERSION};

/// Key version written and read.
const KEY_VERSION: i16 = 0;
/// Tags of version 1's tagged fields.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_VERSION: u32 = 2;

/// Why a stored record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end before the record does.
    #[error("truncated transaction log record")]
    Truncated,
    /// A version this broker does not read.
    #[error("unknown transaction log {what} version {version}")]
    Version {
        /// Key or value.
        what: &'static str,
        /// The version found.
        version: i16,
    },
    /// A state id Kafka does not define.
    #[error("unknown transaction state {0}")]
    State(i8),
    /// A string that is not UTF-8.
    #[error("transaction log record holds a string that is not UTF-8")]
    Utf8,
}

/// The record key of `transactional_id`.
pub fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// The record value of a transaction's state: version 0 for producers
/// before transaction version 2 (as Kafka writes them), else version 1.
pub fn value(m: &TxnMetadata) -> Bytes {
    let flexible = m.client_version >= EPOCH_BUMP_VERSION;
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(i16::from(flexible));
    buf.put_i64(m.producer_id);
    buf.put_i16(m.producer_epoch);
    buf.put_i32(m.timeout_ms);
    buf.put_i8(m.state as i8);
    if m.state == TxnState::Empty {
        // Kafka writes no partition list for an empty transaction.
        put_len(&mut buf, None, flexible);
    } else {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &m.partitions {
            match topics.last_mut() {
                Some((t, ps)) if *t == topic => ps.push(*partition),
                _ => topics.push((topic, vec![*partition])),
            }
        }
        put_len(&mut buf, Some(topics.len()), flexible);
        for (topic, partitions) in topics {
            if flexible {
                put_varint(&mut buf, topic.len() as u32 + 1);
                buf.put_slice(topic.as_bytes());
            } else {
                put_string(&mut buf, topic);
            }
            put_len(&mut buf, Some(partitions.len()), flexible);
            for p in partitions {
                buf.put_i32(p);
            }
            if flexible {
                put_varint(&mut buf, 0);
            }
        }
    }
    buf.put_i64(m.last_update_ms);
    buf.put_i64(m.start_ms);
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if m.previous_producer_id != -1 {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                m.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if m.next_producer_id != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                m.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if m.client_version != 0 {
            tags.push((TAG_CLIENT_VERSION, m.client_version.to_be_bytes().to_vec()));
        }
        put_varint(&mut buf, tags.len() as u32);
        for (tag, bytes) in tags {
            put_varint(&mut buf, tag);
            put_varint(&mut buf, bytes.len() as u32);
            buf.put_slice(&bytes);
        }
    }
    buf.freeze()
}

/// The transactional id a record key names.
pub fn decode_key(mut key: &[u8]) -> Result<String, RecordError> {
    let version = get_i16(&mut key)?;
    if version != KEY_VERSION {
        return Err(RecordError::Version {
            what: "key",
            version,
        });
    }
    get_string(&mut key)
}

/// The state a record value holds (`None`: a tombstone). Versions 0 and 1
/// are read; unknown tagged fields are skipped.
pub fn decode_value(value: Option<&[u8]>) -> Result<Option<TxnMetadata>, RecordError> {
    let Some(mut v) = value else {
        return Ok(None);
    };
    let version = get_i16(&mut v)?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::Version {
            what: "value",
            version,
        });
    }
    let flexible = version >= 1;
    let producer_id = get_i64(&mut v)?;
    let producer_epoch = get_i16(&mut v)?;
    let timeout_ms = get_i32(&mut v)?;
    let state_id = get_i8(&mut v)?;
    let state = TxnState::from_id(state_id).ok_or(RecordError::State(state_id))?;
    let mut partitions = BTreeSet::new();
    let topics = get_len(&mut v, flexible)?;
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            get_compact_string(&mut v)?
        } else {
            get_string(&mut v)?
        };
        let count = get_len(&mut v, flexible)?.unwrap_or(0);
        for _ in 0..count {
            partitions.insert((topic.clone(), get_i32(&mut v)?));
        }
        if flexible {
            skip_tags(&mut v)?;
        }
    }
    let last_update_ms = get_i64(&mut v)?;
    let start_ms = get_i64(&mut v)?;
    let (mut previous_producer_id, mut next_producer_id, mut client_version) = (-1, -1, 0);
    if flexible {
        for (tag, mut field) in get_tags(&mut v)? {
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => previous_producer_id = get_i64(&mut field)?,
                TAG_NEXT_PRODUCER_ID => next_producer_id = get_i64(&mut field)?,
                TAG_CLIENT_VERSION => client_version = get_i16(&mut field)?,
                _ => {}
            }
        }
    }
    Ok(Some(TxnMetadata {
        producer_id,
        producer_epoch,
        // Not stored (as in Kafka): a retried InitProducerId that spans a
        // coordinator change is fenced.
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions: if state == TxnState::Empty {
            BTreeSet::new()
        } else {
            partitions
        },
        start_ms,
        last_update_ms,
        previous_producer_id,
        next_producer_id,
        client_version,
    }))
}

fn put_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// An array length (`None`: null), compact in flexible versions.
fn put_len(buf: &mut BytesMut, n: Option<usize>, flexible: bool) {
    match (n, flexible) {
        (None, true) => put_varint(buf, 0),
        (None, false) => buf.put_i32(-1),
        (Some(n), true) => put_varint(buf, n as u32 + 1),
        (Some(n), false) => buf.put_i32(n as i32),
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn need(b: &[u8], n: usize) -> Result<(), RecordError> {
    if b.remaining() < n {
        Err(RecordError::Truncated)
    } else {
        Ok(())
    }
}

fn get_i8(b: &mut &[u8]) -> Result<i8, RecordError> {
    need(b, 1)?;
    Ok(b.get_i8())
}

fn get_i16(b: &mut &[u8]) -> Result<i16, RecordError> {
    need(b, 2)?;
    Ok(b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Result<i32, RecordError> {
    need(b, 4)?;
    Ok(b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Result<i64, RecordError> {
    need(b, 8)?;
    Ok(b.get_i64())
}

fn get_varint(b: &mut &[u8]) -> Result<u32, RecordError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = get_i8(b)? as u8;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError::Truncated)
}

fn take_str(b: &mut &[u8], len: usize) -> Result<String, RecordError> {
    need(b, len)?;
    let s = std::str::from_utf8(&b[..len]).map_err(|_| RecordError::Utf8)?;
    let s = s.to_string();
    b.advance(len);
    Ok(s)
}

fn get_string(b: &mut &[u8]) -> Result<String, RecordError> {
    let len = get_i16(b)?;
    take_str(b, usize::try_from(len).map_err(|_| RecordError::Truncated)?)
}

fn get_compact_string(b: &mut &[u8]) -> Result<String, RecordError> {
    let len = get_varint(b)?;
    let len = usize::try_from(len.checked_sub(1).ok_or(RecordError::Truncated)?)
        .map_err(|_| RecordError::Truncated)?;
    take_str(b, len)
}

/// An array length (`None`: null), compact in flexible versions.
fn get_len(b: &mut &[u8], flexible: bool) -> Result<Option<usize>, RecordError> {
    if flexible {
        let n = get_varint(b)?;
        Ok(n.checked_sub(1).map(|n| n as usize))
    } else {
        let n = get_i32(b)?;
        Ok(usize::try_from(n).ok())
    }
}

fn skip_tags(b: &mut &[u8]) -> Result<(), RecordError> {
    get_tags(b).map(drop)
}

/// A tagged-field section: each tag with its bytes.
fn get_tags<'a>(b: &mut &'a [u8]) -> Result<Vec<(u32, &'a [u8])>, RecordError> {
    let mut tags = Vec::new();
    for _ in 0..get_varint(b)? {
        let tag = get_varint(b)?;
        let size = get_varint(b)? as usize;
        need(b, size)?;
        let (field, rest) = b.split_at(size);
        tags.push((tag, field));
        *b = rest;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(state: TxnState, partitions: &[(&str, i32)]) -> TxnMetadata {
        TxnMetadata {
            producer_id: 4001,
            producer_epoch: 7,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: partitions
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
            start_ms: 1_700_000_000_000,
            last_update_ms: 1_700_000_000_500,
            previous_producer_id: -1,
            next_producer_id: -1,
            client_version: 0,
        }
    }

    #[test]
    fn records_read_back_as_written() {
        let cases = [
            metadata(TxnState::Empty, &[]),
            metadata(TxnState::Ongoing, &[("a", 0), ("a", 3), ("b", 1)]),
            metadata(TxnState::PrepareCommit, &[("__consumer_offsets", 12)]),
            metadata(TxnState::CompleteAbort, &[]),
            TxnMetadata {
                client_version: 2,
                next_producer_id: 5000,
                ..metadata(TxnState::PrepareCommit, &[("a", 1), ("b", 0)])
            },
            TxnMetadata {
                client_version: 2,
                previous_producer_id: 4000,
                ..metadata(TxnState::Empty, &[])
            },
        ];
        for m in cases {
            let back = decode_value(Some(&value(&m))).expect("decodes");
            assert_eq!(back, Some(m.clone()), "{m:?}");
        }
        assert_eq!(decode_key(&key("my-txn")).expect("key"), "my-txn");
        assert_eq!(decode_value(None), Ok(None));
    }

    #[test]
    fn the_value_has_kafkas_byte_layout() {
        let m = metadata(TxnState::Ongoing, &[("t", 2)]);
        let mut want = Vec::new();
        want.extend_from_slice(&0i16.to_be_bytes());
        want.extend_from_slice(&4001i64.to_be_bytes());
        want.extend_from_slice(&7i16.to_be_bytes());
        want.extend_from_slice(&60_000i32.to_be_bytes());
        want.push(1);
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&1i16.to_be_bytes());
        want.push(b't');
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(value(&m).as_ref(), want.as_slice());
        assert_eq!(key("t").as_ref(), &[0, 0, 0, 1, b't']);
    }

    #[test]
    fn a_flexible_value_is_read() {
        // Version 1: compact array of one topic "t" with partition 5, and
        // a tagged field (previous producer id) that is skipped.
        let mut v = Vec::new();
        v.extend_from_slice(&1i16.to_be_bytes());
        v.extend_from_slice(&9i64.to_be_bytes());
        v.extend_from_slice(&2i16.to_be_bytes());
        v.extend_from_slice(&1000i32.to_be_bytes());
        v.push(TxnState::PrepareAbort as u8);
        v.extend_from_slice(&[2, 2, b't', 2]);
        v.extend_from_slice(&5i32.to_be_bytes());
        v.push(0);
        v.extend_from_slice(&11i64.to_be_bytes());
        v.extend_from_slice(&10i64.to_be_bytes());
        v.extend_from_slice(&[1, 0, 8]);
        v.extend_from_slice(&8i64.to_be_bytes());
        let m = decode_value(Some(&v)).expect("decodes").expect("value");
        assert_eq!(m.state, TxnState::PrepareAbort);
        assert_eq!(m.partitions, BTreeSet::from([("t".to_string(), 5)]));
        assert_eq!((m.last_update_ms, m.start_ms), (11, 10));
        assert_eq!(m.previous_producer_id, 8);
        // Written back with a client version: the same bytes and its tag.
        let written = value(&TxnMetadata {
            client_version: 2,
            ..m
        });
        let mut with_version = v.clone();
        with_version[v.len() - 11] = 2;
        with_version.extend_from_slice(&[2, 2, 0, 2]);
        assert_eq!(written.as_ref(), with_version.as_slice());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let good = value(&metadata(TxnState::Ongoing, &[("abc", 1)]));
        for cut in 0..good.len() {
            assert!(decode_value(Some(&good[..cut])).is_err(), "cut at {cut}");
        }
        assert_eq!(
            decode_key(&[0, 3, 0, 0]),
            Err(RecordError::Version {
                what: "key",
                version: 3
            })
        );
        let mut bad_state = good.to_vec();
        bad_state[16] = 42;
        assert_eq!(decode_value(Some(&bad_state)), Err(RecordError::State(42)));
    }
}
