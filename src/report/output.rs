//! Atomic output folders: a run writes into a hidden staging folder beside the destination and
//! moves it into place only when everything succeeded, so a failed run leaves nothing behind and
//! never touches an earlier run.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::error::{Error, Result};

/// A run folder being written.
pub struct StagedOutput {
    destination: PathBuf,
    staging: TempDir,
    replace: bool,
}

impl StagedOutput {
    /// Start writing a run that will end up at `destination`. Fails if it exists, unless
    /// `replace` is set (the old folder is then replaced only on [`StagedOutput::commit`]).
    pub fn begin(destination: &Path, replace: bool) -> Result<Self> {
        if destination.exists() && !replace {
            return Err(Error::Output {
                message: format!("{} already exists", destination.display()),
                help: Some(
                    "runs are never overwritten: pass `--out` with a new folder, or `--replace` \
                     to replace it once the new run has succeeded"
                        .into(),
                ),
            });
        }
        let parent = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::output(&parent, e))?;
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.segflow-staging-"))
            .tempdir_in(&parent)
            .map_err(|e| Error::output(&parent, e))?;
        Ok(StagedOutput {
            destination: destination.to_path_buf(),
            staging,
            replace,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        self.staging.path()
    }

    /// Move the finished run into place.
    pub fn commit(self) -> Result<PathBuf> {
        let destination = self.destination;
        let staged = self.staging.keep();
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
