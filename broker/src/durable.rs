//! Files replaced whole: the new content goes to a temporary file beside
//! the target (its name with `.tmp` appended) and is renamed over it, so a
//! crash of the process leaves the old content or the new, never half of
//! one. [`write_atomically`] also syncs the file and the directory, so the
//! new content survives a power loss; [`replace`] does not, for files whose
//! loss costs only work (after a power loss some file systems may leave
//! them empty).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

fn temporary(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename,
/// then syncs the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, without
/// syncing.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
