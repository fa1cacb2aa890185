//! A response on its way to the socket: encoded bytes, with the record
//! sets of a fetch left in their segment files so that a plain connection
//! sends them with `sendfile` and the broker never copies them.
//!
//! kafka-protocol encodes a fetch response's records as a length-prefixed
//! byte string. The fetch handler puts a short placeholder there for each
//! record set ([`Placeholders::hold`]); after encoding, [`Frame::splice`]
//! cuts the encoding at each placeholder and puts the file's bytes, with
//! their real length prefix, in its place. Placeholders carry a random
//! value of this process and their place in the response, so a client cannot make one appear
//! anywhere else in a response; they are looked for in order, the order
//! in which the encoder writes the partitions.

use std::sync::OnceLock;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::log::file_slice::FileSlice;

/// The bytes of a placeholder.
const PLACEHOLDER_LEN: usize = 16;

/// One piece of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes to write.
    Bytes(Bytes),
    /// Record batches to send from their file.
    File(FileSlice),
}

/// A whole response frame (size prefix, header, body) in pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    chunks: Vec<Chunk>,
}

impl From<BytesMut> for Frame {
    fn from(encoded: BytesMut) -> Frame {
        Frame {
            chunks: vec![Chunk::Bytes(encoded.freeze())],
        }
    }
}

/// The record sets a response holds placeholders for, in the order they
/// were handed out.
#[derive(Debug)]
pub struct Placeholders {
    /// The random prefix of every placeholder (one per process).
    nonce: [u8; 8],
    held: Vec<(Bytes, FileSlice)>,
}

impl Default for Placeholders {
    fn default() -> Placeholders {
        static NONCE: OnceLock<[u8; 8]> = OnceLock::new();
        let nonce = *NONCE.get_or_init(|| {
            let mut nonce = [0u8; 8];
            nonce.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
            nonce
        });
        Placeholders {
            nonce,
            held: Vec::new(),
        }
    }
}

impl Placeholders {
    /// What to put in a records field for `slice`: the slice's bytes when
    /// it holds none, else a placeholder.
    pub fn hold(&mut self, slice: FileSlice) -> Bytes {
        if slice.is_empty() {
            return Bytes::new();
        }
        let mut placeholder = BytesMut::with_capacity(PLACEHOLDER_LEN);
        placeholder.put_slice(&self.nonce);
        placeholder.put_u64(self.held.len() as u64);
        let placeholder = placeholder.freeze();
        self.held.push((placeholder.clone(), slice));
        placeholder
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// A placeholder was not where the encoding should have it: a bug, not
/// bad input.
#[derive(Debug, thiserror::Error)]
#[error("record placeholder {0} not found in the encoded response")]
pub struct SpliceError(usize);

impl Frame {
    /// Replaces the placeholders of `held` in `encoded` (a whole frame
    /// with its size prefix) by their record sets; `flexible` says how
    /// the version encodes a records field's length (a varint of length
    /// + 1 from the first flexible version, an int32 before).
    pub fn splice(
        mut encoded: BytesMut,
        held: Placeholders,
        flexible: bool,
    ) -> Result<Frame, SpliceError> {
        // A placeholder's own length prefix, and what it and its prefix
        // take in the encoding.
        let old_prefix = length_prefix(PLACEHOLDER_LEN, flexible).len();
        let replaced = old_prefix + PLACEHOLDER_LEN;
        // Where each placeholder's length prefix starts.
        let mut cuts = Vec::with_capacity(held.held.len());
        let mut from = 0;
        for (i, (placeholder, _)) in held.held.iter().enumerate() {
            let at = find(&encoded[from..], placeholder)
                .map(|at| from + at)
                .filter(|at| *at >= from + old_prefix)
                .ok_or(SpliceError(i))?;
            cuts.push(at - old_prefix);
            from = at + PLACEHOLDER_LEN;
        }
        let records: usize = held
            .held
            .iter()
            .map(|(_, slice)| length_prefix(slice.len(), flexible).len() + slice.len())
            .sum();
        let size = encoded.len() - 4 - replaced * held.held.len() + records;
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        encoded[..4].copy_from_slice(&size.to_be_bytes());
        let mut rest = encoded.freeze();
        let mut chunks = Vec::with_capacity(2 * held.held.len() + 1);
        let mut consumed = 0;
        for (cut, (_, slice)) in cuts.into_iter().zip(held.held) {
            let head = rest.split_to(cut - consumed);
            rest.advance(replaced);
            consumed = cut + replaced;
            let mut prefixed = BytesMut::with_capacity(head.len() + 5);
            prefixed.put_slice(&head);
            prefixed.put_slice(&length_prefix(slice.len(), flexible));
            chunks.push(Chunk::Bytes(prefixed.freeze()));
            chunks.push(Chunk::File(slice));
        }
        if !rest.is_empty() {
            chunks.push(Chunk::Bytes(rest));
        }
        Ok(Frame { chunks })
    }

    /// Bytes the frame sends.
    pub fn len(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes(b) => b.len(),
                Chunk::File(f) => f.len(),
            })
            .sum()
    }

    /// Whether the frame is empty (never, for an encoded response).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, in order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The whole frame as bytes, the files read.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.len());
        for chunk in &self.chunks {
            match chunk {
                Chunk::Bytes(b) => out.put_slice(b),
                Chunk::File(f) => out.put_slice(&f.read()?),
            }
        }
        Ok(out.freeze())
    }
}

/// Where `needle` first appears in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A records field's length as the version encodes it.
fn length_prefix(len: usize, flexible: bool) -> Vec<u8> {
    if flexible {
        let mut out = Vec::with_capacity(5);
        let mut v = len as u64 + 1;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    } else {
        i32::try_from(len)
            .unwrap_or(i32::MAX)
            .to_be_bytes()
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader, ResponseKind};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::protocol::encode_response;

    /// A fetch response of three partitions, the first and last with
    /// records in `file`, the middle one with none, encoded at `version`
    /// and spliced.
    fn spliced(version: i16, file: &Arc<std::fs::File>) -> Frame {
        let mut held = Placeholders::default();
        let mut topic = FetchableTopicResponse::default();
        topic.topic = StrBytes::from_static_str("a-topic-whose-name-is-long").into();
        for (i, slice) in [
            FileSlice::new(file.clone(), 0, 3, 1),
            FileSlice::default(),
            FileSlice::new(file.clone(), 3, 200, 2),
        ]
        .into_iter()
        .enumerate()
        {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.high_watermark = 1000 + i as i64;
            p.records = Some(held.hold(slice));
            topic.partitions.push(p);
        }
        let mut response = FetchResponse::default();
        response.responses.push(topic);
        let encoded = encode_response(ApiKey::Fetch, version, 7, &ResponseKind::Fetch(response))
            .expect("encode");
        Frame::splice(encoded, held, version >= 12).expect("splice")
    }

    #[test]
    fn a_spliced_response_decodes_with_the_files_records_at_every_version() {
        let mut file = tempfile::tempfile().expect("file");
        let content: Vec<u8> = (0..=255u8).collect();
        file.write_all(&content).expect("write");
        let file = Arc::new(file);
        for version in [4, 11, 12, 13, 16, 17] {
            let frame = spliced(version, &file);
            // Bytes, file, bytes, (no file: empty), bytes, file, bytes.
            let files = frame
                .chunks()
                .iter()
                .filter(|c| matches!(c, Chunk::File(_)))
                .count();
            assert_eq!(files, 2, "v{version}");
            let mut bytes = frame.to_bytes().expect("bytes");
            assert_eq!(bytes.len(), frame.len());
            let size = bytes.get_i32();
            assert_eq!(size as usize, bytes.len(), "v{version}: size prefix");
            let header =
                ResponseHeader::decode(&mut bytes, ApiKey::Fetch.response_header_version(version))
                    .expect("header");
            assert_eq!(header.correlation_id, 7);
            let decoded = FetchResponse::decode(&mut bytes, version).expect("decode");
            assert!(bytes.is_empty(), "v{version}: bytes left over");
            let partitions = &decoded.responses[0].partitions;
            let records: Vec<_> = partitions
                .iter()
                .map(|p| p.records.clone().unwrap_or_default())
                .collect();
            assert_eq!(
                records[0],
                Bytes::copy_from_slice(&content[..3]),
                "v{version}"
            );
            assert!(records[1].is_empty(), "v{version}");
            assert_eq!(
                records[2],
                Bytes::copy_from_slice(&content[3..203]),
                "v{version}"
            );
            assert_eq!(partitions[2].high_watermark, 1002);
        }
    }

    #[test]
    fn a_missing_placeholder_is_an_error_not_a_bad_frame() {
        let file = Arc::new(tempfile::tempfile().expect("file"));
        let mut held = Placeholders::default();
        held.hold(FileSlice::new(file, 0, 3, 1));
        let encoded = BytesMut::from(&[0u8, 0, 0, 4, 1, 2, 3, 4][..]);
        assert!(Frame::splice(encoded, held, true).is_err());
    }

    #[test]
    fn length_prefixes_are_varints_of_length_plus_one_or_int32s() {
        let cases: [(usize, bool, &[u8]); 5] = [
            (0, true, &[1]),
            (126, true, &[0x7f]),
            (127, true, &[0x80, 0x01]),
            (1 << 20, true, &[0x81, 0x80, 0x40]),
            (300, false, &[0, 0, 1, 44]),
        ];
        for (len, flexible, want) in cases {
            assert_eq!(length_prefix(len, flexible), want, "{len} {flexible}");
        }
    }
}
