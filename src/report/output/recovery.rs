//! What an earlier run left beside a destination: staging folders of runs that were killed, and
//! the old run of a `--replace` that stopped between its two renames. Both are handled under
//! the destination's lock, before a new run starts.

use std::path::{Path, PathBuf};

use super::ownership::{Owned, Removal};
use super::{RANDOM_LEN, STAGING_MARKER};
use crate::error::{Error, Result};

/// Where `--replace` moves the old run folder `name` between its two renames.
pub(super) fn replaced_path(parent: &Path, name: &str) -> PathBuf {
    parent.join(format!(".{name}.replaced"))
}

/// Finish or roll back a `--replace` of `destination` that stopped between its renames (SIGKILL,
/// power loss): with no run at the destination the old one is put back; with a complete run
/// there, the old one is removed if its manifest proves segflow wrote all of it.
pub(super) fn finish_replace(parent: &Path, name: &str, destination: &Path) -> Result<()> {
    let old = replaced_path(parent, name);
    let Ok(metadata) = old.symlink_metadata() else {
        return Ok(());
    };
    let stale = |why: String| Error::Output {
        message: format!(
            "{} is left from an earlier --replace of {} and {why}",
            old.display(),
            destination.display()
        ),
        help: Some("look into it and move it away, then run again".into()),
    };
    if !metadata.is_dir() {
        return Err(stale("is not a folder".into()));
    }
    let Some(owned) = Owned::read(&old) else {
        return Err(stale(
            "is not a segflow run folder (no segflow manifest.json)".into(),
        ));
    };
    let foreign = owned.foreign_entries(&old);
    if destination.symlink_metadata().is_err() {
        // Put back only what segflow wrote: a folder holding anything else is somebody's.
        if !foreign.unknown.is_empty() {
            return Err(stale(foreign.refusal().unwrap_or_default()));
        }
        std::fs::rename(&old, destination)
            .map_err(|e| stale(format!("cannot be put back: {e}")))?;
        super::note(&format!(
            "{} was put back: an earlier --replace stopped before the new run was in place",
            destination.display()
        ));
        return Ok(());
    }
    if Owned::read(destination).is_none() {
        return Err(stale(format!(
            "{} is not a complete segflow run",
            destination.display()
        )));
    }
    if let Some(why) = foreign.refusal() {
        return Err(stale(why));
    }
    owned.remove(&old).map_err(|e| match e {
        Removal::Foreign(why) => stale(why),
        Removal::Io(e) => stale(format!("cannot be removed: {e}")),
    })?;
    super::note(&format!(
        "removed {}: the previous run an earlier --replace had moved aside, whose new run {} was \
         already in place",
        old.display(),
        destination.display()
    ));
    Ok(())
}

/// Remove staging folders of `name` in `parent` left by runs that were killed: only entries
/// named exactly as segflow names them (`.NAME.segflow-staging-<pid>-<random>`), that are
/// folders holding segflow's marker exactly as it writes it (an empty regular file) or nothing,
/// of a process that no longer exists (where `/proc` says).
pub(super) fn remove_abandoned(parent: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return;
    }
    let prefix = format!(".{name}.segflow-staging-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(staging_pid)
        else {
            continue;
        };
        let path = entry.path();
        let folder = path.symlink_metadata().is_ok_and(|m| m.is_dir());
        let marked = path
            .join(STAGING_MARKER)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.len() == 0);
        if !folder || proc.join(pid).exists() {
            continue;
        }
        if marked {
            let _ = std::fs::remove_dir_all(&path);
        } else {
            // A run killed before it wrote the marker leaves an empty folder; `remove_dir`
            // removes only an empty one, so nothing anybody put there is lost.
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// Remove staged export files of `name` in `parent` left by runs that were killed: regular files
/// named exactly as `file.rs` names them (`.NAME.segflow-export-staging-<pid>-<random>`) of a
/// process that no longer exists.
pub(super) fn remove_abandoned_files(parent: &Path, name: &str) {
    let proc = Path::new("/proc");
    let prefix = format!(".{name}.{EXPORT_STAGING}");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    if !proc.is_dir() {
        return;
    }
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(staging_pid)
        else {
            continue;
        };
        let path = entry.path();
        if path.symlink_metadata().is_ok_and(|m| m.is_file()) && !proc.join(pid).exists() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// What follows `.NAME.` in a staged export file's name, before `<pid>-<random>`.
pub(super) const EXPORT_STAGING: &str = "segflow-export-staging-";

/// The pid of a staging folder's name after the prefix (`<pid>-<random>`), if it is one.
fn staging_pid(rest: &str) -> Option<&str> {
    let (pid, random) = rest.split_once('-')?;
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    let random_ok = random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric());
    (digits && random_ok).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segflows_own_staging_names_match() {
        assert_eq!(staging_pid("123-aB3xYz"), Some("123"));
        for other in [
            "123-aB3xYz-copy",
            "x1-aB3xYz",
            "123-ab",
            "123",
            "-aB3xYz",
            "1 2-aB3xYz",
        ] {
            assert_eq!(staging_pid(other), None, "{other}");
        }
    }
}
