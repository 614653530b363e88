//! The hand-worked fixture in tests/fixtures/windows: five customers whose every feature value
//! was derived by hand from the CSV files (as_of 2026-10-01, 30-day window
//! [2026-09-01 00:00, 2026-10-01 00:00)):
//!
//! | id | events (date, feature)                                        | active | events | feats | last  | since | tenure |
//! |----|---------------------------------------------------------------|--------|--------|-------|-------|-------|--------|
//! | 1  | 08-31 23:59 a (before window), 09-01 00:00 a (window start),  | 2      | 2      | 2     | 09-30 | 1     | 30     |
//! |    | 09-30 23:59 b (last moment), 10-01 00:00 c (at as_of: ignored)|        |        |       |       |       |        |
//! | 2  | none                                                          | 0      | 0      | 0     | null  | null  | 638    |
//! | 3  | 09-15 a, 09-15 a, 09-16 b                                     | 2      | 3      | 2     | 09-16 | 15    | 92     |
//! | 4  | 05-01 a (outside window)                                      | 0      | 0      | 0     | 05-01 | 153   | 838    |
//! | 5  | 10-05 a (after as_of: ignored)                                | 0      | 0      | 0     | null  | null  | 1      |
//!
//! Segments, first match wins: busy (events_30 >= 3) = {3}; active (active_days_30 >= 1) = {1};
//! new_quiet (tenure <= 30 and no activity) = {5}; lapsed (days since last event > 90) = {4};
//! customer 2 matches nothing (null days since last event) and is unassigned. Customer 3 (busy)
//! would also have matched `active`: that is what the rule order decides.

use serde_json::{Value, json};

use crate::support::{Workspace, read_assignments, read_json, stdout};

fn run(workspace: &Workspace, out: &str) {
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", out]);
    assert!(
        output.status.success(),
        "segflow run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn features_follow_window_edges_nulls_defaults_and_dependencies() {
    let workspace = Workspace::from_fixture("windows");
    run(&workspace, "out");
    let (rows, types) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    assert_eq!(rows.len(), 5, "every customer exactly once");

    let column = |name: &str| -> Vec<Value> { rows.values().map(|r| r[name].clone()).collect() };
    assert_eq!(
        column("active_days_30"),
        [json!(2), json!(0), json!(2), json!(0), json!(0)]
    );
    assert_eq!(
        column("events_30"),
        [json!(2), json!(0), json!(3), json!(0), json!(0)]
    );
    assert_eq!(
        column("features_30"),
        [json!(2), json!(0), json!(2), json!(0), json!(0)]
    );
    assert_eq!(
        column("last_event"),
        [
            json!("2026-09-30"),
            Value::Null,
            json!("2026-09-16"),
            json!("2026-05-01"),
            Value::Null
        ]
    );
    assert_eq!(
        column("days_since_last_event"),
        [json!(1), Value::Null, json!(15), json!(153), Value::Null]
    );
    assert_eq!(
        column("tenure_days"),
        [json!(30), json!(638), json!(92), json!(838), json!(1)]
    );
    // engagement = active_days_30 * 10 + events_30, declared before the features it uses.
    assert_eq!(
        column("engagement"),
        [json!(22), json!(0), json!(23), json!(0), json!(0)]
    );
    // rank() over all customers by tenure, longest first: 4 (838), 2 (638), 3 (92), 1 (30), 5 (1).
    assert_eq!(
        column("tenure_rank"),
        [json!(4), json!(2), json!(3), json!(1), json!(5)]
    );
    assert_eq!(
        column("score_double"),
        [json!(10), Value::Null, json!(4), json!(16), json!(2)]
    );
    assert_eq!(
        column("plan"),
        [
            json!("PRO"),
            json!("FREE"),
            json!("STARTER"),
            json!("ENTERPRISE"),
            json!("FREE")
        ]
    );

    // Integers stay integers; dates stay dates.
    assert_eq!(types["customer_id"], "Int64");
    assert_eq!(types["active_days_30"], "Int64");
    assert_eq!(types["days_since_last_event"], "Int64");
    assert_eq!(types["last_event"], "Date32");
    assert_eq!(types["segment"], "Utf8");
    let names: Vec<&String> = types.keys().collect();
    assert_eq!(names.len(), 12, "key, segment and ten features: {names:?}");
}

#[test]
fn first_match_wins_and_unmatched_customers_are_counted() {
    let workspace = Workspace::from_fixture("windows");
    run(&workspace, "out");
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let segments: Vec<Value> = rows.values().map(|r| r["segment"].clone()).collect();
    assert_eq!(
        segments,
        [
            json!("active"),
            Value::Null,
            json!("busy"),
            json!("lapsed"),
            json!("new_quiet")
        ]
    );

    let summary = read_json(&workspace.path().join("out/segments.json"));
    assert_eq!(summary["customers"], json!(5));
    assert_eq!(summary["unassigned"], json!(1));
    assert_eq!(summary["unassigned_share"], json!(0.2));
    let sizes: Vec<(String, u64)> = summary["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["customers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        [
            ("busy".into(), 1),
            ("active".into(), 1),
            ("new_quiet".into(), 1),
            ("lapsed".into(), 1)
        ]
    );
    let overlap: Vec<(String, Value)> = summary["rule_overlap"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["segment"].as_str().unwrap().to_string(),
                o["also_matched_by"].clone(),
            )
        })
        .collect();
    assert_eq!(
        overlap[0],
        (
            "busy".into(),
            json!([["active", 1], ["new_quiet", 0], ["lapsed", 0]])
        )
    );
    assert_eq!(
        overlap[1],
        ("active".into(), json!([["new_quiet", 0], ["lapsed", 0]]))
    );
    let printed = stdout(&workspace.segflow(&["run", "pipeline.yaml", "--out", "again"]));
    assert!(
        printed.contains("(unassigned)                     1   20.0%"),
        "{printed}"
    );
}

#[test]
fn catch_all_takes_everyone_left() {
    let workspace = Workspace::from_fixture("windows");
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}  - id: rest\n    name: Everyone else\n"),
    );
    run(&workspace, "out");
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    assert_eq!(rows[&2]["segment"], json!("rest"));
    let summary = read_json(&workspace.path().join("out/segments.json"));
    assert_eq!(summary["unassigned"], json!(0));
    assert_eq!(summary["segments"][4]["customers"], json!(1));
}

#[test]
fn segment_statistics_match_hand_computed_values() {
    let workspace = Workspace::from_fixture("windows");
    run(&workspace, "out");
    let summary = read_json(&workspace.path().join("out/segments.json"));
    let overall = |feature: &str| -> Value {
        summary["overall"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["feature"] == feature)
            .cloned()
            .unwrap()
    };
    // tenure 30, 638, 92, 838, 1: mean 1599 / 5, median 92.
    let tenure = overall("tenure_days");
    assert_eq!(tenure["mean"], json!(319.8));
    assert_eq!(tenure["median"], json!(92.0));
    assert_eq!(
        (tenure["min"].clone(), tenure["max"].clone()),
        (json!(1), json!(838))
    );
    // score_double 10, null, 4, 16, 2: four values, mean 8, even-count median (4 + 10) / 2.
    let score = overall("score_double");
    assert_eq!(score["non_null"], json!(4));
    assert_eq!(score["mean"], json!(8.0));
    assert_eq!(score["median"], json!(7.0));
    // Dates get min and max but no mean.
    let last = overall("last_event");
    assert_eq!(last["mean"], Value::Null);
    assert_eq!(
        (last["min"].clone(), last["max"].clone()),
        (json!("2026-05-01"), json!("2026-09-30"))
    );

    let busy = &summary["segments"][0];
    assert_eq!(busy["share"], json!(0.2));
    let busy_events = busy["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "events_30")
        .unwrap();
    assert_eq!(busy_events["mean"], json!(3.0));

    let csv = std::fs::read_to_string(workspace.path().join("out/segments.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("segment_id,segment_name,customers,share,engagement__non_null,")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("busy,Busy,1,0.2,1,23,23,23,23,")
    );
}

#[test]
fn as_of_and_source_overrides_change_the_run_not_the_file() {
    let workspace = Workspace::from_fixture("windows");
    // One more event for customer 2 in another export, read with --source.
    let events = workspace.read("events.csv");
    workspace.write(
        "events_next.csv",
        &format!("{events}2,2026-10-20T10:00:00,z\n"),
    );
    let output = workspace.segflow(&[
        "run",
        "pipeline.yaml",
        "--out",
        "out",
        "--as-of",
        "2026-11-01",
        "--source",
        "events=events_next.csv",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    // As of 2026-11-01 the window is [10-02, 11-01): customer 2's 10-20 event is in it, and
    // customer 5's 10-05 event now counts too.
    assert_eq!(rows[&2]["events_30"], json!(1));
    assert_eq!(rows[&5]["events_30"], json!(1));
    assert_eq!(rows[&1]["events_30"], json!(0));
    assert_eq!(rows[&1]["tenure_days"], json!(61));
    let manifest = read_json(&workspace.path().join("out/manifest.json"));
    assert_eq!(manifest["as_of"], json!("2026-11-01"));
    let events = manifest["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "events")
        .unwrap();
    assert_eq!(events["location"], json!("events_next.csv"));
    assert_eq!(events["rows"], json!(10));
}

/// Issue 17: `max(CAST(ts AS DATE))` beside `max(ts)` in aggregates of one source failed with
/// "duplicate unqualified field name" (DataFusion names both `max(events.ts)`). Both now plan,
/// with the hand-worked values of the table above.
#[test]
fn aggregates_that_datafusion_names_alike_are_computed_apart() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline(
        "  - name: days_since_last_event\n",
        "  - name: span_days\n    kind: behavioral\n    description: Days from the first to the last event date.\n    aggregate: { source: events, expr: CAST(max(CAST(ts AS DATE)) - min(CAST(ts AS DATE)) AS BIGINT) }\n  - name: last_ts\n    kind: behavioral\n    description: The latest event.\n    aggregate: { source: events, expr: max(ts) }\n  - name: days_since_last_event\n",
    );
    run(&workspace, "out");
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let column = |name: &str| -> Vec<Value> { rows.values().map(|r| r[name].clone()).collect() };
    assert_eq!(
        column("span_days"),
        [json!(30), Value::Null, json!(1), json!(0), Value::Null]
    );
    assert_eq!(
        column("last_event"),
        [
            json!("2026-09-30"),
            Value::Null,
            json!("2026-09-16"),
            json!("2026-05-01"),
            Value::Null
        ]
    );
    let last_ts = column("last_ts");
    assert!(
        last_ts[0]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-09-30")),
        "{last_ts:?}"
    );
    assert_eq!(last_ts[1], Value::Null);
}
