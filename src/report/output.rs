//! Atomic output folders: a run writes into a hidden staging folder beside the destination and
//! moves it into place only when everything succeeded, so a failed run leaves nothing behind and
//! never touches an earlier run.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::TempDir;

use crate::error::{Error, Result};

mod ownership;

use ownership::Owned;

/// The staging folder being written, for the interrupt handler to remove.
static ACTIVE: Mutex<Option<PathBuf>> = Mutex::new(None);

fn set_active(path: Option<PathBuf>) {
    if let Ok(mut active) = ACTIVE.lock() {
        *active = path;
    }
}

/// Remove the staging folder of the run in progress, if any; called when the process is
/// interrupted, so that nothing half-written remains.
pub fn remove_active_staging() -> Option<PathBuf> {
    let path = ACTIVE.lock().ok()?.take()?;
    std::fs::remove_dir_all(&path).ok()?;
    Some(path)
}

/// Remove staging folders of `name` left in `parent` by runs that were killed (their process no
/// longer exists). Only where `/proc` tells which processes exist.
fn remove_abandoned(parent: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return;
    }
    let prefix = format!(".{name}.segflow-staging-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Refuse to replace `destination` unless an earlier segflow run wrote it and it holds none of
/// `protected`.
fn check_replaceable(destination: &Path, protected: &[PathBuf]) -> Result<()> {
    let refuse = |why: String| Error::Output {
        message: format!(
            "--replace refuses to replace {}: {why}",
            destination.display()
        ),
        help: Some(
            "--replace only replaces a run or history folder written by segflow (one with its \
             manifest.json) that holds nothing but the files its manifest lists; move your own \
             files out of it, or choose another --out"
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
    if let Some(why) = owned.foreign_entries(destination).refusal() {
        return Err(refuse(why));
    }
    Ok(())
}

/// A run folder being written.
pub struct StagedOutput {
    destination: PathBuf,
    staging: Option<TempDir>,
    replace: bool,
}

impl StagedOutput {
    /// Start writing a run that will end up at `destination`. Fails if it exists, unless
    /// `replace` is set (the old folder is then replaced only on [`StagedOutput::commit`]).
    ///
    /// `--replace` only ever replaces a folder an earlier segflow run wrote (it holds a segflow
    /// `manifest.json`), and never one that holds any of `protected` (the pipeline file, its
    /// source files, the working directory).
    pub fn begin(destination: &Path, replace: bool, protected: &[PathBuf]) -> Result<Self> {
        let exists = destination.symlink_metadata().is_ok();
        if exists && !replace {
            return Err(Error::Output {
                message: format!("{} already exists", destination.display()),
                help: Some(
                    "runs are never overwritten: pass `--out` with a new folder, or `--replace` \
                     to replace it once the new run has succeeded"
                        .into(),
                ),
            });
        }
        if exists {
            check_replaceable(destination, protected)?;
        }
        let parent = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::Output {
            message: format!(
                "cannot create the folder {} for the run: {e}",
                parent.display()
            ),
            help: Some("choose another `--out`; a file may have the name of a folder".into()),
        })?;
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        remove_abandoned(&parent, &name);
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.segflow-staging-{}-", std::process::id()))
            .tempdir_in(&parent)
            .map_err(|e| Error::output(&parent, e))?;
        set_active(Some(staging.path().to_path_buf()));
        Ok(StagedOutput {
            destination: destination.to_path_buf(),
            staging: Some(staging),
            replace,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        self.staging.as_ref().map_or(Path::new("."), TempDir::path)
    }

    /// Move the finished run into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        set_active(None);
        let destination = self.destination.clone();
        let staged = self
            .staging
            .take()
            .ok_or_else(|| Error::Internal("run folder committed twice".into()))?
            .keep();
        if self.replace && destination.exists() {
            let old = staged.with_extension("replaced");
            std::fs::rename(&destination, &old).map_err(|e| Error::output(&destination, e))?;
            if let Err(e) = std::fs::rename(&staged, &destination) {
                // Put the previous run back and drop the new one: nothing half-done remains.
                let _ = std::fs::rename(&old, &destination);
                let _ = std::fs::remove_dir_all(&staged);
                return Err(Error::output(&destination, e));
            }
            std::fs::remove_dir_all(&old).map_err(|e| Error::output(&old, e))?;
        } else if let Err(e) = std::fs::rename(&staged, &destination) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(Error::output(&destination, e));
        }
        Ok(destination)
    }
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        // A failed run: the TempDir removes the folder; the handler has nothing left to do.
        set_active(None);
    }
}
