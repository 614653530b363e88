//! The customers as of the as-of date, in SQL: a customer table's rows valid then (validity
//! columns of a slowly changing dimension, a join date), or the distinct keys of event sources
//! before then; the queries counting who was left out and why; and the check that every
//! customer appears exactly once.

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::stats;
use super::temporal::temporal_literal;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::sql::ident;
use crate::pipeline::validated::EntityOrigin;

/// A column with its (date or timestamp) type.
pub type TemporalColumn = (String, DataType);

/// What bounds a customer table's rows at the as-of date.
#[derive(Debug, Clone, Default)]
pub struct TableBounds {
    /// Rows are valid from this column's value.
    pub valid_from: Option<TemporalColumn>,
    /// Rows are valid until this column's value (exclusive).
    pub valid_to: Option<TemporalColumn>,
    /// Customers joined at this column's value.
    pub since: Option<TemporalColumn>,
}

impl TableBounds {
    /// The bounds in words, for the stage title.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.valid_from.is_some() {
            parts.push("valid then");
        }
        if self.since.is_some() {
            parts.push("joined before then");
        }
        parts.join(" and ")
    }
}

/// `column < as_of`, or true where it is null: the row (or customer) had started.
fn started(column: &TemporalColumn, as_of: NaiveDate) -> String {
    let (name, data_type) = column;
    format!(
        "({0} IS NULL OR {0} < {1})",
        ident(name),
        temporal_literal(data_type, as_of)
    )
}

/// `column >= as_of`, or true where it is null: the row had not ended.
fn not_ended(column: &TemporalColumn, as_of: NaiveDate) -> String {
    let (name, data_type) = column;
    format!(
        "({0} IS NULL OR {0} >= {1})",
        ident(name),
        temporal_literal(data_type, as_of)
    )
}

/// The condition for a row valid at the as-of date (`TRUE` without validity columns).
fn valid(bounds: &TableBounds, as_of: NaiveDate) -> String {
    let mut conditions = Vec::new();
    if let Some(from) = &bounds.valid_from {
        conditions.push(started(from, as_of));
    }
    if let Some(to) = &bounds.valid_to {
        conditions.push(not_ended(to, as_of));
    }
    if conditions.is_empty() {
        "TRUE".into()
    } else {
        conditions.join(" AND ")
    }
}

/// The rows of customer table `source` that are customers as of `as_of`; `None` when every row
/// is (no validity columns, no join date).
pub fn table_sql(source: &str, bounds: &TableBounds, as_of: NaiveDate) -> Option<String> {
    let mut conditions = Vec::new();
    if bounds.valid_from.is_some() {
        conditions.push(valid(bounds, as_of));
    }
    if let Some(since) = &bounds.since {
        conditions.push(started(since, as_of));
    }
    if conditions.is_empty() {
        return None;
    }
    Some(format!(
        "SELECT * FROM {} WHERE {}",
        ident(source),
        conditions.join(" AND ")
    ))
}

/// Why customers known to the sources are not customers as of the as-of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionReason {
    /// Their join date (`since`) is on or after the as-of date.
    JoinedLater,
    /// Every row of theirs becomes valid only on or after the as-of date.
    NotYetValid,
    /// No row of theirs is valid at the as-of date, though rows began before it: the last
    /// ended before it (or there is a gap).
    NoLongerValid,
    /// Their keys appear only in rows on or after the as-of date.
    OnlyLaterRows,
}

/// A query counting the customers left out for one reason.
#[derive(Debug, Clone)]
pub struct ExclusionQuery {
    /// The reason.
    pub reason: ExclusionReason,
    /// The reason in words, naming the columns.
    pub detail: String,
    /// One row, one count.
    pub sql: String,
}

/// Customers left out of a run for one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The reason.
    pub reason: ExclusionReason,
    /// The reason in words, naming the columns.
    pub detail: String,
    /// Customers left out.
    pub customers: u64,
}

/// The queries counting who a customer table's bounds leave out.
pub fn table_exclusions(
    source: &str,
    key: &str,
    bounds: &TableBounds,
    as_of: NaiveDate,
) -> Vec<ExclusionQuery> {
    let (table, key) = (ident(source), ident(key));
    let mut queries = Vec::new();
    if let Some(from) = &bounds.valid_from {
        let per_key = |having: &str| {
            format!(
                "SELECT count(*) FROM (SELECT {key} FROM {table} WHERE {key} IS NOT NULL \
                 GROUP BY {key} HAVING {having})"
            )
        };
        let valid = valid(bounds, as_of);
        let started = started(from, as_of);
        queries.push(ExclusionQuery {
            reason: ExclusionReason::NotYetValid,
            detail: format!(
                "every row of {source} becomes valid ({}) on or after {as_of}",
                from.0
            ),
            sql: per_key(&format!("NOT bool_or({valid}) AND NOT bool_or({started})")),
        });
        if let Some(to) = &bounds.valid_to {
            queries.push(ExclusionQuery {
                reason: ExclusionReason::NoLongerValid,
                detail: format!(
                    "no row of {source} is valid on {as_of}: the rows that began before it had ended ({}) by then",
                    to.0
                ),
                sql: per_key(&format!("NOT bool_or({valid}) AND bool_or({started})")),
            });
        }
    }
    if let Some(since) = &bounds.since {
        queries.push(ExclusionQuery {
            reason: ExclusionReason::JoinedLater,
            detail: format!("joined ({}) on or after {as_of}", since.0),
            sql: format!(
                "SELECT count(*) FROM {table} WHERE {key} IS NOT NULL AND {} AND NOT {}",
                valid(bounds, as_of),
                started(since, as_of)
            ),
        });
    }
    queries
}

/// A source whose keys are customers.
#[derive(Debug, Clone)]
pub struct KeySource {
    /// The source.
    pub source: String,
    /// Its column holding the customer key.
    pub join_key: String,
    /// Its time column, when it has one: rows at or after the as-of date are left out.
    pub time: Option<TemporalColumn>,
}

/// Every key of `sources` (null keys left out), with whether it was seen before the as-of date.
fn keys_union(sources: &[KeySource], as_of: NaiveDate) -> String {
    sources
        .iter()
        .map(|s| {
            // Null for a row without a time: not known to be before the as-of date.
            let before = match &s.time {
                Some((column, data_type)) => {
                    format!("{} < {}", ident(column), temporal_literal(data_type, as_of))
                }
                None => "TRUE".into(),
            };
            format!(
                "SELECT {} AS k, {before} AS before FROM {}",
                ident(&s.join_key),
                ident(&s.source)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The customers as the distinct keys of `sources` in rows before the as-of date.
pub fn keys_sql(sources: &[KeySource], key: &str, as_of: NaiveDate) -> String {
    // A GROUP BY rather than DISTINCT over a UNION: the same plan, but it can spill.
    format!(
        "SELECT k AS {} FROM ({}) WHERE k IS NOT NULL AND before GROUP BY k",
        ident(key),
        keys_union(sources, as_of)
    )
}

/// The query counting keys seen only on or after the as-of date (when any source has a time
/// column).
pub fn keys_exclusions(sources: &[KeySource], as_of: NaiveDate) -> Vec<ExclusionQuery> {
    if sources.iter().all(|s| s.time.is_none()) {
        return Vec::new();
    }
    let names: Vec<&str> = sources.iter().map(|s| s.source.as_str()).collect();
    vec![ExclusionQuery {
        reason: ExclusionReason::OnlyLaterRows,
        detail: format!(
            "their keys appear in {} only on or after {as_of} (or in rows without a time)",
            names.join(", ")
        ),
        sql: format!(
            "SELECT count(*) FROM (SELECT k FROM ({}) WHERE k IS NOT NULL GROUP BY k \
             HAVING NOT COALESCE(bool_or(before), FALSE))",
            keys_union(sources, as_of)
        ),
    }]
}

/// Count the customers each exclusion query leaves out.
pub async fn count_exclusions(
    ctx: &SessionContext,
    queries: &[ExclusionQuery],
) -> Result<Vec<Exclusion>> {
    let mut exclusions = Vec::with_capacity(queries.len());
    for query in queries {
        let customers = stats::query_rows(ctx, &query.sql)
            .await?
            .first()
            .and_then(|row| row.first())
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| Error::Internal(format!("no count for {:?}", query.reason)))?;
        exclusions.push(Exclusion {
            reason: query.reason,
            detail: query.detail.clone(),
            customers,
        });
    }
    Ok(exclusions)
}

/// The customers in `table` must have unique keys that are never null, so every customer
/// appears exactly once. Returns the number of customers.
pub async fn check_unique(ctx: &SessionContext, pipeline: &Pipeline, table: &str) -> Result<u64> {
    let entity = &pipeline.entity;
    let key = ident(&entity.key);
    let table = ident(table);
    let counts = |sql: String| async move {
        let row = stats::query_rows(ctx, &sql)
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("count returned no row".into()))?;
        row.iter()
            .map(|count| {
                count
                    .as_u64()
                    .ok_or_else(|| Error::Internal("count is not a number".into()))
            })
            .collect::<Result<Vec<u64>>>()
    };
    let totals = counts(format!("SELECT count(*), count({key}) FROM {table}")).await?;
    let (rows, non_null) = match totals[..] {
        [rows, non_null] => (rows, non_null),
        _ => return Err(Error::Internal("expected two counts".into())),
    };
    let repeated = match entity.origin {
        // Keys taken from event rows are grouped already: distinct and never null.
        EntityOrigin::Keys(_) => 0,
        // Repeated keys are counted with a GROUP BY, which can spill, rather than with
        // count(DISTINCT key), whose hash set of every key cannot.
        EntityOrigin::Table(_) => counts(format!(
            "SELECT COALESCE(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {table} \
             WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(*) > 1)"
        ))
        .await?
        .first()
        .copied()
        .ok_or_else(|| Error::Internal("expected a count".into()))?,
    };
    let distinct = non_null - repeated.min(non_null);
    let source_error = |message: String, help: &str| Error::Source {
        source_name: entity.describe(),
        message,
        help: Some(help.to_string()),
    };
    let bounded = entity.since.is_some()
        || entity
            .table()
            .is_some_and(|source| pipeline.sources[source].validity.is_some());
    if rows == 0 {
        let (message, help) = if bounded {
            (
                "no customers as of the as-of date: every row is left out by its validity or join date",
                "check the as-of date, and the validity and `since` columns",
            )
        } else if matches!(entity.origin, EntityOrigin::Keys(_)) {
            (
                "no customers as of the as-of date: no row before it holds a key (the sources are empty, or all their keyed rows are on or after the as-of date)",
                "check the as-of date and the exports; a customer exists from its first row before the as-of date",
            )
        } else {
            (
                "the entity source has no rows, so there are no customers to segment",
                "check that the export is complete, or point `--source` at the right file",
            )
        };
        return Err(source_error(message.into(), help));
    }
    if non_null < rows {
        return Err(source_error(
            format!(
                "{} customers have no `{}` (null key)",
                rows - non_null,
                entity.key
            ),
            "every customer needs a key; fix the export or filter those rows out upstream",
        ));
    }
    if distinct < non_null {
        let sql = format!(
            "SELECT CAST({key} AS VARCHAR) AS duplicate FROM {table} GROUP BY {key} HAVING count(*) > 1 ORDER BY {key} LIMIT 5"
        );
        let examples: Vec<String> = ctx
            .sql(&sql)
            .await?
            .collect()
            .await?
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(move |r| stats::scalar(b.column(0).as_ref(), r)))
            .map(|v| v.map(|v| v.as_str().unwrap_or_default().to_string()))
            .collect::<Result<_>>()?;
        let validity = entity
            .table()
            .and_then(|source| pipeline.sources[source].validity.as_ref());
        let (what, help) = if validity.is_some_and(|v| v.to.is_some()) {
            (
                " among the rows valid at the as-of date",
                "each customer needs exactly one row valid at any date: the rows' `valid_from`/`valid_to` ranges overlap",
            )
        } else if validity.is_some() {
            (
                " among the rows valid at the as-of date",
                "without `valid_to` every row counts from its `valid_from` on, so a customer with several rows repeats: declare `valid_to`, the column where each row stops being valid",
            )
        } else {
            (
                "",
                "the entity source must list each customer once; deduplicate the export, or take the customers from its keys with `distinct: true`",
            )
        };
        return Err(source_error(
            format!(
                "{} a `{}` already seen{what} (e.g. {})",
                match non_null - distinct {
                    1 => "1 row repeats".to_string(),
                    n => format!("{n} rows repeat"),
                },
                entity.key,
                examples.join(", ")
            ),
            help,
        ));
    }
    Ok(rows)
}
