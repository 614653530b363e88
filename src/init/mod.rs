//! `segflow init`: a starter pipeline from the user's data files. [`inspect`] reads the files
//! (schemas and measurements), [`guess`] turns them into typed guesses with their evidence
//! (key, customers' table, roles, time columns, features), the features are computed on the
//! data with the engine to place the segment thresholds ([`segments`]), and [`render`] writes
//! the YAML text with every guess as a comment.

pub mod guess;
pub mod inspect;
pub mod render;
pub mod segments;

use std::path::{Component, Path, PathBuf};

use datafusion::arrow::array::{Array, BooleanArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use crate::engine::{self, RunOptions};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;

/// The file init writes into its folder.
pub const FILE_NAME: &str = "segments.yaml";

/// What init produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The pipeline text.
    pub text: String,
    /// What to tell the user on stderr: files left out, what init needed, warnings.
    pub notes: Vec<String>,
    /// Whether the text is a skeleton to fill in (it may not validate).
    pub skeleton: bool,
}

/// Inspect `inputs` and write the text of `dir`'s pipeline (nothing is written to disk); the
/// engine stays within `resources`.
pub async fn generate(
    dir: &Path,
    inputs: &[PathBuf],
    resources: &engine::Resources,
) -> Result<Generated> {
    let dir = normalised(dir)?;
    let inspection = inspect::inspect(inputs, resources).await?;
    if inspection.tables.is_empty() {
        return Err(Error::data(
            format!(
                "no CSV, Parquet or NDJSON file in {}",
                inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("pass data files, or folders holding them".into()),
        ));
    }
    let plan = guess::guess(&inspection, pipeline_name(&dir));
    let shown: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let mut notes: Vec<String> = plan
        .left_out
        .iter()
        .map(|left| format!("left out {}: {}", left.file, left.reason))
        .collect();
    let mut segments = Vec::new();
    let mut fewer_tiers = None;
    if plan.needs.is_empty()
        && let Some(tiering) = &plan.tiering
    {
        let draft = render::render(
            &plan,
            &render::Rendering {
                schema: None,
                inputs: &shown,
                segments: &[],
                fewer_tiers: None,
                criteria: false,
                paths: render::Paths::Absolute,
            },
        );
        let measured = measure(&plan, draft, &tiering.feature, resources).await?;
        segments = segments::tiers(tiering, &measured.values);
        fewer_tiers = segments::fewer_tiers(tiering, &measured.values, &segments);
        notes.extend(fewer_tiers.clone());
        if let Some(reachable) = &measured.reachable {
            notes.extend(reachability_warnings(
                &segments, tiering, &measured, reachable,
            ));
        }
    }
    for need in &plan.needs {
        notes.push(format!("init needs {need}"));
    }
    if !plan.needs.is_empty() {
        notes.push(format!(
            "wrote a skeleton to fill in (marked TODO); `segflow validate {FILE_NAME}` may fail until then"
        ));
    }
    let text = render::render(
        &plan,
        &render::Rendering {
            schema: schema_reference(&dir),
            inputs: &shown,
            segments: &segments,
            fewer_tiers: fewer_tiers.as_deref(),
            criteria: true,
            paths: render::Paths::RelativeTo(&dir),
        },
    );
    Ok(Generated {
        text,
        notes,
        skeleton: !plan.needs.is_empty(),
    })
}

/// The tiered feature per customer, and reachability when known, computed by the engine on a
/// draft of the pipeline (its features and one catch-all segment).
struct Measured {
    values: Vec<Option<f64>>,
    reachable: Option<Vec<bool>>,
}

async fn measure(
    plan: &guess::Plan,
    draft: String,
    feature: &str,
    resources: &engine::Resources,
) -> Result<Measured> {
    let pipeline = Pipeline::from_text("segments.yaml (draft)", draft, PathBuf::from("/"))?;
    let as_of = pipeline.as_of(None);
    let work = tempfile::TempDir::new().map_err(|e| Error::output(&std::env::temp_dir(), e))?;
    let path = work.path().join("features.parquet");
    let options = RunOptions {
        resources: *resources,
        ..RunOptions::new(as_of)
    };
    engine::compute_features(&pipeline, &options, &path).await?;
    let file = std::fs::File::open(&path).map_err(|e| Error::Internal(e.to_string()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::Internal(format!("cannot read the draft's features: {e}")))?;
    let mut values = Vec::new();
    let mut reachable = plan.reachable.as_ref().map(|_| Vec::new());
    for batch in reader {
        let batch = batch?;
        let column = batch
            .column_by_name(feature)
            .ok_or_else(|| Error::Internal(format!("the draft has no feature `{feature}`")))?;
        let numbers = cast(column, &DataType::Float64)?;
        let numbers = numbers
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::Internal("not a number column".into()))?;
        values.extend(numbers.iter());
        if let (Some(found), Some(name)) = (reachable.as_mut(), &plan.reachable) {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("the draft has no feature `{name}`")))?;
            let flags = cast(column, &DataType::Boolean)?;
            let flags = flags
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| Error::Internal("not a boolean column".into()))?;
            found.extend((0..flags.len()).map(|i| flags.is_valid(i) && flags.value(i)));
        }
    }
    Ok(Measured { values, reachable })
}

/// A warning for each segment whose reachable share is below the `accessible` error level
/// init writes (0.3): `segflow run` exits 6 for it until the data or the threshold changes.
fn reachability_warnings(
    segments: &[segments::Segment],
    tiering: &guess::Tiering,
    measured: &Measured,
    reachable: &[bool],
) -> Vec<String> {
    let mut members: Vec<(usize, usize)> = vec![(0, 0); segments.len()];
    for (value, reached) in measured.values.iter().zip(reachable) {
        let v = value.unwrap_or(0.0);
        let index = segments
            .iter()
            .position(|s| s.when.as_deref().is_none_or(|rule| matches(rule, v)))
            .unwrap_or(segments.len().saturating_sub(1));
        if let Some(entry) = members.get_mut(index) {
            entry.0 += 1;
            entry.1 += usize::from(*reached);
        }
    }
    segments
        .iter()
        .zip(members)
        .filter(|(_, (n, reached))| *n > 0 && (*reached as f64) < 0.3 * *n as f64)
        .map(|(segment, (n, reached))| {
            format!(
                "segment {} ({} by {}): only {reached} of {n} customers are reachable, below the \
                 `accessible` error level 0.3: `segflow run` will exit 6 until that changes",
                segment.id, segment.name, tiering.feature
            )
        })
        .collect()
}

/// Whether `v` meets a tier rule `feature >= t` or `feature > 0`.
fn matches(rule: &str, v: f64) -> bool {
    if let Some((_, t)) = rule.split_once(" >= ") {
        return t.parse::<f64>().is_ok_and(|t| v >= t);
    }
    v > 0.0
}

/// Write `text` to `dir`'s [`FILE_NAME`], creating `dir`: written whole to a temporary file
/// beside it, then given its name only if no file has it. A failed write (a full disk, a file
/// size limit) thus leaves no cut-off pipeline that would still validate and block a rerun, and
/// an existing pipeline is never replaced (an output error, exit 5). The path written.
pub fn write_new(dir: &Path, text: &str) -> Result<PathBuf> {
    use std::io::Write;
    let destination = dir.join(FILE_NAME);
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let mut staged = tempfile::Builder::new()
        .prefix(".segments.yaml.")
        .tempfile_in(dir)
        .map_err(|e| Error::output(dir, e))?;
    staged
        .write_all(text.as_bytes())
        .and_then(|()| staged.as_file().sync_all())
        .map_err(|e| Error::output(&destination, e))?;
    // On an error the temporary file is removed when `staged` (or the error's file) drops.
    staged
        .persist_noclobber(&destination)
        .map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => already_exists(&destination),
            _ => Error::output(&destination, e.error),
        })?;
    Ok(destination)
}

/// The error for a pipeline that exists already: init never overwrites it.
pub fn already_exists(destination: &Path) -> Error {
    Error::Output {
        message: format!(
            "{} already exists; init never overwrites it",
            destination.display()
        ),
        help: Some("choose another folder, or move the file away first".into()),
    }
}

/// `path` absolute, with `.` and `..` resolved by name (the folder may not exist yet).
fn normalised(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).map_err(|e| Error::output(path, e))?;
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The pipeline's name from its folder: `Q4 segments` → `q4_segments`.
fn pipeline_name(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name = String::new();
    for c in base.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name: String = name.trim_matches('_').chars().take(60).collect();
    match name.chars().next() {
        Some(c) if c.is_ascii_lowercase() => name,
        Some(_) => format!("s_{name}"),
        None => "segments".into(),
    }
}

/// Where editors find the pipeline's JSON Schema: `schemas/pipeline.schema.json` of the nearest
/// folder above `dir` that has one (a segflow checkout), relative to `dir`.
fn schema_reference(dir: &Path) -> Option<String> {
    dir.ancestors()
        .map(|folder| folder.join("schemas").join("pipeline.schema.json"))
        .find(|candidate| candidate.is_file())
        .map(|found| render::relative(&found, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_folders() {
        assert_eq!(pipeline_name(Path::new("/x/Q4 segments")), "q4_segments");
        assert_eq!(pipeline_name(Path::new("/x/2026")), "s_2026");
        assert_eq!(pipeline_name(Path::new("/")), "segments");
    }

    #[test]
    fn folders_normalised_by_name() {
        let path = normalised(Path::new("/a/b/../c/./d")).expect("absolute");
        assert_eq!(path, PathBuf::from("/a/c/d"));
    }

    #[test]
    fn a_new_pipeline_is_written_whole_and_nothing_else_stays() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let folder = dir.path().join("seg");
        let path = write_new(&folder, "version: 1\n").expect("written");
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some("version: 1\n")
        );
        let names: Vec<_> = std::fs::read_dir(&folder)
            .expect("folder")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn an_existing_pipeline_is_kept_and_no_temporary_file_stays() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "mine\n").expect("write");
        let error = write_new(dir.path(), "version: 1\n").expect_err("refused");
        assert!(error.to_string().contains("already exists"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some("mine\n")
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("folder").count(), 1);
    }

    #[test]
    fn tier_rules_read_back() {
        assert!(matches("active_days_90 >= 12", 12.0));
        assert!(!matches("active_days_90 >= 12", 11.0));
        assert!(matches("active_days_90 > 0", 1.0));
    }
}
