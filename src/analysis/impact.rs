//! What a change of a pipeline does to its customers (`segflow impact`): the migration from the
//! base version's segments to the current version's, a deterministic sample of the customers in
//! each changed cell, and the criteria, priorities, lints and feature definitions that changed.
//! `impact.json` is this document; `impact.md` is rendered from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::compare::{Comparison, CriterionChange, Migration, SizeChange};
use super::scoring::ScoringReport;
use crate::engine::stats::FeatureStats;
use crate::pipeline::Pipeline;
use crate::pipeline::model::FeatureSpec;

/// The impact of a change, as `impact.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Impact {
    /// The pipeline's name.
    pub pipeline: String,
    /// Where the base version came from: `REF:path` or the file.
    pub base: String,
    /// The current version's file.
    pub current: String,
    /// The as-of date both versions ran at.
    pub as_of: String,
    /// Whether the features were computed once for both versions (only rules changed).
    pub features_computed_once: bool,
    /// When features changed but not the sources or entity: the base's features computed apart
    /// (those that changed, those using them, and what they use); the others were computed once.
    pub recomputed_features: Vec<String>,
    /// Customers in the current version's run.
    pub customers: u64,
    /// Customers in both runs whose segment changed.
    pub moved: u64,
    /// `moved` over the customers of the base run.
    pub moved_share: f64,
    /// Customers in both runs in the same segment.
    pub stayed: u64,
    /// The migration matrix, base segments by current segments.
    pub migration: Migration,
    /// Every cell whose customers changed segment, largest first.
    pub moves: Vec<Move>,
    /// Segment sizes in both versions.
    pub sizes: Vec<SizeChange>,
    /// Segment rules that were added, removed, renamed or edited (matched by id).
    pub rules: Vec<RuleChange>,
    /// Criteria checks whose status changed.
    pub criteria: Vec<CriterionChange>,
    /// Priority ranks and scores that changed.
    pub priorities: Vec<PriorityChange>,
    /// Lint codes and messages present in one version only.
    pub lints: LintChanges,
    /// Features whose definitions changed, with their distributions in both versions.
    pub features: Vec<FeatureChange>,
    /// The gate of `--fail-if-moved-above`, when given.
    pub gate: Option<Gate>,
}

/// Customers who moved from one segment to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Move {
    /// Segment in the base version (`(unassigned)` when none).
    pub from: String,
    /// Segment in the current version.
    pub to: String,
    /// Customers.
    pub customers: u64,
    /// Up to `--sample` of their keys, chosen by the SHA-256 of the key (the same change gives
    /// the same sample); empty with `--no-sample`.
    pub sample: Vec<String>,
}

/// A segment rule that differs between the versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleChange {
    /// Segment id.
    pub segment: String,
    /// `added`, `removed`, `renamed`, `edited`, `moved` (its place in the order), or several of
    /// these joined by `, `.
    pub change: String,
    /// Name, rule and position in the base version.
    pub before: Option<RuleVersion>,
    /// Name, rule and position in the current version.
    pub after: Option<RuleVersion>,
}

/// A segment as one version declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleVersion {
    /// Display name.
    pub name: String,
    /// The `when` condition; `None` for the catch-all.
    pub when: Option<String>,
    /// 1-based position in rule order.
    pub position: usize,
}

/// A segment's priority in both versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PriorityChange {
    /// Segment id.
    pub segment: String,
    /// Rank in the base version.
    pub old_rank: Option<usize>,
    /// Rank in the current version.
    pub new_rank: Option<usize>,
    /// Total score in the base version.
    pub old_score: Option<f64>,
    /// Total score in the current version.
    pub new_score: Option<f64>,
}

/// Lints found in one version and not the other.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LintChanges {
    /// `code: message` of lints only the current version has.
    pub appeared: Vec<String>,
    /// `code: message` of lints only the base version had.
    pub disappeared: Vec<String>,
}

/// A feature whose definition changed, was added or removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureChange {
    /// Feature name.
    pub feature: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    /// The definition in the base version (YAML).
    pub before: Option<String>,
    /// The definition in the current version (YAML).
    pub after: Option<String>,
    /// Its values over all customers in the base run.
    pub old: Option<FeatureStats>,
    /// Its values over all customers in the current run.
    pub new: Option<FeatureStats>,
}

/// The CI gate of `--fail-if-moved-above`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gate {
    /// The largest share of customers allowed to move.
    pub threshold: f64,
    /// Whether more moved.
    pub failed: bool,
}

/// One version of the pipeline, run and analysed.
pub struct Version<'a> {
    /// The pipeline as that version declares it.
    pub pipeline: &'a Pipeline,
    /// Its overall feature statistics.
    pub overall: &'a [FeatureStats],
    /// Its prioritisation, when declared.
    pub scoring: Option<&'a ScoringReport>,
    /// `code: message` of every lint of its run.
    pub lints: Vec<String>,
}

/// Label of customers without a segment in a move.
const UNASSIGNED: &str = "(unassigned)";

/// Assemble the impact of going from `base` to `current`, given their runs' comparison and
/// samples of the keys of each changed cell.
pub fn impact(
    base: &Version<'_>,
    current: &Version<'_>,
    comparison: &Comparison,
    samples: &BTreeMap<crate::engine::compare::Cell, Vec<String>>,
) -> Impact {
    let migration = comparison.migration.clone();
    let mut moves = Vec::new();
    for (r, from) in migration.rows.iter().enumerate() {
        for (c, to) in migration.columns.iter().enumerate() {
            let customers = migration.counts[r][c];
            let in_both = from != super::compare::NOT_IN_OLD && to != super::compare::NOT_IN_NEW;
            if customers == 0 || from == to || !in_both {
                continue;
            }
            let key = (
                (from != UNASSIGNED).then(|| from.clone()),
                (to != UNASSIGNED).then(|| to.clone()),
            );
            moves.push(Move {
                from: from.clone(),
                to: to.clone(),
                customers,
                sample: samples.get(&key).cloned().unwrap_or_default(),
            });
        }
    }
    moves.sort_by(|a, b| {
        b.customers
            .cmp(&a.customers)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    let base_customers = migration.stayed + migration.moved + migration.disappeared;
    Impact {
        pipeline: current.pipeline.spec.name.clone(),
        base: String::new(),
        current: String::new(),
        as_of: String::new(),
        features_computed_once: false,
        recomputed_features: Vec::new(),
        customers: migration.stayed + migration.moved + migration.appeared,
        moved: migration.moved,
        moved_share: if base_customers == 0 {
            0.0
        } else {
            migration.moved as f64 / base_customers as f64
        },
        stayed: migration.stayed,
        migration,
        moves,
        sizes: comparison.sizes.clone(),
        rules: rule_changes(base.pipeline, current.pipeline),
        criteria: comparison.criteria_changes.clone(),
        priorities: priority_changes(base.scoring, current.scoring),
        lints: LintChanges {
            appeared: only_in(&current.lints, &base.lints),
            disappeared: only_in(&base.lints, &current.lints),
        },
        features: feature_changes(base, current),
        gate: None,
    }
}

fn only_in(these: &[String], those: &[String]) -> Vec<String> {
    these
        .iter()
        .filter(|lint| !those.contains(lint))
        .cloned()
        .collect()
}

/// Rules by segment id: a segment renamed keeps its id, so it is matched, not added and removed.
fn rule_changes(base: &Pipeline, current: &Pipeline) -> Vec<RuleChange> {
    let version = |pipeline: &Pipeline| -> BTreeMap<String, RuleVersion> {
        pipeline
            .spec
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.id.clone(),
                    RuleVersion {
                        name: s.name.clone(),
                        when: s.when.clone(),
                        position: i + 1,
                    },
                )
            })
            .collect()
    };
    let (before, after) = (version(base), version(current));
    let mut ids: Vec<&String> = current.spec.segments.iter().map(|s| &s.id).collect();
    ids.extend(
        base.spec
            .segments
            .iter()
            .map(|s| &s.id)
            .filter(|id| !after.contains_key(*id)),
    );
    ids.into_iter()
        .filter_map(|id| {
            let (old, new) = (before.get(id), after.get(id));
            let change = match (old, new) {
                (None, Some(_)) => "added".to_string(),
                (Some(_), None) => "removed".to_string(),
                (Some(o), Some(n)) => {
                    let mut what = Vec::new();
                    if o.name != n.name {
                        what.push("renamed");
                    }
                    if normalised(&o.when) != normalised(&n.when) {
                        what.push("edited");
                    }
                    if o.position != n.position {
                        what.push("moved");
                    }
                    if what.is_empty() {
                        return None;
                    }
                    what.join(", ")
                }
                (None, None) => return None,
            };
            Some(RuleChange {
                segment: id.clone(),
                change,
                before: old.cloned(),
                after: new.cloned(),
            })
        })
        .collect()
}

/// A condition with its whitespace collapsed: re-wrapping a rule is not a change.
fn normalised(when: &Option<String>) -> Option<String> {
    when.as_ref()
        .map(|w| w.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn priority_changes(
    base: Option<&ScoringReport>,
    current: Option<&ScoringReport>,
) -> Vec<PriorityChange> {
    let ranks = |report: Option<&ScoringReport>| -> BTreeMap<String, (usize, f64)> {
        report
            .map(|r| {
                r.ranking
                    .iter()
                    .map(|s| (s.segment.clone(), (s.rank, s.total)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (ranks(base), ranks(current));
    let mut segments: Vec<&String> = new.keys().collect();
    segments.extend(old.keys().filter(|s| !new.contains_key(*s)));
    segments
        .into_iter()
        .filter_map(|segment| {
            let (o, n) = (old.get(segment), new.get(segment));
            let same = match (o, n) {
                (Some(o), Some(n)) => o.0 == n.0 && (o.1 - n.1).abs() < 1e-9,
                _ => false,
            };
            (!same).then(|| PriorityChange {
                segment: segment.clone(),
                old_rank: o.map(|o| o.0),
                new_rank: n.map(|n| n.0),
                old_score: o.map(|o| o.1),
                new_score: n.map(|n| n.1),
            })
        })
        .collect()
}

/// A feature's declaration as YAML, for comparing and showing.
fn definition(feature: &FeatureSpec) -> String {
    serde_yaml::to_string(feature).unwrap_or_default()
}

fn feature_changes(base: &Version<'_>, current: &Version<'_>) -> Vec<FeatureChange> {
    let declared = |pipeline: &Pipeline| -> BTreeMap<String, String> {
        pipeline
            .spec
            .features
            .iter()
            .map(|f| (f.name.clone(), definition(f)))
            .collect()
    };
    let stats =
        |overall: &[FeatureStats], name: &str| overall.iter().find(|s| s.feature == name).cloned();
    let (before, after) = (declared(base.pipeline), declared(current.pipeline));
    let mut names: Vec<&String> = current
        .pipeline
        .spec
        .features
        .iter()
        .map(|f| &f.name)
        .collect();
    names.extend(
        base.pipeline
            .spec
            .features
            .iter()
            .map(|f| &f.name)
            .filter(|n| !after.contains_key(*n)),
    );
    names
        .into_iter()
        .filter_map(|name| {
            let (old, new) = (before.get(name), after.get(name));
            let change = match (old, new) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(o), Some(n)) if o != n => "changed",
                _ => return None,
            };
            Some(FeatureChange {
                feature: name.clone(),
                change: change.into(),
                before: old.cloned(),
                after: new.cloned(),
                old: old.and_then(|_| stats(base.overall, name)),
                new: new.and_then(|_| stats(current.overall, name)),
            })
        })
        .collect()
}
