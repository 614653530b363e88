//! Cohorts and retention (`cohorts:`), and the value figures lifetime value needs
//! (`lifetime_value:`), measured over the written assignments joined to the event source.
//!
//! A cohort is the calendar period (month or quarter) of a customer's `by` date. A customer is
//! active at a period's end E when the `active` aggregate feature, recomputed as of E (rows of
//! its source before E, within its window, passing its `where`), is above 0 or true. Period ends
//! are few (at most twice `periods`), so events are first cut to the cohorts' customers and the
//! time span the ends need, and then range-joined to the ends. A count aggregate (`count(*)`,
//! `count(v)`, `count(DISTINCT v)`) is above 0 exactly when a counted row exists, so for those
//! the events are reduced to distinct (customer, day) before the range join.

use chrono::{Datelike, Days, NaiveDate};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use super::aggregate::counted_value;
use super::sources::table_schema;
use super::stats::query_rows;
use super::temporal::temporal_literal;
use crate::error::{Error, Result};
use crate::pipeline::model::CohortPeriod;
use crate::pipeline::sql::ident;
use crate::pipeline::{FeatureDefinition, Pipeline};

/// One cohort: the customers whose `by` falls in one calendar period, and how many of them were
/// active at the end of each later period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRow {
    /// The period's label: `2026-01` for a month, `2026-Q1` for a quarter.
    pub cohort: String,
    /// The period's first day.
    pub start: NaiveDate,
    /// Customers in the cohort.
    pub customers: u64,
    /// For k = 1, 2, ...: customers active at the end of the k-th period after the cohort's own;
    /// null where that end is after the as-of date.
    pub active: Vec<Option<u64>>,
    /// The same as shares of the cohort's customers; null where not observed or the cohort is
    /// empty.
    pub retention: Vec<Option<f64>>,
}

/// The cohort table of one segment, or of all customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortTable {
    /// The segment's id; null for all customers.
    pub segment: Option<String>,
    /// Customers in all cohorts together.
    pub customers: u64,
    /// The cohorts, oldest first.
    pub cohorts: Vec<CohortRow>,
}

/// A per-customer figure summarised over a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Customers with a value.
    pub customers: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// Total.
    pub total: Option<f64>,
}

/// The value figures of one segment (or of all customers) that lifetime value builds on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentValue {
    /// The segment's id; null for all customers.
    pub segment: Option<String>,
    /// Value to date per customer.
    pub value: Summary,
    /// Value to date divided by the customer's periods since `by` (at least 1); customers
    /// without a `by` date are left out.
    pub per_period: Summary,
}

/// What the cohorts stage measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohorts {
    /// The date feature cohorts are formed by.
    pub by: String,
    /// The calendar period.
    pub period: CohortPeriod,
    /// The aggregate feature that says who is active.
    pub active: String,
    /// Cohorts and retention steps.
    pub periods: u32,
    /// All customers first, then every declared segment in rule order.
    pub tables: Vec<CohortTable>,
    /// With `lifetime_value`: the value figures, all customers first, then every segment
    /// (written in `cohorts.json` as the lifetime value's, not twice).
    #[serde(skip)]
    pub value: Vec<SegmentValue>,
}

/// Column names of the intermediate tables, kept clear of users' column names.
const CUSTOMER: &str = "__segflow_customer";
const SEGMENT: &str = "__segflow_segment";
const COHORT: &str = "__segflow_cohort";
const END: &str = "__segflow_end";
const END_INDEX: &str = "__segflow_end_index";
const WINDOW_START: &str = "__segflow_window_start";
const DAY: &str = "__segflow_day";

/// A calendar period as a running number: months or quarters since year 0.
fn index_of(period: CohortPeriod, date: NaiveDate) -> i64 {
    let year = i64::from(date.year());
    let month0 = i64::from(date.month0());
    match period {
        CohortPeriod::Month => year * 12 + month0,
        CohortPeriod::Quarter => year * 4 + month0 / 3,
    }
}

/// The first day of period number `index`.
fn start_of(period: CohortPeriod, index: i64) -> Option<NaiveDate> {
    let (per_year, months) = match period {
        CohortPeriod::Month => (12, 1),
        CohortPeriod::Quarter => (4, 3),
    };
    let year = i32::try_from(index.div_euclid(per_year)).ok()?;
    let month = u32::try_from(index.rem_euclid(per_year) * months + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// The label of period number `index`.
fn label_of(period: CohortPeriod, index: i64) -> String {
    match (period, start_of(period, index)) {
        (CohortPeriod::Month, Some(start)) => start.format("%Y-%m").to_string(),
        (CohortPeriod::Quarter, Some(start)) => {
            format!("{}-Q{}", start.year(), start.month0() / 3 + 1)
        }
        (_, None) => index.to_string(),
    }
}

/// SQL for the period number of the date or timestamp `column`.
fn index_sql(period: CohortPeriod, column: &str) -> String {
    let year = format!("CAST(date_part('year', {column}) AS BIGINT)");
    let month0 = format!("(CAST(date_part('month', {column}) AS BIGINT) - 1)");
    match period {
        CohortPeriod::Month => format!("({year} * 12 + {month0})"),
        CohortPeriod::Quarter => format!("({year} * 4 + {month0} / 3)"),
    }
}

/// The calendar of a cohort table: which periods are cohorts and which period ends are observed.
#[derive(Debug, Clone, PartialEq)]
struct Calendar {
    period: CohortPeriod,
    /// Number of the oldest cohort's period.
    first: i64,
    /// Cohorts (and retention steps).
    periods: u32,
    /// Numbers of the periods whose first day (the previous period's end) is on or before the
    /// as-of date: the ends that can be observed.
    observed_ends: Vec<i64>,
}

impl Calendar {
    /// The last `periods` periods up to `as_of` (the newest holds the day before it: rows on the
    /// as-of date are not observed).
    fn new(period: CohortPeriod, periods: u32, as_of: NaiveDate) -> Option<Calendar> {
        let last_day = as_of.checked_sub_days(Days::new(1))?;
        let last = index_of(period, last_day);
        let first = last - i64::from(periods) + 1;
        // Cohort i's k-th end is the first day of period first + i + k + 1 (k >= 1).
        let observed_ends = (first + 2..=last + 1)
            .filter(|&j| start_of(period, j).is_some_and(|start| start <= as_of))
            .collect();
        Some(Calendar {
            period,
            first,
            periods,
            observed_ends,
        })
    }

    fn start(&self, index: i64) -> Result<NaiveDate> {
        start_of(self.period, index)
            .ok_or_else(|| Error::Internal(format!("period {index} has no calendar date")))
    }
}

/// Measure the cohorts and value figures of `pipeline` over the assignments registered as
/// `assignments`, with the sources registered in `ctx`. `None` without `cohorts:`.
pub async fn measure(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    assignments: &str,
    as_of: NaiveDate,
) -> Result<Option<Cohorts>> {
    let Some(spec) = &pipeline.spec.cohorts else {
        return Ok(None);
    };
    let Some((calendar, counts)) = count(ctx, pipeline, assignments, as_of).await? else {
        return Ok(None);
    };
    let groups: Vec<Option<&str>> = std::iter::once(None)
        .chain(pipeline.segments.iter().map(|s| Some(s.id.as_str())))
        .collect();
    let tables = groups
        .iter()
        .map(|segment| counts.table(&calendar, *segment))
        .collect();
    let value = match &pipeline.spec.lifetime_value {
        Some(ltv) => value_figures(ctx, pipeline, assignments, &ltv.value, &calendar).await?,
        None => Vec::new(),
    };
    Ok(Some(Cohorts {
        by: spec.by.clone(),
        period: spec.period,
        active: spec.active.clone(),
        periods: spec.periods,
        tables,
        value,
    }))
}

/// The cohort tables of the groups named `groups` in the `segment` column of `table` (which
/// also holds the key and the `by` feature), e.g. the ideal customer profile and everyone else.
/// Empty without `cohorts:`.
pub async fn tables_of(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    table: &str,
    as_of: NaiveDate,
    groups: &[&str],
) -> Result<Vec<CohortTable>> {
    let Some((calendar, counts)) = count(ctx, pipeline, table, as_of).await? else {
        return Ok(Vec::new());
    };
    Ok(groups
        .iter()
        .map(|group| counts.table(&calendar, Some(group)))
        .collect())
}

/// Customers per (segment, cohort) and active customers per (segment, cohort, period end).
async fn count(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    assignments: &str,
    as_of: NaiveDate,
) -> Result<Option<(Calendar, Counts)>> {
    let Some(spec) = &pipeline.spec.cohorts else {
        return Ok(None);
    };
    let calendar = Calendar::new(spec.period, spec.periods, as_of)
        .ok_or_else(|| Error::Internal(format!("no calendar before {as_of}")))?;
    let assigned = table_schema(ctx, assignments).await?;
    let by_type = assigned.field_with_name(&spec.by)?.data_type().clone();
    let key = ident(&pipeline.entity.key);
    let by = ident(&spec.by);
    let cohorts_sql = format!(
        "SELECT {key} AS {CUSTOMER}, \"segment\" AS {SEGMENT}, {} AS {COHORT} FROM {} WHERE {by} >= {} AND {by} < {}",
        index_sql(calendar.period, &by),
        ident(assignments),
        temporal_literal(&by_type, calendar.start(calendar.first)?),
        temporal_literal(&by_type, as_of),
    );
    let sizes = query_rows(
        ctx,
        &format!(
            "SELECT {SEGMENT}, {COHORT}, count(*) FROM ({cohorts_sql}) GROUP BY {SEGMENT}, {COHORT}"
        ),
    )
    .await?;
    let active = match active_sql(ctx, pipeline, &calendar, &cohorts_sql).await? {
        Some(active_sql) => {
            query_rows(
                ctx,
                &format!(
                    "SELECT c.{SEGMENT}, c.{COHORT}, a.{END_INDEX}, count(*) FROM ({cohorts_sql}) AS c JOIN ({active_sql}) AS a ON c.{CUSTOMER} = a.{CUSTOMER} GROUP BY c.{SEGMENT}, c.{COHORT}, a.{END_INDEX}"
                ),
            )
            .await?
        }
        None => Vec::new(),
    };
    Ok(Some((calendar, Counts::from_rows(&sizes, &active))))
}

/// The SQL of the (customer, end index) pairs where the customer of a cohort is active at that
/// end; `None` when no end is observed yet.
async fn active_sql(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    calendar: &Calendar,
    cohorts_sql: &str,
) -> Result<Option<String>> {
    let Some(spec) = &pipeline.spec.cohorts else {
        return Ok(None);
    };
    let feature = pipeline.features.iter().find(|f| f.name == spec.active);
    let Some(FeatureDefinition::Aggregate(aggregate)) = feature.map(|f| &f.definition) else {
        return Err(Error::Internal(format!(
            "cohorts.active `{}` is not an aggregate feature",
            spec.active
        )));
    };
    let source = &pipeline.sources[&aggregate.source];
    let time = source.time_column.as_deref().ok_or_else(|| {
        Error::Internal(format!("source `{}` has no time column", aggregate.source))
    })?;
    let (Some(&first_end), Some(&last_end)) = (
        calendar.observed_ends.first(),
        calendar.observed_ends.last(),
    ) else {
        return Ok(None);
    };
    let time_type = table_schema(ctx, &aggregate.source)
        .await?
        .field_with_name(time)?
        .data_type()
        .clone();
    let window = aggregate.window_days.map(|days| Days::new(u64::from(days)));
    let window_start = |end: NaiveDate| match window {
        Some(days) => end.checked_sub_days(days),
        None => None,
    };
    // The events any end can see: before the last end, and (with a window) not before the
    // window of the first.
    let time_column = ident(time);
    let mut conditions = vec![format!(
        "{time_column} < {}",
        temporal_literal(&time_type, calendar.start(last_end)?)
    )];
    if let Some(start) = window_start(calendar.start(first_end)?) {
        conditions.push(format!(
            "{time_column} >= {}",
            temporal_literal(&time_type, start)
        ));
    }
    if let Some(filter) = &aggregate.filter {
        conditions.push(format!("({filter})"));
    }
    conditions.push(format!(
        "{} IN (SELECT {CUSTOMER} FROM ({cohorts_sql}))",
        ident(&source.join_key)
    ));
    let counted = counted_value(&aggregate.expr);
    if let Some(Some(value)) = &counted {
        conditions.push(format!("({value}) IS NOT NULL"));
    }
    let ends_sql = |literal: &dyn Fn(NaiveDate) -> String| -> Result<String> {
        let mut ends = Vec::new();
        for &index in &calendar.observed_ends {
            let end = calendar.start(index)?;
            let start = window_start(end).map_or("NULL".to_string(), literal);
            ends.push(format!("({index}, {}, {start})", literal(end)));
        }
        Ok(format!(
            "SELECT column1 AS {END_INDEX}, column2 AS {END}, column3 AS {WINDOW_START} FROM (VALUES {})",
            ends.join(", ")
        ))
    };
    let in_window = |at: &str| {
        let upper = format!("{at} < e.{END}");
        match window {
            Some(_) => format!("{upper} AND {at} >= e.{WINDOW_START}"),
            None => upper,
        }
    };
    let from = format!("FROM {} AS s", ident(&aggregate.source));
    let filter = conditions.join(" AND ");
    let events = format!("{from} WHERE {filter}");
    let key = ident(&source.join_key);
    Ok(Some(match counted {
        Some(_) => {
            // Ends are midnights: a row before E is a row of a day before E.
            let days = format!(
                "SELECT DISTINCT {key} AS {CUSTOMER}, CAST({time_column} AS DATE) AS {DAY} {events}"
            );
            let day_ends = ends_sql(&|date| format!("DATE '{date}'"))?;
            format!(
                "SELECT DISTINCT d.{CUSTOMER}, e.{END_INDEX} FROM ({days}) AS d JOIN ({day_ends}) AS e ON {}",
                in_window(&format!("d.{DAY}"))
            )
        }
        None => {
            let positive = is_positive(ctx, &aggregate.expr, &events).await?;
            let ends = ends_sql(&|date| temporal_literal(&time_type, date))?;
            format!(
                "SELECT s.{key} AS {CUSTOMER}, e.{END_INDEX} {from} CROSS JOIN ({ends}) AS e WHERE {filter} AND {} GROUP BY s.{key}, e.{END_INDEX} HAVING {positive}",
                in_window(&format!("s.{time_column}"))
            )
        }
    }))
}

/// `expr > 0`, or `expr` itself when it is true or false.
async fn is_positive(ctx: &SessionContext, expr: &str, events: &str) -> Result<String> {
    let frame = ctx.sql(&format!("SELECT {expr} AS v {events}")).await?;
    let boolean = frame
        .schema()
        .field(0)
        .data_type()
        .eq(&datafusion::arrow::datatypes::DataType::Boolean);
    Ok(if boolean {
        format!("coalesce({expr}, false)")
    } else {
        format!("coalesce(({expr}) > 0, false)")
    })
}

/// Cohort sizes and active counts as queried: (segment, cohort) and (segment, cohort, end).
struct Counts {
    sizes: Vec<(Option<String>, i64, u64)>,
    active: Vec<(Option<String>, i64, i64, u64)>,
}

impl Counts {
    fn from_rows(sizes: &[Vec<serde_json::Value>], active: &[Vec<serde_json::Value>]) -> Counts {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let int = |v: &serde_json::Value| v.as_i64().unwrap_or_default();
        let count = |v: &serde_json::Value| v.as_u64().unwrap_or_default();
        Counts {
            sizes: sizes
                .iter()
                .map(|r| (text(&r[0]), int(&r[1]), count(&r[2])))
                .collect(),
            active: active
                .iter()
                .map(|r| (text(&r[0]), int(&r[1]), int(&r[2]), count(&r[3])))
                .collect(),
        }
    }

    /// The table of `segment`, or of all customers when `None`.
    fn table(&self, calendar: &Calendar, segment: Option<&str>) -> CohortTable {
        let of = |s: &Option<String>| segment.is_none() || s.as_deref() == segment;
        let cohorts: Vec<CohortRow> = (0..i64::from(calendar.periods))
            .map(|i| {
                let cohort = calendar.first + i;
                let customers: u64 = self
                    .sizes
                    .iter()
                    .filter(|(s, c, _)| of(s) && *c == cohort)
                    .map(|r| r.2)
                    .sum();
                let active: Vec<Option<u64>> = (1..=i64::from(calendar.periods))
                    .map(|k| {
                        let end = cohort + k + 1;
                        calendar.observed_ends.contains(&end).then(|| {
                            self.active
                                .iter()
                                .filter(|(s, c, e, _)| of(s) && *c == cohort && *e == end)
                                .map(|r| r.3)
                                .sum()
                        })
                    })
                    .collect();
                let retention = active
                    .iter()
                    .map(|a| {
                        a.filter(|_| customers > 0)
                            .map(|a| a as f64 / customers as f64)
                    })
                    .collect();
                CohortRow {
                    cohort: label_of(calendar.period, cohort),
                    start: start_of(calendar.period, cohort).unwrap_or_default(),
                    customers,
                    active,
                    retention,
                }
            })
            .collect();
        CohortTable {
            segment: segment.map(str::to_string),
            customers: cohorts.iter().map(|c| c.customers).sum(),
            cohorts,
        }
    }
}

/// Value to date and value per period, summarised for all customers and per segment.
async fn value_figures(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    assignments: &str,
    value: &str,
    calendar: &Calendar,
) -> Result<Vec<SegmentValue>> {
    let Some(spec) = &pipeline.spec.cohorts else {
        return Ok(Vec::new());
    };
    let last = calendar.first + i64::from(calendar.periods) - 1;
    let value = format!("CAST({} AS DOUBLE)", ident(value));
    // Periods from the one holding `by` through the one holding the last observed day, both
    // counted: at least 1.
    let periods = format!(
        "greatest({last} - {} + 1, 1)",
        index_sql(calendar.period, &ident(&spec.by))
    );
    // `greatest` skips nulls, so a customer without `by` is left out explicitly.
    let per_period = format!(
        "CASE WHEN {} IS NULL THEN NULL ELSE {value} / CAST({periods} AS DOUBLE) END",
        ident(&spec.by)
    );
    let figures =
        |column: &str| format!("count({column}), avg({column}), median({column}), sum({column})");
    let columns = format!("{}, {}", figures(&value), figures(&per_period));
    let from = ident(assignments);
    let overall = query_rows(ctx, &format!("SELECT {columns} FROM {from}")).await?;
    let grouped = query_rows(
        ctx,
        &format!("SELECT \"segment\", {columns} FROM {from} GROUP BY \"segment\""),
    )
    .await?;
    let mut figures_of = vec![(None, overall.into_iter().next().unwrap_or_default())];
    for segment in &pipeline.segments {
        let row = grouped
            .iter()
            .find(|r| r[0].as_str() == Some(segment.id.as_str()))
            .map(|r| r[1..].to_vec())
            .unwrap_or_default();
        figures_of.push((Some(segment.id.clone()), row));
    }
    Ok(figures_of
        .into_iter()
        .map(|(segment, row)| {
            let summary = |at: usize| {
                let number = |i: usize| row.get(at + i).and_then(serde_json::Value::as_f64);
                Summary {
                    customers: row.get(at).and_then(serde_json::Value::as_u64).unwrap_or(0),
                    mean: number(1),
                    median: number(2),
                    total: number(3),
                }
            };
            SegmentValue {
                segment,
                value: summary(0),
                per_period: summary(4),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn monthly_cohorts_end_with_the_month_before_the_as_of_date() {
        let calendar = Calendar::new(CohortPeriod::Month, 3, date("2026-10-01")).expect("calendar");
        assert_eq!(label_of(CohortPeriod::Month, calendar.first), "2026-07");
        // July's first step ends with August (as of 1 September); the end of September is the
        // as-of date itself, so it is observed.
        let ends: Vec<String> = calendar
            .observed_ends
            .iter()
            .map(|&j| start_of(CohortPeriod::Month, j).expect("date").to_string())
            .collect();
        assert_eq!(ends, ["2026-09-01", "2026-10-01"]);
    }

    #[test]
    fn quarters_are_labelled_and_numbered_across_years() {
        let q = index_of(CohortPeriod::Quarter, date("2025-11-30"));
        assert_eq!(label_of(CohortPeriod::Quarter, q), "2025-Q4");
        assert_eq!(
            start_of(CohortPeriod::Quarter, q + 1),
            Some(date("2026-01-01"))
        );
        let calendar =
            Calendar::new(CohortPeriod::Quarter, 2, date("2026-08-15")).expect("calendar");
        assert_eq!(label_of(CohortPeriod::Quarter, calendar.first), "2026-Q2");
        assert!(calendar.observed_ends.is_empty(), "{calendar:?}");
    }
}
