//! The starter segmentation of `segflow init`: three or four tiers of one feature (engagement or
//! value) with a catch-all, whose thresholds are quantiles of the feature as computed on the
//! data, checked so that no segment is nearly empty.

use super::guess::{Basis, Tiering, count};

/// A segment to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Its id.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Who they are.
    pub description: String,
    /// The team that acts on it (a placeholder).
    pub owner: &'static str,
    /// A first action.
    pub action: &'static str,
    /// Its rule; `None` for the catch-all.
    pub when: Option<String>,
    /// Where the threshold came from and how many customers the rule takes now.
    pub evidence: String,
    /// Customers in it, measured on the data.
    pub customers: usize,
}

/// The smallest share of customers a tier may have; smaller tiers are merged into the next.
/// Above the `substantial` criterion's error level (2%), so that a fresh run passes it.
const MIN_SHARE: f64 = 0.05;

struct Tier {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    owner: &'static str,
    action: &'static str,
}

fn names(basis: Basis) -> [Tier; 4] {
    match basis {
        Basis::Engagement => [
            Tier {
                id: "high_engagement",
                name: "High engagement",
                description: "The most active customers: the top quarter of active days.",
                owner: "product",
                action: "Invite to the beta programme and ask for referrals",
            },
            Tier {
                id: "middle_engagement",
                name: "Middle engagement",
                description: "Regularly active, below the top quarter.",
                owner: "product",
                action: "Show them one workflow they have not tried yet",
            },
            Tier {
                id: "low_engagement",
                name: "Low engagement",
                description: "Active now and then.",
                owner: "growth",
                action: "Onboarding nudges towards the core workflow",
            },
            Tier {
                id: "dormant",
                name: "Dormant",
                description: "No activity in the window.",
                owner: "lifecycle-marketing",
                action: "Win-back campaign; ask why they stopped",
            },
        ],
        Basis::Value => [
            Tier {
                id: "high_value",
                name: "High value",
                description: "The top quarter of spenders.",
                owner: "crm",
                action: "Early access and referral rewards",
            },
            Tier {
                id: "middle_value",
                name: "Middle value",
                description: "Steady spenders below the top quarter.",
                owner: "crm",
                action: "Loyalty programme upsell",
            },
            Tier {
                id: "low_value",
                name: "Low value",
                description: "Bought a little.",
                owner: "lifecycle",
                action: "Second-purchase nudge with a personalised offer",
            },
            Tier {
                id: "no_recent_purchase",
                name: "No recent purchase",
                description: "No purchase in the window.",
                owner: "lifecycle",
                action: "Win-back offer before they are gone for good",
            },
        ],
    }
}

/// The lower `p` quantile of sorted `values` (nearest rank, a value that occurs).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).floor() as usize;
    sorted[index]
}

fn shown(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
    }
}

/// The values above 0, in ascending order: the customers that tiers split.
fn above_zero(values: &[Option<f64>]) -> Vec<f64> {
    let mut active: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| *v > 0.0)
        .collect();
    active.sort_by(f64::total_cmp);
    active
}

/// The tiers of `tiering.feature`, whose value per customer is `values` (`None`: no value).
/// Customers with a value above 0 are split at the 75th and 35th percentile of those values;
/// the rest are the catch-all. A tier with fewer than 5% of the customers is merged into the
/// next one, and a small catch-all into the lowest tier, so every segment is substantial.
pub fn tiers(tiering: &Tiering, values: &[Option<f64>]) -> Vec<Segment> {
    let feature = &tiering.feature;
    let total = values.len();
    let active = above_zero(values);
    let [high, middle, low, rest] = names(tiering.basis);
    let mut rules: Vec<(Tier, Option<f64>, String)> = Vec::new();
    if !active.is_empty() {
        let round = |v: f64| (v * 100.0).floor() / 100.0;
        let p75 = round(quantile(&active, 0.75));
        let p35 = round(quantile(&active, 0.35));
        let base = format!(
            "of the {} customers with {feature} > 0",
            count(active.len() as u64)
        );
        rules.push((high, Some(p75), format!("p75 {base}")));
        rules.push((middle, Some(p35), format!("p35 {base}")));
        rules.push((low, None, "any activity".into()));
    }
    let minimum = ((total as f64 * MIN_SHARE).ceil() as usize).max(1);
    let rule_of = |threshold: &Option<f64>| match threshold {
        Some(t) => format!("{feature} >= {}", shown(*t)),
        None => format!("{feature} > 0"),
    };
    loop {
        let counts = count_members(&rules, values);
        match counts.iter().position(|n| *n < minimum) {
            Some(small) if small < rules.len() => {
                rules.remove(small);
            }
            _ => break,
        }
    }
    let counts = count_members(&rules, values);
    let share = |n: usize| n as f64 * 100.0 / total.max(1) as f64;
    let rest_count = counts.last().copied().unwrap_or(0);
    let mut segments: Vec<Segment> = rules
        .iter()
        .zip(&counts)
        .map(|((tier, threshold, why), n)| Segment {
            id: tier.id,
            name: tier.name,
            description: tier.description.into(),
            owner: tier.owner,
            action: tier.action,
            when: Some(rule_of(threshold)),
            evidence: match threshold {
                Some(t) => format!(
                    "{}: {why}; {} in it now ({:.1}%)",
                    shown(*t),
                    count(*n as u64),
                    share(*n)
                ),
                None => format!("{why}; {} in it now ({:.1}%)", count(*n as u64), share(*n)),
            },
            customers: *n,
        })
        .collect();
    let catch_all = Segment {
        id: rest.id,
        name: rest.name,
        description: rest.description.into(),
        owner: rest.owner,
        action: rest.action,
        when: None,
        evidence: format!(
            "the catch-all: everyone else; {} in it now ({:.1}%)",
            count(rest_count as u64),
            share(rest_count)
        ),
        customers: rest_count,
    };
    if rest_count >= minimum || segments.is_empty() {
        segments.push(catch_all);
    } else if let Some(last) = segments.last_mut() {
        // Too few customers without activity for a segment of their own: the lowest tier
        // takes them.
        last.when = None;
        last.customers += rest_count;
        last.description = format!(
            "{} Also the {rest_count} customers with no {feature} (too few for a segment).",
            last.description
        );
        last.evidence = format!(
            "the catch-all: everyone else; {} in it now ({:.1}%)",
            count(last.customers as u64),
            share(last.customers)
        );
    }
    segments
}

/// Why `segments` are fewer than three, the tiers init means to make, when they are: tiers
/// under 5% of the customers were merged, and the data says why so many were small.
pub fn fewer_tiers(
    tiering: &Tiering,
    values: &[Option<f64>],
    segments: &[Segment],
) -> Option<String> {
    if segments.len() >= 3 {
        return None;
    }
    let feature = &tiering.feature;
    let mut active = above_zero(values);
    let with_value = active.len();
    active.dedup();
    let reason = match active.as_slice() {
        [] => format!("no customer has {feature} above 0"),
        [only] => format!(
            "all {} customers with {feature} above 0 have the same value, {}",
            count(with_value as u64),
            shown(*only)
        ),
        _ if (with_value as f64) < 3.0 * MIN_SHARE * values.len() as f64 => format!(
            "only {} of {} customers have {feature} above 0",
            count(with_value as u64),
            count(values.len() as u64)
        ),
        _ => format!("most customers share a few values of {feature}"),
    };
    Some(format!(
        "init made {} segment(s), not three or four: {reason}, and a tier with fewer than 5% of \
         the customers is merged into the next",
        segments.len()
    ))
}

/// Customers per rule, first match wins; the last count is those no rule takes.
fn count_members(rules: &[(Tier, Option<f64>, String)], values: &[Option<f64>]) -> Vec<usize> {
    let mut counts = vec![0; rules.len() + 1];
    for value in values {
        let v = value.unwrap_or(0.0);
        let index = rules
            .iter()
            .position(|(_, threshold, _)| match threshold {
                Some(t) => v >= *t,
                None => v > 0.0,
            })
            .unwrap_or(rules.len());
        counts[index] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiering() -> Tiering {
        Tiering {
            feature: "active_days_90".into(),
            basis: Basis::Engagement,
            evidence: String::new(),
        }
    }

    #[test]
    fn four_substantial_tiers_from_spread_values() {
        let values: Vec<Option<f64>> = (0..100).map(|v| Some(f64::from(v % 10))).collect();
        let segments = tiers(&tiering(), &values);
        let ids: Vec<&str> = segments.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "high_engagement",
                "middle_engagement",
                "low_engagement",
                "dormant"
            ]
        );
        assert_eq!(segments.iter().map(|s| s.customers).sum::<usize>(), 100);
        assert!(segments.iter().all(|s| s.customers >= 5), "{segments:?}");
        assert_eq!(segments[3].when, None);
    }

    #[test]
    fn a_small_catch_all_joins_the_lowest_tier() {
        let values: Vec<Option<f64>> = (1..=100).map(|v| Some(f64::from(v))).collect();
        let segments = tiers(&tiering(), &values);
        assert_eq!(segments.len(), 3);
        assert_eq!(segments.last().map(|s| s.when.clone()), Some(None));
    }

    #[test]
    fn fewer_tiers_say_why() {
        let equal: Vec<Option<f64>> = (0..100).map(|v| Some(f64::from(v % 2) * 7.0)).collect();
        let segments = tiers(&tiering(), &equal);
        let why = fewer_tiers(&tiering(), &equal, &segments).expect("fewer");
        assert!(why.contains("have the same value, 7"), "{why}");
        let nobody: Vec<Option<f64>> = vec![Some(0.0); 50];
        let segments = tiers(&tiering(), &nobody);
        let why = fewer_tiers(&tiering(), &nobody, &segments).expect("fewer");
        assert!(
            why.contains("no customer has active_days_90 above 0"),
            "{why}"
        );
        let spread: Vec<Option<f64>> = (0..100).map(|v| Some(f64::from(v % 10))).collect();
        assert_eq!(
            fewer_tiers(&tiering(), &spread, &tiers(&tiering(), &spread)),
            None
        );
    }

    #[test]
    fn ties_never_leave_an_empty_tier() {
        let values: Vec<Option<f64>> = (0..100).map(|v| Some(f64::from(v % 2))).collect();
        let segments = tiers(&tiering(), &values);
        assert!(segments.iter().all(|s| s.customers >= 5), "{segments:?}");
        assert_eq!(segments.len(), 2);
    }
}
