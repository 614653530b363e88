//! Named buckets: `tiers` and a quantile's `labels`, on the hand-worked fixture tests/fixtures/tiers
//! (nine customers, as of 2026-10-01).
//!
//! Tiers keep equal values together, as pandas' `qcut(x.rank(method="min"), 3, labels=False,
//! duplicates="drop") + 1` does: the edges are the minimum ranks interpolated at (n-1)·j/3.
//!
//! | id | visits | tier   | days since | tier (descending) | spend  | cuts [100, 500] | halves (by key) |
//! |----|--------|--------|------------|-------------------|--------|-----------------|-----------------|
//! | 1  | 0      | low    | 200        | low               | 0      | bronze          | lower           |
//! | 2  | 0      | low    | 90         | low               | 50     | bronze          | lower           |
//! | 3  | 0      | low    | 40         | low               | 100    | silver          | lower           |
//! | 4  | 1      | middle | 40         | low               | 499.99 | silver          | upper           |
//! | 5  | 2      | middle | 40         | low               | 500    | gold            | upper           |
//! | 6  | 2      | middle | 10         | middle            | 1200   | gold            | upper           |
//! | 7  | 5      | high   | 10         | middle            | 80     | bronze          | lower           |
//! | 8  | 8      | high   | 5          | high              | 300    | silver          | upper           |
//! | 9  | null   | null   | 3          | high              | null   | null            | null            |
//!
//! Visits: 8 values, minimum ranks 1,1,1,4,5,5,7,8; edges at positions 0, 7/3, 14/3, 7 are
//! 1, 1+1/3·3 = 2, 5, 8, so ranks 1 are low, 4-5 middle, 7-8 high.
//! Days since, descending: 9 values, ranks (largest first) 200→1, 90→2, 40→3, 10→6, 5→8, 3→9;
//! edges at 0, 8/3, 16/3, 8 are 1, 3, 6, 9: ranks up to 3 low, up to 6 middle, the rest high.
//! Halves: `ntile(2)` in order of spend, then key: 0, 50, 80, 100 lower; 300 and up upper.
//! Segments, first match wins: engaged (high visits) = {7, 8}; fading (low recency tier) =
//! {1..5}; rest = {6, 9}.

use serde_json::{Value, json};

use crate::support::{Workspace, read_assignments, read_json, segflow, stderr_unwrapped};

fn column(rows: &std::collections::BTreeMap<i64, crate::support::Row>, name: &str) -> Vec<Value> {
    rows.values().map(|r| r[name].clone()).collect()
}

#[test]
fn tiers_and_labels_name_the_buckets_worked_out_by_hand() {
    let workspace = Workspace::from_fixture("tiers");
    workspace.edit_pipeline(
        "segments:\n",
        "exports:\n  - { name: tiers, file: tiers.parquet, features: [engagement_tier, value_tier] }\nsegments:\n",
    );
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let (rows, types) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let (low, middle, high) = (json!("low"), json!("middle"), json!("high"));
    assert_eq!(
        column(&rows, "engagement_tier"),
        [
            &low,
            &low,
            &low,
            &middle,
            &middle,
            &middle,
            &high,
            &high,
            &Value::Null
        ]
        .map(Clone::clone)
    );
    assert_eq!(
        column(&rows, "recency_tier"),
        [&low, &low, &low, &low, &low, &middle, &middle, &high, &high].map(Clone::clone)
    );
    assert_eq!(
        column(&rows, "value_tier"),
        [
            "bronze", "bronze", "silver", "silver", "gold", "gold", "bronze", "silver"
        ]
        .map(|t| json!(t))
        .into_iter()
        .chain([Value::Null])
        .collect::<Vec<_>>()
    );
    assert_eq!(
        column(&rows, "spend_half"),
        [
            "lower", "lower", "lower", "upper", "upper", "upper", "lower", "upper"
        ]
        .map(|t| json!(t))
        .into_iter()
        .chain([Value::Null])
        .collect::<Vec<_>>()
    );
    assert_eq!(
        column(&rows, "segment"),
        [
            "fading", "fading", "fading", "fading", "fading", "rest", "engaged", "engaged", "rest"
        ]
        .map(|t| json!(t))
    );
    for tier in [
        "engagement_tier",
        "recency_tier",
        "value_tier",
        "spend_half",
    ] {
        assert_eq!(types[tier], "Utf8", "{tier} is text in the assignments");
    }

    // Text wherever types are reported: segments.json and the exported file.
    let segments = read_json(&workspace.path().join("out/segments.json"));
    let data_type = |name: &str| {
        segments["features"]
            .as_array()
            .expect("features")
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["data_type"].clone())
    };
    assert_eq!(data_type("engagement_tier"), Some(json!("Utf8")));
    assert_eq!(data_type("spend_half"), Some(json!("Utf8")));
    let (exported, exported_types) =
        read_assignments(&workspace.path().join("tiers.parquet"), "customer_id");
    assert_eq!(exported.len(), 9);
    assert_eq!(exported_types["engagement_tier"], "Utf8");
    assert_eq!(exported[&7]["value_tier"], json!("bronze"));

    // The cut points report each bucket under its number and label, lowest first.
    let quantiles = segments["quantiles"].as_array().expect("quantiles");
    let engagement = quantiles
        .iter()
        .find(|q| q["feature"] == "engagement_tier")
        .expect("engagement_tier's buckets");
    let buckets: Vec<(i64, &str, u64, i64, i64)> = engagement["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            (
                b["bucket"].as_i64().expect("bucket"),
                b["label"].as_str().expect("label"),
                b["customers"].as_u64().expect("customers"),
                b["min"].as_i64().expect("min"),
                b["max"].as_i64().expect("max"),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        [
            (1, "low", 3, 0, 0),
            (2, "middle", 3, 1, 2),
            (3, "high", 2, 5, 8)
        ]
    );
    let report = workspace.read("out/report.md");
    assert!(report.contains("| 3 (high) | 2 | 5 | 8 |"), "{report}");
}

#[test]
fn labels_must_name_every_bucket_once() {
    let workspace = Workspace::from_fixture("tiers");
    workspace.edit_pipeline(
        "labels: [bronze, silver, gold], cuts: [100, 500]",
        "labels: [bronze, gold], cuts: [100, 500]",
    );
    workspace.edit_pipeline("labels: [lower, upper]", "labels: [lower, lower, upper]");
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains(
            "feature `value_tier` names 2 buckets, but its 2 cut points make 3 buckets ╭─[pipeline.yaml:25:37]"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "feature `spend_half` names 3 buckets, but it has 2 buckets ╭─[pipeline.yaml:29:52]"
        ),
        "{message}"
    );
    assert!(
        message.contains("feature `spend_half` names two buckets `lower`"),
        "{message}"
    );
    assert!(message.contains("segflow::invalid-quantile"), "{message}");
}

#[test]
fn one_tier_is_not_a_tiering() {
    let workspace = Workspace::from_fixture("tiers");
    workspace.edit_pipeline(
        "tiers: { of: visits_90 }",
        "tiers: { of: visits_90, labels: [all] }",
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains(
            "feature `engagement_tier` needs at least two labels ╭─[pipeline.yaml:17:37]"
        ),
        "{message}"
    );
    // Only the labels are blamed, not the buckets the shorthand stands for.
    assert!(!message.contains("needs either `buckets`"), "{message}");
}

#[test]
fn named_buckets_are_text_and_may_not_declare_another_type() {
    let workspace = Workspace::from_fixture("tiers");
    workspace.edit_pipeline(
        "    tiers: { of: visits_90 }",
        "    type: int64\n    tiers: { of: visits_90 }",
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains("feature `engagement_tier` names its buckets, so it holds text, but declares another `type` ╭─[pipeline.yaml:17:11]"),
        "{message}"
    );
    workspace.edit_pipeline("type: int64", "type: string");
    workspace.segflow_ok(&["validate", "pipeline.yaml"]);
}

#[test]
fn tiers_run_inside_postgres_as_in_the_embedded_engine() {
    let Some(url) = crate::support::postgres_url() else {
        return;
    };
    let schema = "sf_tiers";
    crate::postgres::fresh_schema(&url, schema);
    let workspace = Workspace::from_fixture("tiers");
    crate::postgres::load(
        &url,
        &format!("{schema}.customers"),
        &workspace.path().join("customers.csv"),
        &[("spend", "double precision")],
    );
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "embedded"]);
    workspace.edit_pipeline(
        "path: customers.csv",
        &format!("postgres: {{ url: \"${{SEGFLOW_TEST_TIERS_URL}}\", table: {schema}.customers }}"),
    );
    let output = segflow()
        .current_dir(workspace.path())
        .env("SEGFLOW_TEST_TIERS_URL", &url)
        .args([
            "run",
            "pipeline.yaml",
            "--engine",
            "postgres",
            "--out",
            "inside",
        ])
        .output()
        .expect("run segflow");
    assert!(output.status.success(), "{}", stderr_unwrapped(&output));
    let (expected, expected_types) = read_assignments(
        &workspace.path().join("embedded/assignments.parquet"),
        "customer_id",
    );
    let (found, found_types) = read_assignments(
        &workspace.path().join("inside/assignments.parquet"),
        "customer_id",
    );
    assert_eq!(found, expected);
    assert_eq!(found_types["engagement_tier"], "Utf8");
    assert_eq!(found_types, expected_types);
}
