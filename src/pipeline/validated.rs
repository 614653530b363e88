//! The validated plan: what the checks learnt about a pipeline, in the typed form every later
//! stage consumes. The engine plans from these types only and never re-derives them from the
//! spec; later backends (SQL compilation, Ballista) start from the same place.

use std::collections::BTreeSet;

use super::model::{ColumnType, FeatureKind, Literal, SourceFormat};

/// A source with everything resolved: its format and the column that joins it to the customers.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Its name in the pipeline.
    pub name: String,
    /// Where its rows come from.
    pub origin: SourceOrigin,
    /// The column that holds the customer key: the source's `key`, else the entity key's name.
    pub join_key: String,
    /// The column holding each row's date or timestamp, when declared.
    pub time_column: Option<String>,
    /// Declared column types.
    pub columns: std::collections::BTreeMap<String, ColumnType>,
    /// The columns bounding when each row is valid, for a table that keeps history.
    pub validity: Option<Validity>,
}

/// Where a source's rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceOrigin {
    /// Files at a path or glob.
    Files {
        /// The location as declared (variables unexpanded) or as given with `--source`.
        location: String,
        /// Whether `location` came from `--source` (relative to the working directory) rather
        /// than the pipeline file (relative to the pipeline's folder).
        overridden: bool,
        /// How its files are read.
        format: SourceFormat,
    },
    /// A PostgreSQL table or query.
    Postgres {
        /// The connection URL as declared, `${VAR}`s unexpanded (it holds a password).
        url: String,
        /// What is read.
        relation: Relation,
    },
}

/// What a PostgreSQL source reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// A table or view, optionally schema-qualified (`analytics.events`), taken as written.
    Table(String),
    /// A `SELECT` query.
    Query(String),
}

impl Relation {
    /// How messages name it: `table analytics.events` or `the query`.
    pub fn describe(&self) -> String {
        match self {
            Relation::Table(table) => format!("table {table}"),
            Relation::Query(_) => "the query".to_string(),
        }
    }
}

/// The validity columns of a table that keeps history (a slowly changing dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct Validity {
    /// The row is valid from this date or timestamp (null: always was).
    pub from: String,
    /// The row is valid until this date or timestamp, exclusive (null: still is).
    pub to: Option<String>,
}

/// The customers: where they come from and by which key.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The source(s) listing them.
    pub origin: EntityOrigin,
    /// The key column.
    pub key: String,
    /// The column holding when each customer joined; later joiners are left out.
    pub since: Option<String>,
}

/// Where the customers come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityOrigin {
    /// A source with one row per customer (its rows valid at the as-of date, when it keeps
    /// history), whose columns are the customers' attributes.
    Table(String),
    /// The distinct keys of these sources' rows before the as-of date; the key is the only
    /// column.
    Keys(Vec<String>),
}

impl Entity {
    /// The source with one row per customer, when the customers come from one.
    pub fn table(&self) -> Option<&str> {
        match &self.origin {
            EntityOrigin::Table(source) => Some(source),
            EntityOrigin::Keys(_) => None,
        }
    }

    /// Where the customers come from, in words: `customers`, or `keys of transactions`.
    pub fn describe(&self) -> String {
        match &self.origin {
            EntityOrigin::Table(source) => source.clone(),
            EntityOrigin::Keys(sources) => format!("keys of {}", sources.join(" + ")),
        }
    }
}

/// A feature, with its one definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// Column name.
    pub name: String,
    /// Segmentation kind.
    pub kind: FeatureKind,
    /// How it is computed.
    pub definition: FeatureDefinition,
    /// Declared result type, cast to when given.
    pub column_type: Option<ColumnType>,
    /// Column or feature names its SQL refers to.
    pub references: BTreeSet<String>,
    /// Its position in the pipeline file's `features` list (for locating problems).
    pub index: usize,
}

/// The three ways to define a feature.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureDefinition {
    /// SQL over the entity's columns and other features.
    Expr {
        /// The expression.
        sql: String,
    },
    /// An aggregate over another source's rows per customer.
    Aggregate(Aggregate),
    /// Buckets of another feature across all customers.
    Quantile(Quantile),
}

/// An aggregate feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The source aggregated.
    pub source: String,
    /// The aggregate expression.
    pub expr: String,
    /// Days back from the as-of date, when windowed.
    pub window_days: Option<u32>,
    /// Extra condition on the source's rows.
    pub filter: Option<String>,
    /// Value for customers without rows.
    pub default: Option<Literal>,
}

/// A quantile feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantile {
    /// The feature bucketed.
    pub of: String,
    /// Equal-count buckets or declared cut points.
    pub bucketing: Bucketing,
    /// Bucket 1 holds the highest values.
    pub descending: bool,
    /// Names of the buckets, lowest first: the feature is then text (checked: one per bucket).
    pub labels: Option<Vec<String>>,
}

/// How a quantile feature draws its buckets.
#[derive(Debug, Clone, PartialEq)]
pub enum Bucketing {
    /// This many equal-count buckets; ties split by the entity key.
    Equal(u32),
    /// At most this many buckets, equal values kept together (pandas `qcut` on minimum ranks).
    TiesTogether(u32),
    /// Declared, strictly ascending cut points.
    Cuts(Vec<f64>),
}

/// A segment rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Segment id.
    pub id: String,
    /// The condition; `None` for the catch-all.
    pub rule: Option<String>,
    /// Feature names the rule refers to.
    pub references: BTreeSet<String>,
}
