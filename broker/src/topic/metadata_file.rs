//! The file that keeps the topic list across restarts on a single broker.
//! Written whole to a temporary file, synced, then renamed over the old one,
//! so a crash leaves either the old or the new list, never a torn one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One saved topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Setting overrides.
    pub configs: BTreeMap<String, String>,
}

/// `<log dir>/gregor-topics.json`.
pub struct MetadataFile {
    path: PathBuf,
}

impl MetadataFile {
    /// The metadata file in `log_dir`.
    pub fn new(log_dir: &Path) -> Self {
        MetadataFile {
            path: log_dir.join("gregor-topics.json"),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved topics; none if the file does not exist yet.
    pub fn load(&self) -> std::io::Result<Vec<TopicRecord>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the saved topics atomically.
    pub fn save(&self, topics: &[TopicRecord]) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(topics)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = MetadataFile::new(dir.path());
        assert!(f.load().expect("empty").is_empty());
        let t = TopicRecord {
            name: "a".into(),
            id: Uuid::new_v4(),
            partitions: 3,
            configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
        };
        f.save(std::slice::from_ref(&t)).expect("save");
        assert_eq!(f.load().expect("load"), vec![t]);
    }
}
