//! The cohorts card: masked segments' tables and small cohorts are left out, like every other
//! count about fewer customers than `min_cell`.

use super::super::cohorts::{
    CohortRowCard, CohortTableCard, CohortsCard, LifetimeValueCard, LifetimeValueRow,
};
use super::Builder;
use crate::pipeline::model::CohortPeriod;
use crate::report::suppression::MaskReason;
use crate::run_folder::CohortsDocument;

pub(super) fn period_name(period: CohortPeriod) -> String {
    match period {
        CohortPeriod::Month => "month",
        CohortPeriod::Quarter => "quarter",
    }
    .into()
}

impl Builder<'_> {
    /// The cohorts card of `doc`.
    pub(super) fn cohorts(&mut self, doc: &CohortsDocument) -> CohortsCard {
        let cohorts = &doc.cohorts;
        // All customers' cohort sizes minus the segments' shown ones would give a masked cell
        // (or a hidden segment's, or the unassigned customers') away: such cohorts of the
        // all-customers table are masked too.
        let any_hidden = !self.hidden.is_empty()
            || self
                .suppressor
                .is_small(self.docs.segments.results.unassigned);
        let mut masked_cohorts = std::collections::HashSet::new();
        for table in cohorts.tables.iter().filter(|t| t.segment.is_some()) {
            let sizes: Vec<u64> = table.cohorts.iter().map(|c| c.customers).collect();
            for (i, mask) in self.suppressor.mask_group(&sizes).iter().enumerate() {
                if mask.is_some() {
                    masked_cohorts.insert(i);
                }
            }
        }
        let tables = cohorts
            .tables
            .iter()
            .map(|table| {
                let id = table.segment.as_deref();
                let name = self.name(id.unwrap_or("all customers"));
                if id.is_some_and(|id| self.hidden.iter().any(|h| h == id)) {
                    return CohortTableCard {
                        segment: table.segment.clone(),
                        name,
                        masked: true,
                        customers: None,
                        rows: Vec::new(),
                    };
                }
                let sizes: Vec<u64> = table.cohorts.iter().map(|c| c.customers).collect();
                let mut masks = self.suppressor.mask_group(&sizes);
                if id.is_none() {
                    for (i, mask) in masks.iter_mut().enumerate() {
                        if mask.is_none() && (any_hidden || masked_cohorts.contains(&i)) {
                            *mask = Some(MaskReason::Complementary);
                        }
                    }
                }
                let rows = table
                    .cohorts
                    .iter()
                    .zip(masks)
                    .map(|(row, mask)| {
                        if let Some(reason) = mask {
                            let at = format!("{} {}", id.unwrap_or("all customers"), row.cohort);
                            self.record("cohorts", &at, Some("customers"), reason);
                        }
                        CohortRowCard {
                            cohort: row.cohort.clone(),
                            customers: mask.is_none().then_some(row.customers),
                            masked: mask.is_some(),
                            retention: if mask.is_some() {
                                vec![None; row.retention.len()]
                            } else {
                                row.retention.clone()
                            },
                        }
                    })
                    .collect();
                CohortTableCard {
                    segment: table.segment.clone(),
                    name,
                    masked: false,
                    customers: Some(table.customers),
                    rows,
                }
            })
            .collect();
        let lifetime_value = doc.lifetime_value.as_ref().map(|ltv| LifetimeValueCard {
            value: ltv.value.clone(),
            unit: self
                .features
                .iter()
                .find(|f| f.name == ltv.value)
                .and_then(|f| f.unit.clone()),
            margin: ltv.margin,
            period: period_name(ltv.period),
            max_periods: ltv.max_periods,
            rows: ltv
                .segments
                .iter()
                .map(|s| {
                    let id = s.segment.as_deref();
                    let masked = id.is_some_and(|id| self.hidden.iter().any(|h| h == id));
                    let shown = |x: Option<f64>| x.filter(|_| !masked);
                    let predictive = s.predictive.unwrap_or_default();
                    LifetimeValueRow {
                        segment: s.segment.clone(),
                        name: self.name(id.unwrap_or("all customers")),
                        masked,
                        retention: shown(s.retention),
                        expected_lifetime: shown(s.expected_lifetime),
                        capped: s.capped && !masked,
                        value_mean: shown(s.value.mean),
                        value_median: shown(s.value.median),
                        value_total: shown(s.value.total),
                        ltv_mean: shown(predictive.mean),
                        ltv_median: shown(predictive.median),
                        ltv_total: shown(predictive.total),
                    }
                })
                .collect(),
        });
        CohortsCard {
            by: cohorts.by.clone(),
            period: period_name(cohorts.period),
            active: cohorts.active.clone(),
            steps: (1..=cohorts.periods).collect(),
            tables,
            lifetime_value,
        }
    }
}
