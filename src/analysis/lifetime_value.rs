//! The simple predictive lifetime value per segment, from the cohort tables and value figures
//! the engine measured: margin × average value per period × expected lifetime, where the
//! expected lifetime is 1 / (1 − r) periods (capped) and r the segment's pooled
//! period-over-period retention. Pure arithmetic; the README states the formula's limits.

use serde::{Deserialize, Serialize};

use crate::engine::cohorts::{CohortTable, Cohorts, Summary};
use crate::pipeline::model::{CohortPeriod, LifetimeValueSpec};

/// Lifetime value of one segment, or of all customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentLifetimeValue {
    /// The segment's id; null for all customers.
    pub segment: Option<String>,
    /// Σ customers active after k + 1 periods, over every observed cohort cell (k ≥ 0).
    pub retained: u64,
    /// Σ customers active after k periods over the same cells (k = 0: the cohort's size).
    pub exposed: u64,
    /// Pooled period-over-period retention r = retained ÷ exposed; null without observed cells.
    pub retention: Option<f64>,
    /// Expected lifetime in periods: min(1 ÷ (1 − r), max_periods); null without r.
    pub expected_lifetime: Option<f64>,
    /// Whether the cap `max_periods` set the expected lifetime.
    pub capped: bool,
    /// Value to date per customer (historical).
    pub value: Summary,
    /// Predictive lifetime value per customer: margin × value per period × expected lifetime.
    pub predictive: Option<Summary>,
}

/// Lifetime value by segment, with the assumptions it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifetimeValue {
    /// The value-to-date feature.
    pub value: String,
    /// Share of value kept as margin.
    pub margin: f64,
    /// The period of value per period, retention and lifetime (the cohorts' period).
    pub period: CohortPeriod,
    /// Cap on the expected lifetime, in periods.
    pub max_periods: u32,
    /// All customers first, then every segment in rule order.
    pub segments: Vec<SegmentLifetimeValue>,
}

/// Pooled retention of `table`: (Σ active after k + 1, Σ active after k) over observed cells.
pub fn pooled_retention(table: &CohortTable) -> (u64, u64) {
    let (mut retained, mut exposed) = (0, 0);
    for cohort in &table.cohorts {
        let mut before = cohort.customers;
        for after in cohort.active.iter().map_while(|a| *a) {
            retained += after;
            exposed += before;
            before = after;
        }
    }
    (retained, exposed)
}

/// Expected lifetime in periods for retention `r`, and whether the cap set it.
pub fn expected_lifetime(r: f64, max_periods: u32) -> (f64, bool) {
    let cap = f64::from(max_periods);
    if r >= 1.0 || 1.0 / (1.0 - r) >= cap {
        (cap, true)
    } else {
        (1.0 / (1.0 - r), false)
    }
}

/// Lifetime value per segment of `cohorts` under the assumptions of `spec`.
pub fn estimate(spec: &LifetimeValueSpec, cohorts: &Cohorts) -> LifetimeValue {
    let segments = cohorts
        .tables
        .iter()
        .map(|table| {
            let (retained, exposed) = pooled_retention(table);
            let retention = (exposed > 0).then(|| retained as f64 / exposed as f64);
            let lifetime = retention.map(|r| expected_lifetime(r, spec.max_periods));
            let figures = cohorts.value.iter().find(|v| v.segment == table.segment);
            let value = figures.map_or(Summary::default(), |f| f.value);
            let predictive = lifetime.zip(figures).map(|((periods, _), f)| {
                let scale = |x: Option<f64>| x.map(|x| spec.margin * x * periods);
                Summary {
                    customers: f.per_period.customers,
                    mean: scale(f.per_period.mean),
                    median: scale(f.per_period.median),
                    total: scale(f.per_period.total),
                }
            });
            SegmentLifetimeValue {
                segment: table.segment.clone(),
                retained,
                exposed,
                retention,
                expected_lifetime: lifetime.map(|(periods, _)| periods),
                capped: lifetime.is_some_and(|(_, capped)| capped),
                value,
                predictive,
            }
        })
        .collect();
    LifetimeValue {
        value: spec.value.clone(),
        margin: spec.margin,
        period: cohorts.period,
        max_periods: spec.max_periods,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cohorts::{CohortRow, SegmentValue};

    fn row(customers: u64, active: &[Option<u64>]) -> CohortRow {
        CohortRow {
            cohort: String::new(),
            start: chrono::NaiveDate::default(),
            customers,
            active: active.to_vec(),
            retention: Vec::new(),
        }
    }

    /// Worked by hand: cohort A has 10 customers, then 6, 3, 3 active; cohort B has 5, then 4,
    /// and the next end is not observed yet. Pairs (k, k+1): A 10→6, 6→3, 3→3; B 5→4.
    /// r = (6 + 3 + 3 + 4) ÷ (10 + 6 + 3 + 5) = 16 ÷ 24 = 2/3, so the lifetime is 3 periods.
    /// Value per period: mean 20, median 15, total 200 over 10 customers; margin 0.5:
    /// predictive mean 0.5 × 20 × 3 = 30, median 22.5, total 300.
    #[test]
    fn predictive_value_is_margin_times_value_per_period_times_lifetime() {
        let table = CohortTable {
            segment: Some("a".into()),
            customers: 15,
            cohorts: vec![
                row(10, &[Some(6), Some(3), Some(3)]),
                row(5, &[Some(4), None, None]),
                row(0, &[None, None, None]),
            ],
        };
        let summary = |mean, median, total| Summary {
            customers: 10,
            mean: Some(mean),
            median: Some(median),
            total: Some(total),
        };
        let cohorts = Cohorts {
            by: "signup_date".into(),
            period: CohortPeriod::Month,
            active: "active".into(),
            periods: 3,
            tables: vec![table],
            value: vec![SegmentValue {
                segment: Some("a".into()),
                value: summary(100.0, 90.0, 1000.0),
                per_period: summary(20.0, 15.0, 200.0),
            }],
        };
        let spec = LifetimeValueSpec {
            value: "revenue".into(),
            margin: 0.5,
            max_periods: 60,
        };
        let ltv = estimate(&spec, &cohorts);
        let segment = &ltv.segments[0];
        assert_eq!((segment.retained, segment.exposed), (16, 24));
        let r = segment.retention.expect("r");
        assert!((r - 2.0 / 3.0).abs() < 1e-12, "{r}");
        let lifetime = segment.expected_lifetime.expect("lifetime");
        assert!((lifetime - 3.0).abs() < 1e-9, "{lifetime}");
        assert!(!segment.capped);
        let predictive = segment.predictive.expect("predictive");
        let close = |got: Option<f64>, want: f64| {
            let got = got.expect("a value");
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        };
        close(predictive.mean, 30.0);
        close(predictive.median, 22.5);
        close(predictive.total, 300.0);
        assert_eq!(segment.value.total, Some(1000.0));
    }

    #[test]
    fn full_retention_and_long_lifetimes_are_capped() {
        assert_eq!(expected_lifetime(1.0, 24), (24.0, true));
        assert_eq!(expected_lifetime(0.99, 24), (24.0, true));
        assert_eq!(expected_lifetime(0.5, 24), (2.0, false));
        assert_eq!(expected_lifetime(0.0, 24), (1.0, false));
    }

    #[test]
    fn no_observed_cell_gives_no_retention() {
        let table = CohortTable {
            segment: None,
            customers: 4,
            cohorts: vec![row(4, &[None])],
        };
        assert_eq!(pooled_retention(&table), (0, 0));
    }
}
