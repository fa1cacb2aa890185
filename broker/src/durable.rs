//! Files replaced whole: the new content goes to a temporary file beside
//! the target (its name with `.tmp` appended) and is renamed over it, so a
//! crash of the process leaves the old content or the new, never half of
//! one. [`write_atomically`] also syncs the file and the directory, so the
//! new content survives a power loss; [`replace`] does not, for files whose
//! loss costs only work (after a power loss some file systems may leave
//! them empty).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn temporary(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename,
/// then syncs the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |w| w.write_all(bytes))
}

/// [`write_atomically`] with the content written by `write` (through a
/// buffer), for content too big to build in memory first.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temporary(path);
    let mut w = BufWriter::new(File::create(&tmp)?);
    write(&mut w)?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Deletes the temporary files a crash left in `dir` between writing one
/// and renaming it (their targets hold the old content, or nothing);
/// returns how many. A missing `dir` has none.
pub fn remove_leftovers(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") && path.is_file() {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` through a temporary file and a rename, without
/// syncing.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_temporary_files_a_crash_left_are_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("00000000000000000042.snapshot");
        write_atomically(&path, b"kept").expect("write");
        // A crash between writing the next one and renaming it.
        std::fs::write(
            temporary(&dir.path().join("00000000000000000050.snapshot")),
            b"half",
        )
        .expect("leftover");
        std::fs::write(dir.path().join("leader-epoch-checkpoint.tmp"), b"half").expect("leftover");
        assert_eq!(remove_leftovers(dir.path()).expect("remove"), 2);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("00000000000000000042.snapshot")]
        );
        assert_eq!(
            remove_leftovers(&dir.path().join("absent")).expect("absent"),
            0
        );
    }
}
