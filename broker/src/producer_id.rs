//! Hands out producer ids for idempotent producers (InitProducerId without a
//! transactional id). Ids must never repeat, also across restarts, or a new
//! producer would inherit an old one's sequence state; so ids are reserved in
//! blocks and the end of the reserved block is saved before any id of it is
//! used.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

const BLOCK: i64 = 1000;

/// Allocator of unique producer ids.
pub struct ProducerIdAllocator {
    file: PathBuf,
    state: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    /// Loads the reserved-up-to mark from `dir/producer-ids` and starts a
    /// new block after it.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let file = dir.join("producer-ids");
        let start = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", file.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        save(&file, start + BLOCK)?;
        Ok(ProducerIdAllocator {
            file,
            state: Mutex::new((start, start + BLOCK)),
        })
    }

    /// The next unused id.
    pub fn next(&self) -> std::io::Result<i64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0 == s.1 {
            save(&self.file, s.1 + BLOCK)?;
            s.1 += BLOCK;
        }
        let id = s.0;
        s.0 += 1;
        Ok(id)
    }
}

fn save(file: &Path, reserved_up_to: i64) -> std::io::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, reserved_up_to.to_string())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ProducerIdAllocator::open(dir.path()).expect("open");
        let first: Vec<i64> = (0..3).map(|_| a.next().expect("id")).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).expect("reopen");
        assert!(b.next().expect("id") >= BLOCK);
    }

    #[test]
    fn a_block_running_out_reserves_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ProducerIdAllocator::open(dir.path()).expect("open");
        for _ in 0..BLOCK + 5 {
            a.next().expect("id");
        }
        let saved: i64 = std::fs::read_to_string(dir.path().join("producer-ids"))
            .expect("file")
            .parse()
            .expect("number");
        assert_eq!(saved, 2 * BLOCK);
    }
}
