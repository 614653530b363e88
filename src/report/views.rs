//! Views that reports render: declarations from the pipeline joined with what the run measured,
//! shaped for templates and the JSON documents.

use chrono::NaiveDate;
use serde::Serialize;

use crate::engine::measures::{Matrix, QuantileCuts, RuleOverlap};
use crate::engine::{FeatureInfo, FeatureStats, RunResults, SegmentResult, SourceSummary};
use crate::pipeline::model::SegmentSpec;

/// A lint warning as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct LintView {
    /// The lint code.
    pub code: &'static str,
    /// What it found.
    pub message: String,
    /// Line in the pipeline file, when known.
    pub line: Option<usize>,
    /// Column, when known.
    pub column: Option<usize>,
    /// What to do.
    pub help: Option<String>,
}

impl LintView {
    /// The view of a lint problem.
    pub fn of(problem: &crate::diagnostic::Problem) -> Self {
        let position = problem.line_column();
        LintView {
            code: problem.code_name(),
            message: problem.message().to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            help: problem.help_text().map(str::to_string),
        }
    }
}

/// A segment as reports show it: its declaration beside its measurements.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView<'a> {
    /// Segment id.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Description, if declared.
    pub description: Option<&'a str>,
    /// Owner, if declared.
    pub owner: Option<&'a str>,
    /// The rule, `None` for the catch-all.
    pub when: Option<&'a str>,
    /// Customers assigned.
    pub customers: u64,
    /// Share of all customers.
    pub share: f64,
    /// Per-feature statistics within the segment.
    pub features: &'a [FeatureStats],
    /// Customers reachable through the accessible criterion's condition, when declared.
    pub reachable: Option<u64>,
    /// Declared actions.
    pub actions: &'a [String],
    /// Deprioritised on purpose.
    pub negative: bool,
    /// Why, when negative.
    pub negative_reason: Option<&'a str>,
}

impl<'a> SegmentView<'a> {
    /// Join a declaration with its measurement.
    pub fn new(declared: &'a SegmentSpec, measured: &'a SegmentResult) -> Self {
        SegmentView {
            id: &declared.id,
            name: &declared.name,
            description: declared.description.as_deref(),
            owner: declared.owner.as_deref(),
            when: declared.when.as_deref(),
            customers: measured.customers,
            share: measured.share,
            features: &measured.features,
            reachable: measured.reachable,
            actions: &declared.actions,
            negative: declared.negative,
            negative_reason: declared.negative_reason.as_deref(),
        }
    }
}

/// Everything a run measured, with segments joined to their declarations.
#[derive(Debug, Clone, Serialize)]
pub struct RunView<'a> {
    /// The as-of date in force.
    pub as_of: NaiveDate,
    /// Customers in the entity source.
    pub customers: u64,
    /// Customers no segment rule matched.
    pub unassigned: u64,
    /// Share of customers that are unassigned.
    pub unassigned_share: f64,
    /// Every declared segment, in rule order.
    pub segments: Vec<SegmentView<'a>>,
    /// Feature statistics over all customers.
    pub overall: &'a [FeatureStats],
    /// The features with their computed types.
    pub features: &'a [FeatureInfo],
    /// The sources as read.
    pub sources: &'a [SourceSummary],
    /// Reachable customers among the unassigned.
    pub unassigned_reachable: Option<u64>,
    /// Cut points used by quantile features.
    pub quantiles: &'a [QuantileCuts],
    /// The 2x2 value x engagement matrix, when declared.
    pub matrix: Option<&'a Matrix>,
    /// Overlap between segment rules.
    pub rule_overlap: &'a [RuleOverlap],
}

impl<'a> RunView<'a> {
    /// Join `results` with the declared `segments` (in rule order; the engine measures every one).
    pub fn new(segments: &'a [SegmentSpec], results: &'a RunResults) -> Self {
        RunView {
            as_of: results.as_of,
            customers: results.customers,
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
            overall: &results.overall,
            features: &results.features,
            sources: &results.sources,
            unassigned_reachable: results.unassigned_reachable,
            quantiles: &results.quantiles,
            matrix: results.matrix.as_ref(),
            rule_overlap: &results.rule_overlap,
        }
    }
}
