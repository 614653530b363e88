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
}

/// A table read from files.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// File path relative to the pipeline file, or a glob (`events/*.parquet`) whose files together
    /// form one table. `segflow run --source NAME=PATH` replaces it for one run.
    pub path: String,
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

/// The customers: the table with one row per customer and the column identifying them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Name of the source listing every customer exactly once.
    pub source: String,
    /// Key column of that source (unique, never null). Other sources join on a column of the same
    /// name unless they declare their own `key`.
    pub key: String,
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

/// One per-customer value. Give exactly one of `expr` or `aggregate`.
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
    /// Cast the result to this type. Without it the type follows from the SQL.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub column_type: Option<ColumnType>,
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
}
