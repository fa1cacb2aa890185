//! Which partition a record goes to: keyed records by the murmur2 hash of
//! the key, as Kafka's Java client does, so the same key lands in the same
//! partition whichever of the two wrote it.

/// Kafka's murmur2 variant (seed 0x9747b28c) of a key.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record among `partitions`.
pub fn for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions.max(1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafkas_java_client() {
        // Values printed by org.apache.kafka.common.utils.Utils.murmur2 of
        // kafka-clients 4.3.1 and 4.4.0 (and its partition among 6).
        let cases = [
            ("", 275_646_681, 3),
            ("a", -1_563_381_124, 4),
            ("ab", 316_155_434, 2),
            ("abc", 479_470_107, 3),
            ("21", -973_932_308, 0),
            ("foobar", -790_332_482, 0),
            ("key-17", 956_945_460, 0),
            ("a-little-bit-longer-string", -1_486_304_829, 5),
        ];
        for (key, hash, partition) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key:?}");
            assert_eq!(for_key(key.as_bytes(), 6), partition, "{key:?}");
        }
    }
}
