//! The cleaner's map from key to the offset of its latest record, in
//! bounded memory (`log.cleaner.dedupe.buffer.size`): keys are held as
//! 16-byte digests, as Kafka's cleaner holds them, so an entry costs about
//! 24 bytes whatever the key's size. It grows as keys arrive and is given
//! back after each cleaning, so an idle cleaner holds nothing.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// Bytes one entry accounts for (digest and offset), as in Kafka.
pub const ENTRY_BYTES: usize = 24;

/// A key's digest: 128 bits from two SipHash-1-3 hashes under keys drawn
/// for each map. Two keys that share one would be taken for the same key;
/// at 128 bits that does not happen by chance (Kafka's cleaner takes
/// MD5's 128 bits the same way), and a producer that could craft such a
/// pair can write the key it would shadow anyway.
type Digest = [u8; 16];

/// The two hash keys of one map.
struct Digester(RandomState, RandomState);

impl Digester {
    fn new() -> Digester {
        Digester(RandomState::new(), RandomState::new())
    }

    fn digest(&self, key: &[u8]) -> Digest {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&self.0.hash_one(key).to_le_bytes());
        d[8..].copy_from_slice(&self.1.hash_one(key).to_le_bytes());
        d
    }
}

/// The digest is already uniform: hash tables take eight of its bytes as
/// they are instead of hashing it again.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A `[u8; 16]` hashes as its length, then its bytes.
        if bytes.len() >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            self.0 = u64::from_le_bytes(b);
        }
    }
}

/// Latest offset of each key, up to a number of keys.
pub struct OffsetMap {
    entries: HashMap<Digest, i64, BuildHasherDefault<DigestHasher>>,
    capacity: usize,
    digester: Digester,
}

impl OffsetMap {
    /// A map holding at most what `memory` bytes allow (at least one key).
    pub fn with_memory(memory: usize) -> OffsetMap {
        OffsetMap {
            entries: HashMap::default(),
            capacity: (memory / ENTRY_BYTES).max(1),
            digester: Digester::new(),
        }
    }

    /// Keys the map may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `more` new keys might not fit.
    pub fn would_overflow(&self, more: usize) -> bool {
        self.entries.len().saturating_add(more) > self.capacity
    }

    /// Records that `key`'s latest record is at `offset` (offsets arrive
    /// in increasing order, so the last one put wins).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        self.entries.insert(self.digester.digest(key), offset);
    }

    /// The offset of `key`'s latest record, if the map has seen the key.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&self.digester.digest(key)).copied()
    }

    /// Forgets every key and gives the memory back (and draws new hash
    /// keys for the next cleaning).
    pub fn clear(&mut self) {
        self.entries = HashMap::default();
        self.digester = Digester::new();
    }

    /// Bytes the entries account for now (what the memory metric reports).
    pub fn memory(&self) -> usize {
        self.entries.capacity() * ENTRY_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_offset_wins_and_capacity_follows_memory() {
        let mut m = OffsetMap::with_memory(10 * ENTRY_BYTES);
        assert_eq!(m.capacity(), 10);
        m.put(b"a", 1);
        m.put(b"b", 2);
        m.put(b"a", 7);
        assert_eq!(
            (m.get(b"a"), m.get(b"b"), m.get(b"c")),
            (Some(7), Some(2), None)
        );
        assert_eq!(m.len(), 2);
        assert!(!m.would_overflow(8));
        assert!(m.would_overflow(9));
        m.clear();
        assert!(m.is_empty());
        assert_eq!(OffsetMap::with_memory(0).capacity(), 1);
    }
}
