//! Where a pipeline file came from: the git commit of its repository and whether it had
//! uncommitted changes, so a reviewer can reproduce a run. Asks the `git` command; outside a work
//! tree, or without git, there is nothing to record.

use std::path::Path;
use std::process::Command;

pub use crate::run_folder::GitState;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // A repository's own config can name commands git runs while it reads the work tree (an
    // fsmonitor hook); a pipeline received as an archive must not run anything through segflow.
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.untrackedCache=false",
        ])
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The git state of the repository holding `pipeline_file`, if it is in a work tree.
pub fn git_state(pipeline_file: &Path) -> Option<GitState> {
    let dir = match pipeline_file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let commit = git(dir, &["rev-parse", "HEAD"])?;
    let name = pipeline_file.file_name()?.to_string_lossy().into_owned();
    // `git status` runs clean filters (`filter.<driver>.clean`, any command) on changed files;
    // with a filter configured the state is not asked, and recorded as possibly modified.
    let filters = git(dir, &["config", "--get-regexp", r"^filter\."]).unwrap_or_default();
    if !filters.is_empty() {
        return Some(GitState {
            commit,
            dirty: true,
            pipeline_modified: true,
        });
    }
    let dirty = !git(dir, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    let file_status = git(dir, &["status", "--porcelain", "--", &name])?;
    Some(GitState {
        commit,
        dirty,
        pipeline_modified: !file_status.is_empty(),
    })
}
