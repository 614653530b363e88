//! The run folder's format: the names of its files and the documents written into them, with the
//! same types used to write a run and to read a finished one back (`segflow diff`, `run
//! --compare-to`). A run folder that is missing, incomplete or corrupt is an error (exit 10),
//! never read as "nothing changed".

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::analysis::ScoringReport;
use crate::analysis::compare::{Comparison, RunSummary, SegmentSummary};
use crate::analysis::{CriteriaReport, SegmentProfile};
use crate::engine::compare::{Assignments, Binning, RunMeasures};
use crate::engine::measures::{Matrix, QuantileCuts, RuleOverlap};
use crate::engine::profiles::{CategoryMix, Concentration};
use crate::engine::{
    Exclusion, FeatureInfo, FeatureStats, IcpMeasured, RunResults, SegmentResult, SourceSummary,
};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::model::{IcpSpec, PersonaSpec, SegmentSpec};

mod cohorts;
mod documents;
pub mod earlier;
pub mod history;
pub mod impact;

pub use cohorts::{COHORTS, CohortsDocument};
pub use documents::{
    ExportRecord, GitState, LintRecord, Manifest, REPORT_KIND, ReportManifest, RunInfo, StageTiming,
};

/// One row per customer: key, segment, features.
pub const ASSIGNMENTS: &str = "assignments.parquet";
/// Segments, their statistics and profiles ([`SegmentsDocument`]).
pub const SEGMENTS: &str = "segments.json";
/// The per-segment figures as one flat table.
pub const SEGMENTS_CSV: &str = "segments.csv";
/// The validation criteria ([`CriteriaReport`]).
pub const CRITERIA: &str = "criteria.json";
/// The prioritisation, when scoring is declared.
pub const SCORING: &str = "scoring.json";
/// The lint warnings of the run ([`LintRecord`]).
pub const LINT: &str = "lint.json";
/// The comparison with an earlier run, with `--compare-to`.
pub const COMPARISON: &str = "comparison.json";
/// Provenance and timings.
pub const MANIFEST: &str = "manifest.json";
/// With `--profile`: physical plans with metrics.
pub const PROFILE: &str = "profile.txt";
/// The template context, on request (`--context`).
pub const REPORT_CONTEXT: &str = "report-context.json";
/// What small-cell suppression masked in the stakeholder documents.
pub const SUPPRESSION: &str = "suppression.json";
/// The charts as SVG files, linked from the Markdown report.
pub const CHARTS: &str = "charts";
/// One document per persona.
pub const PERSONAS: &str = "personas";

/// Pipeline facts shown in reports and recorded in `segments.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineInfo<'a> {
    /// Machine name.
    pub name: Cow<'a, str>,
    /// Title.
    pub title: Cow<'a, str>,
    /// Description.
    pub description: Option<Cow<'a, str>>,
    /// Entity source name.
    pub entity: Cow<'a, str>,
    /// Entity key column.
    pub key: Cow<'a, str>,
    /// The personas as declared (absent from run folders written before reports were
    /// re-rendered from them).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub personas: Cow<'a, [PersonaSpec]>,
    /// Stakeholder documents mask figures about fewer customers than this (0 or 1: none).
    #[serde(default = "default_min_cell")]
    pub min_cell: u64,
    /// The ideal customer profile as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icp: Option<Cow<'a, IcpSpec>>,
}

/// The smallest group stakeholder documents show figures for, unless a pipeline says otherwise.
pub const DEFAULT_MIN_CELL: u64 = 10;

fn default_min_cell() -> u64 {
    DEFAULT_MIN_CELL
}

impl<'a> PipelineInfo<'a> {
    /// The facts of `pipeline`.
    pub fn of(pipeline: &'a Pipeline) -> Self {
        PipelineInfo {
            name: Cow::Borrowed(&pipeline.spec.name),
            title: Cow::Borrowed(pipeline.title()),
            description: pipeline.spec.description.as_deref().map(Cow::Borrowed),
            entity: Cow::Owned(pipeline.entity.describe()),
            key: Cow::Borrowed(&pipeline.spec.entity.key),
            personas: Cow::Borrowed(&pipeline.spec.personas),
            min_cell: pipeline.spec.reports.min_cell,
            icp: pipeline.spec.icp.as_ref().map(Cow::Borrowed),
        }
    }
}

/// A segment: its declaration beside its measurements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentView<'a> {
    /// Segment id.
    pub id: Cow<'a, str>,
    /// Display name.
    pub name: Cow<'a, str>,
    /// Description, if declared.
    pub description: Option<Cow<'a, str>>,
    /// Owner, if declared.
    pub owner: Option<Cow<'a, str>>,
    /// The rule, `None` for the catch-all.
    pub when: Option<Cow<'a, str>>,
    /// Customers assigned.
    pub customers: u64,
    /// Share of all customers.
    pub share: f64,
    /// Per-feature statistics within the segment.
    pub features: Cow<'a, [FeatureStats]>,
    /// Customers reachable through the accessible criterion's condition, when declared.
    pub reachable: Option<u64>,
    /// Declared actions.
    pub actions: Cow<'a, [String]>,
    /// Deprioritised on purpose.
    pub negative: bool,
    /// Why, when negative.
    pub negative_reason: Option<Cow<'a, str>>,
}

impl<'a> SegmentView<'a> {
    /// Join a declaration with its measurement.
    pub fn new(declared: &'a SegmentSpec, measured: &'a SegmentResult) -> Self {
        SegmentView {
            id: Cow::Borrowed(&declared.id),
            name: Cow::Borrowed(&declared.name),
            description: declared.description.as_deref().map(Cow::Borrowed),
            owner: declared.owner.as_deref().map(Cow::Borrowed),
            when: declared.when.as_deref().map(Cow::Borrowed),
            customers: measured.customers,
            share: measured.share,
            features: Cow::Borrowed(&measured.features),
            reachable: measured.reachable,
            actions: Cow::Borrowed(&declared.actions),
            negative: declared.negative,
            negative_reason: declared.negative_reason.as_deref().map(Cow::Borrowed),
        }
    }
}

/// Everything a run measured, with segments joined to their declarations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunView<'a> {
    /// The as-of date in force.
    pub as_of: NaiveDate,
    /// Customers as of the as-of date.
    pub customers: u64,
    /// Customers the sources know of that the as-of date leaves out, by reason.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub exclusions: Cow<'a, [Exclusion]>,
    /// Customers no segment rule matched.
    pub unassigned: u64,
    /// Share of customers that are unassigned.
    pub unassigned_share: f64,
    /// Every declared segment, in rule order.
    pub segments: Vec<SegmentView<'a>>,
    /// Feature statistics over all customers.
    pub overall: Cow<'a, [FeatureStats]>,
    /// The features with their computed types.
    pub features: Cow<'a, [FeatureInfo]>,
    /// The sources as read.
    pub sources: Cow<'a, [SourceSummary]>,
    /// Reachable customers among the unassigned.
    pub unassigned_reachable: Option<u64>,
    /// Cut points used by quantile features.
    pub quantiles: Cow<'a, [QuantileCuts]>,
    /// The 2x2 value x engagement matrix, when declared.
    pub matrix: Option<Cow<'a, Matrix>>,
    /// Overlap between segment rules.
    pub rule_overlap: Cow<'a, [RuleOverlap]>,
    /// Per category feature, customers per value over all and per segment (runs of segflow
    /// before category mixes have none).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub categories: Cow<'a, [CategoryMix]>,
    /// Per declared value or cost feature, its concentration over customers.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub concentration: Cow<'a, [Concentration]>,
    /// The ideal customer profile beside everyone else, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icp: Option<Cow<'a, IcpMeasured>>,
}

impl<'a> RunView<'a> {
    /// Join `results` with the declared `segments` (in rule order; the engine measures every one).
    pub fn new(segments: &'a [SegmentSpec], results: &'a RunResults) -> Self {
        RunView {
            as_of: results.as_of,
            customers: results.customers,
            exclusions: Cow::Borrowed(&results.exclusions),
            unassigned: results.unassigned,
            unassigned_share: results.unassigned_share,
            segments: segments
                .iter()
                .filter_map(|declared| {
                    results
                        .segment(&declared.id)
                        .map(|measured| SegmentView::new(declared, measured))
                })
                .collect(),
            overall: Cow::Borrowed(&results.overall),
            features: Cow::Borrowed(&results.features),
            sources: Cow::Borrowed(&results.sources),
            unassigned_reachable: results.unassigned_reachable,
            quantiles: Cow::Borrowed(&results.quantiles),
            matrix: results.matrix.as_ref().map(Cow::Borrowed),
            rule_overlap: Cow::Borrowed(&results.rule_overlap),
            categories: Cow::Borrowed(&results.categories),
            concentration: Cow::Borrowed(&results.concentration),
            icp: results.icp.as_ref().map(Cow::Borrowed),
        }
    }
}

/// For `skip_serializing_if`, which hands over a reference to the field itself.
#[allow(clippy::ptr_arg)]
fn is_empty<T: Clone>(items: &Cow<'_, [T]>) -> bool {
    items.is_empty()
}

/// `segments.json`: the segments, their statistics and profiles; criteria and scoring have files
/// of their own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentsDocument<'a> {
    /// segflow's version that wrote it.
    pub segflow_version: Cow<'a, str>,
    /// The pipeline.
    pub pipeline: PipelineInfo<'a>,
    /// What the run measured.
    #[serde(flatten)]
    pub results: RunView<'a>,
    /// What distinguishes each segment.
    pub profiles: Cow<'a, [SegmentProfile]>,
}

impl<'a> SegmentsDocument<'a> {
    /// The document of a run just measured.
    pub fn new(
        pipeline: &'a Pipeline,
        results: &'a RunResults,
        profiles: &'a [SegmentProfile],
    ) -> Self {
        SegmentsDocument {
            segflow_version: Cow::Borrowed(env!("CARGO_PKG_VERSION")),
            pipeline: PipelineInfo::of(pipeline),
            results: RunView::new(&pipeline.spec.segments, results),
            profiles: Cow::Borrowed(profiles),
        }
    }
}

/// A run, as a comparison needs it: where its assignments are and what its documents say.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// The run folder, as named to the user.
    pub folder: String,
    /// Its assignments file.
    pub assignments: PathBuf,
    /// Its `segments.json`.
    pub segments: SegmentsDocument<'a>,
    /// Its `criteria.json`.
    pub criteria: Cow<'a, CriteriaReport>,
}

impl Run<'_> {
    /// Where the run's assignments are and which column holds the customer key.
    pub fn keyed_assignments(&self) -> Assignments {
        Assignments {
            path: self.assignments.clone(),
            key: self.segments.pipeline.key.to_string(),
        }
    }
}

/// Everything a run folder says that its reports show: what `run` renders from and `segflow
/// report` reads back.
#[derive(Debug, Clone)]
pub struct RunDocuments {
    /// `manifest.json`, without the timings and outputs it gains after rendering.
    pub run: RunInfo,
    /// `segments.json`.
    pub segments: SegmentsDocument<'static>,
    /// `criteria.json`.
    pub criteria: CriteriaReport,
    /// `scoring.json`, when scoring is declared.
    pub scoring: Option<ScoringReport>,
    /// `lint.json`.
    pub lints: Vec<LintRecord>,
    /// `comparison.json`, when compared with an earlier run.
    pub comparison: Option<Comparison>,
    /// `cohorts.json`, when cohorts are declared.
    pub cohorts: Option<CohortsDocument>,
}

/// Read the documents of the finished run folder at `path` (or of a staging folder whose
/// manifest is not written yet, given `run` in its place).
pub fn read_documents(path: &Path, run: Option<RunInfo>) -> Result<RunDocuments> {
    let checked = read(path)?;
    let folder = path.display().to_string();
    let broken = |message: String| Error::RunFolder {
        folder: folder.clone(),
        message,
    };
    let optional = |name: &str| -> Result<Option<String>> {
        let file = path.join(name);
        if !file.exists() {
            return Ok(None);
        }
        read_regular(&file)
            .map(Some)
            .map_err(|e| broken(format!("cannot read {name}: {e}")))
    };
    fn parse<T: serde::de::DeserializeOwned>(
        text: &str,
        name: &str,
        broken: &dyn Fn(String) -> Error,
    ) -> Result<T> {
        serde_json::from_str(text)
            .map_err(|e| broken(format!("{name} is not a segflow document: {e}")))
    }
    let run = match run {
        Some(run) => run,
        None => {
            let text =
                optional(MANIFEST)?.ok_or_else(|| broken(format!("{MANIFEST} is missing")))?;
            let manifest = parse::<Manifest>(&text, MANIFEST, &broken)?;
            // What the run wrote must still be there: a report without its prioritisation or
            // comparison would read as if there had been none.
            for name in [SCORING, COMPARISON, LINT, COHORTS] {
                if manifest.outputs.iter().any(|o| o == name) && !path.join(name).exists() {
                    return Err(broken(format!(
                        "{name} is missing, and its {MANIFEST} lists it"
                    )));
                }
            }
            manifest.run
        }
    };
    let lints = match optional(LINT)? {
        Some(text) => parse(&text, LINT, &broken)?,
        None => Vec::new(),
    };
    let scoring = optional(SCORING)?
        .map(|text| parse(&text, SCORING, &broken))
        .transpose()?;
    let comparison = optional(COMPARISON)?
        .map(|text| parse(&text, COMPARISON, &broken))
        .transpose()?;
    let cohorts = optional(COHORTS)?
        .map(|text| parse(&text, COHORTS, &broken))
        .transpose()?;
    Ok(RunDocuments {
        run,
        cohorts,
        segments: checked.segments,
        criteria: checked.criteria.into_owned(),
        scoring,
        lints,
        comparison,
    })
}

/// Read the finished run folder at `path`.
pub fn read(path: &Path) -> Result<Run<'static>> {
    let folder = path.display().to_string();
    let broken = |message: String| Error::RunFolder {
        folder: folder.clone(),
        message,
    };
    if !path.is_dir() {
        return Err(broken(if path.exists() {
            "is not a folder".into()
        } else {
            "does not exist".into()
        }));
    }
    let read = |name: &str| -> Result<String> {
        read_regular(&path.join(name)).map_err(|e| broken(format!("cannot read {name}: {e}")))
    };
    let segments: SegmentsDocument<'static> = serde_json::from_str(&read(SEGMENTS)?)
        .map_err(|e| broken(format!("{SEGMENTS} is not a segflow document: {e}")))?;
    // Every customer is in one segment or unassigned: counts that do not add up are an edited or
    // damaged document, and would overflow or mislead the sums of `history` and `diff`.
    let results = &segments.results;
    let counted = results
        .segments
        .iter()
        .try_fold(results.unassigned, |sum, s| sum.checked_add(s.customers));
    if counted != Some(results.customers) {
        return Err(broken(format!(
            "{SEGMENTS} does not add up: its segments and unassigned customers do not make its {} customers",
            results.customers
        )));
    }
    let criteria: CriteriaReport = serde_json::from_str(&read(CRITERIA)?)
        .map_err(|e| broken(format!("{CRITERIA} is not a segflow document: {e}")))?;
    let assignments = path.join(ASSIGNMENTS);
    if !assignments.exists() {
        return Err(broken(format!("{ASSIGNMENTS} is missing")));
    }
    // The footer is read now, so a damaged or foreign file is this folder's fault (exit 10),
    // not a data error found halfway through a comparison.
    let columns = parquet_columns(&assignments).map_err(|e| {
        broken(format!(
            "{ASSIGNMENTS} is not a Parquet file segflow wrote: {e}"
        ))
    })?;
    let needed = [segments.pipeline.key.as_ref(), "segment"]
        .into_iter()
        .chain(segments.results.features.iter().map(|f| f.name.as_str()));
    for column in needed {
        if !columns.iter().any(|c| c == column) {
            return Err(broken(format!(
                "{ASSIGNMENTS} has no column `{column}`, which {SEGMENTS} lists"
            )));
        }
    }
    Ok(Run {
        folder,
        assignments,
        segments,
        criteria: Cow::Owned(criteria),
    })
}

/// Open `path` for reading only if it is a regular file (after symlinks): a FIFO would block
/// the read forever and a device such as `/dev/zero` never end it. Opened without blocking, so
/// a FIFO is found by its type, not by waiting on it.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    Ok(file)
}

/// The text of `path`, only if it is a regular file ([`open_regular`]).
pub(crate) fn read_regular(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    open_regular(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The column names of a Parquet file, from its footer.
fn parquet_columns(path: &Path) -> std::result::Result<Vec<String>, String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = open_regular(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect())
}

/// What a comparison reads of one run.
fn summary(run: &Run<'_>) -> RunSummary {
    let results = &run.segments.results;
    let mut checks = BTreeMap::new();
    // The stable criterion judges a comparison, not the run: its status is no change of the run.
    for criterion in run
        .criteria
        .criteria
        .iter()
        .filter(|c| c.criterion != "stable")
    {
        for check in &criterion.checks {
            checks.insert(
                (
                    criterion.criterion.to_string(),
                    check.subject.clone(),
                    check.measure.clone(),
                ),
                check.status.to_string(),
            );
        }
    }
    RunSummary {
        folder: run.folder.clone(),
        pipeline: run.segments.pipeline.name.to_string(),
        as_of: results.as_of.to_string(),
        customers: results.customers,
        unassigned: results.unassigned,
        segments: results
            .segments
            .iter()
            .map(|s| SegmentSummary {
                id: s.id.to_string(),
                name: s.name.to_string(),
                customers: s.customers,
                share: s.share,
                features: s.features.to_vec(),
            })
            .collect(),
        features: results
            .features
            .iter()
            .map(|f| (f.name.clone(), f.data_type.clone()))
            .collect(),
        checks,
    }
}

/// Compare the earlier run `old` with the later run `new`, with queries within `resources`.
pub async fn compare(
    old: &Run<'_>,
    new: &Run<'_>,
    resources: &crate::engine::Resources,
) -> Result<Comparison> {
    compare_with(old, new, resources, true).await
}

/// [`compare`] without the feature drift (no bins, no PSI): who moved, sizes and criteria only,
/// for `segflow impact`, which shows feature distributions its own way.
pub async fn compare_segments(
    old: &Run<'_>,
    new: &Run<'_>,
    resources: &crate::engine::Resources,
) -> Result<Comparison> {
    compare_with(old, new, resources, false).await
}

/// What changed from `old` to `new`, from measures taken already (without drift).
pub fn compare_measured(old: &Run<'_>, new: &Run<'_>, measures: &RunMeasures) -> Comparison {
    crate::analysis::compare::compare(&summary(old), &summary(new), measures)
}

async fn compare_with(
    old: &Run<'_>,
    new: &Run<'_>,
    resources: &crate::engine::Resources,
    drift: bool,
) -> Result<Comparison> {
    let (old_summary, new_summary) = (summary(old), summary(new));
    let binned_in_both: Vec<(String, Binning)> = new_summary
        .features
        .iter()
        .filter_map(|(name, data_type)| {
            let binning = Binning::of(data_type)?;
            old_summary
                .features
                .iter()
                .any(|(n, t)| n == name && Binning::of(t) == Some(binning))
                .then(|| (name.clone(), binning))
        })
        .filter(|_| drift)
        .collect();
    let measures = crate::engine::compare::measure(
        &old.keyed_assignments(),
        &new.keyed_assignments(),
        &binned_in_both,
        resources,
    )
    .await?;
    Ok(crate::analysis::compare::compare(
        &old_summary,
        &new_summary,
        &measures,
    ))
}
