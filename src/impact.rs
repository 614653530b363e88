//! `segflow impact`: run the base and the current version of a pipeline on the same data and
//! as-of date, and say what the change does to the customers. When only the segment rules (or
//! other settings that are not sources, entity or features) changed, the features are computed
//! once and the base rules are evaluated over the same features table.

use std::borrow::Cow;
use std::path::Path;
use std::process::Command;

use crate::analysis::impact::{Impact, Version};
use crate::analysis::{self, Analysis};
use crate::engine::{self, RunOptions, RunResults};
use crate::error::{Error, Result};
use crate::lint;
use crate::pipeline::Pipeline;
use crate::run_folder::{self, LintRecord, SegmentsDocument};

/// The base version of `pipeline_file` at git revision `reference`, read with `git show` in the
/// file's folder, with sources resolved from the current version's folder (the same data).
pub fn base_from_git(
    pipeline_file: &Path,
    reference: &str,
    current: &Pipeline,
) -> Result<Pipeline> {
    if reference.starts_with('-') || reference.is_empty() {
        return Err(Error::Usage {
            message: format!("--base `{reference}` is not a git revision"),
            help: Some("name a branch, tag or commit, e.g. `--base main`".into()),
        });
    }
    let folder = match pipeline_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = pipeline_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spec = format!("{reference}:./{name}");
    let output = Command::new("git")
        .arg("-C")
        .arg(folder)
        .args(["show", "--no-textconv", "--end-of-options"])
        .arg(&spec)
        .output()
        .map_err(|e| Error::Usage {
            message: format!("cannot run git to read the base version: {e}"),
            help: Some("install git, or give the base version as a file with --base-file".into()),
        })?;
    if !output.status.success() {
        let reason = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Usage {
            message: format!(
                "git cannot show the base version `{spec}` (in {}): {}",
                folder.display(),
                reason.lines().next().unwrap_or("").trim()
            ),
            help: Some("name a revision that has the pipeline file (a branch, tag or commit), or use --base-file".into()),
        });
    }
    let text = String::from_utf8(output.stdout).map_err(|_| Error::Usage {
        message: format!("the base version `{spec}` is not UTF-8 text"),
        help: None,
    })?;
    Pipeline::from_text(
        &format!("{reference}:{}", pipeline_file.display()),
        text,
        current.base_dir.clone(),
    )
}

/// The base version from a file; its sources are resolved from the current version's folder,
/// so that both run on the same data.
pub fn base_from_file(path: &Path, current: &Pipeline) -> Result<Pipeline> {
    let text = std::fs::read_to_string(path).map_err(|reason| Error::ReadFile {
        path: path.to_path_buf(),
        reason,
    })?;
    Pipeline::from_text(&path.display().to_string(), text, current.base_dir.clone())
}

/// Whether the two versions compute the same features from the same sources for the same
/// customers, so that only their rules (and what is judged of them) differ.
fn same_features(base: &Pipeline, current: &Pipeline) -> bool {
    let value = |p: &Pipeline| {
        serde_json::to_value((&p.spec.sources, &p.spec.entity, &p.spec.features)).ok()
    };
    let (a, b) = (value(base), value(current));
    a.is_some() && a == b && base.sources == current.sources
}

/// One version's run, analysed.
struct Ran {
    results: RunResults,
    analysis: Analysis,
    lints: Vec<String>,
}

fn analysed(pipeline: &Pipeline, results: RunResults, as_of: chrono::NaiveDate) -> Ran {
    let analysis = analysis::analyse(pipeline, &results);
    let lints = lint::static_lints(pipeline, as_of)
        .iter()
        .chain(&lint::runtime_lints(pipeline, &results))
        .map(LintRecord::of)
        .map(|l| format!("{}: {}", l.code, l.message))
        .collect();
    Ran {
        results,
        analysis,
        lints,
    }
}

/// Run both versions in folders under `work` and assemble their impact, with up to `sample`
/// keys per changed cell.
pub async fn measure(
    base: &Pipeline,
    current: &Pipeline,
    options: &RunOptions,
    work: &Path,
    sample: usize,
) -> Result<Impact> {
    let (old_dir, new_dir) = (work.join("base"), work.join("current"));
    for dir in [&old_dir, &new_dir] {
        std::fs::create_dir(dir).map_err(|e| Error::output(dir, e))?;
    }
    let new = engine::run(current, options, &new_dir).await?;
    let mut once = false;
    let old = if same_features(base, current) {
        let features = new_dir.join(run_folder::ASSIGNMENTS);
        let reassigned = engine::reassign(base, options, &new, &features, &old_dir).await?;
        once = reassigned.is_some();
        reassigned
    } else {
        None
    };
    let old = match old {
        Some(old) => old,
        None => engine::run(base, options, &old_dir).await?,
    };
    let (old, new) = (
        analysed(base, old, options.as_of),
        analysed(current, new, options.as_of),
    );
    let old_run = run_folder::Run {
        folder: "base".into(),
        assignments: old_dir.join(run_folder::ASSIGNMENTS),
        segments: SegmentsDocument::new(base, &old.results, &old.analysis.profiles),
        criteria: Cow::Borrowed(&old.analysis.criteria),
    };
    let new_run = run_folder::Run {
        folder: "current".into(),
        assignments: new_dir.join(run_folder::ASSIGNMENTS),
        segments: SegmentsDocument::new(current, &new.results, &new.analysis.profiles),
        criteria: Cow::Borrowed(&new.analysis.criteria),
    };
    let comparison = run_folder::compare_segments(&old_run, &new_run, &options.resources).await?;
    let samples = engine::compare::moved_samples(
        &old_run.keyed_assignments(),
        &new_run.keyed_assignments(),
        sample,
        &options.resources,
    )
    .await?;
    let mut impact = analysis::impact::impact(
        &Version {
            pipeline: base,
            overall: &old.results.overall,
            scoring: old.analysis.scoring.as_ref(),
            lints: old.lints,
        },
        &Version {
            pipeline: current,
            overall: &new.results.overall,
            scoring: new.analysis.scoring.as_ref(),
            lints: new.lints,
        },
        &comparison,
        &samples,
    );
    impact.as_of = options.as_of.to_string();
    impact.features_computed_once = once;
    Ok(impact)
}
