//! Which of the broker's log directories holds each of its replicas. A
//! replica found in a directory stays there; a new one goes to the
//! directory holding the fewest partitions, as Kafka places them, so
//! several disks (JBOD) fill evenly whatever the topics' shapes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The log directories and how many partitions each holds.
pub struct Placement {
    dirs: Vec<PathBuf>,
    counts: Mutex<Vec<usize>>,
}

/// The position of the smallest count (the first of equals).
fn fewest(counts: &[usize]) -> usize {
    counts
        .iter()
        .enumerate()
        .min_by_key(|&(i, c)| (*c, i))
        .map_or(0, |(i, _)| i)
}

/// Whether a directory entry is a partition's folder (`<topic>-<n>`), not
/// one being deleted or a file.
fn is_partition(entry: &std::fs::DirEntry) -> bool {
    let name = entry.file_name();
    let name = name.to_string_lossy();
    entry.file_type().is_ok_and(|t| t.is_dir())
        && name
            .rsplit_once('-')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Placement {
    /// The placement over `dirs`, counting the partitions already in them.
    pub fn new(dirs: &[PathBuf]) -> Self {
        let counts = dirs
            .iter()
            .map(|d| {
                std::fs::read_dir(d)
                    .map(|entries| entries.flatten().filter(is_partition).count())
                    .unwrap_or(0)
            })
            .collect();
        Placement {
            dirs: dirs.to_vec(),
            counts: Mutex::new(counts),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the replica of `topic`'s partition `index` is, if this broker
    /// has its folder.
    pub fn existing(&self, topic: &str, index: i32) -> Option<PathBuf> {
        let leaf = format!("{topic}-{index}");
        self.dirs.iter().map(|d| d.join(&leaf)).find(|p| p.exists())
    }

    /// Where the replica of `topic`'s partition `index` is, or goes when
    /// it is new.
    pub fn dir_for(&self, topic: &str, index: i32) -> PathBuf {
        if let Some(found) = self.existing(topic, index) {
            return found;
        }
        let mut counts = self.counts();
        let i = fewest(&counts);
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
        self.dirs
            .get(i)
            .unwrap_or(&self.dirs[0])
            .join(format!("{topic}-{index}"))
    }

    /// A replica's folder `dir` is going away.
    pub fn removed(&self, dir: &Path) {
        let mut counts = self.counts();
        if let Some(i) = self.dirs.iter().position(|d| dir.parent() == Some(d)) {
            counts[i] = counts[i].saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fewest_partitions_first() {
        let cases: [(&[usize], usize); 4] =
            [(&[0, 0], 0), (&[3, 1, 2], 1), (&[2, 2, 1], 2), (&[], 0)];
        for (counts, want) in cases {
            assert_eq!(fewest(counts), want, "{counts:?}");
        }
    }

    #[test]
    fn new_replicas_fill_the_emptier_directory_and_old_ones_stay() {
        let base = tempfile::tempdir().expect("temp dir");
        let dirs = [base.path().join("a"), base.path().join("b")];
        for d in &dirs {
            std::fs::create_dir(d).expect("log dir");
        }
        for leaf in ["t-0", "t-1", "u-0", "v-0.abc.deleted"] {
            std::fs::create_dir(dirs[0].join(leaf)).expect("partition");
        }
        std::fs::write(dirs[0].join("meta.properties"), "").expect("file");
        let placement = Placement::new(&dirs);
        assert_eq!(placement.dir_for("t", 1), dirs[0].join("t-1"));
        // Three partitions in a, none in b: the next three go to b.
        for i in 0..3 {
            assert_eq!(placement.dir_for("w", i), dirs[1].join(format!("w-{i}")));
        }
        assert_eq!(placement.dir_for("w", 3), dirs[0].join("w-3"));
        placement.removed(&dirs[1].join("w-0"));
        assert_eq!(placement.dir_for("w", 4), dirs[1].join("w-4"));
    }
}
