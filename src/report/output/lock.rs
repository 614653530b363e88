//! One run at a time into one destination: a lock file beside it, `.NAME.segflow-lock`, holding
//! the writer's pid for the loser's message. The lock is the kernel's (released when the process
//! ends, however it ends); the file is removed only by the process holding it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
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
    /// Lock the destination `name` in `parent`, or say which run holds it.
    pub(super) fn acquire(parent: &Path, name: &str, destination: &Path) -> Result<Lock> {
        let path = parent.join(format!(".{name}.segflow-lock"));
        for _ in 0..ATTEMPTS {
            if path.symlink_metadata().is_ok_and(|m| !m.is_file()) {
                return Err(Error::Output {
                    message: format!("{} is not segflow's lock file", path.display()),
                    help: Some("segflow keeps that name for its lock: move it away".into()),
                });
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
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
        let _ = writeln!(self.file, "{}", std::process::id());
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

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), path.symlink_metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn busy(destination: &Path, lock: &Path) -> Error {
    let pid = std::fs::read_to_string(lock)
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
