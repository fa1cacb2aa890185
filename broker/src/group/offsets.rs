//! Committed offsets, kept in memory and journaled to a file so they survive
//! a restart. The journal is one JSON record per line; it is rewritten
//! compacted at start-up.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "gregor-group-offsets.log";

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// Next offset the group will read.
    pub offset: i64,
    /// Leader epoch the client saw, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata.
    pub metadata: String,
}

/// A journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Entry {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        committed: Committed,
    },
    Delete {
        group: String,
        topic: String,
        partition: i32,
    },
    DropGroup {
        group: String,
    },
}

/// Offsets of one group: (topic, partition) → committed.
pub type GroupOffsets = BTreeMap<(String, i32), Committed>;

/// All groups' committed offsets.
pub struct OffsetStore {
    path: PathBuf,
    file: File,
    groups: BTreeMap<String, GroupOffsets>,
}

impl OffsetStore {
    /// Loads the journal in `dir` (a torn last line from a crash is dropped)
    /// and rewrites it compacted.
    pub fn open(dir: &Path) -> io::Result<OffsetStore> {
        let path = dir.join(FILE_NAME);
        let mut groups: BTreeMap<String, GroupOffsets> = BTreeMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                match serde_json::from_str::<Entry>(&line) {
                    Ok(entry) => apply(&mut groups, entry),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable offset record")
                    }
                }
            }
        }
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        {
            let mut out = io::BufWriter::new(File::create(&tmp)?);
            for (group, offsets) in &groups {
                for ((topic, partition), committed) in offsets {
                    let entry = Entry::Commit {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        committed: committed.clone(),
                    };
                    writeln!(out, "{}", to_line(&entry))?;
                }
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(OffsetStore { path, file, groups })
    }

    /// A group's offsets, if it has any.
    pub fn group(&self, group: &str) -> Option<&GroupOffsets> {
        self.groups.get(group)
    }

    /// Ids of every group with committed offsets.
    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// Records a commit.
    pub fn commit(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        committed: Committed,
    ) -> io::Result<()> {
        let entry = Entry::Commit {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            committed,
        };
        self.write(entry)
    }

    /// Forgets one partition's offset.
    pub fn delete(&mut self, group: &str, topic: &str, partition: i32) -> io::Result<()> {
        self.write(Entry::Delete {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        })
    }

    /// Forgets a whole group.
    pub fn drop_group(&mut self, group: &str) -> io::Result<()> {
        self.write(Entry::DropGroup {
            group: group.to_string(),
        })
    }

    /// Forces the journal to disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write(&mut self, entry: Entry) -> io::Result<()> {
        let mut line = to_line(&entry);
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|e| {
            io::Error::new(e.kind(), format!("writing {}: {e}", self.path.display()))
        })?;
        apply(&mut self.groups, entry);
        Ok(())
    }
}

fn to_line(entry: &Entry) -> String {
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(entry).unwrap_or_default()
}

fn apply(groups: &mut BTreeMap<String, GroupOffsets>, entry: Entry) {
    match entry {
        Entry::Commit {
            group,
            topic,
            partition,
            committed,
        } => {
            groups
                .entry(group)
                .or_default()
                .insert((topic, partition), committed);
        }
        Entry::Delete {
            group,
            topic,
            partition,
        } => {
            if let Some(g) = groups.get_mut(&group) {
                g.remove(&(topic, partition));
                if g.is_empty() {
                    groups.remove(&group);
                }
            }
        }
        Entry::DropGroup { group } => {
            groups.remove(&group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }
    }

    #[test]
    fn offsets_survive_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = OffsetStore::open(dir.path()).expect("open");
            s.commit("g", "t", 0, c(5)).expect("commit");
            s.commit("g", "t", 0, c(7)).expect("commit");
            s.commit("g", "t", 1, c(3)).expect("commit");
            s.delete("g", "t", 1).expect("delete");
            s.commit("h", "t", 0, c(1)).expect("commit");
            s.drop_group("h").expect("drop");
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .expect("file");
        f.write_all(b"{\"op\":\"commit\",\"gro")
            .expect("torn write");
        let s = OffsetStore::open(dir.path()).expect("reopen");
        let g = s.group("g").expect("group g");
        assert_eq!(g.len(), 1);
        assert_eq!(g.get(&("t".to_string(), 0)), Some(&c(7)));
        assert!(s.group("h").is_none());
    }
}
