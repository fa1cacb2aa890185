//! Kafka's text form of ids: 16 bytes in URL-safe base64 without padding
//! (22 characters), as in cluster ids and `partition.metadata`.

use uuid::Uuid;

/// `id` as Kafka prints a Uuid.
pub fn kafka_uuid(id: Uuid) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in id.into_bytes() {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// A fresh cluster id.
pub fn new_cluster_id() -> String {
    kafka_uuid(Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(kafka_uuid(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}
