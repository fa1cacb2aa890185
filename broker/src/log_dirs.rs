//! This process's claim on its log directories. Each holds a
//! `meta.properties` (as Kafka keeps it: the node id, the cluster id once
//! known, and a directory id made when the directory was first used), so
//! a directory never serves two nodes or two clusters, and a `.lock` file
//! locked for as long as the process runs, so it never serves two
//! processes at once. The directory id of the first directory names this
//! broker's storage when it registers: a new process on the same storage is
//! a restart, not a second broker with the same id (see
//! `metadata::image`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use uuid::Uuid;

/// Why a log directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogDirError {
    /// It cannot be created, read or written.
    #[error("log directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another running process holds it.
    #[error("log directory {path} is in use by another running process (its .lock is held); stop that process or give this one other log.dirs")]
    InUse {
        /// The directory.
        path: PathBuf,
    },
    /// It belongs to another node or cluster.
    #[error("log directory {path} belongs to {found}, but this is {expected}")]
    WrongOwner {
        /// The directory.
        path: PathBuf,
        /// Who its meta.properties names.
        found: String,
        /// Who this is.
        expected: String,
    },
}

/// The claimed directories; dropping this releases their locks.
#[derive(Debug)]
pub struct LogDirs {
    /// The directory id of the first directory: this broker's storage.
    pub storage_id: Uuid,
    /// The cluster id the directories record, if any does yet.
    pub cluster_id: Option<String>,
    dirs: Vec<PathBuf>,
    node_id: i32,
    _locks: Vec<Flock<File>>,
}

impl LogDirs {
    /// Creates the directories if needed, locks each, and checks (or
    /// first writes) their `meta.properties`.
    pub fn claim(dirs: &[PathBuf], node_id: i32) -> Result<LogDirs, LogDirError> {
        let mut locks = Vec::with_capacity(dirs.len());
        let mut storage_id = None;
        let mut cluster_id = None;
        for dir in dirs {
            locks.push(lock(dir)?);
            let meta = read_meta(dir, node_id)?;
            storage_id.get_or_insert(meta.directory_id);
            if let Some(id) = meta.cluster_id {
                cluster_id.get_or_insert(id);
            }
        }
        Ok(LogDirs {
            storage_id: storage_id.unwrap_or_else(Uuid::nil),
            cluster_id,
            dirs: dirs.to_vec(),
            node_id,
            _locks: locks,
        })
    }

    /// Records `cluster_id` in every directory, refusing one that belongs
    /// to another cluster.
    pub fn record_cluster_id(&self, cluster_id: &str) -> Result<(), LogDirError> {
        for dir in &self.dirs {
            let mut meta = read_meta(dir, self.node_id)?;
            match &meta.cluster_id {
                Some(found) if found == cluster_id => {}
                Some(found) => {
                    return Err(LogDirError::WrongOwner {
                        path: dir.clone(),
                        found: format!("cluster {found}"),
                        expected: format!("cluster {cluster_id}"),
                    })
                }
                None => {
                    meta.cluster_id = Some(cluster_id.to_string());
                    write_meta(dir, self.node_id, &meta)?;
                }
            }
        }
        Ok(())
    }
}

fn io(dir: &Path) -> impl Fn(std::io::Error) -> LogDirError + '_ {
    move |source| LogDirError::Io {
        path: dir.to_path_buf(),
        source,
    }
}

/// Creates `dir` and takes its `.lock` (an exclusive `flock`, released
/// when the process ends however it ends).
fn lock(dir: &Path) -> Result<Flock<File>, LogDirError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(io(dir))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(locked),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(LogDirError::InUse {
            path: dir.to_path_buf(),
        }),
        Err((_, errno)) => Err(io(dir)(errno.into())),
    }
}

/// What a directory's `meta.properties` records.
struct Meta {
    cluster_id: Option<String>,
    directory_id: Uuid,
}

/// Reads `meta.properties`, checking it names `node_id`; writes it first
/// (with a new directory id) when it is missing or has none.
fn read_meta(dir: &Path, node_id: i32) -> Result<Meta, LogDirError> {
    let path = dir.join("meta.properties");
    let props: BTreeMap<String, String> = match std::fs::read_to_string(&path) {
        Ok(text) => crate::config::properties::parse(&text, &path.display().to_string())
            .into_iter()
            .map(|(k, p)| (k, p.value))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io(dir)(e)),
    };
    if let Some(found) = props.get("node.id") {
        if *found != node_id.to_string() {
            return Err(LogDirError::WrongOwner {
                path: dir.to_path_buf(),
                found: format!("node {found}"),
                expected: format!("node.id={node_id}"),
            });
        }
    }
    let stored = props
        .get("directory.id")
        .and_then(|id| Uuid::parse_str(id).ok());
    let meta = Meta {
        cluster_id: props.get("cluster.id").cloned(),
        directory_id: stored.unwrap_or_else(Uuid::new_v4),
    };
    if stored.is_none() || !props.contains_key("node.id") {
        write_meta(dir, node_id, &meta)?;
    }
    Ok(meta)
}

fn write_meta(dir: &Path, node_id: i32, meta: &Meta) -> Result<(), LogDirError> {
    let mut text = format!("version=1\nnode.id={node_id}\n");
    if let Some(cluster) = &meta.cluster_id {
        text.push_str(&format!("cluster.id={cluster}\n"));
    }
    text.push_str(&format!("directory.id={}\n", meta.directory_id));
    std::fs::write(dir.join("meta.properties"), text).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_dir_belongs_to_one_node_one_cluster_and_one_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = [dir.path().to_path_buf()];
        let claimed = LogDirs::claim(&dirs, 1).expect("claim");
        assert_eq!(claimed.cluster_id, None);
        assert!(matches!(
            LogDirs::claim(&dirs, 1),
            Err(LogDirError::InUse { .. })
        ));
        claimed.record_cluster_id("abc").expect("record");
        assert!(matches!(
            claimed.record_cluster_id("other"),
            Err(LogDirError::WrongOwner { .. })
        ));
        let storage = claimed.storage_id;
        drop(claimed);
        // A restart finds the same storage and cluster.
        let again = LogDirs::claim(&dirs, 1).expect("again");
        assert_eq!(again.cluster_id.as_deref(), Some("abc"));
        assert_eq!(again.storage_id, storage);
        drop(again);
        assert!(matches!(
            LogDirs::claim(&dirs, 2),
            Err(LogDirError::WrongOwner { .. })
        ));
    }

    #[test]
    fn a_directory_of_an_older_version_gets_an_id_and_keeps_its_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("meta.properties"),
            "version=1\ncluster.id=abc\nnode.id=3\n",
        )
        .expect("write");
        let claimed = LogDirs::claim(&[dir.path().to_path_buf()], 3).expect("claim");
        assert_eq!(claimed.cluster_id.as_deref(), Some("abc"));
        assert!(!claimed.storage_id.is_nil());
    }
}
