//! The category mixes, concentration and ideal customer profile of the report context, with
//! their small-cell suppression.

use super::*;
use crate::analysis::effect::{Moments, cohens_d};
use crate::analysis::{CategoryProfile, category_profiles};
use crate::engine::cohorts::CohortTable;
use crate::engine::profiles::{CategoryMix, Concentration, ICP};

/// How many numeric features the ICP comparison lists.
const ICP_FEATURES: usize = 5;

impl Builder<'_> {
    /// A group's category mix as shown: figures of small cells, and the one that would give a
    /// single masked cell away, masked.
    fn category_card(
        &mut self,
        table: &str,
        group: &str,
        profile: &CategoryProfile,
    ) -> Option<CategoryCard> {
        let feature = self.feature(&profile.feature)?.clone();
        let mut cells: Vec<u64> = profile.top.iter().map(|v| v.customers).collect();
        cells.push(profile.other);
        let masks = self.suppressor.mask_group(&cells);
        let mix = self
            .docs
            .segments
            .results
            .categories
            .iter()
            .find(|m| m.feature == profile.feature);
        let mut top = Vec::new();
        for (value, mask) in profile.top.iter().zip(&masks) {
            let label = value.value.clone().unwrap_or_else(|| "(none)".into());
            if let Some(reason) = mask {
                self.record(
                    table,
                    group,
                    Some(&format!("{} = {label}", profile.feature)),
                    *reason,
                );
            }
            let overall_shown =
                mix.is_some_and(|m| self.overall_share_is_safe(m, value.value.as_deref()));
            top.push(ValueCard {
                masked: mask.is_some(),
                customers: mask.is_none().then_some(value.customers),
                share: mask.is_none().then_some(value.share),
                overall_share: overall_shown.then_some(value.overall_share),
                value: label,
            });
        }
        let other_mask = masks.last().copied().flatten();
        if let Some(reason) = other_mask {
            self.record(
                table,
                group,
                Some(&format!("{} = other", profile.feature)),
                reason,
            );
        }
        let other = (profile.other > 0 || other_mask.is_some()).then(|| ValueCard {
            value: "other".into(),
            masked: other_mask.is_some(),
            customers: other_mask.is_none().then_some(profile.other),
            share: other_mask.is_none().then_some(profile.other_share),
            overall_share: None,
        });
        Some(CategoryCard {
            feature,
            top,
            other,
            cramers_v: profile.against_rest.map(|a| a.cramers_v),
            p_value: profile.against_rest.map(|a| a.p_value),
        })
    }

    /// Segment `id`'s category mixes, in feature order.
    pub(super) fn segment_categories(&mut self, id: &str) -> Vec<CategoryCard> {
        let docs = self.docs;
        let Some(profile) = docs.segments.profiles.iter().find(|p| p.segment == id) else {
            return Vec::new();
        };
        profile
            .categories
            .iter()
            .filter_map(|c| self.category_card("category mix", id, c))
            .collect()
    }

    /// Each declared concentration feature: its curve and every segment's two shares.
    pub(super) fn concentration(&self) -> Vec<ConcentrationCard> {
        let results = &self.docs.segments.results;
        results
            .concentration
            .iter()
            .filter_map(|c| self.concentration_card(c))
            .collect()
    }

    fn concentration_card(&self, measured: &Concentration) -> Option<ConcentrationCard> {
        let results = &self.docs.segments.results;
        let feature = self.feature(&measured.feature)?.clone();
        let share_row = |id: &str, customers: u64, sum: Option<f64>, masked: bool| {
            let customers_share =
                (results.customers > 0).then(|| customers as f64 / results.customers as f64);
            let value_share = sum
                .filter(|_| measured.total != 0.0)
                .map(|s| s / measured.total);
            ShareRow {
                id: id.to_string(),
                name: self.name(id),
                masked,
                customers_share: customers_share.filter(|_| !masked),
                value_share: value_share.filter(|_| !masked),
                ratio: value_share
                    .zip(customers_share)
                    .filter(|(_, c)| *c > 0.0 && !masked)
                    .map(|(v, c)| v / c),
            }
        };
        let sum_of = |features: &[FeatureStats]| {
            features
                .iter()
                .find(|f| f.feature == measured.feature)
                .map(|f| f.sum.unwrap_or(0.0))
        };
        let mut rows: Vec<ShareRow> = results
            .segments
            .iter()
            .map(|s| {
                share_row(
                    &s.id,
                    s.customers,
                    sum_of(&s.features),
                    self.is_hidden(&s.id),
                )
            })
            .collect();
        if results.unassigned > 0 {
            let assigned: f64 = results
                .segments
                .iter()
                .filter_map(|s| sum_of(&s.features))
                .sum();
            let unassigned = crate::pipeline::model::UNASSIGNED;
            let masked = self.suppressor.is_small(results.unassigned)
                || results.segments.iter().any(|s| self.is_hidden(&s.id));
            rows.push(share_row(
                unassigned,
                results.unassigned,
                Some(measured.total - assigned),
                masked,
            ));
        }
        let largest = rows
            .iter()
            .filter(|r| !r.masked && r.id != crate::pipeline::model::UNASSIGNED)
            .max_by(|a, b| {
                let share = |r: &ShareRow| r.value_share.unwrap_or(f64::MIN);
                share(a).total_cmp(&share(b))
            })
            .cloned();
        Some(ConcentrationCard {
            feature,
            customers: measured.customers,
            infinite: measured.infinite,
            total: measured.total,
            gini: measured.gini,
            top_fifth: measured.top_share(0.2),
            negative: measured.negative,
            lorenz: measured.lorenz.clone(),
            rows,
            largest,
        })
    }

    /// The ideal customer profile beside everyone else; its figures masked when either group is
    /// small (the other is the total minus it).
    pub(super) fn icp(&mut self) -> Option<IcpCard> {
        let docs = self.docs;
        let spec_name = docs.segments.pipeline.icp.as_ref();
        let measured = docs.segments.results.icp.as_deref()?;
        let spec = spec_name?;
        let results = &docs.segments.results;
        let rest = results.customers.saturating_sub(measured.customers);
        let masked = self.suppressor.is_small(measured.customers) || self.suppressor.is_small(rest);
        if masked {
            self.record("ideal customer profile", ICP, None, MaskReason::SmallCell);
        }
        let mut distinguishing: Vec<IcpDifference> = measured
            .features
            .iter()
            .zip(&measured.rest)
            .filter_map(|(icp, rest)| {
                let (a, b) = (Moments::of(icp)?, Moments::of(rest)?);
                Some(IcpDifference {
                    feature: self.feature(&icp.feature)?.clone(),
                    icp_mean: a.mean,
                    rest_mean: b.mean,
                    effect: cohens_d(a, b)?,
                })
            })
            .collect();
        distinguishing.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
        distinguishing.truncate(ICP_FEATURES);
        let profiles = category_profiles(&measured.categories, ICP);
        let mut categories: Vec<CategoryCard> = if masked {
            Vec::new()
        } else {
            profiles
                .iter()
                .filter_map(|p| self.category_card("ideal customer profile", ICP, p))
                .collect()
        };
        categories.sort_by(|a, b| {
            let v = |c: &CategoryCard| c.cramers_v.unwrap_or(0.0);
            v(b).total_cmp(&v(a))
        });
        let value_shares = results
            .concentration
            .iter()
            .filter(|_| !masked)
            .filter_map(|c| {
                let sum = measured
                    .features
                    .iter()
                    .find(|f| f.feature == c.feature)?
                    .sum
                    .unwrap_or(0.0);
                let feature = self.feature(&c.feature)?.clone();
                (c.total != 0.0).then(|| IcpValueShare {
                    feature,
                    share: sum / c.total,
                })
            })
            .collect();
        let retention = if masked {
            Vec::new()
        } else {
            self.icp_retention(&measured.retention)
        };
        Some(IcpCard {
            retention,
            period: docs
                .cohorts
                .as_ref()
                .map(|c| super::cohorts::period_name(c.cohorts.period)),
            name: spec
                .name
                .clone()
                .unwrap_or_else(|| "Ideal customer profile".into()),
            description: spec.description.clone(),
            segment: spec.segment.as_deref().map(|id| self.name(id)),
            when: spec.when.clone(),
            masked,
            customers: (!masked).then_some(measured.customers),
            share: (!masked && results.customers > 0)
                .then(|| measured.customers as f64 / results.customers as f64),
            distinguishing: if masked { Vec::new() } else { distinguishing },
            categories,
            value_shares,
        })
    }
}

impl Builder<'_> {
    /// Pooled retention of the ICP (`tables[0]`) and everyone else (`tables[1]`) at the steps
    /// reviews ask about; a share over fewer cohort customers than `min_cell` is masked.
    fn icp_retention(&self, tables: &[CohortTable]) -> Vec<IcpRetention> {
        let [icp, rest] = tables else {
            return Vec::new();
        };
        let steps = icp.cohorts.first().map_or(0, |c| c.active.len());
        let pooled = |table: &CohortTable, k: usize| {
            let (mut active, mut customers) = (0u64, 0u64);
            for cohort in &table.cohorts {
                if let Some(Some(n)) = cohort.active.get(k - 1) {
                    active += n;
                    customers += cohort.customers;
                }
            }
            let masked = self.suppressor.is_small(customers);
            let share = (customers > 0 && !masked).then(|| active as f64 / customers as f64);
            (share, masked)
        };
        [1, 3, 6, 12]
            .into_iter()
            .filter(|&k| k <= steps)
            .map(|k| {
                let ((icp, icp_masked), (rest, rest_masked)) = (pooled(icp, k), pooled(rest, k));
                IcpRetention {
                    after: k,
                    icp,
                    icp_masked,
                    rest,
                    rest_masked,
                }
            })
            .filter(|r| r.icp.is_some() || r.rest.is_some())
            .collect()
    }
}

impl Builder<'_> {
    /// Whether a value's share of all customers may be shown beside a group's: the total minus
    /// the shown cells must not give a small cell away, so no group (the unassigned included)
    /// may hold a small number of customers with it, and no segment may be hidden.
    fn overall_share_is_safe(&self, mix: &CategoryMix, value: Option<&str>) -> bool {
        let Some(i) = mix.values.iter().position(|v| v.as_deref() == value) else {
            return false;
        };
        self.hidden.is_empty()
            && !self.suppressor.is_small(mix.overall[i])
            && mix.segments.iter().all(|g| {
                !self
                    .suppressor
                    .is_small(g.counts.get(i).copied().unwrap_or(0))
            })
    }
}
