//! Lints of a segmentation, static and run-time: warnings, with a code, a location and a help
//! line, about choices the seeds call anti-patterns (too many segments, demographic-only rules,
//! static segments, no negative segment, one-size-fits-all actions, segment proliferation), rules
//! that can never match, and segments or personas a run found empty.
//! The codes and their documentation live in [`crate::diagnostic::codes`].

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::NaiveDate;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::diagnostic::{Problem, codes};
use crate::engine::RunResults;
use crate::pipeline::Pipeline;
use crate::pipeline::model::FeatureKind;
use crate::pipeline::sql::resolved_name;

mod anti_patterns;
mod proliferation;

/// `segment-proliferation` against the pipeline's earlier runs, unless `review.allow` turns it off.
pub fn history_lints(
    pipeline: &Pipeline,
    earlier: &[crate::run_folder::earlier::EarlierRun],
) -> Vec<Problem> {
    let lints = proliferation::segment_proliferation(pipeline, earlier)
        .into_iter()
        .collect();
    without_allowed(pipeline, lints)
}

/// Lints that need no data.
pub fn static_lints(pipeline: &Pipeline, as_of: NaiveDate) -> Vec<Problem> {
    let spec = &pipeline.spec;
    let file = &pipeline.file;
    let mut lints = Vec::new();
    let review = &spec.review;
    if spec.segments.len() > review.max_segments {
        lints.push(
            file
                .at_key(codes::TOO_MANY_SEGMENTS, "segments", format!("{} segments, more than the {} `review.max_segments` allows", spec.segments.len(), review.max_segments))
                .help("the seeds recommend starting with 3 to 4 segments; merge segments served the same way"),
        );
    }
    let kinds: BTreeMap<&str, FeatureKind> = spec
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    let used: Vec<FeatureKind> = pipeline
        .segments
        .iter()
        .flat_map(|s| &s.references)
        .filter_map(|name| kinds.get(name.as_str()).copied())
        .collect();
    // "Who customers are" (a person, a company, a place), not what they do, need or are worth.
    let describes_who = |kind: &FeatureKind| {
        matches!(
            kind,
            FeatureKind::Demographic | FeatureKind::Firmographic | FeatureKind::Geographic
        )
    };
    if !used.is_empty() && used.iter().all(describes_who) {
        lints.push(
            file
                .at_key(codes::DEMOGRAPHIC_ONLY, "segments", "every segment rule uses only demographic, firmographic or geographic features")
                .help("these say who customers are, not what they do or need (\"small businesses\" is too broad): add behavioral, value or needs features to the rules"),
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
                file
                    .at(codes::UNREACHABLE_RULE, &format!("segments[{j}].when"), format!("segment `{}` can never match: every customer it would take matches `{}` first", spec.segments[j].id, spec.segments[i].id))
                    .help("rules are tried in order; put the more specific rule first, or remove this one"),
            );
        }
    }
    if let Some(last) = review.last_reviewed {
        let age = (as_of - last).num_days();
        if age > i64::from(review.interval_days) {
            lints.push(
                file
                    .at(codes::STALE_REVIEW, "review.last_reviewed", format!("segments were last reviewed {age} days before the as-of date {as_of}, more than the {}-day review interval", review.interval_days))
                    .help("review the segments with their owners, then update `review.last_reviewed`"),
            );
        }
    }
    for (i, segment) in spec.segments.iter().enumerate() {
        if segment.owner.is_none() {
            lints.push(
                file.at(
                    codes::MISSING_OWNER,
                    &format!("segments[{i}].id"),
                    format!("segment `{}` has no owner", segment.id),
                )
                .help("add `owner:` with the team or person accountable for it"),
            );
        }
        if segment.actions.is_empty() && !segment.negative {
            lints.push(
                file
                    .at(codes::MISSING_ACTION, &format!("segments[{i}].id"), format!("segment `{}` declares no actions", segment.id))
                    .help("add `actions:` saying what the team will do for it, or mark it `negative: true` with a `negative_reason`"),
            );
        }
    }
    lints.extend(anti_patterns::no_negative_segment(pipeline));
    lints.extend(anti_patterns::same_actions(pipeline));
    without_allowed(pipeline, lints)
}

/// `lints` without those the pipeline's `review.allow` turns off.
fn without_allowed(pipeline: &Pipeline, mut lints: Vec<Problem>) -> Vec<Problem> {
    let allow = &pipeline.spec.review.allow;
    lints.retain(|lint| !allow.contains_key(lint.code_name()));
    lints
}

/// Lints that need a run's results: empty segments and personas without data.
pub fn runtime_lints(pipeline: &Pipeline, results: &RunResults) -> Vec<Problem> {
    let file = &pipeline.file;
    let mut lints = Vec::new();
    for (i, segment) in results.segments.iter().enumerate() {
        if segment.customers == 0 {
            lints.push(
                file
                    .at(codes::EMPTY_SEGMENT, &format!("segments[{i}].id"), format!("segment `{}` has no customers in this run", segment.id))
                    .help("its rule never matched: earlier rules may cover it, or its thresholds exclude everyone"),
            );
        }
    }
    for (i, persona) in pipeline.spec.personas.iter().enumerate() {
        if results
            .segments
            .iter()
            .any(|s| s.id == persona.segment && s.customers == 0)
        {
            lints.push(
                file.at(
                    codes::PERSONA_WITHOUT_DATA,
                    &format!("personas[{i}].segment"),
                    format!(
                        "persona `{}` describes segment `{}`, which has no customers in this run",
                        persona.name, persona.segment
                    ),
                )
                .help("a persona needs customers behind it; revisit the persona or the segment"),
            );
        }
    }
    without_allowed(pipeline, lints)
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
        Expr::Identifier(ident) => Some(resolved_name(ident)),
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
