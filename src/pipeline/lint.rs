//! Lints of a segmentation: warnings, with a code, a location and a help line, about choices the
//! seeds call anti-patterns (too many segments, demographic-only rules, static segments) and about
//! rules that can never match. `segflow explain CODE` prints each code's documentation.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::NaiveDate;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::Pipeline;
use super::model::FeatureKind;
use crate::error::Problem;

/// Every lint code with what it means, why it matters and what to do.
pub const LINTS: &[(&str, &str)] = &[
    (
        "too-many-segments",
        "More segments than `review.max_segments` (default 6). Too many segments is an anti-pattern: nobody can act on twelve groups. The seeds recommend starting with 3 to 4. Merge segments that are served the same way, or raise `review.max_segments` on purpose.",
    ),
    (
        "demographic-only",
        "Every segment rule uses only demographic or geographic features. Segmenting by who customers are rather than what they do or need rarely predicts behaviour. Add behavioral, value or needs features to the rules.",
    ),
    (
        "unreachable-rule",
        "A rule can never match because an earlier rule matches every customer it would (first match wins). Found statically when both rules are ANDs of comparisons of features with numbers, e.g. `active_days >= 40` after `active_days >= 10`. Reorder the rules (more specific first) or remove the later one.",
    ),
    (
        "empty-segment",
        "A segment has no customers in this run: its rule never matched, often because earlier rules cover it. Check the rule order and the thresholds.",
    ),
    (
        "persona-without-data",
        "A persona describes a segment that has no customers in this run, so nothing in the data backs it (persona theater). Revisit the persona or the segment.",
    ),
    (
        "stale-review",
        "`review.last_reviewed` is older than `review.interval_days` (default one quarter) before the as-of date. Static segments are an anti-pattern: customers change. Review the segments with their owners and update the date.",
    ),
    (
        "missing-owner",
        "A segment has no `owner`. A segment nobody owns is not acted on. Name the team or person accountable.",
    ),
    (
        "missing-action",
        "A segment (not marked negative) declares no `actions`. Segments exist to be served differently; say what the team will do.",
    ),
];

/// Documentation of a lint code, if it exists.
pub fn explain(code: &str) -> Option<&'static str> {
    LINTS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, text)| *text)
}

/// Lints that need no data.
pub fn static_lints(pipeline: &Pipeline, as_of: NaiveDate) -> Vec<Problem> {
    let spec = &pipeline.spec;
    let origin = &pipeline.origin;
    let mut lints = Vec::new();
    let review = &spec.review;
    if spec.segments.len() > review.max_segments {
        lints.push(
            origin
                .at_key("too-many-segments", "segments", format!("{} segments, more than the {} `review.max_segments` allows", spec.segments.len(), review.max_segments))
                .help("the seeds recommend starting with 3 to 4 segments; merge segments served the same way")
                .warning(),
        );
    }
    let kinds: BTreeMap<&str, FeatureKind> = spec
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    let used: Vec<FeatureKind> = pipeline
        .segment_references
        .iter()
        .flatten()
        .filter_map(|name| kinds.get(name.as_str()).copied())
        .collect();
    if !used.is_empty()
        && used
            .iter()
            .all(|k| matches!(k, FeatureKind::Demographic | FeatureKind::Geographic))
    {
        lints.push(
            origin
                .at_key("demographic-only", "segments", "every segment rule uses only demographic or geographic features")
                .help("segment by what customers do, need or are worth as well: add behavioral, value or needs features to the rules")
                .warning(),
        );
    }
    let conditions: Vec<Option<Conjunction>> = spec
        .segments
        .iter()
        .map(|s| s.when.as_deref().and_then(Conjunction::parse))
        .collect();
    for (j, later) in conditions.iter().enumerate() {
        let Some(later) = later else { continue };
        if let Some(i) = (0..j).find(|&i| {
            conditions[i]
                .as_ref()
                .is_some_and(|earlier| earlier.covers(later))
        }) {
            lints.push(
                origin
                    .at("unreachable-rule", &format!("segments[{j}].when"), format!("segment `{}` can never match: every customer it would take matches `{}` first", spec.segments[j].id, spec.segments[i].id))
                    .help("rules are tried in order; put the more specific rule first, or remove this one")
                    .warning(),
            );
        }
    }
    if let Some(last) = review.last_reviewed {
        let age = (as_of - last).num_days();
        if age > i64::from(review.interval_days) {
            lints.push(
                origin
                    .at("stale-review", "review.last_reviewed", format!("segments were last reviewed {age} days before the as-of date {as_of}, more than the {}-day review interval", review.interval_days))
                    .help("review the segments with their owners, then update `review.last_reviewed`")
                    .warning(),
            );
        }
    }
    for (i, segment) in spec.segments.iter().enumerate() {
        if segment.owner.is_none() {
            lints.push(
                origin
                    .at(
                        "missing-owner",
                        &format!("segments[{i}].id"),
                        format!("segment `{}` has no owner", segment.id),
                    )
                    .help("add `owner:` with the team or person accountable for it")
                    .warning(),
            );
        }
        if segment.actions.is_empty() && !segment.negative {
            lints.push(
                origin
                    .at("missing-action", &format!("segments[{i}].id"), format!("segment `{}` declares no actions", segment.id))
                    .help("add `actions:` saying what the team will do for it, or mark it `negative: true` with a `negative_reason`")
                    .warning(),
            );
        }
    }
    lints
}

/// A rule that is an AND of `feature <op> number` comparisons: per feature, the interval of
/// values it admits. `None` from [`Conjunction::parse`] means the rule is too complex to reason
/// about.
#[derive(Debug, Clone, PartialEq)]
struct Conjunction {
    bounds: BTreeMap<String, Interval>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Interval {
    low: f64,
    low_closed: bool,
    high: f64,
    high_closed: bool,
}

impl Interval {
    const ALL: Interval = Interval {
        low: f64::NEG_INFINITY,
        low_closed: false,
        high: f64::INFINITY,
        high_closed: false,
    };

    fn intersect(self, other: Interval) -> Interval {
        let (low, low_closed) = match self.low.total_cmp(&other.low) {
            std::cmp::Ordering::Greater => (self.low, self.low_closed),
            std::cmp::Ordering::Less => (other.low, other.low_closed),
            std::cmp::Ordering::Equal => (self.low, self.low_closed && other.low_closed),
        };
        let (high, high_closed) = match self.high.total_cmp(&other.high) {
            std::cmp::Ordering::Less => (self.high, self.high_closed),
            std::cmp::Ordering::Greater => (other.high, other.high_closed),
            std::cmp::Ordering::Equal => (self.high, self.high_closed && other.high_closed),
        };
        Interval {
            low,
            low_closed,
            high,
            high_closed,
        }
    }

    /// Whether every value in `self` is in `other`.
    fn within(self, other: Interval) -> bool {
        let low_ok = self.low > other.low
            || (self.low == other.low && (other.low_closed || !self.low_closed));
        let high_ok = self.high < other.high
            || (self.high == other.high && (other.high_closed || !self.high_closed));
        low_ok && high_ok
    }
}

fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number(expr).map(|n| -n),
        Expr::Nested(inner) => number(inner),
        _ => None,
    }
}

fn column(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        }),
        Expr::Nested(inner) => column(inner),
        _ => None,
    }
}

impl Conjunction {
    fn parse(sql: &str) -> Option<Self> {
        let expr = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .ok()?
            .parse_expr()
            .ok()?;
        let mut conjunction = Conjunction {
            bounds: BTreeMap::new(),
        };
        conjunction.add(&expr).is_continue().then_some(conjunction)
    }

    fn add(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Nested(inner) => self.add(inner),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                self.add(left)?;
                self.add(right)
            }
            Expr::Value(v) if matches!(v.value, Value::Boolean(true)) => ControlFlow::Continue(()),
            Expr::BinaryOp { left, op, right } => {
                let (name, value, op) =
                    match (column(left), number(right), column(right), number(left)) {
                        (Some(name), Some(value), _, _) => (name, value, op.clone()),
                        (_, _, Some(name), Some(value)) => match flip(op) {
                            Some(flipped) => (name, value, flipped),
                            None => return ControlFlow::Break(()),
                        },
                        _ => return ControlFlow::Break(()),
                    };
                let interval = match op {
                    BinaryOperator::Gt => Interval {
                        low: value,
                        low_closed: false,
                        ..Interval::ALL
                    },
                    BinaryOperator::GtEq => Interval {
                        low: value,
                        low_closed: true,
                        ..Interval::ALL
                    },
                    BinaryOperator::Lt => Interval {
                        high: value,
                        high_closed: false,
                        ..Interval::ALL
                    },
                    BinaryOperator::LtEq => Interval {
                        high: value,
                        high_closed: true,
                        ..Interval::ALL
                    },
                    BinaryOperator::Eq => Interval {
                        low: value,
                        low_closed: true,
                        high: value,
                        high_closed: true,
                    },
                    _ => return ControlFlow::Break(()),
                };
                let bound = self.bounds.entry(name).or_insert(Interval::ALL);
                *bound = bound.intersect(interval);
                ControlFlow::Continue(())
            }
            Expr::Between {
                expr,
                negated: false,
                low,
                high,
            } => {
                let (Some(name), Some(low), Some(high)) = (column(expr), number(low), number(high))
                else {
                    return ControlFlow::Break(());
                };
                let bound = self.bounds.entry(name).or_insert(Interval::ALL);
                *bound = bound.intersect(Interval {
                    low,
                    low_closed: true,
                    high,
                    high_closed: true,
                });
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Break(()),
        }
    }

    /// Whether every customer matching `later` also matches `self`.
    fn covers(&self, later: &Conjunction) -> bool {
        self.bounds
            .iter()
            .all(|(name, earlier)| later.bounds.get(name).is_some_and(|l| l.within(*earlier)))
    }
}

fn flip(op: &BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Eq => BinaryOperator::Eq,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(earlier: &str, later: &str) -> bool {
        Conjunction::parse(earlier)
            .unwrap()
            .covers(&Conjunction::parse(later).unwrap())
    }

    #[test]
    fn detects_rules_covered_by_earlier_rules() {
        assert!(covers("active >= 10", "active >= 40 AND features >= 10"));
        assert!(covers("active >= 10", "active BETWEEN 10 AND 20"));
        assert!(covers("5 <= active", "active > 5"));
        assert!(covers("TRUE", "active > 5"));
        assert!(covers("a > 1 AND b < 3", "b <= 2 AND a >= 2 AND c = 1"));
        assert!(!covers("active > 10", "active >= 10"));
        assert!(!covers("active >= 40 AND features >= 10", "active >= 10"));
        assert!(!covers("active >= 10", "features >= 10"));
        assert!(Conjunction::parse("active >= 10 OR x = 1").is_none());
        assert!(Conjunction::parse("plan = 'pro'").is_none());
    }
}
