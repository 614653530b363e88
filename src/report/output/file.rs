//! A single file written the way run folders are: staged beside its destination under a hidden
//! name, moved into place only when the whole run succeeded, one writer at a time (the same lock
//! file), and never over a file segflow did not write.
//!
//! segflow knows its files by a record beside each, `.NAME.segflow-export`, holding the SHA-256
//! of the bytes it wrote. `--replace` replaces a file only while that record matches it: a file
//! the user wrote or changed since is theirs, and stays.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::lock::Lock;
use super::{
    RANDOM_LEN, add_active_file, missing_folders, place, recovery, remove_active_file,
    rename_no_replace, without_trailing_slashes,
};
use crate::error::{Error, Result};

/// A file being written.
pub struct StagedFile {
    destination: PathBuf,
    record: PathBuf,
    // Declared before the lock, so that a failed run's file is removed while still locked.
    staging: Option<NamedTempFile>,
    lock: Option<Lock>,
    /// Folders above the destination this run created, removed again if it fails.
    created: Vec<PathBuf>,
    replace: bool,
}

impl StagedFile {
    /// Start writing a file that will end up at `destination`. Fails if something is there,
    /// unless `replace` is set and segflow wrote it. Checked before any work is done.
    pub fn begin(destination: &Path, replace: bool) -> Result<Self> {
        let trimmed = without_trailing_slashes(destination);
        let (parent, name) = place(destination)?;
        let destination = trimmed;
        let record = parent.join(format!(".{name}.segflow-export"));
        refuse_existing(&destination, &record, replace)?;
        let created = missing_folders(&parent);
        std::fs::create_dir_all(&parent).map_err(|e| Error::output(&parent, e))?;
        let lock = Lock::acquire(&parent, &name, &destination)?;
        recovery::remove_abandoned_files(&parent, &name);
        refuse_existing(&destination, &record, replace)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(
                ".{name}.{}{}-",
                recovery::EXPORT_STAGING,
                std::process::id()
            ))
            .rand_bytes(RANDOM_LEN)
            .tempfile_in(&parent)
            .map_err(|e| Error::output(&parent, e))?;
        add_active_file(staging.path(), &lock);
        Ok(StagedFile {
            destination,
            record,
            staging: Some(staging),
            lock: Some(lock),
            created,
            replace,
        })
    }

    /// The file to write into.
    pub fn path(&self) -> &Path {
        self.staging
            .as_ref()
            .map_or(Path::new("."), NamedTempFile::path)
    }

    /// Where the file goes.
    pub fn destination(&self) -> &Path {
        &self.destination
    }

    /// Check again, right before the commits, that the destination may still be written.
    pub fn recheck(&self) -> Result<()> {
        refuse_existing(&self.destination, &self.record, self.replace)
    }

    /// Move the finished file into place and record it as segflow's.
    pub fn commit(mut self) -> Result<PathBuf> {
        let staged = self
            .staging
            .take()
            .ok_or_else(|| Error::Internal("export file committed twice".into()))?;
        // From here a signal leaves the file to the next run's cleanup: it is renamed below.
        remove_active_file(staged.path());
        let digest = sha256_of(staged.path()).map_err(|e| Error::output(staged.path(), e))?;
        // A temporary file is private (0600); an export is read by other tools, like the run's.
        std::fs::set_permissions(staged.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::output(staged.path(), e))?;
        self.recheck()?;
        let (_, staged) = staged
            .keep()
            .map_err(|e| Error::output(&self.destination, e))?;
        let moved = if self.destination.symlink_metadata().is_ok() {
            // Judged segflow's just above, under the lock.
            std::fs::rename(&staged, &self.destination)
        } else {
            rename_no_replace(&staged, &self.destination)
        };
        if let Err(e) = moved {
            let _ = std::fs::remove_file(&staged);
            return Err(Error::output(&self.destination, e));
        }
        std::fs::write(&self.record, format!("sha256:{digest}\n"))
            .map_err(|e| Error::output(&self.record, e))?;
        Ok(self.destination.clone())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            remove_active_file(staging.path());
            drop(staging);
            drop(self.lock.take());
            for folder in &self.created {
                if std::fs::remove_dir(folder).is_err() {
                    break;
                }
            }
        }
    }
}

/// Refuse `destination` if something is there, unless `replace` is set and segflow wrote it.
fn refuse_existing(destination: &Path, record: &Path, replace: bool) -> Result<()> {
    if destination.symlink_metadata().is_err() {
        return Ok(());
    }
    let shown = destination.display();
    if !replace {
        return Err(Error::Output {
            message: format!("{shown} already exists"),
            help: Some(
                "export files are never overwritten: pass `--replace` to replace a file an \
                 earlier segflow run exported, or move the file away"
                    .into(),
            ),
        });
    }
    if written_by_segflow(destination, record) {
        return Ok(());
    }
    Err(Error::Output {
        message: format!(
            "--replace refuses to replace {shown}: segflow did not write it, or it changed since"
        ),
        help: Some(format!(
            "segflow replaces only the files it exported (recorded in {}); move your file away \
             or export elsewhere",
            record.display()
        )),
    })
}

/// Whether `destination` is a regular file whose bytes are those `record` says segflow wrote.
fn written_by_segflow(destination: &Path, record: &Path) -> bool {
    let regular = |path: &Path| path.symlink_metadata().is_ok_and(|m| m.is_file());
    if !regular(destination) || !regular(record) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(record) else {
        return false;
    };
    let Ok(digest) = sha256_of(destination) else {
        return false;
    };
    text.trim() == format!("sha256:{digest}")
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(crate::pipeline::hex(&hasher.finalize()))
}
