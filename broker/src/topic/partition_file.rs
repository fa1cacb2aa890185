//! `partition.metadata`, the file Kafka keeps in each partition directory
//! naming the topic id the data belongs to. A directory left by a deleted
//! topic of the same name (deleted while this broker was down) carries the
//! old id and is moved aside instead of being served as the new topic.

use std::path::Path;

use uuid::Uuid;

use crate::ids::kafka_uuid;

/// Makes `dir` hold data of topic `id`: creates it with its
/// `partition.metadata`, or discards stale data of another topic id.
pub fn claim(dir: &Path, id: Uuid) -> std::io::Result<()> {
    let file = dir.join("partition.metadata");
    let wanted = kafka_uuid(id);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let found = text
                .lines()
                .find_map(|l| l.strip_prefix("topic_id:"))
                .map(str::trim)
                .unwrap_or_default();
            if found == wanted {
                return Ok(());
            }
            tracing::warn!(dir = %dir.display(), found, wanted, "partition data belongs to an older topic of the same name; discarding it");
            super::remove_later(dir);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&file, format!("version: 0\ntopic_id: {wanted}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_data_of_another_topic_id_is_discarded() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("t-0");
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        claim(&dir, a).expect("claim");
        std::fs::write(dir.join("00000000000000000000.log"), b"old").expect("write");
        claim(&dir, a).expect("same id");
        assert!(dir.join("00000000000000000000.log").exists());
        claim(&dir, b).expect("new id");
        assert!(!dir.join("00000000000000000000.log").exists());
        let text = std::fs::read_to_string(dir.join("partition.metadata")).expect("read");
        assert!(text.contains(&kafka_uuid(b)), "{text}");
    }
}
