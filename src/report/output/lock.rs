//! One run at a time into one destination: a lock file beside it, `.NAME.segflow-lock`, holding
//! the writer's pid for the loser's message. The lock is the kernel's (released when the process
//! ends, however it ends); the file is removed only by the process holding it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Tries when the holder removes the file just as it is opened.
const ATTEMPTS: usize = 5;

/// The lock on a destination, held until dropped.
#[derive(Debug)]
pub(super) struct Lock {
    path: PathBuf,
    file: File,
}

impl Lock {
    /// Lock the destination `name` in `parent`, or say which run holds it. A file of that name
    /// that is not segflow's (not a regular file, hard-linked elsewhere, or holding anything
    /// but a pid) is refused untouched.
    pub(super) fn acquire(parent: &Path, name: &str, destination: &Path) -> Result<Lock> {
        let path = parent.join(format!(".{name}.segflow-lock"));
        for _ in 0..ATTEMPTS {
            if path.symlink_metadata().is_ok_and(|m| !m.is_file()) {
                return Err(not_ours(&path, "it is not a regular file"));
            }
            // Never truncated on opening, and never through a symlink: nothing is written
            // until the file is locked and known to be segflow's.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| Error::output(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Err(busy(destination, &path)),
                Err(TryLockError::Error(e)) => return Err(Error::output(&path, e)),
            }
            // The holder may have removed the file between our open and our lock: then the
            // lock is on a file nobody else sees, so open the one now there.
            if same_file(&file, &path) {
                check_ours(&file, &path)?;
                let mut lock = Lock { path, file };
                lock.write_pid();
                return Ok(lock);
            }
        }
        Err(busy(destination, &path))
    }

    fn write_pid(&mut self) {
        // The pid only makes the loser's message clearer: failing to write it is harmless.
        let _ = self.file.set_len(0);
        let _ = self.file.seek(SeekFrom::Start(0));
        let _ = writeln!(self.file, "{}", std::process::id());
    }

    /// The lock file's device and inode, for the interrupt handler to remove only this file.
    pub(super) fn identity(&self) -> Option<(u64, u64)> {
        self.file.metadata().ok().map(|m| (m.dev(), m.ino()))
    }

    /// The lock file, for the interrupt handler to remove.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked, and only if it is still ours.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Refuse a lock file segflow did not make: one linked elsewhere too (writing the pid would
/// change that file), or holding anything but what segflow writes (nothing, or a pid line).
fn check_ours(file: &File, path: &Path) -> Result<()> {
    let metadata = file.metadata().map_err(|e| Error::output(path, e))?;
    if !metadata.is_file() {
        return Err(not_ours(path, "it is not a regular file"));
    }
    if metadata.nlink() > 1 {
        return Err(not_ours(path, "it is a hard link to another file"));
    }
    let mut content = String::new();
    let readable = file.take(MAX_CONTENT).read_to_string(&mut content).is_ok();
    if !readable || !is_pid_content(&content) {
        return Err(not_ours(
            path,
            "it holds something other than a segflow run's pid",
        ));
    }
    Ok(())
}

/// Longer than any pid line segflow writes.
const MAX_CONTENT: u64 = 64;

/// What segflow writes into its lock file: nothing yet, or its pid and a newline.
fn is_pid_content(content: &str) -> bool {
    content.is_empty()
        || content
            .strip_suffix('\n')
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

fn not_ours(path: &Path, why: &str) -> Error {
    Error::Output {
        message: format!(
            "{} is not segflow's lock file: {why}; it was left untouched",
            path.display()
        ),
        help: Some("segflow keeps that name for its lock: move the file away".into()),
    }
}

/// Whether `path` is the file with `identity` (device, inode).
pub(super) fn is_identity(path: &Path, identity: (u64, u64)) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| (m.dev(), m.ino()) == identity)
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), path.symlink_metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn busy(destination: &Path, lock: &Path) -> Error {
    let pid = crate::run_folder::read_regular(lock)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .map_or(String::new(), |pid| format!(" (pid {pid})"));
    Error::Output {
        message: format!(
            "another segflow run is writing {}{pid}; this run wrote nothing",
            destination.display()
        ),
        help: Some("wait for it to finish and run again, or choose another --out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pid_line_or_nothing_is_segflows_content() {
        assert!(is_pid_content("") && is_pid_content("12345\n"));
        for other in ["12345", "x\n", "1\n2\n", " 1\n", "\n", "user data\n"] {
            assert!(!is_pid_content(other), "{other:?}");
        }
    }
}
