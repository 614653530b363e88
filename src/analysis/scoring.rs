//! The weighted prioritisation matrix of seed 001: per-segment factor scores (by hand or derived
//! from data), weighted totals, the recommended beachhead, and how stable the ranking is when the
//! weights move.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::engine::{RunResults, SegmentResult};
use crate::pipeline::model::{DerivedScore, Metric, ScaleMethod, ScoringSpec, SegmentSpec};

/// A factor as scored.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FactorInfo {
    /// Factor id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Weight in percent.
    pub weight: f64,
    /// How the score was obtained, in words.
    pub method: String,
}

/// One segment's score on one factor.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FactorScore {
    /// Factor id.
    pub factor: String,
    /// Score from 1 to 10.
    pub score: f64,
    /// The measured metric behind a derived score.
    pub metric: Option<f64>,
    /// The note of a hand-given score.
    pub note: Option<String>,
}

/// A segment's place in the ranking.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RankedSegment {
    /// 1 for the highest total.
    pub rank: usize,
    /// Segment id.
    pub segment: String,
    /// Display name.
    pub name: String,
    /// Deprioritised on purpose (never the beachhead).
    pub negative: bool,
    /// Scores in factor order.
    pub scores: Vec<FactorScore>,
    /// Weighted total (sum of weight × score / 100), rounded to two decimals.
    pub total: f64,
    /// Segments with the same total; the tie is broken by pipeline order.
    pub tied_with: Vec<String>,
}

/// How the ranking behaves when weights move.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stability {
    /// Random draws made.
    pub draws: u32,
    /// Largest move of each weight, in points.
    pub max_shift: f64,
    /// The random seed.
    pub seed: u64,
    /// Per segment, in ranking order: the share of draws in which it kept its rank.
    pub keeps_rank: Vec<(String, f64)>,
    /// Share of draws in which a different segment would be the beachhead.
    pub beachhead_changes: f64,
    /// Per segment, the share of draws in which it is the beachhead (segments that never are,
    /// left out).
    pub beachhead_share: Vec<(String, f64)>,
}

/// The prioritisation of a run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScoringReport {
    /// The factors.
    pub factors: Vec<FactorInfo>,
    /// Segments from highest to lowest total.
    pub ranking: Vec<RankedSegment>,
    /// Recommended beachhead: the highest total among segments not marked negative.
    pub beachhead: Option<String>,
    /// Why the beachhead was chosen, including how a tie was broken.
    pub beachhead_note: String,
    /// Rank stability under weight perturbation, when declared.
    pub stability: Option<Stability>,
}

fn metric(results: &RunResults, segment: &SegmentResult, metric: &Metric) -> Option<f64> {
    let feature = |name: &str| segment.features.iter().find(|s| s.feature == name);
    match metric {
        Metric::Customers => Some(segment.customers as f64),
        Metric::Share => Some(segment.share),
        Metric::Mean(f) => feature(f)?.mean,
        Metric::Median(f) => feature(f)?.median,
        Metric::Sum(f) => feature(f)?
            .sum
            .or(Some(0.0))
            .filter(|_| results.customers > 0),
    }
}

/// Scores of every segment on a derived factor, in segment order.
fn derived_scores(derived: &DerivedScore, values: &[Option<f64>]) -> Vec<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = present
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    values
        .iter()
        .map(|value| {
            let Some(v) = value else { return 1.0 };
            let score = match &derived.method {
                ScaleMethod::MinMax if hi > lo => 1.0 + 9.0 * (v - lo) / (hi - lo),
                ScaleMethod::MinMax => 5.5,
                ScaleMethod::Breakpoints(points) => {
                    (1 + points.iter().filter(|p| **p <= *v).count()).min(10) as f64
                }
            };
            if derived.higher_is_better {
                score
            } else {
                11.0 - score
            }
        })
        .collect()
}

fn weighted(weights: &[f64], scores: &[f64]) -> f64 {
    weights.iter().zip(scores).map(|(w, s)| w * s).sum::<f64>() / 100.0
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Order of segment indices by total, highest first; ties keep pipeline order.
fn order(totals: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..totals.len()).collect();
    order.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]).then(a.cmp(&b)));
    order
}

fn beachhead(order: &[usize], negative: &[bool]) -> Option<usize> {
    order.iter().copied().find(|&i| !negative[i])
}

/// Every factor's score for every segment, in rule order.
fn score_table(
    spec: &ScoringSpec,
    segments: &[SegmentSpec],
    results: &RunResults,
) -> Vec<Vec<FactorScore>> {
    let mut table: Vec<Vec<FactorScore>> = vec![Vec::new(); segments.len()];
    for factor in &spec.factors {
        match &factor.derived {
            Some(derived) => {
                let values: Vec<Option<f64>> = segments
                    .iter()
                    .map(|s| {
                        results
                            .segment(&s.id)
                            .and_then(|measured| metric(results, measured, &derived.metric))
                    })
                    .collect();
                for (i, score) in derived_scores(derived, &values).into_iter().enumerate() {
                    table[i].push(FactorScore {
                        factor: factor.id.clone(),
                        score,
                        metric: values[i],
                        note: None,
                    });
                }
            }
            None => {
                for (i, segment) in segments.iter().enumerate() {
                    let given = segment.scores.get(&factor.id);
                    table[i].push(FactorScore {
                        factor: factor.id.clone(),
                        score: given.map_or(1.0, |g| g.score),
                        metric: None,
                        note: given.and_then(|g| g.note.clone()),
                    });
                }
            }
        }
    }
    table
}

/// Score, rank and test the stability of the segments.
pub fn score(spec: &ScoringSpec, segments: &[SegmentSpec], results: &RunResults) -> ScoringReport {
    let weights: Vec<f64> = spec.factors.iter().map(|f| f.weight).collect();
    let table = score_table(spec, segments, results);
    let scores: Vec<Vec<f64>> = table
        .iter()
        .map(|row| row.iter().map(|s| s.score).collect())
        .collect();
    let totals: Vec<f64> = scores
        .iter()
        .map(|s| round2(weighted(&weights, s)))
        .collect();
    let negative: Vec<bool> = segments.iter().map(|s| s.negative).collect();
    let ranked = order(&totals);
    let ranking: Vec<RankedSegment> = ranked
        .iter()
        .enumerate()
        .map(|(rank, &i)| RankedSegment {
            rank: rank + 1,
            segment: segments[i].id.clone(),
            name: segments[i].name.clone(),
            negative: negative[i],
            scores: table[i].clone(),
            total: totals[i],
            tied_with: (0..totals.len())
                .filter(|&j| j != i && totals[j] == totals[i])
                .map(|j| segments[j].id.clone())
                .collect(),
        })
        .collect();
    let best = beachhead(&ranked, &negative);
    let beachhead_note = match best {
        None => "no segment can be the beachhead: all are marked negative".to_string(),
        Some(i) => {
            let tied: Vec<&RankedSegment> = ranking
                .iter()
                .filter(|r| !r.negative && r.total == totals[i] && r.segment != segments[i].id)
                .collect();
            if tied.is_empty() {
                format!(
                    "highest weighted total ({:.2}) among segments not marked negative",
                    totals[i]
                )
            } else {
                let names: Vec<&str> = tied.iter().map(|r| r.segment.as_str()).collect();
                format!(
                    "tied at {:.2} with {}; the tie is broken by the order of segments in the pipeline",
                    totals[i],
                    names.join(", ")
                )
            }
        }
    };
    let stability = spec.stability.as_ref().map(|settings| {
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let base_rank: Vec<usize> = {
            let mut rank = vec![0; totals.len()];
            for (r, &i) in ranked.iter().enumerate() {
                rank[i] = r;
            }
            rank
        };
        let mut kept = vec![0u32; totals.len()];
        let mut leads = vec![0u32; totals.len()];
        let mut changes = 0u32;
        for _ in 0..settings.draws {
            let moved: Vec<f64> = weights
                .iter()
                .map(|w| {
                    let shift = if settings.max_shift > 0.0 {
                        rng.random_range(-settings.max_shift..=settings.max_shift)
                    } else {
                        0.0
                    };
                    (w + shift).max(0.0)
                })
                .collect();
            let sum: f64 = moved.iter().sum();
            let moved: Vec<f64> = if sum > 0.0 {
                moved.iter().map(|w| w * 100.0 / sum).collect()
            } else {
                weights.clone()
            };
            let draw_totals: Vec<f64> =
                scores.iter().map(|s| round2(weighted(&moved, s))).collect();
            let draw_order = order(&draw_totals);
            for (r, &i) in draw_order.iter().enumerate() {
                if base_rank[i] == r {
                    kept[i] += 1;
                }
            }
            let lead = beachhead(&draw_order, &negative);
            if let Some(l) = lead {
                leads[l] += 1;
            }
            if lead != best {
                changes += 1;
            }
        }
        let share = |n: u32| f64::from(n) / f64::from(settings.draws);
        Stability {
            draws: settings.draws,
            max_shift: settings.max_shift,
            seed: settings.seed,
            keeps_rank: ranked
                .iter()
                .map(|&i| (segments[i].id.clone(), share(kept[i])))
                .collect(),
            beachhead_changes: share(changes),
            beachhead_share: ranked
                .iter()
                .filter(|&&i| leads[i] > 0)
                .map(|&i| (segments[i].id.clone(), share(leads[i])))
                .collect(),
        }
    });
    ScoringReport {
        factors: spec
            .factors
            .iter()
            .map(|f| FactorInfo {
                id: f.id.clone(),
                name: f.name.clone(),
                weight: f.weight,
                method: match &f.derived {
                    None => "given by hand".to_string(),
                    Some(d) => {
                        let metric = match &d.metric {
                            Metric::Customers => "customers".to_string(),
                            Metric::Share => "share of customers".to_string(),
                            Metric::Mean(f) => format!("mean of {f}"),
                            Metric::Median(f) => format!("median of {f}"),
                            Metric::Sum(f) => format!("sum of {f}"),
                        };
                        let method = match &d.method {
                            ScaleMethod::MinMax => "min-max across segments".to_string(),
                            ScaleMethod::Breakpoints(p) => format!("breakpoints {p:?}"),
                        };
                        let direction = if d.higher_is_better {
                            ""
                        } else {
                            ", lower is better"
                        };
                        format!("{metric}, {method}{direction}")
                    }
                },
            })
            .collect(),
        ranking,
        beachhead: best.map(|i| segments[i].id.clone()),
        beachhead_note,
        stability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_scores_map_onto_one_to_ten() {
        let min_max = DerivedScore {
            metric: Metric::Customers,
            method: ScaleMethod::MinMax,
            higher_is_better: true,
        };
        assert_eq!(
            derived_scores(&min_max, &[Some(10.0), Some(20.0), Some(15.0)]),
            [1.0, 10.0, 5.5]
        );
        let inverted = DerivedScore {
            higher_is_better: false,
            ..min_max.clone()
        };
        assert_eq!(
            derived_scores(&inverted, &[Some(10.0), Some(20.0)]),
            [10.0, 1.0]
        );
        let points = DerivedScore {
            metric: Metric::Share,
            method: ScaleMethod::Breakpoints(vec![0.1, 0.2, 0.3]),
            higher_is_better: true,
        };
        assert_eq!(
            derived_scores(&points, &[Some(0.05), Some(0.1), Some(0.25), Some(0.9)]),
            [1.0, 2.0, 3.0, 4.0]
        );
    }

    #[test]
    fn ties_keep_pipeline_order() {
        assert_eq!(order(&[5.0, 7.0, 5.0, 7.0]), [1, 3, 0, 2]);
        assert_eq!(
            beachhead(&[1, 3, 0, 2], &[false, true, false, false]),
            Some(3)
        );
    }
}
