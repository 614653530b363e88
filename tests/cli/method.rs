//! The segmentation method (issue 3): validation criteria passing, warning and failing with
//! values worked out by hand on the `windows` fixture, the exit code, scoring against an
//! independent computation, personas, quantile cut points and the 2x2 matrix.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{
    ExampleRun, Workspace, read_assignments, read_json, repo_path, segflow, stderr,
};

const CRITERIA_FAILED: i32 = 6;

/// The windows fixture with `extra` appended to its pipeline (top-level sections).
fn windows_with(extra: &str) -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write("pipeline.yaml", &format!("{pipeline}{extra}"));
    workspace
}

fn checks<'a>(criteria: &'a Value, name: &str) -> Vec<&'a Value> {
    criteria["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["criterion"] == name)
        .unwrap_or_else(|| panic!("criterion {name} missing"))["checks"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

fn status_by_subject(
    criteria: &Value,
    name: &str,
    measure: &str,
) -> BTreeMap<String, (Value, String)> {
    checks(criteria, name)
        .into_iter()
        .filter(|c| c["measure"] == measure)
        .map(|c| {
            (
                c["subject"].as_str().unwrap().to_string(),
                (
                    c["value"].clone(),
                    c["status"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

// Hand-worked values (see hand_worked.rs): five customers, one each in busy (3), active (1),
// new_quiet (5), lapsed (4), and customer 2 unassigned: unassigned share 0.2.
// events_30: c1 2, c3 3, others 0 → total 5; busy holds 3/5, active 2/5.
// score_double: c1 10, c3 4, c4 16, c5 2 → reachable (score_double >= 5): c1, c4.
const CRITERIA: &str = r#"
criteria:
  identifiable:
    unassigned_share: { warn_if_above: 0.1, error_if_above: 0.3 }
  substantial:
    share: { warn_if_below: 0.25 }
    customers: { error_if_below: 1 }
    value_share: { feature: events_30, threshold: { error_if_below: 0.1 } }
  accessible:
    reachable: score_double >= 5
    share: { error_if_below: 0.5 }
  actionable: {}
"#;

#[test]
fn criteria_pass_warn_and_fail_with_hand_worked_values() {
    let workspace = windows_with(CRITERIA);
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(
        output.status.code(),
        Some(CRITERIA_FAILED),
        "{}",
        stderr(&output)
    );
    let criteria = read_json(&workspace.path().join("out/criteria.json"));
    assert_eq!(criteria["status"], json!("fail"));

    let identifiable = status_by_subject(&criteria, "identifiable", "share unassigned");
    assert_eq!(
        identifiable["all customers"],
        (json!(0.2), "warn".to_string())
    );

    let share = status_by_subject(&criteria, "substantial", "share of customers");
    assert!(
        share
            .values()
            .all(|v| *v == (json!(0.2), "warn".to_string())),
        "{share:?}"
    );
    let customers = status_by_subject(&criteria, "substantial", "customers");
    assert!(
        customers
            .values()
            .all(|v| *v == (json!(1.0), "pass".to_string())),
        "{customers:?}"
    );
    let value = status_by_subject(&criteria, "substantial", "share of total events_30");
    assert_eq!(value["busy"], (json!(0.6), "pass".to_string()));
    assert_eq!(value["active"], (json!(0.4), "pass".to_string()));
    assert_eq!(value["new_quiet"], (json!(0.0), "fail".to_string()));
    assert_eq!(value["lapsed"], (json!(0.0), "fail".to_string()));

    let reachable = status_by_subject(&criteria, "accessible", "share reachable");
    assert_eq!(reachable["busy"], (json!(0.0), "fail".to_string()));
    assert_eq!(reachable["active"], (json!(1.0), "pass".to_string()));
    assert_eq!(reachable["new_quiet"], (json!(0.0), "fail".to_string()));
    assert_eq!(reachable["lapsed"], (json!(1.0), "pass".to_string()));

    // The fixture's segments declare no owner and no action.
    let actionable = checks(&criteria, "actionable");
    assert!(actionable.iter().all(|c| c["status"] == "fail"));
    assert_eq!(
        actionable[0]["detail"],
        json!("missing an owner and an action")
    );

    // Everything was written before the failure was reported.
    assert!(workspace.path().join("out/report.html").is_file());
    let message = stderr(&output);
    assert!(message.contains("validation criteria failed"), "{message}");
    assert!(
        message.contains(
            "substantial · new_quiet · share of total events_30: 0.0000 (fail below 0.1)"
        ),
        "{message}"
    );
}

#[test]
fn criteria_pass_when_thresholds_and_declarations_are_met() {
    let workspace = windows_with(
        r#"
criteria:
  identifiable:
    unassigned_share: { error_if_above: 0.25 }
  substantial:
    share: { warn_if_below: 0.2, error_if_below: 0.1 }
  actionable: {}
"#,
    );
    for segment in ["busy", "active", "new_quiet"] {
        workspace.edit_pipeline(
            &format!("  - id: {segment}\n"),
            &format!("  - id: {segment}\n    owner: team_{segment}\n    actions: [Do something]\n"),
        );
    }
    workspace.edit_pipeline("  - id: lapsed\n", "  - id: lapsed\n    owner: retention\n    negative: true\n    negative_reason: Gone for good.\n");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let criteria = read_json(&workspace.path().join("out/criteria.json"));
    assert_eq!(criteria["status"], json!("pass"), "{criteria:#}");
    let lapsed = checks(&criteria, "actionable")
        .into_iter()
        .find(|c| c["subject"] == "lapsed")
        .unwrap();
    assert_eq!(
        lapsed["detail"],
        json!("negative on purpose: Gone for good.")
    );
}

#[test]
fn negative_segment_without_reason_fails_actionable() {
    let workspace = windows_with("criteria:\n  actionable: { require_owner: false }\n");
    workspace.edit_pipeline("  - id: lapsed\n", "  - id: lapsed\n    negative: true\n");
    let output = workspace.segflow(&[
        "run",
        "pipeline.yaml",
        "--out",
        "out",
        "--criteria-as-warnings",
    ]);
    assert!(
        output.status.success(),
        "--criteria-as-warnings exits 0: {}",
        stderr(&output)
    );
    let criteria = read_json(&workspace.path().join("out/criteria.json"));
    let lapsed = checks(&criteria, "actionable")
        .into_iter()
        .find(|c| c["subject"] == "lapsed")
        .unwrap();
    assert_eq!(lapsed["status"], json!("fail"));
    assert_eq!(
        lapsed["detail"],
        json!("missing a `negative_reason` (it is marked negative)")
    );
}

/// Mean and sample standard deviation of a column per segment, from the assignments.
fn moments(
    rows: &BTreeMap<i64, BTreeMap<String, Value>>,
    feature: &str,
) -> BTreeMap<String, (f64, f64, f64)> {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for row in rows.values() {
        if let (Some(segment), Some(v)) = (row["segment"].as_str(), row[feature].as_f64()) {
            values.entry(segment.to_string()).or_default().push(v);
        }
    }
    values
        .into_iter()
        .map(|(segment, v)| {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (segment, (n, mean, var))
        })
        .collect()
}

#[test]
fn differentiable_effect_sizes_match_an_independent_computation() {
    let workspace = Workspace::from_fixture("windows");
    let out = workspace.path().join("run");
    let pipeline = std::fs::read_to_string(repo_path("pipelines/saas_quarterly.yaml")).unwrap();
    // Tenure alone barely separates the engagement segments: the criterion must fail.
    let pipeline = pipeline.replace(
        "features: [active_days_90, features_used_90, tenure_days, tickets_90, revenue_12m]",
        "features: [tenure_days]",
    );
    std::fs::write(repo_path("pipelines").join(".tenure_only.yaml"), &pipeline).unwrap();
    let output = segflow()
        .current_dir(repo_path(""))
        .args(["run", "pipelines/.tenure_only.yaml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    std::fs::remove_file(repo_path("pipelines/.tenure_only.yaml")).unwrap();
    assert_eq!(
        output.status.code(),
        Some(CRITERIA_FAILED),
        "{}",
        stderr(&output)
    );

    let (rows, _) = read_assignments(&out.join("assignments.parquet"), "customer_id");
    let m = moments(&rows, "tenure_days");
    let d = |a: &str, b: &str| {
        let ((n1, m1, v1), (n2, m2, v2)) = (m[a], m[b]);
        let pooled = (((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / (n1 + n2 - 2.0)).sqrt();
        ((m1 - m2) / pooled).abs()
    };
    let criteria = read_json(&out.join("criteria.json"));
    let pairs = status_by_subject(&criteria, "differentiable", "largest |Cohen's d|");
    assert_eq!(pairs.len(), 10, "five segments make ten pairs");
    for (subject, (value, status)) in &pairs {
        let (a, b) = subject.split_once(" ~ ").unwrap();
        let expected = d(a, b);
        let got = value.as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-9,
            "{subject}: {got} vs {expected}"
        );
        let want = if expected < 0.5 {
            "fail"
        } else if expected < 0.8 {
            "warn"
        } else {
            "pass"
        };
        assert_eq!(status, want, "{subject}");
    }
    assert_eq!(pairs["task_completers ~ occasional"].1, "fail");
    assert_eq!(pairs["power_users ~ struggling"].1, "pass");
}

#[test]
fn prioritisation_totals_match_an_independent_computation() {
    let run = ExampleRun::new("pipelines/prioritization_example.yaml", &[]);
    let scoring = read_json(&run.path("scoring.json"));

    // Recompute Σ weight × score / 100 from the pipeline file itself.
    let text = std::fs::read_to_string(repo_path("pipelines/prioritization_example.yaml")).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let weights: Vec<(String, f64)> = yaml["scoring"]["factors"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["weight"].as_f64().unwrap(),
            )
        })
        .collect();
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for segment in yaml["segments"].as_sequence().unwrap() {
        let total: f64 = weights
            .iter()
            .map(|(id, w)| w * segment["scores"][id.as_str()]["score"].as_f64().unwrap() / 100.0)
            .sum();
        expected.insert(segment["id"].as_str().unwrap().to_string(), total);
    }
    // The same numbers by hand: 9×.25 + 10×.25 + 6×.20 + 4×.15 + 7×.15 = 7.60 for enterprise, etc.
    let by_hand = [
        ("enterprise", 7.60),
        ("startups", 7.35),
        ("smb", 6.70),
        ("agencies", 5.85),
    ];
    let ranking: Vec<(String, f64)> = scoring["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["segment"].as_str().unwrap().to_string(),
                r["total"].as_f64().unwrap(),
            )
        })
        .collect();
    for ((segment, total), (hand_segment, hand_total)) in ranking.iter().zip(by_hand) {
        assert_eq!(segment, hand_segment);
        assert!((total - hand_total).abs() < 1e-9, "{segment}: {total}");
        assert!(
            (total - expected[segment]).abs() < 0.005,
            "{segment}: {total} vs {}",
            expected[segment]
        );
    }
    assert_eq!(scoring["beachhead"], json!("enterprise"));

    // Stability: deterministic for the seed, and the close call between enterprise (7.60) and
    // startups (7.35) shows: the beachhead changes in some draws but not most.
    let stability = &scoring["stability"];
    let changes = stability["beachhead_changes"].as_f64().unwrap();
    assert!(changes > 0.0 && changes < 0.5, "{changes}");
    let shares: f64 = stability["beachhead_share"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let again = ExampleRun::new("pipelines/prioritization_example.yaml", &[]);
    assert_eq!(read_json(&again.path("scoring.json")), scoring);
}

#[test]
fn weights_that_do_not_sum_to_100_name_the_sum() {
    let workspace = windows_with(
        "scoring:\n  factors:\n    - { id: size, name: Size, weight: 60, derived: { metric: customers, method: min_max } }\n    - { id: value, name: Value, weight: 30, derived: { metric: { sum: events_30 }, method: min_max } }\n",
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn persona_of_a_missing_segment_is_persona_theater() {
    let workspace =
        windows_with("personas:\n  - segment: champion\n    name: Chris the champion\n");
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn out_of_range_thresholds_are_rejected() {
    let workspace = windows_with(
        "criteria:\n  substantial:\n    share: { warn_if_below: 5, error_if_below: 10 }\n",
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains("threshold 5 is out of range: it must be a share between 0 and 1"),
        "{message}"
    );
    assert!(
        message.contains("error_if_below 10 is above warn_if_below 5"),
        "{message}"
    );
}

#[test]
fn personas_render_with_the_segments_profile() {
    let workspace = windows_with(
        "personas:\n  - segment: busy\n    name: Bea the busy one\n    role: Analyst\n    goals: [Ship reports]\n    quote: Faster, please.\n",
    );
    // Five customers: with the default threshold every segment is too small to show figures for.
    workspace.edit_pipeline("reports: { min_cell: 1 }", "reports: { min_cell: 10 }");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "masked"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let persona = workspace.read("masked/personas/busy.md");
    assert!(persona.contains("- Customers: suppressed"), "{persona}");
    assert!(!persona.contains("**1**"), "{persona}");
    workspace.edit_pipeline("reports: { min_cell: 10 }", "reports: { min_cell: 0 }");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let persona = workspace.read("out/personas/busy.md");
    assert!(
        persona.starts_with("# Bea the busy one — Analyst"),
        "{persona}"
    );
    assert!(
        persona.contains("- Customers: **1** (20.0% of all customers)"),
        "{persona}"
    );
    assert!(persona.contains("> “Faster, please.”"), "{persona}");
    assert!(
        workspace
            .read("out/report.html")
            .contains("Bea the busy one")
    );
}

#[test]
fn matrix_quadrants_match_hand_counts() {
    // events_30 ≥ 1 is high value: customers 1 and 3. Median tenure of 30, 638, 92, 838, 1 is 92:
    // customers 2, 3 and 4 are highly engaged.
    let workspace = windows_with(
        "matrix:\n  value: { feature: events_30, split: { value: 1 } }\n  engagement: { feature: tenure_days, split: median }\n",
    );
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let matrix = &read_json(&workspace.path().join("out/segments.json"))["matrix"];
    assert_eq!(matrix["engagement_split"], json!(92.0));
    let quadrants: Vec<(bool, bool, u64, Value)> = matrix["quadrants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["high_value"].as_bool().unwrap(),
                q["high_engagement"].as_bool().unwrap(),
                q["customers"].as_u64().unwrap(),
                q["segments"].clone(),
            )
        })
        .collect();
    assert_eq!(
        quadrants,
        [
            (true, true, 1, json!([["busy", 1]])),
            (true, false, 1, json!([["active", 1]])),
            (false, true, 2, json!([["lapsed", 1], [null, 1]])),
            (false, false, 1, json!([["new_quiet", 1]])),
        ]
    );
}

#[test]
fn rfm_quintiles_split_customers_evenly_and_report_their_cut_points() {
    let run = ExampleRun::new("pipelines/rfm_retail.yaml", &[]);
    let (rows, _) = read_assignments(&run.path("assignments.parquet"), "customer_id");
    let summary = read_json(&run.path("segments.json"));
    for quantile in summary["quantiles"].as_array().unwrap() {
        let (feature, of) = (
            quantile["feature"].as_str().unwrap(),
            quantile["of"].as_str().unwrap(),
        );
        // Recompute each bucket's size and range from the assignments.
        let mut ranges: BTreeMap<i64, (u64, f64, f64)> = BTreeMap::new();
        for row in rows.values() {
            if let (Some(bucket), Some(value)) = (row[feature].as_i64(), row[of].as_f64()) {
                let entry = ranges
                    .entry(bucket)
                    .or_insert((0, f64::INFINITY, f64::NEG_INFINITY));
                *entry = (entry.0 + 1, entry.1.min(value), entry.2.max(value));
            }
        }
        let reported: Vec<(i64, u64, f64, f64)> = quantile["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["bucket"].as_i64().unwrap(),
                    b["customers"].as_u64().unwrap(),
                    b["min"].as_f64().unwrap(),
                    b["max"].as_f64().unwrap(),
                )
            })
            .collect();
        let recomputed: Vec<(i64, u64, f64, f64)> = ranges
            .into_iter()
            .map(|(b, (n, lo, hi))| (b, n, lo, hi))
            .collect();
        assert_eq!(reported, recomputed, "{feature}");
        if feature != "spend_band" {
            let sizes: Vec<u64> = reported.iter().map(|b| b.1).collect();
            assert_eq!(sizes.len(), 5, "{feature}");
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{feature}: {sizes:?}"
            );
        }
    }
    // Recency scores run the other way: bucket 5 holds the most recent buyers.
    let r = &summary["quantiles"][0];
    assert_eq!(r["feature"], json!("r_score"));
    assert!(r["buckets"][4]["max"].as_f64().unwrap() <= r["buckets"][0]["min"].as_f64().unwrap());
    // Customers who never bought get no recency score and land in `never_bought`.
    for row in rows.values() {
        assert_eq!(
            row["r_score"].is_null(),
            row["segment"] == "never_bought",
            "{row:?}"
        );
    }
    // Declared cut points: spend under 100 is band 1, 1,500 and more band 4.
    for row in rows.values() {
        let spend = row["monetary"].as_f64().unwrap();
        let band = row["spend_band"].as_i64().unwrap();
        let want = if spend < 100.0 {
            1
        } else if spend < 500.0 {
            2
        } else if spend < 1500.0 {
            3
        } else {
            4
        };
        assert_eq!(band, want, "{row:?}");
    }
}

#[test]
fn a_segment_smaller_than_a_channel_minimum_is_too_small_for_that_channel() {
    // One customer per segment: every segment reaches `email` (minimum 1), none `tiktok_ads`.
    let workspace =
        windows_with("criteria:\n  substantial:\n    channels: { email: 1, tiktok_ads: 2 }\n");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let criteria = read_json(&workspace.path().join("out/criteria.json"));
    let email = status_by_subject(&criteria, "substantial", "audience for email");
    let tiktok = status_by_subject(&criteria, "substantial", "audience for tiktok_ads");
    for segment in ["busy", "active", "new_quiet", "lapsed"] {
        assert_eq!(
            email[segment],
            (json!(1.0), "pass".to_string()),
            "{segment}"
        );
        assert_eq!(
            tiktok[segment],
            (json!(1.0), "warn".to_string()),
            "{segment}"
        );
    }
    let report = workspace.read("out/report.md");
    assert!(
        report.contains("too small for tiktok_ads: 1 customers, it needs 2"),
        "{report}"
    );
    assert!(!report.contains("too small for email"), "{report}");
}
