//! Writing a run's outputs: machine-readable files (JSON, CSV, manifest) and the Markdown and
//! HTML reports rendered from templates. Numbers arrive computed; this module only presents them.

mod context;
mod escape;
pub mod exports;
pub use escape::strip_controls;
mod history;
mod impact;
mod output;
pub mod pdf;
mod provenance;
mod reference;
mod suppression;
mod templates;

use std::path::Path;

use serde::Serialize;

pub use context::ReportContext;
pub use history::{write_history, write_history_manifest};
pub use impact::{write_impact, write_impact_manifest};
pub use output::{FolderKind, Interrupt, StagedFile, StagedOutput, interrupt};
pub use pdf::print_to_pdf;
pub use provenance::{GitState, git_state};
pub use reference::{context_reference, context_schema};
pub use templates::{DEFAULT_TEMPLATES, Templates};

use crate::analysis::compare::Comparison;
use crate::analysis::{CriteriaReport, ScoringReport};
use crate::error::{Error, Result};
use crate::run_folder::{
    CHARTS, COHORTS, COMPARISON, CRITERIA, CohortsDocument, LINT, LintRecord, MANIFEST, Manifest,
    PERSONAS, PROFILE, REPORT_CONTEXT, ReportManifest, RunDocuments, RunView, SCORING, SEGMENTS,
    SEGMENTS_CSV, SUPPRESSION, SegmentsDocument,
};

/// The documents a finished run writes before its reports, borrowed from memory.
#[derive(Debug, Clone)]
pub struct NewDocuments<'a> {
    /// `segments.json`.
    pub segments: SegmentsDocument<'a>,
    /// `criteria.json`.
    pub criteria: &'a CriteriaReport,
    /// `scoring.json`.
    pub scoring: Option<&'a ScoringReport>,
    /// `lint.json`.
    pub lints: &'a [LintRecord],
    /// `comparison.json`.
    pub comparison: Option<&'a Comparison>,
    /// `cohorts.json`.
    pub cohorts: Option<&'a CohortsDocument>,
}

/// Write the machine-readable files into `dir`: segments.json, criteria.json, scoring.json (when
/// scoring is declared), segments.csv, lint.json, comparison.json (when compared) and
/// cohorts.json (when cohorts are declared). Returns
/// the files written.
pub fn write_data(dir: &Path, docs: &NewDocuments<'_>) -> Result<Vec<String>> {
    let mut written = vec![SEGMENTS.to_string(), CRITERIA.to_string()];
    write_json(&dir.join(SEGMENTS), &docs.segments)?;
    write_json(&dir.join(CRITERIA), docs.criteria)?;
    if let Some(scoring) = docs.scoring {
        write_json(&dir.join(SCORING), scoring)?;
        written.push(SCORING.into());
    }
    write_segments_csv(&dir.join(SEGMENTS_CSV), &docs.segments.results)?;
    written.push(SEGMENTS_CSV.into());
    write_json(&dir.join(LINT), &docs.lints)?;
    written.push(LINT.into());
    if let Some(comparison) = docs.comparison {
        write_json(&dir.join(COMPARISON), comparison)?;
        written.push(COMPARISON.into());
    }
    if let Some(cohorts) = docs.cohorts {
        write_json(&dir.join(COHORTS), cohorts)?;
        written.push(COHORTS.into());
    }
    Ok(written)
}

/// Render the Markdown and HTML reports and one document per persona into `dir`, from the run
/// folder's documents only. Returns the files written.
pub fn write_reports(
    dir: &Path,
    docs: &RunDocuments,
    templates: &Templates,
) -> Result<Vec<String>> {
    let data = ReportContext::new(docs);
    write_json(&dir.join(SUPPRESSION), &data.suppression)?;
    let mut written = vec![SUPPRESSION.to_string()];
    written.extend(write_charts(dir, &data, templates)?);
    for (template, file) in [
        ("report.md.j2", "report.md"),
        ("report.html.j2", "report.html"),
    ] {
        let text = templates.render(template, &data)?;
        write_file(&dir.join(file), text.as_bytes())?;
        written.push(file.to_string());
    }
    if !data.personas.is_empty() {
        let folder = dir.join(PERSONAS);
        std::fs::create_dir(&folder).map_err(|e| Error::output(&folder, e))?;
        for view in &data.personas {
            let context = minijinja::context! {
                p => view,
                pipeline => &data.pipeline,
                as_of => &data.as_of,
                features => &data.features,
                value_feature => &data.value_feature,
                suppression => &data.suppression,
            };
            let text = templates.render("persona.md.j2", &context)?;
            // Segment ids match NAME_PATTERN, so they are safe file names.
            let name = format!("{PERSONAS}/{}.md", view.segment.id);
            write_file(&dir.join(&name), text.as_bytes())?;
            written.push(name);
        }
    }
    Ok(written)
}

/// The charts as SVG files in `charts/`, for the Markdown report to link (the HTML report has
/// them inline, from the same templates). Each is drawn only when there is something to draw.
fn write_charts(dir: &Path, data: &ReportContext, templates: &Templates) -> Result<Vec<String>> {
    let charts = [
        ("sizes", !data.segments.is_empty()),
        (
            "heatmap",
            !data.heatmap.rows.is_empty() && !data.heatmap.features.is_empty(),
        ),
        ("matrix", data.matrix.is_some()),
        ("migration", data.comparison.is_some()),
        ("concentration", !data.concentration.is_empty()),
        ("cohorts", data.cohorts.is_some()),
    ];
    let mut written = Vec::new();
    for (chart, drawn) in charts {
        if !drawn {
            continue;
        }
        if written.is_empty() {
            let folder = dir.join(CHARTS);
            std::fs::create_dir(&folder).map_err(|e| Error::output(&folder, e))?;
        }
        let text = templates.render(&format!("chart-{chart}.svg.j2"), data)?;
        let name = format!("{CHARTS}/{chart}.svg");
        write_file(&dir.join(&name), text.as_bytes())?;
        written.push(name);
    }
    Ok(written)
}

/// Write the engine's profile (physical plans with metrics) into `dir`.
pub fn write_profile(dir: &Path, profile: &str) -> Result<()> {
    write_file(&dir.join(PROFILE), profile.as_bytes())
}

/// Write the template context as `report-context.json` into `dir`, for template authors.
pub fn write_context(dir: &Path, docs: &RunDocuments) -> Result<String> {
    write_json(&dir.join(REPORT_CONTEXT), &ReportContext::new(docs))?;
    Ok(REPORT_CONTEXT.to_string())
}

/// Write the `manifest.json` of a folder of re-rendered reports into `dir`.
pub fn write_report_manifest(dir: &Path, manifest: &ReportManifest) -> Result<()> {
    write_json(&dir.join(MANIFEST), manifest)
}

/// Write `manifest.json` into `dir`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    write_json(&dir.join(MANIFEST), manifest)
}

/// Every text file of a run folder for people (reports, personas, the profile) is written here,
/// with interpolated secrets masked.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, crate::secrets::redact_bytes(bytes)).map_err(|e| Error::output(path, e))
}

/// Typed documents (JSON, CSV) are written as they are: they hold data values and sources'
/// locations as written, never a resolved `${VAR}`, and masking a value that happens to equal a
/// variable's (`2026`) would corrupt what `diff` and `history` read back.
fn write_document(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::output(path, e))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))?;
    text.push('\n');
    write_document(path, text.as_bytes())
}

/// `segments.csv`, rendered in memory and written through `write_file` so secrets are masked.
/// Text cells are neutralised against spreadsheet formulas; numbers are written as they are.
fn write_segments_csv(path: &Path, results: &RunView<'_>) -> Result<()> {
    let fail = |e: csv::Error| Error::Internal(format!("segments.csv: {e}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "segment_id".to_string(),
        "segment_name".to_string(),
        "customers".to_string(),
        "share".to_string(),
    ];
    for feature in results.features.iter() {
        for stat in ["non_null", "mean", "median", "min", "max"] {
            header.push(format!("{}__{stat}", feature.name));
        }
    }
    // Category features: each segment's most common value and its share of the segment (the
    // whole mix is in segments.json).
    for mix in results.categories.iter() {
        header.push(format!("{}__top", mix.feature));
        header.push(format!("{}__top_share", mix.feature));
    }
    writer.write_record(&header).map_err(fail)?;
    let cell = |v: &Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => escape::csv_text(s),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for segment in &results.segments {
        let mut row = vec![
            escape::csv_text(&segment.id),
            escape::csv_text(&segment.name),
            segment.customers.to_string(),
            segment.share.to_string(),
        ];
        for feature in results.features.iter() {
            match segment.features.iter().find(|s| s.feature == feature.name) {
                Some(s) => row.extend([
                    s.non_null.to_string(),
                    number(s.mean),
                    number(s.median),
                    cell(&s.min),
                    cell(&s.max),
                ]),
                None => row.extend([
                    "0".to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]),
            }
        }
        for mix in results.categories.iter() {
            let group = mix
                .segments
                .iter()
                .find(|g| g.segment.as_deref() == Some(&*segment.id));
            let top = group.and_then(|g| {
                let (i, n) = g
                    .counts
                    .iter()
                    .enumerate()
                    .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))?;
                (*n > 0).then(|| (mix.values[i].clone(), *n as f64 / g.total() as f64))
            });
            match top {
                Some((value, share)) => row.extend([
                    escape::csv_text(value.as_deref().unwrap_or("")),
                    share.to_string(),
                ]),
                None => row.extend([String::new(), String::new()]),
            }
        }
        writer.write_record(&row).map_err(fail)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::Internal(format!("segments.csv: {e}")))?;
    write_document(path, &bytes)
}
