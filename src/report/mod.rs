//! Writing a run's outputs: machine-readable files (JSON, CSV, manifest) and the Markdown and
//! HTML reports rendered from templates. Numbers arrive computed; this module only presents them.

mod escape;
pub use escape::strip_controls;
mod history;
mod output;
pub mod pdf;
mod provenance;
mod templates;
mod views;

use std::borrow::Cow;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use history::{write_history, write_history_manifest};
pub use output::{Interrupt, StagedOutput, interrupt};
pub use pdf::print_to_pdf;
pub use provenance::{GitState, git_state};
pub use templates::{DEFAULT_TEMPLATES, Templates};
pub use views::LintView;

use crate::analysis::compare::Comparison;
use crate::analysis::criteria::Check;
use crate::analysis::{Analysis, SegmentProfile};
use crate::engine::RunResults;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::model::PersonaSpec;
use crate::run_folder::{
    CRITERIA, PROFILE, PipelineInfo, RunView, SEGMENTS, SegmentView, SegmentsDocument,
};

/// What a reviewer needs to reproduce a run, written as `manifest.json` (and read back by
/// `--replace`, which replaces only the files its `outputs` list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// segflow's version.
    pub segflow_version: String,
    /// The pipeline file as given on the command line.
    pub pipeline_file: String,
    /// SHA-256 of the pipeline file.
    pub pipeline_sha256: String,
    /// The git commit of the pipeline's repository and whether it had uncommitted changes; null
    /// outside a git work tree.
    pub git: Option<GitState>,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// As-of date in force.
    pub as_of: String,
    /// Sources as read: location, rows, content hash.
    pub sources: Vec<crate::engine::SourceSummary>,
    /// When the run started (UTC, RFC 3339). Run metadata: differs between identical runs.
    pub started_at: String,
    /// Seconds per stage. Run metadata: differs between identical runs.
    pub timings: Vec<StageTiming>,
    /// Files written into the run folder.
    pub outputs: Vec<String>,
}

/// Seconds one stage took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage.
    pub stage: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The template context and JSON document describing a run's segments.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData<'a> {
    /// segflow's version.
    pub segflow_version: &'a str,
    /// The pipeline: name, title, description.
    pub pipeline: PipelineInfo<'a>,
    /// Everything measured.
    #[serde(flatten)]
    pub results: RunView<'a>,
    /// Criteria, scoring and profiles.
    #[serde(flatten)]
    pub analysis: &'a Analysis,
    /// Personas with their segment's measured profile.
    pub personas: Vec<PersonaView<'a>>,
    /// The comparison with an earlier run, when asked for.
    pub comparison: Option<&'a Comparison>,
    /// Lint warnings about the segmentation.
    pub lints: Vec<LintView>,
}

/// A persona beside the data behind it.
#[derive(Debug, Clone, Serialize)]
pub struct PersonaView<'a> {
    /// The persona as declared.
    pub persona: &'a PersonaSpec,
    /// Its segment's size and statistics.
    pub segment: SegmentView<'a>,
    /// What distinguishes the segment.
    pub profile: Option<&'a SegmentProfile>,
    /// The criteria checks about this segment.
    pub checks: Vec<CheckView<'a>>,
}

/// A criterion check with its criterion's name.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView<'a> {
    /// The criterion.
    pub criterion: &'a str,
    /// The check.
    #[serde(flatten)]
    pub check: &'a Check,
}

impl<'a> ReportData<'a> {
    /// `segments.json` of this run.
    pub fn segments_document(&self) -> SegmentsDocument<'_> {
        SegmentsDocument {
            segflow_version: Cow::Borrowed(self.segflow_version),
            pipeline: self.pipeline.clone(),
            results: self.results.clone(),
            profiles: Cow::Borrowed(&self.analysis.profiles),
        }
    }

    /// Gather the report context of a run.
    pub fn new(pipeline: &'a Pipeline, results: &'a RunResults, analysis: &'a Analysis) -> Self {
        let view = RunView::new(&pipeline.spec.segments, results);
        let personas = pipeline
            .spec
            .personas
            .iter()
            .filter_map(|persona| {
                let segment = view
                    .segments
                    .iter()
                    .find(|s| s.id == persona.segment)?
                    .clone();
                let checks = analysis
                    .criteria
                    .criteria
                    .iter()
                    .flat_map(|c| {
                        c.checks.iter().map(move |check| CheckView {
                            criterion: &c.criterion,
                            check,
                        })
                    })
                    .filter(|check| check.check.subject == segment.id)
                    .collect();
                Some(PersonaView {
                    persona,
                    profile: analysis.profiles.iter().find(|p| p.segment == segment.id),
                    segment,
                    checks,
                })
            })
            .collect();
        ReportData {
            analysis,
            personas,
            comparison: None,
            lints: Vec::new(),
            segflow_version: env!("CARGO_PKG_VERSION"),
            pipeline: PipelineInfo::of(pipeline),
            results: view,
        }
    }
}

/// Write the machine-readable files into `dir`: segments.json, criteria.json, scoring.json (when
/// scoring is declared) and segments.csv. Returns the files written.
pub fn write_data(dir: &Path, data: &ReportData<'_>) -> Result<Vec<String>> {
    let mut written = vec![SEGMENTS.to_string(), CRITERIA.to_string()];
    write_json(&dir.join(SEGMENTS), &data.segments_document())?;
    write_json(&dir.join(CRITERIA), &data.analysis.criteria)?;
    if let Some(scoring) = &data.analysis.scoring {
        write_json(&dir.join("scoring.json"), scoring)?;
        written.push("scoring.json".into());
    }
    write_segments_csv(&dir.join("segments.csv"), &data.results)?;
    written.push("segments.csv".into());
    write_json(&dir.join("lint.json"), &data.lints)?;
    written.push("lint.json".into());
    if let Some(comparison) = data.comparison {
        write_json(&dir.join("comparison.json"), comparison)?;
        written.push("comparison.json".into());
    }
    Ok(written)
}

/// Render the Markdown and HTML reports and one document per persona into `dir`. Returns the
/// files written.
pub fn write_reports(
    dir: &Path,
    data: &ReportData<'_>,
    templates: &Templates,
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for (template, file) in [
        ("report.md.j2", "report.md"),
        ("report.html.j2", "report.html"),
    ] {
        let text = templates.render(template, data)?;
        write_file(&dir.join(file), text.as_bytes())?;
        written.push(file.to_string());
    }
    if !data.personas.is_empty() {
        let folder = dir.join("personas");
        std::fs::create_dir(&folder).map_err(|e| Error::output(&folder, e))?;
        for view in &data.personas {
            let context = minijinja::context! {
                p => view,
                pipeline => &data.pipeline,
                as_of => data.results.as_of,
            };
            let text = templates.render("persona.md.j2", &context)?;
            // Segment ids match NAME_PATTERN, so they are safe file names.
            let name = format!("personas/{}.md", view.segment.id);
            write_file(&dir.join(&name), text.as_bytes())?;
            written.push(name);
        }
    }
    Ok(written)
}

/// Write the engine's profile (physical plans with metrics) into `dir`.
pub fn write_profile(dir: &Path, profile: &str) -> Result<()> {
    write_file(&dir.join(PROFILE), profile.as_bytes())
}

/// Write `manifest.json` into `dir`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    write_json(&dir.join("manifest.json"), manifest)
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
        writer.write_record(&row).map_err(fail)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::Internal(format!("segments.csv: {e}")))?;
    write_document(path, &bytes)
}
