//! The pipeline file's typed model: the public contract users write in YAML.
//!
//! Every field's `///` comment becomes its description in `schemas/pipeline.schema.json`, which
//! editors show while users type; a test checks that no field goes undocumented.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A segflow pipeline: where customer data comes from, the features computed per customer, and the
/// ordered segment rules that assign every customer to one segment.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "segflow pipeline (version 1)")]
pub struct PipelineSpec {
    /// Version of the pipeline file format. Must be `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Machine name of the pipeline: lowercase letters, digits and `_`, starting with a letter. Names
    /// the default run folder (`runs/<name>-<as_of>`).
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub name: String,
    /// Human title shown at the top of reports. Defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What this segmentation is for and who uses it (shown in reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Observation date (`YYYY-MM-DD`). Time windows end just before it and rows at or after it are
    /// ignored. Defaults to today (UTC); `segflow run --as-of` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    /// Folder (relative to this file) whose templates override the built-in ones by file name, e.g.
    /// `report.html.j2` or `report.md.j2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
    /// Named input tables. Each name is how features refer to the table.
    pub sources: BTreeMap<String, SourceSpec>,
    /// Which source lists the customers (one row each) and its key column.
    pub entity: EntitySpec,
    /// Per-customer features, computed in dependency order. A feature may use features declared
    /// before or after it, as long as there is no cycle.
    #[serde(default)]
    pub features: Vec<FeatureSpec>,
    /// Ordered segment rules: each customer lands in the first segment whose `when` is true. At most
    /// one segment, the last, may omit `when` and catch everyone left.
    pub segments: Vec<SegmentSpec>,
    /// The five validation criteria (identifiable, substantial, accessible, differentiable,
    /// actionable), each with warn and error thresholds, checked on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<CriteriaSpec>,
    /// The weighted prioritisation matrix: factors, weights (summing to 100) and how each factor
    /// is scored per segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<ScoringSpec>,
    /// Personas: archetypes of segments, rendered with each segment's measured profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personas: Vec<PersonaSpec>,
    /// The 2x2 value x engagement matrix: two features and where each is split into low and high.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixSpec>,
    /// Cohorts and retention: customers grouped by the calendar period of a date feature (e.g.
    /// `signup_date`), and the share of each cohort still active after 1, 2, ... periods, per
    /// segment. Written as `cohorts.json` and shown as heatmaps in the reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<CohortsSpec>,
    /// Lifetime value by segment: value to date, and a simple predictive lifetime value from the
    /// segment's observed retention (see the README for the formula and its limits). Needs
    /// `cohorts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_value: Option<LifetimeValueSpec>,
    /// The quarterly review: when the segmentation was last reviewed and the limits lints check.
    #[serde(default)]
    pub review: ReviewSpec,
    /// Segment tests: small hand-written customers and the segment each must land in. `segflow
    /// test` runs them on these rows instead of the real sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<SegmentTest>,
    /// Settings of the stakeholder documents (reports), e.g. small-cell suppression.
    #[serde(default)]
    pub reports: ReportSettings,
    /// Where the assignments go besides the run folder: Postgres tables and Parquet or CSV files.
    /// Every export is prepared before any is committed; a failed export fails the run (exit 12)
    /// and writes no run folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExportSpec>,
    /// Value or cost features whose concentration the report shows (the seeds' "80% of revenue
    /// from one segment"): each segment's share of the total beside its share of customers, the
    /// Gini coefficient and the Lorenz curve over customers, e.g. `[revenue_12m, tickets_90]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concentration: Vec<String>,
    /// The ideal customer profile: who the best customers are, compared with everyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icp: Option<IcpSpec>,
}

/// The ideal customer profile: a target segment or a condition. The report compares these
/// customers with everyone else on the features that set them apart most, their share of value
/// and their retention.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcpSpec {
    /// What the profile is called in reports, e.g. "Scaling product teams".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why these are the best customers, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The id of the segment whose customers are the ICP. Give this or `when`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// A SQL condition over the features that ICP customers meet, e.g.
    /// `plan = 'business' AND seats >= 20`. Give this or `segment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// One export of the assignments: exactly one of `postgres` and `file`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// Name of the export, unique in the pipeline; the manifest and messages use it.
    pub name: String,
    /// Write to a Postgres table, replaced in one transaction on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresExport>,
    /// Write to a file (relative to this file's folder): `.parquet` or `.csv`. An existing file is
    /// never overwritten unless segflow wrote it and `--replace` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Features exported besides the entity key and the segment, which are always exported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// A Postgres table the assignments replace on every run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresExport {
    /// Connection URL, normally `${VAR}` from the environment (`postgres://user:password@host:port/db`).
    /// Never shown: messages and the manifest name user, host, port and database only.
    pub url: String,
    /// Table (`table` or `schema.table`, lowercase names) holding this run's assignments. Created
    /// by segflow if missing; a table segflow did not create is never touched.
    pub table: String,
    /// Table (`table` or `schema.table`) appended with each run's memberships: key, segment,
    /// run_id and as_of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_table: Option<String>,
}

/// The file format an export path implies by its extension.
pub fn export_format(path: &str) -> Option<SourceFormat> {
    match format_from_path(path)? {
        SourceFormat::Ndjson => None,
        format => Some(format),
    }
}

/// Whether `name` is a table name an export may write: `table` or `schema.table`, each part a
/// lowercase name (letters, digits, `_`, starting with a letter or `_`).
pub fn is_valid_table_name(name: &str) -> bool {
    let part = |part: &str| {
        let mut chars = part.chars();
        part.len() <= 63
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    match name.split_once('.') {
        Some((schema, table)) => part(schema) && part(table),
        None => part(name),
    }
}

/// Settings of the reports written for stakeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Small-cell suppression: stakeholder documents hide counts (and the figures derived from
    /// them) of groups with fewer than this many customers, so no one can be singled out. 10 by
    /// default; 0 or 1 shows every count.
    #[serde(default = "default_min_cell")]
    pub min_cell: u64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            min_cell: default_min_cell(),
        }
    }
}

fn default_min_cell() -> u64 {
    10
}

/// One segment test: fixture rows per source and what must come out.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentTest {
    /// What the test shows, e.g. "a new customer with tickets is struggling".
    pub name: String,
    /// Rows per source name: a list of rows (column: value) or `{ path: FILE }` relative to the
    /// pipeline. Sources left out are empty (with their declared `columns`).
    #[serde(default)]
    pub sources: BTreeMap<String, FixtureRows>,
    /// The customers to check.
    pub expect: Vec<Expectation>,
}

/// Fixture rows of one source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FixtureRows {
    /// Rows written inline, each a map of column to value.
    Rows(Vec<BTreeMap<String, serde_json::Value>>),
    /// A fixture file (CSV, Parquet or NDJSON) relative to the pipeline file.
    File {
        /// The file.
        path: String,
    },
}

/// The expected outcome for one fixture customer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The customer's key value.
    pub customer: serde_json::Value,
    /// The segment id it must land in, or `(unassigned)`.
    pub segment: String,
    /// Feature values it must have (null for no value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, serde_json::Value>,
}

/// Settings of the quarterly review and of `segflow lint`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSpec {
    /// When people last reviewed these segments (`YYYY-MM-DD`). Lint `stale-review` warns when it
    /// is more than `interval_days` before the as-of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reviewed: Option<NaiveDate>,
    /// Days between reviews; one quarter by default.
    #[serde(default = "default_interval")]
    pub interval_days: u32,
    /// Lint `too-many-segments` warns above this many segments. Default 4: the seeds recommend
    /// starting with 3 to 4; a pipeline that needs more says so here, with a comment saying why.
    #[serde(default = "default_max_segments")]
    pub max_segments: usize,
    /// What changed since the last review and why, e.g. why segments were added. Lint
    /// `segment-proliferation` is quiet while it is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Lints that do not apply to this pipeline, each with the reason why, e.g.
    /// `demographic-only: "reproduces the seed's firmographic example"`. Their warnings are not
    /// reported. Keys are lint codes (`segflow explain CODE`); reasons must not be empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allow: BTreeMap<String, String>,
}

impl Default for ReviewSpec {
    fn default() -> Self {
        ReviewSpec {
            last_reviewed: None,
            interval_days: default_interval(),
            max_segments: default_max_segments(),
            note: None,
            allow: BTreeMap::new(),
        }
    }
}

fn default_interval() -> u32 {
    92
}

fn default_max_segments() -> usize {
    4
}

/// A table read from files or from a PostgreSQL database: exactly one of `path` and `postgres`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// File path relative to the pipeline file, or a glob (`events/*.parquet`) whose files together
    /// form one table. `segflow run --source NAME=PATH` replaces it for one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A PostgreSQL table or query, read from one consistent snapshot per database for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
    /// File format. Defaults to the path's extension: `.csv`, `.parquet`/`.pq`,
    /// `.ndjson`/`.jsonl`/`.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SourceFormat>,
    /// What the table holds (shown in reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Column holding each row's date or timestamp. Aggregates over this source ignore rows at or
    /// after `as_of`, and `window_days` counts back from `as_of` on this column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// Column that joins this source to the entity key. Defaults to the entity's `key` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Declared column types. Columns listed here are read (CSV) or cast (Parquet, NDJSON) to
    /// exactly this type; others keep the type found in the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnType>,
    /// For a table that keeps history (a slowly changing dimension, like a dbt snapshot): the
    /// column (date or timestamp) from which each row is valid. As the entity source, only the
    /// rows valid at the as-of date count: `valid_from` before it (or null) and `valid_to` null
    /// or at or after it, so a past quarter is rerun with the attributes customers had then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// The column (date or timestamp) at which each row stopped being valid, exclusive; null
    /// for the current row. Needs `valid_from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

/// Where a PostgreSQL source's rows come from: a connection URL and exactly one of `table` and
/// `query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// Connection URL, `postgres://user:password@host:port/database`. Write it as an environment
    /// variable (`"${CRM_DATABASE_URL}"`): its value is never written to outputs or messages.
    pub url: String,
    /// Table (or view) to read, optionally with its schema: `analytics.events`. Names are taken
    /// as written (case-sensitive, like quoted identifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A `SELECT` whose rows form the table; the manifest records its SHA-256, not its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// File format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON, one object per line.
    Ndjson,
}

impl SourceFormat {
    /// Its name as written in the pipeline: `csv`, `parquet` or `ndjson`.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Csv => "csv",
            SourceFormat::Parquet => "parquet",
            SourceFormat::Ndjson => "ndjson",
        }
    }
}

/// A column type that can be declared for a source column or a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit floating point number.
    Float64,
    /// UTF-8 text.
    String,
    /// `true` / `false`.
    Bool,
    /// Calendar date (`YYYY-MM-DD`).
    Date,
    /// Timestamp with microsecond precision, no time zone.
    Timestamp,
}

impl ColumnType {
    /// The Arrow type values of this declared type are read as.
    pub fn arrow_type(self) -> arrow::datatypes::DataType {
        use arrow::datatypes::{DataType, TimeUnit};
        match self {
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::String => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The name as written in a pipeline file (`int64`, `date`).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::String => "string",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
        }
    }
}

/// The customers: where they come from and the column identifying them. Give `source` (a table
/// with one row per customer, or with `distinct: true` any table whose distinct keys are the
/// customers) or `from` (several sources whose keys together are the customers).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Name of the source listing every customer exactly once (at the as-of date, when it
    /// declares `valid_from`). With `distinct: true`, a source whose distinct keys are the
    /// customers, e.g. a transactions export without a customer table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Sources whose distinct keys, together, are the customers, e.g. `[transactions,
    /// web_events]`. Rows at or after the as-of date (by each source's `time_column`) and null
    /// keys are left out. The customers then have only the key column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Key column (unique per customer, never null). Other sources join on a column of the same
    /// name unless they declare their own `key`.
    pub key: String,
    /// Take the customers from the distinct keys of `source` instead of one row per customer:
    /// its rows before the as-of date (by its `time_column`), null keys left out. The customers
    /// then have only the key column.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distinct: bool,
    /// Column of the entity source holding when each customer joined (a date or timestamp, e.g.
    /// `signup_date`). Customers who joined on or after the as-of date are left out, so a past
    /// quarter's rerun sees only the customers of then; customers without a value are kept. The
    /// report says how many were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// The segmentation vocabulary: what kind of characteristic a feature describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Characteristics of a person: age, role, seniority, experience.
    Demographic,
    /// Characteristics of a company: size, industry, stage.
    Firmographic,
    /// What customers do: usage, adoption, frequency, recency, support tickets.
    Behavioral,
    /// What customers are worth: revenue, lifetime value, willingness to pay.
    Value,
    /// What customers need: jobs to be done, pain intensity, success metrics.
    Needs,
    /// Attitudes, values and motivations, usually from surveys.
    Psychographic,
    /// Technology used: tech stack, integrations, platforms.
    Technographic,
    /// Where customers are: country, region, market.
    Geographic,
}

impl PipelineSpec {
    /// Every SQL snippet of the file (feature expressions, aggregate expressions and conditions,
    /// segment rules, the accessible criterion's condition), for rewriting them all alike.
    pub fn sql_snippets_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let features = self.features.iter_mut().flat_map(|feature| {
            let aggregate = feature
                .aggregate
                .as_mut()
                .map(|a| (&mut a.expr, &mut a.filter));
            let (aggregate_expr, filter) = match aggregate {
                Some((expr, filter)) => (Some(expr), filter.as_mut()),
                None => (None, None),
            };
            feature
                .expr
                .as_mut()
                .into_iter()
                .chain(aggregate_expr)
                .chain(filter)
        });
        let rules = self.segments.iter_mut().filter_map(|s| s.when.as_mut());
        let reachable = self
            .criteria
            .as_mut()
            .and_then(|c| c.accessible.as_mut())
            .map(|a| &mut a.reachable);
        features.chain(rules).chain(reachable)
    }
}

/// One per-customer value. Give exactly one of `expr`, `aggregate`, `quantile` or `tiers`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Column name of the feature: lowercase letters, digits and `_`, starting with a letter.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub name: String,
    /// Which kind of segmentation characteristic this feature measures.
    pub kind: FeatureKind,
    /// What the feature means, in words a stakeholder understands.
    pub description: String,
    /// SQL expression over the entity's columns and other features, e.g. `as_of() - signup_date`.
    /// Window functions across all customers are allowed, e.g.
    /// `ntile(5) OVER (ORDER BY revenue_12m)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// An aggregate over another source, joined to the customers on the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<AggregateSpec>,
    /// A bucket number (1 = lowest) of another feature across all customers: equal-count buckets
    /// (`buckets`, e.g. quintiles for RFM scores) or declared cut points (`cuts`). The cut points
    /// actually used are shown in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<QuantileSpec>,
    /// Engagement tiers of another feature: three equal-count buckets with equal values kept
    /// together, named `low`, `middle` and `high` (the seeds' high / middle / low tiers), e.g.
    /// `tiers: { of: active_days_90 }`. Shorthand for a `quantile` with `buckets: 3`,
    /// `ties: together` and `labels`; the feature holds the tier's name as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<TiersSpec>,
    /// Cast the result to this type. Without it the type follows from the SQL.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub column_type: Option<ColumnType>,
    /// What the value counts, for reports: an ISO 4217 currency code (`EUR`, `USD`, `GBP`) makes
    /// it money (`EUR 1.23M`), anything else is a plain unit written after the number
    /// (`days`, `tickets`). At most 16 characters, no line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub unit: Option<String>,
    /// Profile this feature as categories even though it is numeric, e.g. a 1-5 Likert scale or
    /// a plan tier number: reports show its category mix and Cramér's V can compare segments on
    /// it. Text and boolean features are always profiled as categories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub category: bool,
}

/// Longest `unit` of a feature, in characters.
pub const MAX_UNIT_CHARS: usize = 16;

/// Whether `unit` is an ISO 4217 currency code (three capital letters, e.g. `EUR`): reports
/// show such features as money.
pub fn is_currency(unit: &str) -> bool {
    unit.len() == 3 && unit.bytes().all(|b| b.is_ascii_uppercase())
}

/// An aggregate over another source's rows for each customer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// Name of the source to aggregate.
    pub source: String,
    /// SQL aggregate expression over that source's columns, e.g. `count(DISTINCT feature)` or
    /// `sum(amount)`.
    pub expr: String,
    /// Keep only rows with `time_column` in `[as_of - window_days, as_of)`. Needs the source's
    /// `time_column`. Without it, all rows before `as_of` count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_days: Option<u32>,
    /// Value for customers with no rows in the window. Without it they get null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Literal>,
    /// Extra SQL condition on the source's rows, e.g. `severity = 'high'`.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// A constant value.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Literal {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// Text.
    Text(String),
}

/// A named, owned segment with the rule that admits customers to it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// Stable identifier used in outputs and run comparisons: lowercase letters, digits and `_`,
    /// starting with a letter, at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub id: String,
    /// Display name shown in reports.
    pub name: String,
    /// Who these customers are and why the segment exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SQL condition over features. The first segment whose condition is true wins; a condition
    /// that is null for a customer does not match. Omit it for the catch-all, which must be last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Team or person accountable for this segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the team will do for this segment (the actionable criterion needs at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// Deprioritised on purpose. A negative segment must say why in `negative_reason`, and is never
    /// recommended as the beachhead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negative: bool,
    /// Why this segment is deprioritised (required when `negative: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_reason: Option<String>,
    /// Hand-given prioritisation scores by factor id (1 to 10, with a note), for factors not
    /// derived from data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, HandScore>,
}

/// A hand-given factor score.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandScore {
    /// Score from 1 (worst) to 10 (best).
    pub score: f64,
    /// Why this score: the evidence a reviewer can check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Lints that do not apply to this pipeline, each with the reason why, e.g.
    /// `demographic-only: "reproduces the seed's firmographic example"`. Their warnings are not
    /// reported. Keys are lint codes (`segflow explain CODE`); reasons must not be empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allow: BTreeMap<String, String>,
}

/// Buckets of a feature across all customers.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantileSpec {
    /// The feature to bucket.
    pub of: String,
    /// Number of equal-count buckets (5 for quintiles), assigned in order of the feature; how
    /// equal values are bucketed is set by `ties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u32>,
    /// With `buckets`: what happens to customers with equal values. `by_key` (the default) fills
    /// buckets to equal counts (`ntile`), breaking ties by the entity key, so equal customers
    /// can land in different buckets. `together` keeps equal values in one bucket, as pandas'
    /// `qcut(x.rank(method="min"), buckets, labels=False, duplicates="drop") + 1` does: buckets
    /// may then be unequal or fewer, and the report says so. At most 100 buckets.
    #[serde(default, skip_serializing_if = "Ties::is_by_key")]
    pub ties: Ties,
    /// Ascending cut points instead of equal counts: a value below the first cut is bucket 1, at or
    /// above the last is bucket `len + 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuts: Option<Vec<f64>>,
    /// Give the highest bucket to the lowest values (e.g. recency: fewer days since the last
    /// purchase scores higher).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub descending: bool,
    /// Names of the buckets, lowest bucket first, e.g. `[low, middle, high]`: the feature then
    /// holds the bucket's name as text instead of its number (a declared `type` must be
    /// `string`). As many names as buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// Named tiers of a feature across all customers: a quantile with labels, equal values kept
/// together.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TiersSpec {
    /// The feature to tier.
    pub of: String,
    /// Names of the tiers, lowest first. Without it: `[low, middle, high]`. With `cuts`, one
    /// more name than cut points; otherwise that many equal-count buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Ascending cut points instead of equal counts, as for `quantile`: a value below the first
    /// cut is in the lowest tier, at or above the last in the highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuts: Option<Vec<f64>>,
    /// Put the lowest values in the highest tier (e.g. days since the last visit: fewer days is
    /// more engaged).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub descending: bool,
}

/// The tier names of `tiers` without `labels`, lowest first.
pub const DEFAULT_TIER_LABELS: [&str; 3] = ["low", "middle", "high"];

/// How equal-count buckets treat customers with equal values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ties {
    /// Equal counts per bucket; equal values are split by the entity key (`ntile`).
    #[default]
    ByKey,
    /// Equal values share a bucket (pandas `qcut` on minimum ranks, duplicate edges dropped).
    Together,
}

impl Ties {
    /// Whether this is the default, `by_key`.
    pub fn is_by_key(&self) -> bool {
        *self == Ties::ByKey
    }
}

/// Warn and error levels for one measured value. Give `*_if_below` for minimums and
/// `*_if_above` for maximums; the error level must be at least as strict as the warn level.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Warn when the measured value is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_if_below: Option<f64>,
    /// Fail when the measured value is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_if_below: Option<f64>,
    /// Warn when the measured value is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_if_above: Option<f64>,
    /// Fail when the measured value is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_if_above: Option<f64>,
}

/// The five validation criteria of a segmentation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CriteriaSpec {
    /// Can you find them? Bounds the share of customers no rule assigns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifiable: Option<IdentifiableSpec>,
    /// Big enough to matter? Minimum size of every segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substantial: Option<SubstantialSpec>,
    /// Can you reach them? Minimum share of each segment reachable through a channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessible: Option<AccessibleSpec>,
    /// Distinct from the others? Every pair of segments must differ on some feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differentiable: Option<DifferentiableSpec>,
    /// Can you serve them differently? Every segment needs an owner and an action; negative
    /// segments need a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actionable: Option<ActionableSpec>,
    /// Stable over time? Judges this run against the earlier one given with `--compare-to`:
    /// feature drift within segments and the share of customers who changed segment. Without
    /// `--compare-to` it is reported as not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<StableSpec>,
}

/// Drift gates of the stable criterion, judged against an earlier run.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StableSpec {
    /// Levels for the population stability index (PSI) of each judged feature within each
    /// segment present in both runs: numbers binned at the earlier run's deciles, true/false and
    /// text by their shares per value. 0.1 is commonly read as moderate, 0.25 as large drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Threshold>,
    /// The features whose PSI is judged; all features with a PSI when left out. Leave out
    /// features that move every quarter by design, such as tenure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Levels for the share (0 to 1) of customers in both runs whose segment changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Threshold>,
}

/// Thresholds of the identifiable criterion.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifiableSpec {
    /// Share (0 to 1) of customers that no segment rule matched, e.g. `{ error_if_above: 0.05 }`.
    pub unassigned_share: Threshold,
}

/// Thresholds of the substantial criterion, each applied to every segment.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubstantialSpec {
    /// Segment's share (0 to 1) of all customers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Threshold>,
    /// Segment's number of customers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Threshold>,
    /// Segment's share (0 to 1) of the total of a value feature, e.g. revenue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_share: Option<ValueShareSpec>,
    /// Smallest audience each channel accepts, e.g. `{ tiktok_ads: 1000, bing_ads: 300 }`. A
    /// segment with fewer customers is reported as too small for that channel (a warning).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, u64>,
}

/// A segment's share of a value feature's total.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueShareSpec {
    /// The numeric feature, e.g. `revenue_12m`.
    pub feature: String,
    /// Levels for the segment's share of its total.
    pub threshold: Threshold,
}

/// The accessible criterion.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessibleSpec {
    /// SQL condition over features that is true for reachable customers, e.g.
    /// `email_opt_in AND has_email`.
    pub reachable: String,
    /// Levels for the reachable share (0 to 1) within each segment.
    pub share: Threshold,
}

/// The differentiable criterion.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DifferentiableSpec {
    /// Numeric features to compare segments on with Cohen's d.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Levels for the largest absolute Cohen's d (pooled standard deviation) of each pair of
    /// segments over `features`; 0.2 is small, 0.5 medium, 0.8 large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<Threshold>,
    /// Category features (text, boolean, or declared `category: true`) to compare segments on
    /// with Cramér's V.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Levels for the largest Cramér's V of each pair of segments over `categories`; 0.1 is
    /// small, 0.3 medium, 0.5 large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cramers_v: Option<Threshold>,
}

/// The actionable criterion.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionableSpec {
    /// Fail segments without an `owner`.
    #[serde(default = "yes")]
    pub require_owner: bool,
    /// Fail segments without at least one of `actions` (negative segments are exempt).
    #[serde(default = "yes")]
    pub require_action: bool,
}

fn yes() -> bool {
    true
}

/// The weighted prioritisation matrix.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringSpec {
    /// Factors with weights in percent that sum to 100. The seed's default: market size 25,
    /// revenue potential 25, fit with product 20, acquisition ease 15, strategic value 15.
    pub factors: Vec<FactorSpec>,
    /// How robust the ranking is to the weights: random perturbations of every weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability: Option<StabilitySpec>,
}

/// One prioritisation factor.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorSpec {
    /// Identifier used in segments' `scores`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Weight in percent.
    pub weight: f64,
    /// How the factor is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Derive the score from data; without it every segment gives the score by hand in `scores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived: Option<DerivedScore>,
}

/// A factor score computed from a segment metric.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DerivedScore {
    /// The segment metric: `customers`, `share`, or `{ mean | median | sum: <feature> }`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    #[schemars(with = "Metric")]
    pub metric: Metric,
    /// How the metric becomes a 1 to 10 score: `min_max` or `{ breakpoints: [...] }`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    #[schemars(with = "ScaleMethod")]
    pub method: ScaleMethod,
    /// Whether a larger metric scores higher.
    #[serde(default = "yes")]
    pub higher_is_better: bool,
}

/// A measured property of a segment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Number of customers.
    Customers,
    /// Share of all customers.
    Share,
    /// Mean of a feature.
    Mean(String),
    /// Median of a feature.
    Median(String),
    /// Sum of a feature.
    Sum(String),
}

/// Mapping a metric onto 1 to 10.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMethod {
    /// Linear between the smallest (1) and largest (10) value across segments.
    MinMax,
    /// Ascending breakpoints: the score is 1 plus the number of breakpoints at or below the
    /// value (nine breakpoints use the whole 1 to 10 range).
    Breakpoints(Vec<f64>),
}

/// Rank-stability analysis settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StabilitySpec {
    /// Number of random weight draws.
    #[serde(default = "default_draws")]
    pub draws: u32,
    /// Each weight moves uniformly by up to this many points, then weights are rescaled to 100.
    #[serde(default = "default_shift")]
    pub max_shift: f64,
    /// Random seed, so the analysis is reproducible.
    #[serde(default)]
    pub seed: u64,
}

fn default_draws() -> u32 {
    1000
}

fn default_shift() -> f64 {
    5.0
}

/// A persona: the human face of a segment.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonaSpec {
    /// Id of the segment this persona represents.
    pub segment: String,
    /// The persona's name, e.g. "Scaling Sarah".
    pub name: String,
    /// Role or job title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Situation: company, stage, circumstances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// What they are trying to achieve (jobs to be done).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<String>,
    /// What gets in their way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frustrations: Vec<String>,
    /// How they behave with the product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub behaviours: Vec<String>,
    /// Something they would say, in their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// The one job they hire the product for, e.g. "Ship features while maintaining quality".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_job: Option<String>,
    /// The pain that hurts most, e.g. "Technical debt piling up as the team grows".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pain: Option<String>,
    /// How they judge success, e.g. "Deploy frequency without incidents".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_metric: Option<String>,
    /// Questions to ask this segment's customers in research, by the segment's stage.
    #[serde(default, skip_serializing_if = "ResearchQuestions::is_empty")]
    pub research_questions: ResearchQuestions,
}

/// A persona's research questions by segment stage, as in the seed: a new segment is explored, an
/// existing one deepened, an at-risk one retained.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResearchQuestions {
    /// Exploring a new segment, e.g. "What jobs are they hiring products for?"
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<String>,
    /// Deepening an existing segment, e.g. "Where do they get stuck?"
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub existing: Vec<String>,
    /// Retaining an at-risk segment, e.g. "What would it take to re-engage?"
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_risk: Vec<String>,
}

impl ResearchQuestions {
    /// Whether no stage has a question.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.existing.is_empty() && self.at_risk.is_empty()
    }
}

/// The 2x2 value x engagement matrix.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// The value axis, e.g. revenue.
    pub value: AxisSpec,
    /// The engagement axis, e.g. active days.
    pub engagement: AxisSpec,
}

/// One axis of the 2x2 matrix: customers at or above the split are "high".
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    /// The numeric feature. Customers without a value count as low.
    pub feature: String,
    /// Where low ends and high begins: `median`, `{ quantile: 0.75 }` or `{ value: 10 }`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    #[schemars(with = "Split")]
    pub split: Split,
}

/// Where an axis splits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// The median over all customers.
    Median,
    /// A quantile (0 to 1) over all customers.
    Quantile(f64),
    /// A fixed value.
    Value(f64),
}

/// Cohorts of customers by the calendar period of a date, and their retention.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CohortsSpec {
    /// The date or timestamp feature whose calendar period is a customer's cohort, e.g.
    /// `signup_date` (an `expr` feature naming the entity's column).
    pub by: String,
    /// The calendar period of cohorts and of retention steps.
    #[serde(default)]
    pub period: CohortPeriod,
    /// An aggregate feature over an event source (e.g. `active_days_90`): a customer is active
    /// at a period's end when that aggregate, computed as of that date (its source, `where` and
    /// `window_days`, rows before the date), is above 0 or true.
    pub active: String,
    /// How many cohorts (the last periods up to the as-of date) and retention steps: 1 to 60.
    #[serde(default = "default_cohort_periods")]
    #[schemars(range(min = 1, max = 60))]
    pub periods: u32,
}

/// Most cohorts (and retention steps) of `cohorts.periods`.
pub const MAX_COHORT_PERIODS: u32 = 60;

fn default_cohort_periods() -> u32 {
    12
}

/// A calendar period of cohorts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CohortPeriod {
    /// Calendar months.
    #[default]
    Month,
    /// Calendar quarters (January, April, July, October).
    Quarter,
}

/// The assumptions of the simple predictive lifetime value.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifetimeValueSpec {
    /// The numeric feature holding each customer's value to date (e.g. all invoiced revenue).
    pub value: String,
    /// Share of value kept as margin, between 0 and 1.
    #[serde(default = "default_margin")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub margin: f64,
    /// Cap on the expected lifetime, in periods of `cohorts.period` (at least 1).
    #[serde(default = "default_max_periods")]
    #[schemars(range(min = 1))]
    pub max_periods: u32,
}

fn default_margin() -> f64 {
    1.0
}

fn default_max_periods() -> u32 {
    60
}

/// How segment tests, reports and the summary name customers that no rule matched.
pub const UNASSIGNED: &str = "(unassigned)";

/// Names of pipelines, sources, features and segments: safe as SQL identifiers, file names and
/// in URLs.
pub const NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,62}$";

/// Whether `name` matches [`NAME_PATTERN`].
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The format a source path implies by its extension.
pub fn format_from_path(path: &str) -> Option<SourceFormat> {
    let lower = path.to_ascii_lowercase();
    let ext = lower.rsplit('.').next()?;
    match ext {
        "csv" => Some(SourceFormat::Csv),
        "parquet" | "pq" => Some(SourceFormat::Parquet),
        "ndjson" | "jsonl" | "json" => Some(SourceFormat::Ndjson),
        _ => None,
    }
}
