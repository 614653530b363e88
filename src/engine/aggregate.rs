//! Shapes of the per-customer aggregate queries, chosen so that no customer-level group keeps a
//! hash set: DataFusion's `count(DISTINCT x)` holds one set per customer (about 9 GB for 1M
//! customers and two distinct counts, see BENCHMARKS.md), while a GROUP BY over (customer, x)
//! followed by a GROUP BY over the customer holds only flat hash tables, which also spill.
//!
//! One group of aggregate features (same source, window and filter) becomes:
//! - for every `count(DISTINCT v)`, a two-level query: first per (key, v), then per key,
//!   counting the non-null `v`s;
//! - `count(*)`, `count(x)`, `min(x)` and `max(x)` ride along in the first of those two-level
//!   queries (their partial results combine exactly: sum of counts, min of mins, max of maxes);
//! - every other aggregate stays in one plain GROUP BY key, as the user wrote it.
//!
//! Distinct days of the time column in a window of at most [`MAX_BITMAP_DAYS`] days
//! (`count(DISTINCT CAST(ts AS DATE))`, the classic "active days") need no set and no second
//! level at all: each customer keeps a few 62-bit bitmaps of the window's days (`bit_or`), and
//! the count is the number of bits set. That is one plain GROUP BY with a few integers per
//! customer.
//!
//! Reading the source once per query was measured faster than one scan with FILTER aggregates
//! or GROUPING SETS (../shared/design/SCALE.md): decoding a few Parquet columns costs less than
//! the bigger hash tables a shared scan needs.

use std::fmt::Write as _;

use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::pipeline::sql::ident;

/// Longest window whose distinct days are counted with bitmaps (six 62-bit words).
pub const MAX_BITMAP_DAYS: u32 = 366;

/// Days per bitmap word: 62 keeps clear of the sign bit.
const BITS_PER_WORD: u32 = 62;

/// A group's time window: the source's time column, the window's first day and its length.
#[derive(Debug, Clone)]
pub struct DayWindow {
    /// The time column, as DataFusion resolves it.
    pub column: String,
    /// The first day in the window.
    pub start: chrono::NaiveDate,
    /// Days in the window.
    pub days: u32,
}

/// `count(DISTINCT CAST(<time column> AS DATE))` over a short window as a sum of bit counts of
/// per-customer day bitmaps.
fn distinct_days(sql: &str, window: &DayWindow) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType};
    if window.days > MAX_BITMAP_DAYS {
        return None;
    }
    let Shape::DistinctCount { value } = shape_of(sql) else {
        return None;
    };
    let expr = Parser::new(&GenericDialect {})
        .try_with_sql(&value)
        .and_then(|mut parser| parser.parse_expr())
        .ok()?;
    let Expr::Cast {
        kind: CastKind::Cast,
        expr: inner,
        data_type: DataType::Date,
        format: None,
        ..
    } = &expr
    else {
        return None;
    };
    let Expr::Identifier(column) = inner.as_ref() else {
        return None;
    };
    if crate::pipeline::sql::resolved_name(column) != window.column {
        return None;
    }
    let day = format!("({value} - DATE '{}')", window.start);
    let words: Vec<String> = (0..window.days.div_ceil(BITS_PER_WORD))
        .map(|word| {
            let low = word * BITS_PER_WORD;
            let high = low + BITS_PER_WORD;
            format!(
                "COALESCE(bit_count(bit_or(CASE WHEN {day} >= {low} AND {day} < {high} \
                 THEN CAST(1 AS BIGINT) << ({day} - {low}) END)), 0)"
            )
        })
        .collect();
    Some(words.join(" + "))
}

/// Column name of the customer key inside aggregate subqueries.
pub const JOIN_KEY: &str = "__segflow_key";

/// One aggregate feature of a group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Feature name (the output column).
    pub name: String,
    /// The aggregate expression as written.
    pub expr: String,
}

/// How one aggregate expression is computed.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// `count(DISTINCT value)`.
    DistinctCount { value: String },
    /// An aggregate whose partial results per (key, v) combine exactly.
    Combinable {
        partial: String,
        combine: &'static str,
    },
    /// Anything else: computed as written in a plain GROUP BY.
    Plain,
}

/// For a count (`count(*)`, `count(v)`, `count(DISTINCT v)`), what a row must have to be
/// counted: `Some(None)` any row, `Some(Some(v))` a non-null `v`. Such an aggregate is above 0
/// exactly when one counted row exists, so "is it above 0" needs no per-customer set.
pub(super) fn counted_value(sql: &str) -> Option<Option<String>> {
    match shape_of(sql) {
        Shape::DistinctCount { value } => Some(Some(value)),
        Shape::Combinable { partial, .. } if partial == "count(*)" => Some(None),
        Shape::Combinable { partial, .. } => partial
            .strip_prefix("count(")
            .and_then(|rest| rest.strip_suffix(')'))
            .map(|value| Some(value.to_string())),
        Shape::Plain => None,
    }
}

fn shape_of(sql: &str) -> Shape {
    let Ok(expr) = Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
    else {
        return Shape::Plain;
    };
    let Expr::Function(function) = &expr else {
        return Shape::Plain;
    };
    if function.over.is_some()
        || function.filter.is_some()
        || function.null_treatment.is_some()
        || !function.within_group.is_empty()
        || function.name.0.len() != 1
    {
        return Shape::Plain;
    }
    let FunctionArguments::List(list) = &function.args else {
        return Shape::Plain;
    };
    if !list.clauses.is_empty() || list.args.len() != 1 {
        return Shape::Plain;
    }
    let name = function.name.to_string().to_ascii_lowercase();
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let argument = match &list.args[0] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Some(arg.to_string()),
        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => None,
        _ => return Shape::Plain,
    };
    match (name.as_str(), distinct, argument) {
        ("count", true, Some(value)) => Shape::DistinctCount { value },
        ("count", false, None) => Shape::Combinable {
            partial: "count(*)".into(),
            combine: "sum",
        },
        ("count", false, Some(arg)) => Shape::Combinable {
            partial: format!("count({arg})"),
            combine: "sum",
        },
        ("min" | "max", false, Some(arg)) => Shape::Combinable {
            partial: format!("{name}({arg})"),
            combine: if name == "min" { "min" } else { "max" },
        },
        _ => Shape::Plain,
    }
}

/// One query of a group: the features it yields and its SQL, which selects the key as
/// [`JOIN_KEY`] and one column per feature.
#[derive(Debug, Clone)]
pub struct GroupQuery {
    /// Features it yields.
    pub features: Vec<String>,
    /// The SELECT statement.
    pub sql: String,
    /// Whether it is the two-level shape.
    pub two_level: bool,
}

/// `max(CAST(t AS DATE))` as `CAST(max(t) AS DATE)` (likewise `min`) when `t` is one of the
/// `temporal` columns: truncating to the date is monotone, so the result is the same, and one cast
/// per customer replaces one per row.
fn cast_after_aggregate(sql: &str, temporal: &[String]) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType};
    let expr = Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .ok()?;
    let Expr::Function(function) = &expr else {
        return None;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    if !(name == "max" || name == "min")
        || function.over.is_some()
        || function.filter.is_some()
        || !function.within_group.is_empty()
        || !list.clauses.is_empty()
        || list.duplicate_treatment.is_some()
        || list.args.len() != 1
    {
        return None;
    }
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Cast {
        kind: CastKind::Cast,
        expr: inner,
        data_type: DataType::Date,
        format: None,
        ..
    })) = &list.args[0]
    else {
        return None;
    };
    let Expr::Identifier(column) = inner.as_ref() else {
        return None;
    };
    let column = crate::pipeline::sql::resolved_name(column);
    temporal
        .contains(&column)
        .then(|| format!("CAST({name}({inner}) AS DATE)"))
}

/// The queries computing `members`, all over `FROM source WHERE conditions` grouped by
/// `key`. `from_where` is `FROM ... [WHERE ...]`; `temporal` names the source's date and
/// timestamp columns; `window` is the group's time window, when it has one. With `apart`, each
/// plain aggregate gets a query of its own: DataFusion names `max(CAST(t AS DATE))` and
/// `max(t)` alike, so the two cannot share one GROUP BY.
pub fn group_queries(
    key: &str,
    from_where: &str,
    members: &[Member],
    temporal: &[String],
    window: Option<&DayWindow>,
    apart: bool,
) -> Vec<GroupQuery> {
    let members: Vec<Member> = members
        .iter()
        .map(|m| Member {
            name: m.name.clone(),
            expr: window
                .and_then(|w| distinct_days(&m.expr, w))
                .or_else(|| cast_after_aggregate(&m.expr, temporal))
                .unwrap_or_else(|| m.expr.clone()),
        })
        .collect();
    let members = members.as_slice();
    let shapes: Vec<Shape> = members.iter().map(|m| shape_of(&m.expr)).collect();
    let key = ident(key);
    let mut queries = Vec::new();
    let mut rides_along: Vec<usize> = shapes
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Shape::Combinable { .. }))
        .map(|(i, _)| i)
        .collect();
    let has_distinct = shapes
        .iter()
        .any(|s| matches!(s, Shape::DistinctCount { .. }));
    if !has_distinct {
        rides_along.clear();
    }
    for (i, shape) in shapes.iter().enumerate() {
        let Shape::DistinctCount { value } = shape else {
            continue;
        };
        let mut inner = format!("SELECT {key} AS k, ({value}) AS v");
        let mut outer = format!(
            "SELECT k AS {}, count(v) AS {}",
            ident(JOIN_KEY),
            ident(&members[i].name)
        );
        let mut features = vec![members[i].name.clone()];
        for (p, &j) in rides_along.iter().enumerate() {
            let Shape::Combinable { partial, combine } = &shapes[j] else {
                continue;
            };
            let _ = write!(inner, ", {partial} AS p{p}");
            let _ = write!(outer, ", {combine}(p{p}) AS {}", ident(&members[j].name));
            features.push(members[j].name.clone());
        }
        rides_along.clear();
        queries.push(GroupQuery {
            features,
            sql: format!(
                "{outer} FROM ({inner} {from_where} GROUP BY {key}, ({value})) GROUP BY k"
            ),
            two_level: true,
        });
    }
    let plain: Vec<usize> = shapes
        .iter()
        .enumerate()
        .filter(|(_, s)| match s {
            Shape::Plain => true,
            Shape::Combinable { .. } => !has_distinct,
            Shape::DistinctCount { .. } => false,
        })
        .map(|(i, _)| i)
        .collect();
    let together: Vec<&[usize]> = if apart {
        plain.chunks(1).collect()
    } else {
        vec![&plain]
    };
    for plain in together.into_iter().filter(|p| !p.is_empty()) {
        let columns: Vec<String> = plain
            .iter()
            .map(|&i| format!("({}) AS {}", members[i].expr, ident(&members[i].name)))
            .collect();
        queries.push(GroupQuery {
            features: plain.iter().map(|&i| members[i].name.clone()).collect(),
            sql: format!(
                "SELECT {key} AS {}, {} {from_where} GROUP BY {key}",
                ident(JOIN_KEY),
                columns.join(", ")
            ),
            two_level: false,
        });
    }
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_days_of_a_short_window_are_bitmaps() {
        let window = DayWindow {
            column: "ts".into(),
            start: chrono::NaiveDate::from_ymd_opt(2026, 7, 3).unwrap(),
            days: 90,
        };
        let members = [
            member("days", "count(DISTINCT CAST(ts AS DATE))"),
            member("events", "count(*)"),
        ];
        let queries = group_queries("customer_id", "FROM e", &members, &[], Some(&window), false);
        assert_eq!(queries.len(), 1, "one plain query: {queries:?}");
        let sql = &queries[0].sql;
        assert!(!queries[0].two_level);
        assert_eq!(sql.matches("bit_count(bit_or(").count(), 2, "{sql}");
        assert!(
            sql.contains("THEN CAST(1 AS BIGINT) << ((CAST(ts AS DATE) - DATE '2026-07-03') - 62)"),
            "{sql}"
        );
        // Other columns, and longer windows, keep the two-level shape.
        assert!(distinct_days("count(DISTINCT CAST(other AS DATE))", &window).is_none());
        let long = DayWindow {
            days: 400,
            ..window
        };
        assert!(distinct_days("count(DISTINCT CAST(ts AS DATE))", &long).is_none());
    }

    #[test]
    fn max_of_a_date_cast_casts_once_per_customer() {
        let temporal = ["ts".to_string()];
        assert_eq!(
            cast_after_aggregate("max(CAST(ts AS DATE))", &temporal).as_deref(),
            Some("CAST(max(ts) AS DATE)")
        );
        assert_eq!(
            cast_after_aggregate("MIN(cast(TS as date))", &temporal).as_deref(),
            Some("CAST(min(TS) AS DATE)")
        );
        // Text is not ordered like dates, and other aggregates or casts are left alone.
        assert_eq!(cast_after_aggregate("max(CAST(ts AS DATE))", &[]), None);
        assert_eq!(
            cast_after_aggregate("sum(CAST(ts AS DATE))", &temporal),
            None
        );
        assert_eq!(
            cast_after_aggregate("max(CAST(ts AS INT))", &temporal),
            None
        );
    }

    fn member(name: &str, expr: &str) -> Member {
        Member {
            name: name.into(),
            expr: expr.into(),
        }
    }

    #[test]
    fn recognises_shapes() {
        assert_eq!(
            shape_of("count(DISTINCT CAST(ts AS DATE))"),
            Shape::DistinctCount {
                value: "CAST(ts AS DATE)".into()
            }
        );
        assert_eq!(
            shape_of("COUNT(*)"),
            Shape::Combinable {
                partial: "count(*)".into(),
                combine: "sum"
            }
        );
        assert_eq!(
            shape_of("max(CAST(ts AS DATE))"),
            Shape::Combinable {
                partial: "max(CAST(ts AS DATE))".into(),
                combine: "max"
            }
        );
        for plain in [
            "sum(amount)",
            "count(DISTINCT a) + 1",
            "count(DISTINCT a, b)",
            "count(*) FILTER (WHERE x > 1)",
            "sum(DISTINCT amount)",
            "avg(x)",
        ] {
            assert_eq!(shape_of(plain), Shape::Plain, "{plain}");
        }
    }

    #[test]
    fn distinct_counts_get_two_levels_and_counts_ride_along() {
        let members = [
            member("days", "count(DISTINCT CAST(ts AS DATE))"),
            member("events", "count(*)"),
            member("features", "count(DISTINCT feature)"),
            member("spend", "sum(amount)"),
        ];
        let queries = group_queries("customer_id", "FROM \"events\"", &members, &[], None, false);
        let sql: Vec<&str> = queries.iter().map(|q| q.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "SELECT k AS \"__segflow_key\", count(v) AS \"days\", sum(p0) AS \"events\" FROM (SELECT \"customer_id\" AS k, (CAST(ts AS DATE)) AS v, count(*) AS p0 FROM \"events\" GROUP BY \"customer_id\", (CAST(ts AS DATE))) GROUP BY k",
                "SELECT k AS \"__segflow_key\", count(v) AS \"features\" FROM (SELECT \"customer_id\" AS k, (feature) AS v FROM \"events\" GROUP BY \"customer_id\", (feature)) GROUP BY k",
                "SELECT \"customer_id\" AS \"__segflow_key\", (sum(amount)) AS \"spend\" FROM \"events\" GROUP BY \"customer_id\"",
            ]
        );
    }

    #[test]
    fn without_distinct_counts_one_plain_query() {
        let members = [member("n", "count(*)"), member("last", "max(ts)")];
        let queries = group_queries("k", "FROM t", &members, &[], None, false);
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].features, ["n", "last"]);
        assert!(!queries[0].two_level);
    }
}
