//! What a complete checkpoint held when it was written: `DONE` (written last) records the xxh3-64 hash of
//! each of its files, and [`CheckpointDir::verify`] checks them, so that a checkpoint damaged after it was
//! completed (bit rot, a partial copy, an edit) is told apart from a good one before anything loads it.
//! A `DONE` without hashes (written before they were recorded) verifies as before: by its presence.

use crate::atomic::write_synced;
use crate::error::{Result, RunFolderError};
use crate::CheckpointDir;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The files of a checkpoint whose content `DONE` records, in the order they are written (`ema` only
/// when the plan keeps one, `reptile_anchor` only in a stage with Reptile).
fn hashed_files(ckpt: &CheckpointDir) -> [std::path::PathBuf; 7] {
    [
        ckpt.model(),
        ckpt.optimizer(),
        ckpt.ema(),
        ckpt.reptile_anchor(),
        ckpt.state(),
        ckpt.plan_json(),
        ckpt.consumed(),
    ]
}

/// xxh3-64 of a file's bytes, read in 8 MiB blocks, in hex.
fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| RunFolderError::io(path, e))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| RunFolderError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:016x}", hasher.digest()))
}

impl CheckpointDir {
    /// Writes `DONE` (fsynced) with the hash of every checkpoint file present: the last file written.
    pub fn write_done(&self) -> Result<()> {
        let mut hashes = BTreeMap::new();
        for path in hashed_files(self).iter().filter(|p| p.is_file()) {
            let name = path.file_name().expect("a file").to_string_lossy();
            hashes.insert(name.into_owned(), hash_file(path)?);
        }
        let json = serde_json::to_string_pretty(&hashes).expect("serializes");
        let done = self.done();
        write_synced(&done, json.as_bytes()).map_err(|e| RunFolderError::io(&done, e))
    }

    /// Checks every file `DONE` lists against its recorded hash. An error names the file and says
    /// whether it is missing or its content changed.
    pub fn verify(&self) -> Result<()> {
        let done = self.done();
        let text = std::fs::read_to_string(&done).map_err(|e| RunFolderError::io(&done, e))?;
        if text.trim().is_empty() {
            return Ok(()); // written before checkpoints recorded their hashes
        }
        let hashes: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
            RunFolderError::format(
                &done,
                e.to_string(),
                "the checkpoint's DONE marker is damaged: resume from another checkpoint",
            )
        })?;
        for (name, want) in &hashes {
            let path = self.path.join(name);
            if !path.is_file() {
                return Err(RunFolderError::format(
                    &path,
                    "missing, though DONE lists it",
                    "the checkpoint is incomplete: resume from another checkpoint",
                ));
            }
            let got = hash_file(&path)?;
            if &got != want {
                return Err(RunFolderError::format(
                    &path,
                    format!("content hash {got}, DONE recorded {want} (changed after the checkpoint was written)"),
                    "the checkpoint is damaged: resume from another checkpoint",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::RunDir;

    fn checkpoint(run: &RunDir, step: u64) -> crate::CheckpointDir {
        let c = run.checkpoint(step);
        std::fs::create_dir_all(&c.path).unwrap();
        std::fs::write(c.model(), vec![7u8; 100_000]).unwrap();
        std::fs::write(c.state(), b"{}").unwrap();
        c
    }

    #[test]
    fn a_changed_or_missing_file_fails_verification_and_an_old_empty_done_passes() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let c = checkpoint(&run, 10);
        c.write_done().unwrap();
        c.verify().unwrap();
        let mut bytes = std::fs::read(c.model()).unwrap();
        bytes[54_321] ^= 1;
        std::fs::write(c.model(), &bytes).unwrap();
        let e = c.verify().unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("content hash") && e.contains("HINT"),
            "{e}"
        );
        std::fs::remove_file(c.model()).unwrap();
        assert!(c.verify().unwrap_err().to_string().contains("missing"));
        std::fs::write(c.done(), b"").unwrap();
        c.verify().unwrap();
    }
}
