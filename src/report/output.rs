//! Atomic output folders: a run writes into a hidden staging folder beside the destination and
//! moves it into place only when everything succeeded, so a failed run leaves nothing behind and
//! never touches an earlier run.
//!
//! One run at a time writes into a destination (a lock file beside it). `--replace` commits with
//! two renames (old run to `.NAME.replaced`, staging to NAME): a signal waits until both are
//! done, and a run killed between them is finished or rolled back by the next run's start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tempfile::TempDir;

use crate::error::{Error, Result};

mod file;
mod lock;
mod ownership;
mod recovery;

pub use file::StagedFile;

use lock::Lock;
pub use ownership::FolderKind;
use ownership::Owned;

/// A file in every staging folder: the cleanup of abandoned ones removes only folders holding it.
pub(crate) const STAGING_MARKER: &str = ".segflow-staging";
/// Random characters at the end of a staging folder's name.
const RANDOM_LEN: usize = 6;

/// What the interrupt handler removes: the staging folder being written and its lock file.
struct Active {
    staging: PathBuf,
    lock: PathBuf,
    /// The lock file's device and inode: only that file is removed.
    lock_identity: Option<(u64, u64)>,
}

static ACTIVE: Mutex<Option<Active>> = Mutex::new(None);
/// The staged export files being written (see `file.rs`), removed by the handler too.
static ACTIVE_FILES: Mutex<Vec<Active>> = Mutex::new(Vec::new());
/// Held by the commit across its renames, and by the interrupt handler until the process exits:
/// a signal never strikes between the renames.
static COMMIT: Mutex<()> = Mutex::new(());
/// Set once the run folder is in place: a signal after that is no interruption of the run.
static COMMITTED: AtomicBool = AtomicBool::new(false);

fn set_active(active: Option<Active>) {
    *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = active;
}

fn commit_guard() -> MutexGuard<'static, ()> {
    COMMIT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a termination signal means now.
pub enum Interrupt {
    /// The run folder is already in place: the command finishes with its own outcome.
    AfterCommit,
    /// Stop now (exit 130); the staging folder removed, if there was one.
    Stop {
        /// The staging folder removed.
        removed: Option<PathBuf>,
    },
}

/// Called on SIGINT, SIGTERM or SIGHUP. When it returns [`Interrupt::Stop`] no commit can start
/// any more, and the caller exits.
pub fn interrupt() -> Interrupt {
    let guard = commit_guard();
    if COMMITTED.load(Ordering::SeqCst) {
        return Interrupt::AfterCommit;
    }
    // Kept until the process exits, so that the commit cannot begin its renames.
    std::mem::forget(guard);
    let active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner).take();
    let files = std::mem::take(&mut *ACTIVE_FILES.lock().unwrap_or_else(PoisonError::into_inner));
    for file in files {
        remove_active(file);
    }
    let removed = active.and_then(remove_active);
    Interrupt::Stop { removed }
}

/// Remove a staging folder or file and its lock file (only if it is still the one locked);
/// the staging path when it was removed.
fn remove_active(active: Active) -> Option<PathBuf> {
    if active
        .lock_identity
        .is_some_and(|identity| lock::is_identity(&active.lock, identity))
    {
        let _ = std::fs::remove_file(&active.lock);
    }
    let removed = if active.staging.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(&active.staging)
    } else {
        std::fs::remove_file(&active.staging)
    };
    removed.ok().map(|()| active.staging)
}

/// Let the interrupt handler remove the staged file `staging` and its lock.
fn add_active_file(staging: &Path, lock: &Lock) {
    ACTIVE_FILES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Active {
            staging: staging.to_path_buf(),
            lock: lock.path().to_path_buf(),
            lock_identity: lock.identity(),
        });
}

/// The staged file `staging` is committed or removed: the handler leaves it alone.
fn remove_active_file(staging: &Path) {
    ACTIVE_FILES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|active| active.staging != staging);
}

/// A note on stderr about something segflow repaired or left.
fn note(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "note: {}", crate::secrets::redact(text));
}

/// The folder `destination` is created in, and its name; refuses a destination ending in `.` or
/// `..`, which names no folder of its own to create or replace.
fn place(destination: &Path) -> Result<(PathBuf, String)> {
    let text = destination.to_string_lossy();
    let last = text.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if matches!(last, "" | "." | "..") {
        return Err(Error::Output {
            message: format!(
                "--out {text} does not name a run folder: it ends in `{}`",
                if last.is_empty() { "/" } else { last }
            ),
            help: Some("name the run folder itself, as in `--out runs/q4`".into()),
        });
    }
    // The engine reads the run's files back by URL, and URLs cannot hold control characters.
    if text.chars().any(char::is_control) {
        return Err(Error::Output {
            message: format!("--out {text:?} holds a control character (a line break, a tab)"),
            help: Some("name the run folder with printable characters".into()),
        });
    }
    let parent = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, last.to_string()))
}

/// `destination` without the slashes at its end (`/` stays `/`).
fn without_trailing_slashes(destination: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let bytes = destination.as_os_str().as_bytes();
    let end = bytes
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(1, |last| last + 1);
    PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[..end]))
}

/// Refuse `destination` if it exists, unless `replace` is set and it may be replaced.
fn refuse_existing(
    destination: &Path,
    replace: bool,
    protected: &[PathBuf],
    kind: FolderKind,
) -> Result<()> {
    if destination.symlink_metadata().is_err() {
        return Ok(());
    }
    if !replace {
        return Err(Error::Output {
            message: format!("{} already exists", destination.display()),
            help: Some(
                "runs are never overwritten: pass `--out` with a new folder, or `--replace` \
                 to replace it once the new run has succeeded"
                    .into(),
            ),
        });
    }
    check_replaceable(destination, protected, kind)
}

/// Refuse to replace `destination` unless an earlier segflow run wrote it and it holds none of
/// `protected`.
fn check_replaceable(destination: &Path, protected: &[PathBuf], kind: FolderKind) -> Result<()> {
    let refuse = |why: String| Error::Output {
        message: format!(
            "--replace refuses to replace {}: {why}",
            destination.display()
        ),
        help: Some(
            "--replace only replaces a folder of the same kind (run, history, reports) written by \
             segflow (one with its manifest.json) that holds nothing but the files its manifest \
             lists; move your own files out of it, or choose another --out"
                .into(),
        ),
    };
    let metadata = destination
        .symlink_metadata()
        .map_err(|e| refuse(e.to_string()))?;
    if !metadata.is_dir() {
        return Err(refuse("it is not a folder".into()));
    }
    let folder = destination
        .canonicalize()
        .map_err(|e| refuse(e.to_string()))?;
    for path in protected {
        if let Ok(path) = path.canonicalize()
            && path.starts_with(&folder)
        {
            return Err(refuse(format!(
                "it holds {}, which this run reads or runs in",
                path.display()
            )));
        }
    }
    let Some(owned) = Owned::read(destination) else {
        return Err(refuse(
            "it is not a segflow run folder (no segflow manifest.json)".into(),
        ));
    };
    match ownership::kind_of(destination) {
        Some(found) if found == kind => {}
        Some(found) => {
            return Err(refuse(format!(
                "it is a {found} folder, and this writes a {kind} folder"
            )));
        }
        None => return Err(refuse(format!("it is not a segflow {kind} folder"))),
    }
    if let Some(why) = owned.foreign_entries(destination).refusal() {
        return Err(refuse(why));
    }
    Ok(())
}

/// A run folder being written.
pub struct StagedOutput {
    destination: PathBuf,
    parent: PathBuf,
    name: String,
    // Declared before the lock, so that a failed run's folder is removed while still locked.
    staging: Option<TempDir>,
    lock: Option<Lock>,
    /// Folders above the destination this run created (deepest first), removed again if it
    /// fails: a failed run leaves nothing, not even `new/deep/tree/`.
    created: Vec<PathBuf>,
    replace: bool,
    /// What `--replace` must not delete, checked again at the commit.
    protected: Vec<PathBuf>,
    /// What it writes: `--replace` replaces only a folder of the same kind.
    kind: FolderKind,
}

impl StagedOutput {
    /// Start writing a run that will end up at `destination`. Fails if it exists, unless
    /// `replace` is set (the old folder is then replaced only on [`StagedOutput::commit`]).
    ///
    /// `--replace` only ever replaces a folder an earlier segflow run wrote (it holds a segflow
    /// `manifest.json` and nothing it does not list), and never one that holds any of
    /// `protected` (the pipeline file, its source files, the working directory). Everything is
    /// checked before any work is done: a refusal touches nothing.
    pub fn begin(
        destination: &Path,
        replace: bool,
        protected: &[PathBuf],
        kind: FolderKind,
    ) -> Result<Self> {
        // `runs/link/` would look through a symlink `runs/link`: the checks must see the link.
        let trimmed = without_trailing_slashes(destination);
        refuse_existing(&trimmed, replace, protected, kind)?;
        let (parent, name) = place(destination)?;
        let destination = &trimmed;
        let created = missing_folders(&parent);
        std::fs::create_dir_all(&parent).map_err(|e| Error::Output {
            message: format!(
                "cannot create the folder {} for the run: {e}",
                parent.display()
            ),
            help: Some("choose another `--out`; a file may have the name of a folder".into()),
        })?;
        let lock = Lock::acquire(&parent, &name, destination)?;
        recovery::finish_replace(&parent, &name, destination)?;
        recovery::remove_abandoned(&parent, &name);
        // Again under the lock: another run may have finished in the meantime.
        refuse_existing(destination, replace, protected, kind)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.segflow-staging-{}-", std::process::id()))
            .rand_bytes(RANDOM_LEN)
            .tempdir_in(&parent)
            .map_err(|e| Error::output(&parent, e))?;
        let marker = staging.path().join(STAGING_MARKER);
        std::fs::write(&marker, b"").map_err(|e| Error::output(&marker, e))?;
        set_active(Some(Active {
            staging: staging.path().to_path_buf(),
            lock: lock.path().to_path_buf(),
            lock_identity: lock.identity(),
        }));
        Ok(StagedOutput {
            destination: destination.to_path_buf(),
            parent,
            name,
            staging: Some(staging),
            lock: Some(lock),
            created,
            replace,
            protected: protected.to_vec(),
            kind,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        self.staging.as_ref().map_or(Path::new("."), TempDir::path)
    }

    /// Whether [`StagedOutput::commit`] would still be allowed to move the run into place (with
    /// `--replace`, the old folder is still segflow's): checked before the exports commit, so
    /// that the commit of the run folder after theirs can fail only on the renames themselves.
    pub fn check_commit(&self) -> Result<()> {
        self.recheck()
    }

    /// Move the finished run into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        crate::progress::pause_for_tests("SEGFLOW_TEST_PAUSE_BEFORE_COMMIT");
        let guard = commit_guard();
        set_active(None);
        let staged = self
            .staging
            .take()
            .ok_or_else(|| Error::Internal("run folder committed twice".into()))?
            .keep();
        // The old folder may have changed while the run worked: it is judged again right
        // before it is moved away.
        let swapped = self.recheck().and_then(|()| self.swap_in(&staged));
        if swapped.is_ok() {
            // Kept until now so that a staging folder is always marked, even one a SIGKILL
            // leaves between the renames; ownership accepts a marker a kill leaves here.
            let _ = std::fs::remove_file(self.destination.join(STAGING_MARKER));
            COMMITTED.store(true, Ordering::SeqCst);
        } else {
            let _ = std::fs::remove_dir_all(&staged);
        }
        drop(guard);
        if let Some(old) = swapped? {
            remove_replaced(&old, &self.destination)?;
        }
        Ok(self.destination.clone())
    }

    /// With `--replace`, refuse the commit if the folder at the destination is no longer one
    /// segflow may replace (the user added files to it, or put a folder of their own there).
    fn recheck(&self) -> Result<()> {
        if !self.replace || self.destination.symlink_metadata().is_err() {
            return Ok(());
        }
        check_replaceable(&self.destination, &self.protected, self.kind).map_err(|e| match e {
            Error::Output { message, help } => Error::Output {
                message: format!(
                    "{message}; it changed while this run worked, so the new run was discarded"
                ),
                help,
            },
            other => other,
        })
    }

    /// Rename `staged` to the destination; with `--replace`, first move the old run aside and
    /// return where it is.
    fn swap_in(&self, staged: &Path) -> Result<Option<PathBuf>> {
        let destination = &self.destination;
        let replacing = self.replace && destination.symlink_metadata().is_ok();
        if !replacing {
            rename_no_replace(staged, destination).map_err(|e| Error::output(destination, e))?;
            return Ok(None);
        }
        let old = recovery::replaced_path(&self.parent, &self.name);
        std::fs::rename(destination, &old).map_err(|e| Error::output(destination, e))?;
        crate::progress::pause_for_tests("SEGFLOW_TEST_PAUSE_IN_COMMIT");
        if let Err(e) = rename_no_replace(staged, destination) {
            // Put the previous run back: nothing half-done remains.
            return Err(match std::fs::rename(&old, destination) {
                Ok(()) => Error::output(destination, e),
                Err(back) => Error::Output {
                    message: format!(
                        "cannot write {}: {e}; the previous run is kept in {} ({back})",
                        destination.display(),
                        old.display()
                    ),
                    help: Some(format!(
                        "rename {} back to {}",
                        old.display(),
                        destination.display()
                    )),
                },
            });
        }
        Ok(Some(old))
    }
}

/// Remove the previous run, moved aside to `old` by the commit, deleting only what segflow
/// wrote: if it holds anything else (added just before the rename, or through a handle still
/// open in it), it is kept and the command fails with exit 5, the new run being in place.
fn remove_replaced(old: &Path, destination: &Path) -> Result<()> {
    let kept = |why: String| Error::Output {
        message: format!(
            "the new run is in {}, but the previous run, moved to {}, was kept: {why}",
            destination.display(),
            old.display()
        ),
        help: Some(format!(
            "move your files out of {} and delete it; the next run into {} refuses to start \
             until then",
            old.display(),
            destination.display()
        )),
    };
    let Some(owned) = Owned::read(old) else {
        return Err(kept("it no longer holds a segflow manifest.json".into()));
    };
    if let Some(why) = owned.foreign_entries(old).refusal() {
        return Err(kept(why));
    }
    match owned.remove(old) {
        Ok(()) => Ok(()),
        Err(ownership::Removal::Foreign(why)) => Err(kept(why)),
        // Only segflow's files are left: the next run into this destination removes them.
        Err(ownership::Removal::Io(e)) => {
            note(&format!(
                "the previous run, moved to {}, could not be removed: {e}",
                old.display()
            ));
            Ok(())
        }
    }
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        // A failed run: the TempDir removes the folder; the handler has nothing left to do.
        if self.staging.is_some() {
            set_active(None);
            drop(self.staging.take());
            drop(self.lock.take());
            // Only empty folders go, so anything else put there in the meantime stays.
            for folder in &self.created {
                if std::fs::remove_dir(folder).is_err() {
                    break;
                }
            }
        }
    }
}

/// Rename `from` to `to` unless something exists at `to` (even an empty folder, which a plain
/// rename would silently replace): a folder that appeared there while the run worked is the
/// user's, and stays.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = |path: &Path| {
        std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (from_c, to_c) = (c_path(from)?, c_path(to)?);
    // SAFETY: both are valid NUL-terminated paths; renameat2 only reads them.
    let status = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if status == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        // A file system without the flag: check, then rename (a narrower window than none).
        Some(libc::EINVAL | libc::ENOSYS) if to.symlink_metadata().is_err() => {
            std::fs::rename(from, to)
        }
        Some(libc::EINVAL | libc::ENOSYS) => Err(std::io::ErrorKind::AlreadyExists.into()),
        _ => Err(error),
    }
}

/// The folders of `dir` and its ancestors that do not exist yet, deepest first.
fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|folder| !folder.as_os_str().is_empty() && folder.symlink_metadata().is_err())
        .map(Path::to_path_buf)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_must_end_in_a_name() {
        for bad in [
            ".",
            "..",
            "runs/ok/.",
            "runs/ok/..",
            "runs/ok/./",
            "/",
            "runs/a\nb",
            "a\tb",
        ] {
            assert!(place(Path::new(bad)).is_err(), "{bad}");
        }
        let (parent, name) = place(Path::new("runs/q4 [draft]/")).unwrap();
        assert_eq!(
            (parent, name.as_str()),
            (PathBuf::from("runs"), "q4 [draft]")
        );
        assert_eq!(
            without_trailing_slashes(Path::new("runs/link//")),
            PathBuf::from("runs/link")
        );
        let (parent, name) = place(Path::new("q4")).unwrap();
        assert_eq!((parent, name.as_str()), (PathBuf::from("."), "q4"));
    }
}
