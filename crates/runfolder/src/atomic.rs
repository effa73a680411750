//! Writing files so that a crash never leaves one half-written under its final name: every file rewarm
//! writes into a run folder or a prepared folder goes through here.
//!
//! - [`write_atomic`]: one file — written to a temporary name beside it, fsynced, renamed over the final
//!   name, and the folder fsynced so the rename itself survives a power cut.
//! - [`write_synced`] + [`commit_folder`]: a whole folder (a checkpoint, a prepared source) — its files
//!   written and fsynced under a temporary folder name, then the folder renamed into place.

use crate::error::RunFolderError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` with `options` for a write in place (the lock, the metrics log), refusing a symbolic link
/// at `path`: writing through it would change a file outside the run folder.
pub fn open_in_place(
    options: &mut std::fs::OpenOptions,
    path: &Path,
) -> crate::Result<std::fs::File> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => link_refused(path),
            _ => RunFolderError::io(path, e),
        })
}

/// An error if `path` is a symbolic link (see [`open_in_place`]); nothing at `path` is fine.
pub fn refuse_link(path: &Path) -> crate::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(link_refused(path)),
        _ => Ok(()),
    }
}

fn link_refused(path: &Path) -> RunFolderError {
    RunFolderError::format(
        path,
        "is a symbolic link, and rewarm does not write through links in a run folder",
        "replace the link with a plain file (or remove it), or train into another --run folder",
    )
}

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

/// Puts the finished folder `tmp` in place of the existing folder `dest` with no moment at which `dest`
/// is missing: the two are exchanged in one `renameat2(RENAME_EXCHANGE)`, then the old content (now under
/// `tmp`'s name, which loaders ignore) is removed. Where the file system cannot exchange, `dest` is moved
/// aside first and `tmp` renamed in (a short window without `dest`). A missing `dest` is a plain commit.
pub fn replace_folder(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    if !dest.exists() {
        return commit_folder(tmp, dest);
    }
    sync_dir(tmp)?;
    if exchange(tmp, dest)? {
        sync_parent(dest)?;
        return std::fs::remove_dir_all(tmp);
    }
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let aside = dest.with_file_name(format!(".{name}.partial-delete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(dest, &aside)?;
    commit_folder(tmp, dest)?;
    std::fs::remove_dir_all(&aside)
}

/// Swaps the names `a` and `b` atomically; `Ok(false)` where the file system does not support it.
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL");
    let (a, b) = (c(a), c(b));
    // SAFETY: two valid C strings, relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
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

    /// The lock and the metrics log are never written through a symbolic link: the link's target (outside
    /// the run folder) is left as it was and the error names the file.
    #[test]
    fn links_in_a_run_folder_are_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("precious.txt");
        std::fs::write(&outside, "keep me").unwrap();
        let run_dir = dir.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        let run = crate::RunDir::new(&run_dir);
        std::os::unix::fs::symlink(&outside, run_dir.join("LOCK")).unwrap();
        let e = crate::RunLock::acquire(&run_dir).err().unwrap().to_string();
        assert!(
            e.contains("LOCK") && e.contains("symbolic link") && e.contains("HINT"),
            "{e}"
        );
        std::os::unix::fs::symlink(&outside, run.metrics()).unwrap();
        let e = crate::MetricsLog::open(&run, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("metrics.jsonl") && e.contains("symbolic link"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
    }

    /// Replacing an existing folder leaves the new content under its name and nothing else behind.
    #[test]
    fn a_folder_replaces_an_existing_one_in_one_exchange() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("step_00000000");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("a"), b"old").unwrap();
        let tmp = dir.path().join(".step_00000000.partial-1");
        std::fs::create_dir(&tmp).unwrap();
        write_synced(&tmp.join("a"), b"new").unwrap();
        replace_folder(&tmp, &dest).unwrap();
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["step_00000000"]);
    }
}
