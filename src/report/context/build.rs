//! Building the template context from a run folder's documents, keeping every suppression
//! decision in one place.

use std::collections::{BTreeMap, HashMap};

use super::*;

mod cohorts;
mod profiles;

/// The heatmap's z-scores are clamped to this, so one outlier does not wash out the rest.
const Z_LIMIT: f64 = 3.0;

/// Builds the context, keeping the suppression decisions in one place.
pub(super) struct Builder<'a> {
    docs: &'a RunDocuments,
    suppressor: Suppressor,
    masked: Vec<MaskedCell>,
    /// Segments whose size is masked.
    hidden: Vec<String>,
    names: HashMap<String, String>,
    features: Vec<FeatureCard>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(docs: &'a RunDocuments) -> Self {
        let results = &docs.segments.results;
        let names = results
            .segments
            .iter()
            .map(|s| (s.id.to_string(), s.name.to_string()))
            .collect();
        Builder {
            docs,
            suppressor: Suppressor {
                min_cell: docs.segments.pipeline.min_cell,
            },
            masked: Vec::new(),
            hidden: Vec::new(),
            names,
            features: results.features.iter().map(feature_card).collect(),
        }
    }

    /// A segment's name for its id; a pair `a ~ b` as both names; other subjects as they are.
    fn name(&self, id: &str) -> String {
        if let Some((a, b)) = id.split_once(" ~ ") {
            return format!("{} and {}", self.name(a), self.name(b));
        }
        self.names.get(id).cloned().unwrap_or_else(|| match id {
            "all customers" => "All customers".to_string(),
            crate::pipeline::model::UNASSIGNED => "Unassigned".to_string(),
            other => other.to_string(),
        })
    }

    /// Whether the segment `id` (or either segment of a pair `a ~ b`) has its figures masked.
    fn is_hidden(&self, id: &str) -> bool {
        concerns(id)
            .iter()
            .any(|part| self.hidden.iter().any(|h| h == part))
    }

    fn record(&mut self, table: &str, row: &str, column: Option<&str>, reason: MaskReason) {
        self.masked.push(MaskedCell {
            table: table.to_string(),
            row: row.to_string(),
            column: column.map(str::to_string),
            reason,
        });
    }

    pub(super) fn build(mut self) -> ReportContext {
        let docs = self.docs;
        let results = &docs.segments.results;
        // Segment sizes and the unassigned add up to the customers shown: one group.
        let mut sizes: Vec<u64> = results.segments.iter().map(|s| s.customers).collect();
        sizes.push(results.unassigned);
        let masks = self.suppressor.mask_group(&sizes);
        for (segment, mask) in results.segments.iter().zip(&masks) {
            if let Some(reason) = mask {
                self.hidden.push(segment.id.to_string());
                self.record("segments", &segment.id, None, *reason);
            }
        }
        let unassigned_masked = masks.last().copied().flatten();
        if let Some(reason) = unassigned_masked {
            self.record("segments", crate::pipeline::model::UNASSIGNED, None, reason);
        }
        let exclusions = results
            .exclusions
            .iter()
            .map(|x| {
                let masked = self.suppressor.is_small(x.customers);
                if masked {
                    self.record("exclusions", &x.detail, None, MaskReason::SmallCell);
                }
                ExclusionCard {
                    detail: x.detail.clone(),
                    customers: (!masked).then_some(x.customers),
                    masked,
                }
            })
            .collect();
        let rows_masked = self.masked.iter().any(|m| m.table == "exclusions");
        if rows_masked {
            for source in &docs.run.sources {
                self.record("source rows", &source.name, None, MaskReason::Complementary);
            }
        }
        let value_feature = self.value_feature();
        let criteria = self.criteria();
        let segments = self.segments(value_feature.as_ref(), &criteria);
        let matrix = self.matrix();
        let rule_overlap = self.rule_overlap();
        let comparison = docs.comparison.as_ref().map(|c| self.comparison(c));
        let personas = self.personas(&segments, &criteria);
        let scoring = docs.scoring.as_ref().map(|scoring| self.scoring(scoring));
        let quantiles = self.quantiles();
        let total_value = value_feature.as_ref().and_then(|f| {
            results
                .overall
                .iter()
                .find(|o| o.feature == f.name)
                .and_then(|o| o.sum)
        });
        let summary = Summary {
            status: docs.criteria.status,
            beachhead: scoring.as_ref().and_then(|s| {
                let id = s.beachhead.clone()?;
                Some(Beachhead {
                    name: self.name(&id),
                    note: s.beachhead_note.clone(),
                    stability: s.stability.as_ref().and_then(|st| {
                        st.beachhead_share
                            .iter()
                            .find(|(segment, _)| *segment == id)
                            .map(|(_, share)| *share)
                    }),
                    id,
                })
            }),
            total_value,
            movements: comparison
                .as_ref()
                .map(|c: &ComparisonCard| {
                    let mut moves: Vec<SizeChange> = c
                        .sizes
                        .iter()
                        .filter(|s| s.share_change_points.is_some_and(|p| p != 0.0))
                        .cloned()
                        .collect();
                    moves.sort_by(|a, b| {
                        let size = |s: &SizeChange| s.share_change_points.unwrap_or(0.0).abs();
                        size(b).total_cmp(&size(a))
                    });
                    moves.truncate(3);
                    moves
                })
                .unwrap_or_default(),
        };
        let heatmap = self.heatmap(&segments);
        let concentration = self.concentration();
        let icp = self.icp();
        let cohorts = docs.cohorts.as_ref().map(|doc| self.cohorts(doc));
        ReportContext {
            segflow_version: docs.segments.segflow_version.to_string(),
            pipeline: PipelineCard {
                name: docs.segments.pipeline.name.to_string(),
                title: docs.segments.pipeline.title.to_string(),
                description: docs
                    .segments
                    .pipeline
                    .description
                    .as_deref()
                    .map(str::to_string),
                entity: docs.segments.pipeline.entity.to_string(),
                key: docs.segments.pipeline.key.to_string(),
            },
            run: RunCard {
                pipeline_file: docs.run.pipeline_file.clone(),
                pipeline_sha256: docs.run.pipeline_sha256.clone(),
                git: docs.run.git.clone(),
                started_at: docs.run.started_at.clone(),
                sources: docs
                    .run
                    .sources
                    .iter()
                    .cloned()
                    .map(|mut source| {
                        if rows_masked {
                            source.rows = 0;
                        }
                        source
                    })
                    .collect(),
                rows_masked,
            },
            as_of: results.as_of.to_string(),
            customers: results.customers,
            unassigned: unassigned_masked.is_none().then_some(results.unassigned),
            unassigned_share: unassigned_masked
                .is_none()
                .then_some(results.unassigned_share),
            unassigned_reachable: results
                .unassigned_reachable
                .filter(|n| unassigned_masked.is_none() && !self.suppressor.is_small(*n)),
            exclusions,
            value_feature,
            segments,
            features: self.features.clone(),
            overall: results.overall.to_vec(),
            quantiles,
            matrix,
            rule_overlap,
            criteria,
            scoring,
            personas,
            comparison,
            lints: docs.lints.clone(),
            summary,
            heatmap,
            concentration,
            icp,
            cohorts,
            suppression: Suppression {
                min_cell: self.suppressor.min_cell,
                masked: self.masked,
            },
        }
    }

    fn scoring(&self, scoring: &ScoringReport) -> ScoringCard {
        // Scores derived from data are scaled across segments (min-max): the shown segments'
        // scores pin down a masked one's metric, so they go, with the totals they feed.
        let masked = !self.hidden.is_empty();
        let derived: Vec<&str> = scoring
            .ranking
            .iter()
            .flat_map(|r| &r.scores)
            .filter(|s| s.metric.is_some())
            .map(|s| s.factor.as_str())
            .collect();
        ScoringCard {
            factors: scoring.factors.clone(),
            ranking: scoring
                .ranking
                .iter()
                .map(|r| RankCard {
                    rank: r.rank,
                    segment: r.segment.clone(),
                    name: r.name.clone(),
                    negative: r.negative,
                    scores: r
                        .scores
                        .iter()
                        .map(|s| {
                            let hide = masked && derived.contains(&s.factor.as_str());
                            ScoreCard {
                                factor: s.factor.clone(),
                                score: (!hide).then_some(s.score),
                                metric: s.metric.filter(|_| !hide),
                                note: s.note.clone().filter(|_| !hide),
                            }
                        })
                        .collect(),
                    total: (!masked).then_some(r.total),
                    tied_with: r.tied_with.clone(),
                })
                .collect(),
            beachhead: scoring.beachhead.clone(),
            beachhead_note: if masked {
                without_figures(&scoring.beachhead_note)
            } else {
                scoring.beachhead_note.clone()
            },
            stability: scoring.stability.clone(),
            masked,
        }
    }

    fn value_feature(&self) -> Option<FeatureCard> {
        let overall = &self.docs.segments.results.overall;
        self.features
            .iter()
            .find(|f| {
                f.kind == FeatureKind::Value
                    && matches!(f.format, ValueFormat::Number | ValueFormat::Money)
                    && overall
                        .iter()
                        .any(|o| o.feature == f.name && o.sum.is_some())
            })
            .cloned()
    }

    fn feature(&self, name: &str) -> Option<&FeatureCard> {
        self.features.iter().find(|f| f.name == name)
    }

    fn check_card(&self, criterion: &str, check: &Check) -> CheckCard {
        let masked = self.is_hidden(&check.subject)
            || (check.subject == "all customers"
                && self
                    .masked
                    .iter()
                    .any(|m| m.table == "segments" && m.row == crate::pipeline::model::UNASSIGNED));
        CheckCard {
            criterion: criterion.to_string(),
            subject: check.subject.clone(),
            subject_name: self.name(&check.subject),
            measure: check.measure.clone(),
            value: check.value.filter(|_| !masked),
            threshold: check.threshold.clone(),
            levels: check.levels.clone(),
            status: check.status,
            detail: check.detail.clone().filter(|_| !masked),
            masked,
        }
    }

    fn criteria(&self) -> CriteriaCard {
        let report = &self.docs.criteria;
        let criteria: Vec<CriterionCard> = report
            .criteria
            .iter()
            .map(|c| CriterionCard {
                criterion: c.criterion.to_string(),
                question: c.question.to_string(),
                status: c.status,
                checks: c
                    .checks
                    .iter()
                    .map(|check| self.check_card(&c.criterion, check))
                    .collect(),
            })
            .collect();
        let all: Vec<&CheckCard> = criteria.iter().flat_map(|c| &c.checks).collect();
        // Rows: every segment in rule order, then any other subject in order of appearance.
        let mut subjects: Vec<String> = self
            .docs
            .segments
            .results
            .segments
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        for check in &all {
            for subject in concerns(&check.subject) {
                if !subjects.iter().any(|s| s == subject) {
                    subjects.push(subject.to_string());
                }
            }
        }
        let rows = subjects
            .into_iter()
            .filter_map(|subject| {
                let checks: Vec<CheckCard> = all
                    .iter()
                    .filter(|c| concerns(&c.subject).contains(&subject.as_str()))
                    .map(|c| (*c).clone())
                    .collect();
                if checks.is_empty() {
                    return None;
                }
                let cells = criteria
                    .iter()
                    .map(|c| {
                        c.checks
                            .iter()
                            .filter(|check| concerns(&check.subject).contains(&subject.as_str()))
                            .map(|check| check.status)
                            .max()
                    })
                    .collect();
                Some(CriteriaRow {
                    name: self.name(&subject),
                    subject,
                    cells,
                    checks,
                })
            })
            .collect();
        let by_status = |status: Status| -> Vec<CheckCard> {
            all.iter()
                .filter(|c| c.status == status)
                .map(|c| (*c).clone())
                .collect()
        };
        CriteriaCard {
            status: report.status,
            matrix: CriteriaMatrix {
                columns: criteria.iter().map(|c| c.criterion.clone()).collect(),
                rows,
            },
            differentiation: report
                .differentiation
                .iter()
                .filter(|p| !self.is_hidden(&p.a) && !self.is_hidden(&p.b))
                .cloned()
                .collect(),
            failing: by_status(Status::Fail),
            warning: by_status(Status::Warn),
            checks: all.len(),
            criteria,
        }
    }

    fn segments(
        &mut self,
        value: Option<&FeatureCard>,
        criteria: &CriteriaCard,
    ) -> Vec<SegmentCard> {
        let docs = self.docs;
        let results = &docs.segments.results;
        let total_value = value.and_then(|f| {
            results
                .overall
                .iter()
                .find(|o| o.feature == f.name)
                .and_then(|o| o.sum)
        });
        results
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let masked = self.is_hidden(&s.id);
                let segment_value = value.and_then(|f| {
                    s.features
                        .iter()
                        .find(|stats| stats.feature == f.name)
                        .map(|stats| stats.sum.unwrap_or(0.0))
                });
                let ranking = docs
                    .scoring
                    .as_ref()
                    .and_then(|scoring| scoring.ranking.iter().find(|r| r.segment == s.id));
                let status = criteria
                    .criteria
                    .iter()
                    .flat_map(|c| &c.checks)
                    .filter(|c| concerns(&c.subject).contains(&&*s.id))
                    .map(|c| c.status)
                    .max()
                    .unwrap_or(Status::Pass);
                SegmentCard {
                    position: i + 1,
                    id: s.id.to_string(),
                    name: s.name.to_string(),
                    description: s.description.as_deref().map(str::to_string),
                    owner: s.owner.as_deref().map(str::to_string),
                    when: s.when.as_deref().map(str::to_string),
                    actions: s.actions.to_vec(),
                    negative: s.negative,
                    negative_reason: s.negative_reason.as_deref().map(str::to_string),
                    masked,
                    customers: (!masked).then_some(s.customers),
                    share: (!masked).then_some(s.share),
                    reachable: s
                        .reachable
                        .filter(|n| !masked && !self.suppressor.is_small(*n)),
                    value: segment_value.filter(|_| !masked),
                    value_share: segment_value
                        .zip(total_value)
                        .filter(|(_, total)| *total != 0.0 && !masked)
                        .map(|(v, total)| v / total),
                    features: if masked {
                        Vec::new()
                    } else {
                        s.features.to_vec()
                    },
                    distinguishing: if masked {
                        Vec::new()
                    } else {
                        self.distinguishing(&s.id)
                    },
                    categories: if masked {
                        Vec::new()
                    } else {
                        self.segment_categories(&s.id)
                    },
                    status,
                    priority: ranking.map(|r| r.rank),
                    beachhead: docs
                        .scoring
                        .as_ref()
                        .and_then(|scoring| scoring.beachhead.as_deref())
                        == Some(&*s.id),
                }
            })
            .collect()
    }

    fn distinguishing(&self, segment: &str) -> Vec<Distinguishing> {
        let overall = &self.docs.segments.results.overall;
        let Some(profile) = self
            .docs
            .segments
            .profiles
            .iter()
            .find(|p| p.segment == segment)
        else {
            return Vec::new();
        };
        profile
            .distinguishing
            .iter()
            .filter_map(|d| {
                let feature = self.feature(&d.feature)?.clone();
                let overall_mean = overall
                    .iter()
                    .find(|o| o.feature == d.feature)
                    .and_then(|o| o.mean);
                Some(Distinguishing {
                    ratio: overall_mean
                        .filter(|m| *m > 0.0 && d.segment_mean > 0.0)
                        .map(|m| d.segment_mean / m),
                    higher: d.segment_mean > d.rest_mean,
                    segment_mean: d.segment_mean,
                    overall_mean,
                    effect: d.effect,
                    feature,
                })
            })
            .collect()
    }

    fn matrix(&mut self) -> Option<MatrixCard> {
        let matrix = self.docs.segments.results.matrix.as_ref()?;
        let counts: Vec<u64> = matrix.quadrants.iter().map(|q| q.customers).collect();
        let masks = self.suppressor.mask_group(&counts);
        // The mix is a table whose row totals (quadrants) and column totals (segment sizes) are
        // both shown, and which segments appear in a quadrant tells its zeros: with a masked
        // segment or a small cell anywhere, the whole mix goes.
        let mix_masked = matrix.quadrants.iter().any(|q| {
            q.segments.iter().any(|(segment, n)| {
                self.suppressor.is_small(*n)
                    || segment.as_deref().is_some_and(|s| self.is_hidden(s))
                    || (segment.is_none()
                        && self.masked.iter().any(|m| {
                            m.table == "segments" && m.row == crate::pipeline::model::UNASSIGNED
                        }))
            })
        });
        let shown: Vec<u64> = counts
            .iter()
            .zip(&masks)
            .filter(|(_, m)| m.is_none())
            .map(|(n, _)| *n)
            .collect();
        let largest = shown.iter().copied().max().unwrap_or(0).max(1) as f64;
        let mut quadrants = Vec::new();
        for (q, mask) in matrix.quadrants.iter().zip(masks) {
            let label = format!(
                "{} value, {} engagement",
                if q.high_value { "high" } else { "low" },
                if q.high_engagement { "high" } else { "low" }
            );
            if let Some(reason) = mask {
                self.record("quadrants", &label, None, reason);
            }
            if mix_masked {
                self.record("quadrant mix", &label, None, MaskReason::Complementary);
            }
            let segments = if mix_masked {
                Vec::new()
            } else {
                q.segments
                    .iter()
                    .map(|(segment, n)| {
                        let id = segment
                            .clone()
                            .unwrap_or_else(|| crate::pipeline::model::UNASSIGNED.to_string());
                        MixCell {
                            name: self.name(&id),
                            segment: segment.clone(),
                            customers: Some(*n),
                            masked: false,
                        }
                    })
                    .collect()
            };
            quadrants.push(QuadrantCard {
                high_value: q.high_value,
                high_engagement: q.high_engagement,
                customers: mask.is_none().then_some(q.customers),
                share: mask.is_none().then_some(q.share),
                masked: mask.is_some(),
                intensity: if mask.is_some() {
                    0.0
                } else {
                    q.customers as f64 / largest
                },
                segments,
            });
        }
        Some(MatrixCard {
            value_feature: matrix.value_feature.clone(),
            value_split: matrix.value_split,
            value_rule: matrix.value_rule.clone(),
            engagement_feature: matrix.engagement_feature.clone(),
            engagement_split: matrix.engagement_split,
            engagement_rule: matrix.engagement_rule.clone(),
            quadrants,
            mix_masked,
        })
    }

    fn rule_overlap(&mut self) -> Vec<OverlapCard> {
        let overlaps = self.docs.segments.results.rule_overlap.to_vec();
        overlaps
            .iter()
            .map(|o| {
                let masked = self.suppressor.is_small(o.customers) || self.is_hidden(&o.segment);
                if masked {
                    self.record("rule overlap", &o.segment, None, MaskReason::SmallCell);
                }
                let also: Vec<MixCell> = o
                    .also_matched_by
                    .iter()
                    .map(|(id, n)| {
                        let small = masked || self.suppressor.is_small(*n);
                        if small {
                            self.record(
                                "rule overlap",
                                &o.segment,
                                Some(id),
                                MaskReason::SmallCell,
                            );
                        }
                        MixCell {
                            name: self.name(id),
                            segment: Some(id.clone()),
                            customers: (!small).then_some(*n),
                            masked: small,
                        }
                    })
                    .collect();
                OverlapCard {
                    name: self.name(&o.segment),
                    segment: o.segment.clone(),
                    customers: (!masked).then_some(o.customers),
                    also_matched_by: also,
                }
            })
            .collect()
    }

    fn quantiles(&mut self) -> Vec<QuantileCuts> {
        let mut quantiles = self.docs.segments.results.quantiles.to_vec();
        for cuts in &mut quantiles {
            // Bucket bounds are data values of the customers in the bucket: a small bucket's
            // bounds describe a few people, so its whole row goes.
            let counts: Vec<u64> = cuts.buckets.iter().map(|b| b.customers).collect();
            let masks = self.suppressor.mask_group(&counts);
            let mut kept = Vec::new();
            for (bucket, mask) in cuts.buckets.drain(..).zip(masks) {
                match mask {
                    Some(reason) => self.record(
                        "quantiles",
                        &cuts.feature,
                        Some(&bucket.bucket.to_string()),
                        reason,
                    ),
                    None => kept.push(bucket),
                }
            }
            cuts.buckets = kept;
        }
        quantiles
    }

    fn comparison(&mut self, comparison: &Comparison) -> ComparisonCard {
        let migration = &comparison.migration;
        let unassigned = crate::pipeline::model::UNASSIGNED;
        let row_total = |id: &str| -> u64 {
            migration
                .rows
                .iter()
                .position(|r| r == id)
                .map_or(0, |r| migration.counts[r].iter().sum())
        };
        // The earlier run's sizes add up to its customers, which are shown: one group, masked
        // like this run's (small sizes, and a partner when one alone is masked).
        let old_present: Vec<(String, u64)> = comparison
            .sizes
            .iter()
            .filter_map(|s| s.old_customers.map(|n| (s.segment.clone(), n)))
            .chain(std::iter::once((
                unassigned.to_string(),
                row_total(unassigned),
            )))
            .collect();
        let old_counts: Vec<u64> = old_present.iter().map(|(_, n)| *n).collect();
        let old_masks = self.suppressor.mask_group(&old_counts);
        let hidden_then: Vec<String> = old_present
            .iter()
            .zip(&old_masks)
            .filter(|(_, mask)| mask.is_some())
            .map(|((id, _), _)| id.clone())
            .collect();
        for ((id, _), mask) in old_present.iter().zip(&old_masks) {
            if let Some(reason) = mask {
                self.record("comparison sizes", id, Some("old"), *reason);
            }
        }
        let hidden_now_unassigned = self
            .masked
            .iter()
            .any(|m| m.table == "segments" && m.row == unassigned);
        let hidden_now =
            |id: &str| self.is_hidden(id) || (id == unassigned && hidden_now_unassigned);
        let mut sizes = comparison.sizes.clone();
        for size in &mut sizes {
            let then = hidden_then.contains(&size.segment);
            let now = hidden_now(&size.segment);
            if then {
                size.old_customers = None;
                size.old_share = None;
            }
            if now {
                size.new_customers = None;
                size.new_share = None;
            }
            if then || now {
                size.share_change_points = None;
            }
        }
        // The cells of a segment masked in either run would add up to its size: all of them go,
        // then partners until no row or column keeps exactly one masked cell.
        let given: Vec<Vec<Option<MaskReason>>> = migration
            .rows
            .iter()
            .zip(&migration.counts)
            .map(|(row, cells)| {
                cells
                    .iter()
                    .enumerate()
                    .map(|(c, _)| {
                        let column = migration.columns.get(c).map(String::as_str).unwrap_or("");
                        (hidden_then.contains(row) || hidden_now(column))
                            .then_some(MaskReason::Complementary)
                    })
                    .collect()
            })
            .collect();
        let masks = self.suppressor.mask_table_with(&migration.counts, given);
        let any_masked = masks.iter().flatten().any(Option::is_some);
        // Shades are relative to the largest shown cell, so a masked one cannot be read from them.
        let largest = migration
            .counts
            .iter()
            .flatten()
            .zip(masks.iter().flatten())
            .filter(|(_, mask)| mask.is_none())
            .map(|(n, _)| *n)
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let mut counts = Vec::new();
        let mut intensity = Vec::new();
        for (r, (row, marks)) in migration.counts.iter().zip(&masks).enumerate() {
            let mut shown = Vec::new();
            let mut shades = Vec::new();
            for (c, (n, mark)) in row.iter().zip(marks).enumerate() {
                if let Some(reason) = mark {
                    let from = migration.rows.get(r).cloned().unwrap_or_default();
                    let to = migration.columns.get(c).cloned();
                    self.record("migration", &from, to.as_deref(), *reason);
                }
                shown.push(mark.is_none().then_some(*n));
                shades.push(if mark.is_none() {
                    *n as f64 / largest
                } else {
                    0.0
                });
            }
            counts.push(shown);
            intensity.push(shades);
        }
        // Stayed is the diagonal's sum, moved the rest's: with a masked cell, either would give
        // it away.
        let total = |n: u64| (!any_masked && !self.suppressor.is_small(n)).then_some(n);
        ComparisonCard {
            old: comparison.old.clone(),
            new: comparison.new.clone(),
            sizes,
            appeared_segments: comparison.appeared_segments.clone(),
            vanished_segments: comparison.vanished_segments.clone(),
            unmatched: comparison.unmatched.clone(),
            migration: MigrationCard {
                row_names: migration.rows.iter().map(|id| self.name(id)).collect(),
                column_names: migration.columns.iter().map(|id| self.name(id)).collect(),
                rows: migration.rows.clone(),
                columns: migration.columns.clone(),
                counts,
                intensity,
                stayed: total(migration.stayed),
                moved: total(migration.moved),
                appeared: total(migration.appeared),
                disappeared: total(migration.disappeared),
            },
            // Means of a group masked in either run describe a few customers.
            drift: comparison
                .drift
                .iter()
                .filter(|d| !self.is_hidden(&d.segment) && !hidden_then.contains(&d.segment))
                .cloned()
                .collect(),
            criteria_changes: comparison.criteria_changes.clone(),
        }
    }

    fn personas(&self, segments: &[SegmentCard], criteria: &CriteriaCard) -> Vec<PersonaCard> {
        let declared: &[PersonaSpec] = &self.docs.segments.pipeline.personas;
        declared
            .iter()
            .filter_map(|persona| {
                let segment = segments.iter().find(|s| s.id == persona.segment)?.clone();
                Some(PersonaCard {
                    persona: persona.clone(),
                    checks: criteria
                        .criteria
                        .iter()
                        .flat_map(|c| &c.checks)
                        .filter(|c| concerns(&c.subject).contains(&segment.id.as_str()))
                        .cloned()
                        .collect(),
                    segment,
                })
            })
            .collect()
    }

    fn heatmap(&self, segments: &[SegmentCard]) -> Heatmap {
        let overall: BTreeMap<&str, &FeatureStats> = self
            .docs
            .segments
            .results
            .overall
            .iter()
            .map(|o| (o.feature.as_str(), o))
            .collect();
        let features: Vec<FeatureCard> = self
            .features
            .iter()
            .filter(|f| {
                matches!(
                    f.format,
                    ValueFormat::Number | ValueFormat::Money | ValueFormat::Flag
                ) && overall
                    .get(f.name.as_str())
                    .is_some_and(|o| o.mean.is_some())
            })
            .cloned()
            .collect();
        let rows = segments
            .iter()
            .filter(|s| !s.masked)
            .map(|s| HeatmapRow {
                segment: s.id.clone(),
                name: s.name.clone(),
                cells: features
                    .iter()
                    .map(|f| {
                        let mean = s.features.iter().find(|x| x.feature == f.name)?.mean?;
                        let all = overall.get(f.name.as_str())?;
                        let sd = all.std_dev.filter(|sd| *sd > 0.0 && sd.is_finite());
                        let z = match (all.mean, sd) {
                            (Some(m), Some(sd)) => ((mean - m) / sd).clamp(-Z_LIMIT, Z_LIMIT),
                            _ => 0.0,
                        };
                        mean.is_finite().then_some(HeatCell { mean, z })
                    })
                    .collect(),
            })
            .collect();
        Heatmap { features, rows }
    }
}

/// `text` without its parenthesised figures: "highest weighted total (8.51) among ..." loses
/// "(8.51)".
fn without_figures(text: &str) -> String {
    let mut kept = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(" (") {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let inside = &rest[open + 2..open + close];
        kept.push_str(&rest[..open]);
        if !inside.chars().any(|c| c.is_ascii_digit()) {
            kept.push_str(&rest[open..=open + close]);
        }
        rest = &rest[open + close + 1..];
    }
    kept.push_str(rest);
    kept
}

/// The subjects a check is about: a pair `a ~ b` concerns both segments.
fn concerns(subject: &str) -> Vec<&str> {
    match subject.split_once(" ~ ") {
        Some((a, b)) => vec![a, b],
        None => vec![subject],
    }
}

/// A feature as reports show it: how to format its values follows from its Arrow type and unit.
fn feature_card(info: &FeatureInfo) -> FeatureCard {
    let data_type = info.data_type.as_str();
    let unit = info.unit.clone();
    let format = if data_type == "Boolean" {
        ValueFormat::Flag
    } else if data_type.starts_with("Date") || data_type.starts_with("Timestamp") {
        ValueFormat::Date
    } else if data_type.contains("Utf8") || data_type.contains("Binary") {
        ValueFormat::Text
    } else if unit
        .as_deref()
        .is_some_and(crate::pipeline::model::is_currency)
    {
        ValueFormat::Money
    } else {
        ValueFormat::Number
    };
    FeatureCard {
        name: info.name.clone(),
        kind: info.kind,
        description: info.description.clone(),
        data_type: info.data_type.clone(),
        unit,
        format,
    }
}

#[cfg(test)]
mod tests {
    use super::without_figures;

    #[test]
    fn figures_in_parentheses_leave_a_note_and_words_stay() {
        assert_eq!(
            without_figures("highest weighted total (8.51) among segments not marked negative"),
            "highest weighted total among segments not marked negative"
        );
        assert_eq!(
            without_figures("tied (with dormant) at (7.2)"),
            "tied (with dormant) at"
        );
        assert_eq!(without_figures("no figures"), "no figures");
    }
}
