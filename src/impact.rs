//! `segflow impact`: run the base and the current version of a pipeline on the same data and
//! as-of date, and say what the change does to the customers. When the sources and entity are
//! the same, the current version's features are computed once: the base recomputes only the
//! features whose definitions differ (and those using them), and its rules are evaluated over
//! that features table in one pass with the migration.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::analysis::impact::{Impact, Version};
use crate::analysis::{self, Analysis};
use crate::engine::{self, RunOptions, RunResults};
use crate::error::{Error, Result};
use crate::lint;
use crate::pipeline::FeatureDefinition;
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
fn same_sources(base: &Pipeline, current: &Pipeline) -> bool {
    let value = |p: &Pipeline| serde_json::to_value((&p.spec.sources, &p.spec.entity)).ok();
    let (a, b) = (value(base), value(current));
    a.is_some() && a == b && base.sources == current.sources && base.entity == current.entity
}

/// The base's features whose values may differ from the current version's features of the
/// same name: a different definition or type, no such feature, or a feature using one of those.
fn changed_features(base: &Pipeline, current: &Pipeline) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for &i in &base.evaluation_order {
        let feature = &base.features[i];
        let same = current.features.iter().any(|f| {
            f.name == feature.name
                && f.definition == feature.definition
                && f.column_type == feature.column_type
        });
        let of = match &feature.definition {
            FeatureDefinition::Quantile(q) => Some(&q.of),
            _ => None,
        };
        let uses_changed = feature
            .references
            .iter()
            .chain(of)
            .any(|name| changed.contains(name));
        if !same || uses_changed {
            changed.insert(feature.name.clone());
        }
    }
    changed
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
    let new_assignments = new_dir.join(run_folder::ASSIGNMENTS);
    let changed = same_sources(base, current).then(|| changed_features(base, current));
    let recompute = match &changed {
        Some(changed) if !changed.is_empty() => {
            if !matches!(options.engine, engine::Engine::Embedded) {
                None
            } else {
                let reduced = base.reduced_to(changed);
                let path = work.join("recomputed.parquet");
                engine::compute_features(&reduced, options, &path).await?;
                let names: Vec<String> = reduced.features.iter().map(|f| f.name.clone()).collect();
                Some((path, names))
            }
        }
        _ => None,
    };
    let reassigned = match (&changed, &recompute) {
        (Some(changed), None) if changed.is_empty() => {
            engine::reassign(base, options, &new, &new_assignments, None, sample).await?
        }
        (Some(_), Some((path, features))) => {
            let recomputed = engine::Recomputed { path, features };
            engine::reassign(
                base,
                options,
                &new,
                &new_assignments,
                Some(recomputed),
                sample,
            )
            .await?
        }
        _ => None,
    };
    let once = reassigned.is_some() && recompute.is_none();
    let recomputed_features = match (&reassigned, recompute) {
        (Some(_), Some((_, names))) => names,
        _ => Vec::new(),
    };
    let (old, moves) = match reassigned {
        Some(r) => (r.results, Some((r.migration, r.samples))),
        None => (engine::run(base, options, &old_dir).await?, None),
    };
    let (old, new) = (
        analysed(base, old, options.as_of),
        analysed(current, new, options.as_of),
    );
    let old_run = run_folder::Run {
        folder: "base".into(),
        // Over the same customers, the base's assignments are the current file's rows with the
        // base's segments (and recomputed features); they were measured without being written.
        assignments: if moves.is_some() {
            new_assignments.clone()
        } else {
            old_dir.join(run_folder::ASSIGNMENTS)
        },
        segments: SegmentsDocument::new(base, &old.results, &old.analysis.profiles),
        criteria: Cow::Borrowed(&old.analysis.criteria),
    };
    let new_run = run_folder::Run {
        folder: "current".into(),
        assignments: new_assignments,
        segments: SegmentsDocument::new(current, &new.results, &new.analysis.profiles),
        criteria: Cow::Borrowed(&new.analysis.criteria),
    };
    let (comparison, samples) = match moves {
        Some((migration, samples)) => {
            let measures = engine::compare::RunMeasures {
                migration,
                bins: Vec::new(),
                unbinned: Vec::new(),
            };
            (
                run_folder::compare_measured(&old_run, &new_run, &measures),
                samples,
            )
        }
        None => {
            let (old_keyed, new_keyed) = (old_run.keyed_assignments(), new_run.keyed_assignments());
            let comparison =
                run_folder::compare_segments(&old_run, &new_run, &options.resources).await?;
            let samples =
                engine::compare::moved_samples(&old_keyed, &new_keyed, sample, &options.resources)
                    .await?;
            (comparison, samples)
        }
    };
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
    impact.recomputed_features = recomputed_features;
    Ok(impact)
}
