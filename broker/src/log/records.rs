//! The records inside a v2 batch as raw slices: enough of each one parsed
//! to judge it (its offset and timestamp deltas, its key, whether it has a
//! value) while the rest is carried over byte for byte, so the log cleaner
//! can rewrite a batch without decoding headers or values.
//!
//! A record is `length varint, attributes i8, timestampDelta varlong,
//! offsetDelta varint, key (varint length, -1: null), value (likewise),
//! headers`; every varint is zig-zag encoded.

/// One record of a decompressed records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// Added to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Added to the batch's base offset.
    pub offset_delta: i32,
    /// `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// `None` for a tombstone (null value).
    pub value: Option<&'a [u8]>,
    /// Everything after the timestamp delta, unchanged when rewritten.
    tail: &'a [u8],
}

/// Why the records section does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed record {index} of the batch: {reason}")]
pub struct RecordError {
    /// Which record (from 0).
    pub index: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Reads a zig-zag varint of at most `max_bytes` bytes: the value and the
/// bytes it took.
fn read_zigzag(b: &[u8], max_bytes: usize) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in b.iter().take(max_bytes).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(((raw >> 1) as i64 ^ -((raw & 1) as i64), i + 1));
        }
    }
    None
}

/// Appends `value` as a zig-zag varint.
fn write_zigzag(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A length-prefixed byte field: `None` for -1 (null).
fn read_bytes_field(b: &[u8]) -> Result<(Option<&[u8]>, usize), &'static str> {
    let (len, n) = read_zigzag(b, 5).ok_or("bad length varint")?;
    if len < 0 {
        return Ok((None, n));
    }
    let end = n
        .checked_add(len as usize)
        .filter(|&e| e <= b.len())
        .ok_or("field longer than the record")?;
    Ok((Some(&b[n..end]), end))
}

/// Splits a decompressed records section into its records.
pub fn parse(mut section: &[u8]) -> Result<Vec<RawRecord<'_>>, RecordError> {
    let mut out = Vec::new();
    while !section.is_empty() {
        let index = out.len();
        let fail = |reason| RecordError { index, reason };
        let (len, n) = read_zigzag(section, 5).ok_or(fail("bad length varint"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| n.checked_add(l))
            .filter(|&e| e <= section.len())
            .ok_or(fail("longer than the batch"))?;
        let body = &section[n..end];
        section = &section[end..];
        // attributes (unused, always 0), then the timestamp delta.
        let (timestamp_delta, t) =
            read_zigzag(body.get(1..).unwrap_or(&[]), 10).ok_or(fail("bad timestamp delta"))?;
        let tail = &body[1 + t..];
        let (offset_delta, o) = read_zigzag(tail, 5).ok_or(fail("bad offset delta"))?;
        let (key, k) = read_bytes_field(&tail[o..]).map_err(fail)?;
        let (value, _) = read_bytes_field(&tail[o + k..]).map_err(fail)?;
        out.push(RawRecord {
            timestamp_delta,
            offset_delta: i32::try_from(offset_delta)
                .map_err(|_| fail("offset delta too large"))?,
            key,
            value,
            tail,
        });
    }
    Ok(out)
}

/// Appends `record` with a new timestamp delta; everything else as it was.
pub fn write(out: &mut Vec<u8>, record: &RawRecord<'_>, timestamp_delta: i64) {
    let mut head = Vec::with_capacity(11);
    head.push(0);
    write_zigzag(&mut head, timestamp_delta);
    write_zigzag(out, (head.len() + record.tail.len()) as i64);
    out.extend_from_slice(&head);
    out.extend_from_slice(record.tail);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    #[test]
    fn zigzag_round_trips() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_zigzag(&mut out, v);
            assert_eq!(read_zigzag(&out, 10), Some((v, out.len())), "{v}");
        }
    }

    #[test]
    fn records_parse_and_rewrite_to_what_a_client_reads() {
        let records = vec![
            (Some(Bytes::from("k0")), Some(Bytes::from("v0")), 1000),
            (Some(Bytes::from("k1")), None, 1005),
            (None, Some(Bytes::from("v2")), 990),
        ];
        let buf = batch::encode(records, Compression::None).expect("encode");
        let section = &buf[batch::HEADER_LEN..];
        let parsed = parse(section).expect("parse");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].key, Some(&b"k0"[..]));
        assert_eq!(parsed[0].value, Some(&b"v0"[..]));
        assert_eq!(parsed[1].value, None);
        assert_eq!(parsed[2].key, None);
        assert_eq!(
            parsed.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        // Same deltas: the very same bytes.
        let mut same = Vec::new();
        for r in &parsed {
            write(&mut same, r, r.timestamp_delta);
        }
        assert_eq!(same, section);
        // A new delta parses back, the rest unchanged.
        let mut moved = Vec::new();
        write(&mut moved, &parsed[1], -70_000);
        let again = parse(&moved).expect("parse");
        assert_eq!(again[0].timestamp_delta, -70_000);
        assert_eq!((again[0].key, again[0].value), (Some(&b"k1"[..]), None));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&[0x80u8][..], &[10, 0, 0], &[2, 0], &[6, 0, 0, 0, 9, 0]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
