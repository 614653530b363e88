//! The template context: what every report template sees, built from a run folder's documents
//! alone (so `segflow report` re-renders exactly what `run` rendered), with figures about small
//! groups already masked. Nothing here formats numbers; templates do, with the filters of
//! `templates.rs`. Documented field by field in `docs/template-context.md`, generated from these
//! types.

mod build;
mod cohorts;

use cohorts::CohortsCard;

use schemars::JsonSchema;
use serde::Serialize;

use super::suppression::{MaskReason, MaskedCell, Suppressor};
use crate::analysis::compare::{Comparison, CriterionChange, FeatureDrift, RunRef, SizeChange};
use crate::analysis::criteria::{Check, Level, PairDifference};
use crate::analysis::scoring::{FactorInfo, Stability};
use crate::analysis::{ScoringReport, Status};
use crate::engine::measures::QuantileCuts;
use crate::engine::{FeatureInfo, FeatureStats, SourceSummary};
use crate::pipeline::model::{FeatureKind, PersonaSpec};
use crate::run_folder::{GitState, LintRecord, RunDocuments};

/// Everything a report template can use. Counts about fewer customers than
/// `suppression.min_cell` are `null` here, with `masked: true` beside them.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReportContext {
    /// segflow's version that made the run.
    pub segflow_version: String,
    /// The pipeline: name, title, description, entity and key.
    pub pipeline: PipelineCard,
    /// What ran, on what data, when.
    pub run: RunCard,
    /// The as-of date (YYYY-MM-DD).
    pub as_of: String,
    /// Customers as of the as-of date.
    pub customers: u64,
    /// Customers no rule matched (`null` when masked).
    pub unassigned: Option<u64>,
    /// Their share of all customers (`null` when masked).
    pub unassigned_share: Option<f64>,
    /// Reachable customers among the unassigned, when the accessible criterion is declared.
    pub unassigned_reachable: Option<u64>,
    /// Customers the sources know of that the as-of date leaves out, by reason.
    pub exclusions: Vec<ExclusionCard>,
    /// The feature whose sum is each segment's value (the first `kind: value` feature with a
    /// sum), if any.
    pub value_feature: Option<FeatureCard>,
    /// Every segment in rule order.
    pub segments: Vec<SegmentCard>,
    /// The features in declaration order.
    pub features: Vec<FeatureCard>,
    /// Feature statistics over all customers.
    pub overall: Vec<FeatureStats>,
    /// Buckets of quantile features.
    pub quantiles: Vec<QuantileCuts>,
    /// The 2x2 value x engagement matrix, when declared.
    pub matrix: Option<MatrixCard>,
    /// Customers each segment's rule matches, and which later rules also match them.
    pub rule_overlap: Vec<OverlapCard>,
    /// The validation criteria.
    pub criteria: CriteriaCard,
    /// The prioritisation, when scoring is declared.
    pub scoring: Option<ScoringCard>,
    /// Personas beside their segment.
    pub personas: Vec<PersonaCard>,
    /// The comparison with an earlier run, with `--compare-to`.
    pub comparison: Option<ComparisonCard>,
    /// Lint warnings.
    pub lints: Vec<LintRecord>,
    /// The executive summary: the verdict, the beachhead, the biggest movements.
    pub summary: Summary,
    /// Segments by numeric features on one scale (z-score of the segment mean).
    pub heatmap: Heatmap,
    /// Concentration of each declared value or cost feature.
    pub concentration: Vec<ConcentrationCard>,
    /// The ideal customer profile, when declared.
    pub icp: Option<IcpCard>,
    /// Cohorts and retention per segment, and lifetime value, when `cohorts` is declared.
    pub cohorts: Option<CohortsCard>,
    /// What small-cell suppression masked.
    pub suppression: Suppression,
}

/// The pipeline.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PipelineCard {
    /// Machine name.
    pub name: String,
    /// Title for people.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// The entity source (and its as-of rule).
    pub entity: String,
    /// The customer key column.
    pub key: String,
}

/// Provenance.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunCard {
    /// The pipeline file as given.
    pub pipeline_file: String,
    /// SHA-256 of the pipeline file.
    pub pipeline_sha256: String,
    /// Git commit and state, when the pipeline is in a git work tree.
    pub git: Option<GitState>,
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// The sources as read. When `rows_masked`, every `rows` is 0.
    pub sources: Vec<SourceSummary>,
    /// Whether the sources' row counts are suppressed: with a masked number of customers left
    /// out by the as-of date, the customer table's rows minus the customers would give it away.
    pub rows_masked: bool,
}

/// Customers left out by the as-of date for one reason.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExclusionCard {
    /// The reason in words.
    pub detail: String,
    /// How many (`null` when masked).
    pub customers: Option<u64>,
    /// Whether the count is masked.
    pub masked: bool,
}

/// How a feature's values read for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// A plain number (with `unit` as a suffix when declared).
    Number,
    /// Money: `unit` is a currency code.
    Money,
    /// True/false: its mean is the share that is true.
    Flag,
    /// A date or timestamp.
    Date,
    /// Text.
    Text,
}

/// A feature.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FeatureCard {
    /// Name.
    pub name: String,
    /// Segmentation kind (behavioral, value, ...).
    pub kind: FeatureKind,
    /// Description.
    pub description: String,
    /// Arrow type in `assignments.parquet`.
    pub data_type: String,
    /// Declared unit (`EUR`, `days`), if any.
    pub unit: Option<String>,
    /// How to show its values.
    pub format: ValueFormat,
}

/// A segment: declaration, size, value and what distinguishes it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SegmentCard {
    /// Position in rule order, from 1.
    pub position: usize,
    /// Id (for copying into tools).
    pub id: String,
    /// Name for people.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// The rule; `null` for the catch-all.
    pub when: Option<String>,
    /// Declared actions.
    pub actions: Vec<String>,
    /// Deprioritised on purpose.
    pub negative: bool,
    /// Why, when negative.
    pub negative_reason: Option<String>,
    /// Whether its figures are masked (small-cell suppression).
    pub masked: bool,
    /// Customers (`null` when masked).
    pub customers: Option<u64>,
    /// Share of all customers (`null` when masked).
    pub share: Option<f64>,
    /// Customers reachable through the accessible criterion's condition.
    pub reachable: Option<u64>,
    /// Sum of the value feature in the segment.
    pub value: Option<f64>,
    /// Its share of the value feature's total.
    pub value_share: Option<f64>,
    /// Statistics per feature (empty when masked).
    pub features: Vec<FeatureStats>,
    /// The features that most distinguish it from everyone else (empty when masked).
    pub distinguishing: Vec<Distinguishing>,
    /// Its mix of each category feature against everyone's (empty when masked).
    pub categories: Vec<CategoryCard>,
    /// The worst status of the criteria checks about it.
    pub status: Status,
    /// Its priority rank, when scoring is declared.
    pub priority: Option<usize>,
    /// Whether it is the recommended beachhead.
    pub beachhead: bool,
}

/// A group's mix of one category feature: its most common values against everyone's.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CategoryCard {
    /// The feature.
    pub feature: FeatureCard,
    /// The group's most common values (at most five), most customers first.
    pub top: Vec<ValueCard>,
    /// Customers with any other value (`null` when masked or none).
    pub other: Option<ValueCard>,
    /// Cramér's V of the group against everyone else (0 same mix, 1 nothing shared).
    pub cramers_v: Option<f64>,
    /// The chi-square test's p-value for the same comparison.
    pub p_value: Option<f64>,
}

/// One value's customers in a group. Counts and shares of fewer than `min_cell` customers, and
/// those that would reveal them, are `null` with `masked: true`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ValueCard {
    /// The value as text (`(none)` for customers without one, `other` for the rest).
    pub value: String,
    /// Whether its figures are masked.
    pub masked: bool,
    /// Customers of the group with it.
    pub customers: Option<u64>,
    /// Their share of the group.
    pub share: Option<f64>,
    /// The value's share of all customers.
    pub overall_share: Option<f64>,
}

/// How a value or cost feature is concentrated over customers and segments.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConcentrationCard {
    /// The feature.
    pub feature: FeatureCard,
    /// Customers with a value.
    pub customers: u64,
    /// Whether a value is infinite or the total overflows (then only this is known).
    pub infinite: bool,
    /// The total over all customers.
    pub total: f64,
    /// Gini coefficient over customers (0 even, towards 1 concentrated); `null` when undefined.
    pub gini: Option<f64>,
    /// Share of the total held by the top fifth of customers.
    pub top_fifth: Option<f64>,
    /// Customers with negative values (the Gini is not given then).
    pub negative: u64,
    /// The Lorenz curve: (share of customers, share of the total), ascending.
    pub lorenz: Vec<(f64, f64)>,
    /// Per segment (and the unassigned, when any): share of customers beside share of the total.
    pub rows: Vec<ShareRow>,
    /// The segment holding the largest share of the total, when shown.
    pub largest: Option<ShareRow>,
}

/// A group's share of customers beside its share of a total.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ShareRow {
    /// Segment id (`(unassigned)` for the unassigned customers).
    pub id: String,
    /// Name for people.
    pub name: String,
    /// Whether its figures are masked.
    pub masked: bool,
    /// Its share of all customers.
    pub customers_share: Option<f64>,
    /// Its share of the total.
    pub value_share: Option<f64>,
    /// Value share over customers share: 2 means twice its weight in customers.
    pub ratio: Option<f64>,
}

/// The ideal customer profile against everyone else.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IcpCard {
    /// Its name.
    pub name: String,
    /// Why these are the best customers.
    pub description: Option<String>,
    /// The target segment's name, when the profile is a segment.
    pub segment: Option<String>,
    /// The condition, when the profile is a condition.
    pub when: Option<String>,
    /// Whether its figures are masked (the profile, or everyone else, is a small group).
    pub masked: bool,
    /// Customers in the profile.
    pub customers: Option<u64>,
    /// Their share of all customers.
    pub share: Option<f64>,
    /// Numeric features that set them apart most (largest |Cohen's d| first, at most five).
    pub distinguishing: Vec<IcpDifference>,
    /// Category features by decreasing Cramér's V against everyone else.
    pub categories: Vec<CategoryCard>,
    /// Their share of each concentration feature's total beside their share of customers.
    pub value_shares: Vec<IcpValueShare>,
    /// With `cohorts:`, the share still active after 1, 3, 6 and 12 periods (those observed):
    /// the profile's customers beside everyone else's, pooled over the cohorts.
    pub retention: Vec<IcpRetention>,
    /// The cohorts' period (`month` or `quarter`), with `cohorts:`.
    pub period: Option<String>,
}

/// The share of a group's cohort customers still active some periods after joining.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IcpRetention {
    /// Periods after the cohort's own.
    pub after: usize,
    /// The ICP's share (`null` when not observed or masked).
    pub icp: Option<f64>,
    /// Whether the ICP's share is masked (fewer cohort customers than `min_cell`).
    pub icp_masked: bool,
    /// Everyone else's share.
    pub rest: Option<f64>,
    /// Whether everyone else's share is masked.
    pub rest_masked: bool,
}

/// A numeric feature on which ICP customers differ from everyone else.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IcpDifference {
    /// The feature.
    pub feature: FeatureCard,
    /// Mean of the ICP customers.
    pub icp_mean: f64,
    /// Mean of everyone else.
    pub rest_mean: f64,
    /// Cohen's d of the ICP against everyone else.
    pub effect: f64,
}

/// The ICP's share of a value or cost total.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IcpValueShare {
    /// The feature.
    pub feature: FeatureCard,
    /// The ICP's share of its total.
    pub share: f64,
}

/// A feature on which a segment differs from everyone else.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Distinguishing {
    /// The feature.
    pub feature: FeatureCard,
    /// Mean in the segment.
    pub segment_mean: f64,
    /// Mean over all customers.
    pub overall_mean: Option<f64>,
    /// Segment mean over overall mean, when both are positive ("3.2x").
    pub ratio: Option<f64>,
    /// Whether the segment is higher than everyone else.
    pub higher: bool,
    /// Cohen's d of the segment against everyone else.
    pub effect: f64,
}

/// The prioritisation (`scoring.json`), with what could give a masked segment away masked.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScoringCard {
    /// The factors: name, weight, how each is scored.
    pub factors: Vec<FactorInfo>,
    /// Segments by decreasing total.
    pub ranking: Vec<RankCard>,
    /// The recommended beachhead's id.
    pub beachhead: Option<String>,
    /// Why, in words.
    pub beachhead_note: String,
    /// How stable the ranking is under random changes of the weights.
    pub stability: Option<Stability>,
    /// Whether scores derived from data, and the totals, are masked: scaled across segments,
    /// they would give a masked segment's figure away.
    pub masked: bool,
}

/// One segment's place in the ranking.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RankCard {
    /// Rank, from 1.
    pub rank: usize,
    /// Segment id.
    pub segment: String,
    /// Segment name.
    pub name: String,
    /// Deprioritised on purpose.
    pub negative: bool,
    /// Score per factor, in factor order.
    pub scores: Vec<ScoreCard>,
    /// Weighted total (`null` when masked).
    pub total: Option<f64>,
    /// Segments with the same total.
    pub tied_with: Vec<String>,
}

/// One factor's score of a segment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScoreCard {
    /// The factor id.
    pub factor: String,
    /// Score from 1 to 10 (`null` when masked).
    pub score: Option<f64>,
    /// The measured metric behind a derived score (`null` when masked).
    pub metric: Option<f64>,
    /// A note on the score.
    pub note: Option<String>,
}

/// The 2x2 matrix.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MatrixCard {
    /// The value axis feature.
    pub value_feature: String,
    /// Its split point.
    pub value_split: f64,
    /// The value axis rule.
    pub value_rule: String,
    /// The engagement axis feature.
    pub engagement_feature: String,
    /// Its split point.
    pub engagement_split: f64,
    /// The engagement axis rule.
    pub engagement_rule: String,
    /// The four quadrants: high value & high engagement first.
    pub quadrants: Vec<QuadrantCard>,
    /// Whether the segment mix of the quadrants is suppressed (then every quadrant's
    /// `segments` is empty): with a masked segment or a small cell, the mix and the segment
    /// sizes together would give it away.
    pub mix_masked: bool,
}

/// One quadrant.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QuadrantCard {
    /// At or above the value split.
    pub high_value: bool,
    /// At or above the engagement split.
    pub high_engagement: bool,
    /// Customers (`null` when masked).
    pub customers: Option<u64>,
    /// Share of all customers (`null` when masked).
    pub share: Option<f64>,
    /// Whether its count is masked.
    pub masked: bool,
    /// 0..1: its count over the largest quadrant's, for shading.
    pub intensity: f64,
    /// Its customers by segment (empty when the mix is suppressed).
    pub segments: Vec<MixCell>,
}

/// Customers of one segment within a group.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MixCell {
    /// Segment id; `null` for the unassigned.
    pub segment: Option<String>,
    /// Segment name.
    pub name: String,
    /// Customers (`null` when masked).
    pub customers: Option<u64>,
    /// Whether masked.
    pub masked: bool,
}

/// Rule overlap of one segment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OverlapCard {
    /// Segment id.
    pub segment: String,
    /// Segment name.
    pub name: String,
    /// Customers its rule matches (`null` when masked).
    pub customers: Option<u64>,
    /// Later rules that also match some of them.
    pub also_matched_by: Vec<MixCell>,
}

/// The validation criteria.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CriteriaCard {
    /// The worst status of all checks.
    pub status: Status,
    /// Each criterion with its checks.
    pub criteria: Vec<CriterionCard>,
    /// Segments (and "all customers") by criteria: the worst status of each cell's checks; a
    /// check of a pair of segments counts for both.
    pub matrix: CriteriaMatrix,
    /// Pairwise effect sizes behind the differentiable criterion (pairs with a masked
    /// segment are left out).
    pub differentiation: Vec<PairDifference>,
    /// Checks that fail.
    pub failing: Vec<CheckCard>,
    /// Checks that warn.
    pub warning: Vec<CheckCard>,
    /// Checks in all.
    pub checks: usize,
}

/// One criterion.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CriterionCard {
    /// Its name (identifiable, substantial, ...).
    pub criterion: String,
    /// The question it answers.
    pub question: String,
    /// Its worst status.
    pub status: Status,
    /// Its checks.
    pub checks: Vec<CheckCard>,
}

/// One check.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckCard {
    /// The criterion.
    pub criterion: String,
    /// The subject's id (a segment id, or `all`).
    pub subject: String,
    /// The subject's name.
    pub subject_name: String,
    /// What is measured.
    pub measure: String,
    /// The measured value (`null` when masked or not measurable).
    pub value: Option<f64>,
    /// The thresholds in words.
    pub threshold: String,
    /// The thresholds as numbers, in the unit of `value`, when they are numbers.
    pub levels: Vec<Level>,
    /// pass, warn or fail.
    pub status: Status,
    /// More detail (`null` when masked).
    pub detail: Option<String>,
    /// Whether its figures are masked.
    pub masked: bool,
}

/// Criteria by subject.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CriteriaMatrix {
    /// The criteria, as columns.
    pub columns: Vec<String>,
    /// One row per subject.
    pub rows: Vec<CriteriaRow>,
}

/// One subject's statuses.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CriteriaRow {
    /// Subject id.
    pub subject: String,
    /// Subject name.
    pub name: String,
    /// Per column: the worst status, `null` when the criterion has no check about it.
    pub cells: Vec<Option<Status>>,
    /// The checks behind the row.
    pub checks: Vec<CheckCard>,
}

/// A persona with its segment's measured profile.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PersonaCard {
    /// The persona as declared.
    pub persona: PersonaSpec,
    /// Its segment.
    pub segment: SegmentCard,
    /// The criteria checks about its segment.
    pub checks: Vec<CheckCard>,
}

/// The comparison with an earlier run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComparisonCard {
    /// The earlier run.
    pub old: RunRef,
    /// This run.
    pub new: RunRef,
    /// Size changes per segment (masked counts are `null`).
    pub sizes: Vec<SizeChange>,
    /// Segments only this run has.
    pub appeared_segments: Vec<String>,
    /// Segments only the earlier run has.
    pub vanished_segments: Vec<String>,
    /// Segments that could not be matched.
    pub unmatched: Vec<String>,
    /// Who moved where.
    pub migration: MigrationCard,
    /// Feature drift per segment (masked segments left out).
    pub drift: Vec<FeatureDrift>,
    /// Criteria whose status changed.
    pub criteria_changes: Vec<CriterionChange>,
}

/// The migration matrix: customers from each old segment (rows) to each new one (columns).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MigrationCard {
    /// Old segments (ids).
    pub rows: Vec<String>,
    /// New segments (ids).
    pub columns: Vec<String>,
    /// Names of the rows.
    pub row_names: Vec<String>,
    /// Names of the columns.
    pub column_names: Vec<String>,
    /// Counts (`null` when masked).
    pub counts: Vec<Vec<Option<u64>>>,
    /// 0..1 per cell: its count over the largest count, for shading (0 when masked).
    pub intensity: Vec<Vec<f64>>,
    /// Customers in the same segment in both runs.
    pub stayed: Option<u64>,
    /// Customers in another segment.
    pub moved: Option<u64>,
    /// Customers only this run has.
    pub appeared: Option<u64>,
    /// Customers only the earlier run has.
    pub disappeared: Option<u64>,
}

/// The executive summary.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Summary {
    /// The criteria verdict.
    pub status: Status,
    /// The recommended beachhead, when scoring is declared.
    pub beachhead: Option<Beachhead>,
    /// The value feature's total over all customers.
    pub total_value: Option<f64>,
    /// With a comparison: the three biggest share changes, largest first.
    pub movements: Vec<SizeChange>,
}

/// The recommended first segment to serve.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Beachhead {
    /// Segment id.
    pub id: String,
    /// Segment name.
    pub name: String,
    /// Why, in words.
    pub note: String,
    /// Share of weight perturbations that keep it first, when measured.
    pub stability: Option<f64>,
}

/// Segments by numeric features.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Heatmap {
    /// The numeric features, as columns.
    pub features: Vec<FeatureCard>,
    /// One row per segment that is not masked.
    pub rows: Vec<HeatmapRow>,
}

/// One segment's row.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HeatmapRow {
    /// Segment id.
    pub segment: String,
    /// Segment name.
    pub name: String,
    /// Per feature: its mean and z-score, `null` without values.
    pub cells: Vec<Option<HeatCell>>,
}

/// One cell of the heatmap.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HeatCell {
    /// The segment's mean.
    pub mean: f64,
    /// (segment mean − overall mean) / overall standard deviation, within −3..3.
    pub z: f64,
}

/// What small-cell suppression did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Suppression {
    /// The smallest group shown (`reports.min_cell`).
    pub min_cell: u64,
    /// Every masked figure.
    pub masked: Vec<MaskedCell>,
}

impl ReportContext {
    /// The context of the run whose documents are `docs`.
    pub fn new(docs: &RunDocuments) -> Self {
        build::Builder::new(docs).build()
    }
}
