//! Writing files so that a crash never leaves one half-written under its final name: every file rewarm
//! writes into a run folder or a prepared folder goes through here.
//!
//! - [`write_atomic`]: one file — written to a temporary name beside it, fsynced, renamed over the final
//!   name, and the folder fsynced so the rename itself survives a power cut.
//! - [`write_synced`] + [`commit_folder`]: a whole folder (a checkpoint, a prepared source) — its files
//!   written and fsynced under a temporary folder name, then the folder renamed into place.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

/// Writes `bytes` to `path` (created or truncated) and fsyncs it; for files inside a folder that is
/// committed afterwards with [`commit_folder`].
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Renames the finished folder `tmp` to `dest` (which must not exist) and fsyncs both folders.
pub fn commit_folder(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    sync_dir(tmp)?;
    std::fs::rename(tmp, dest)?;
    sync_parent(dest)
}

/// fsync of a folder: makes the names created or renamed in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["plan.json"]);
    }

    #[test]
    fn a_folder_appears_complete_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".out.partial");
        std::fs::create_dir(&tmp).unwrap();
        write_synced(&tmp.join("a"), b"1").unwrap();
        let dest = dir.path().join("out");
        commit_folder(&tmp, &dest).unwrap();
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"1");
        assert!(!tmp.exists());
    }
}
