//! `segflow preview`: the funnel, shadowing, overlaps, sample and breakdown of one segment,
//! checked against counts worked out by hand on the five customers of tests/fixtures/windows
//! (see tests/cli/hand_worked.rs for every feature value).

use serde_json::{Value, json};

use crate::support::{Workspace, stderr, stdout};

fn preview(workspace: &Workspace, args: &[&str]) -> Value {
    let mut all = vec!["preview", "pipeline.yaml", "--json"];
    all.extend(args);
    let output = workspace.segflow(&all);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("JSON")
}

#[test]
fn the_funnel_follows_each_and_condition_as_counted_by_hand() {
    let workspace = Workspace::from_fixture("windows");
    // new_quiet: tenure_days <= 30 → customers 1 (30 days) and 5 (1 day); AND
    // active_days_30 = 0 → customer 5 only (customer 1 was active on 2 days).
    let quiet = preview(&workspace, &["--segment", "new_quiet", "--by", "plan"]);
    assert_eq!(quiet["customers"], 5);
    assert_eq!(quiet["members"], 1);
    assert_eq!(
        quiet["funnel"],
        json!([
            { "condition": "tenure_days <= 30", "customers": 2 },
            { "condition": "active_days_30 = 0", "customers": 1 },
        ])
    );
    assert_eq!(quiet["matching"], 1);
    assert_eq!(quiet["shadowed_by"], json!([]));
    // `plan` is a feature there (the customers' column upper-cased): customer 5's is FREE.
    assert_eq!(quiet["by"]["values"], json!([["FREE", 1]]));
    assert_eq!(quiet["sample"][0]["customer_id"], 5);
    assert_eq!(quiet["sample"][0]["segment"], "new_quiet");
}

#[test]
fn shadowing_and_overlaps_ignore_the_rule_order() {
    let workspace = Workspace::from_fixture("windows");
    // active: active_days_30 >= 1 matches customers 1 and 3; busy (events_30 >= 3, first rule)
    // claimed customer 3, so active gets customer 1 only.
    let active = preview(&workspace, &["--segment", "active", "--sample", "0"]);
    assert_eq!(active["members"], 1);
    assert_eq!(active["matching"], 2);
    assert_eq!(active["funnel"][0]["customers"], 2);
    assert_eq!(
        active["shadowed_by"],
        json!([{ "segment": "busy", "customers": 1 }])
    );
    assert_eq!(
        active["overlaps"],
        json!([
            { "segment": "busy", "customers": 1 },
            { "segment": "new_quiet", "customers": 0 },
            { "segment": "lapsed", "customers": 0 },
        ])
    );
    assert_eq!(active["sample"], json!([]));
    // `score` is a column of the customers' table only: customer 1's is 5.
    let by_score = preview(&workspace, &["--segment", "active", "--by", "score"]);
    assert_eq!(by_score["by"]["values"], json!([[5, 1]]));
}

#[test]
fn an_unknown_segment_or_column_is_named_with_what_exists() {
    let workspace = Workspace::from_fixture("windows");
    let output = workspace.segflow(&["preview", "pipeline.yaml", "--segment", "activ"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("active"), "{}", stderr(&output));
    let output = workspace.segflow(&[
        "preview",
        "pipeline.yaml",
        "--segment",
        "active",
        "--by",
        "nope",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--by `nope`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_text_output_shows_the_funnel_and_the_breakdown() {
    let workspace = Workspace::from_fixture("windows");
    let output = workspace.segflow(&[
        "preview",
        "pipeline.yaml",
        "--segment",
        "new_quiet",
        "--by",
        "plan",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("segment new_quiet (New and quiet): 1 of 5 customers (20.0%)"),
        "{text}"
    );
    assert!(text.contains("2   40.0%  tenure_days <= 30"), "{text}");
    assert!(text.contains("members by plan:"), "{text}");
}
