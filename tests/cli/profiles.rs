//! Category mixes, Cramér's V, concentration and the ideal customer profile, against figures
//! worked out by hand on tests/fixtures/profiles (ten customers) and against an independent
//! DuckDB computation on the shipped example (tests/tools/profiles_oracle.py).
//!
//! The fixture, by hand:
//!
//! | id | plan | revenue | pain | segment |
//! |----|------|---------|------|---------|
//! | 1  | pro  | 500     | 5    | big     |
//! | 2  | pro  | 300     | 4    | big     |
//! | 3  | pro  | 200     | 5    | big     |
//! | 4  | free | 100     | 3    | big     |
//! | 5  | pro  | 0       | 2    | small   |
//! | 6  | free | 0       | 1    | small   |
//! | 7  | free | 0       | 2    | small   |
//! | 8  | free | 50      | 3    | small   |
//! | 9  | free | 0       | 1    | small   |
//! | 10 | pro  | 50      | 2    | small   |
//!
//! - plan: free 5, pro 5 over all (a tie, in text order); big free 1, pro 3; small free 4, pro 2.
//!   big ~ small: expected counts (2, 2 | 3, 3), χ² = 1/2 + 1/2 + 1/3 + 1/3 = 5/3, one degree of
//!   freedom, V = sqrt(χ² / 10) = sqrt(1/6), p = erfc(sqrt(χ² / 2)).
//! - revenue sorted: 0, 0, 0, 0, 50, 50, 100, 200, 300, 500 (total 1,200); Gini = Σ (2i − 11) x_i
//!   / (10 × 1,200) = (−50 + 50 + 300 + 1,000 + 2,100 + 4,500) / 12,000 = 7,900 / 12,000. One
//!   customer per twentieth-pair: the curve is (0.1k, cumulative / 1,200), and the top fifth hold
//!   (300 + 500) / 1,200 = 2/3.
//! - pain is declared a category: values 1 to 5 in their own order, counts 2, 3, 2, 1, 2.
//! - ICP (revenue ≥ 100 and pro) = {1, 2, 3}: 3 customers, 1,000 of 1,200 revenue. Its plan table
//!   against everyone else is (free 0, pro 3 | free 5, pro 2): expected (1.5, 1.5 | 3.5, 3.5),
//!   χ² = 2 × 1.5 + 2 × 1.5² / 3.5 = 3 + 9/7, V = sqrt(χ² / 10).

use serde_json::{Value, json};

use crate::support::{ExampleRun, Workspace, duckdb_python, read_json, repo_path, stderr};

fn close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} is not {expected}"
    );
}

fn erfc(x: f64) -> f64 {
    // Abramowitz-Stegun 7.1.26 is too coarse for 1e-9: integrate exp(-t²) from x to 8 instead.
    let steps = 200_000;
    let h = (8.0 - x) / steps as f64;
    let f = |t: f64| (-t * t).exp();
    let mut sum = f(x) + f(8.0);
    for k in 1..steps {
        let t = x + k as f64 * h;
        sum += if k % 2 == 1 { 4.0 } else { 2.0 } * f(t);
    }
    sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn category_mix_cramers_v_concentration_and_icp_match_the_hand_worked_fixture() {
    let workspace = Workspace::from_fixture("profiles");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let segments = read_json(&workspace.path().join("out/segments.json"));

    let plan = &segments["categories"][0];
    assert_eq!(plan["feature"], "plan");
    assert_eq!(plan["values"], json!(["free", "pro"]));
    assert_eq!(plan["overall"], json!([5, 5]));
    assert_eq!(plan["segments"][0]["segment"], "big");
    assert_eq!(plan["segments"][0]["counts"], json!([1, 3]));
    assert_eq!(plan["segments"][1]["counts"], json!([4, 2]));
    let pain = &segments["categories"][1];
    assert_eq!(pain["feature"], "pain");
    assert_eq!(pain["values"], json!(["1", "2", "3", "4", "5"]));
    assert_eq!(pain["overall"], json!([2, 3, 2, 1, 2]));
    assert_eq!(pain["segments"][0]["counts"], json!([0, 0, 1, 1, 2]));

    let criteria = read_json(&workspace.path().join("out/criteria.json"));
    let pair = &criteria["category_differentiation"][0];
    assert_eq!(
        (pair["a"].as_str(), pair["b"].as_str()),
        (Some("big"), Some("small"))
    );
    let test = &pair["by_feature"][0][1];
    close(&test["chi_square"], 5.0 / 3.0, "χ² big ~ small");
    close(&test["cramers_v"], (1.0f64 / 6.0).sqrt(), "V big ~ small");
    close(
        &test["p_value"],
        erfc((5.0f64 / 6.0).sqrt()),
        "p big ~ small",
    );
    assert_eq!(test["degrees_of_freedom"], 1);
    assert_eq!(test["small_expected"], true);
    // V = 0.41 is below the declared 0.5: the pair warns.
    let differentiable = criteria["criteria"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["criterion"] == "differentiable"))
        .expect("differentiable judged");
    assert_eq!(differentiable["status"], "warn");

    let revenue = &segments["concentration"][0];
    close(&revenue["total"], 1200.0, "total");
    close(&revenue["gini"], 7900.0 / 12000.0, "Gini");
    let cumulative = [
        0.0, 0.0, 0.0, 0.0, 0.0, 50.0, 100.0, 200.0, 400.0, 700.0, 1200.0,
    ];
    let lorenz = revenue["lorenz"].as_array().expect("curve");
    assert_eq!(lorenz.len(), cumulative.len());
    for (k, (point, held)) in lorenz.iter().zip(cumulative).enumerate() {
        close(&point[0], k as f64 / 10.0, "customers share");
        close(&point[1], held / 1200.0, "held share");
    }

    let icp = &segments["icp"];
    assert_eq!(icp["customers"], 3);
    let icp_revenue = icp["features"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["feature"] == "revenue"))
        .expect("revenue");
    close(&icp_revenue["sum"], 1000.0, "ICP revenue");
    assert_eq!(icp["categories"][0]["segments"][0]["counts"], json!([0, 3]));
    assert_eq!(icp["categories"][0]["segments"][1]["counts"], json!([5, 2]));

    // The reports say it in words.
    let report = workspace.read("out/report.md");
    for expected in [
        "The top fifth of customers hold **66.7%** of the total `revenue` (Gini 0.66).",
        "Big spenders holds **91.7%** of it with 40.0% of the customers.",
        "**3** customers, 30.0% of all.",
        "They hold **83.3%** of the total `revenue`.",
        "`plan`: pro 100% (all customers: 50.0%); Cramér's V against everyone else 0.65",
        "`plan`: pro 75.0% (all customers: 50.0%), free 25.0% (all customers: 50.0%); Cramér's V against everyone else 0.41",
    ] {
        assert!(
            report.contains(expected),
            "report.md lacks {expected:?}:\n{report}"
        );
    }
    let html = workspace.read("out/report.html");
    assert!(html.contains("<h2 id=\"concentration\">Concentration</h2>"));
    assert!(html.contains("Ideal customer profile: Paying pro accounts"));
    assert!(
        workspace
            .path()
            .join("out/charts/concentration.svg")
            .exists()
    );
    let csv = workspace.read("out/segments.csv");
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("plan__top,plan__top_share,pain__top,pain__top_share"),
        "{header}"
    );
    assert!(csv.contains(",pro,0.75,5,0.5"), "{csv}");
}

#[test]
fn small_category_cells_are_suppressed_in_reports_and_kept_in_documents() {
    let workspace = Workspace::from_fixture("profiles");
    workspace.edit_pipeline("  min_cell: 1", "  min_cell: 2");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let report = workspace.read("out/report.md");
    // Big spenders: pro 3, free 1. The single free customer is masked, and so is the pro count
    // beside it, which would give it away (4 − 3).
    assert!(
        report.contains("`plan`: pro suppressed (all customers: 50.0%), free suppressed"),
        "{report}"
    );
    let segments = read_json(&workspace.path().join("out/segments.json"));
    assert_eq!(
        segments["categories"][0]["segments"][0]["counts"],
        json!([1, 3])
    );
}

#[test]
fn concentration_of_text_and_an_icp_with_two_targets_are_refused_with_their_location() {
    let workspace = Workspace::from_fixture("profiles");
    workspace.edit_pipeline("concentration: [revenue]", "concentration: [plan]");
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("segflow::concentration-type"), "{text}");
    assert!(text.contains("feature `plan` holds Utf8"), "{text}");
    assert!(!workspace.path().join("out").exists());

    let workspace = Workspace::from_fixture("profiles");
    workspace.edit_pipeline(
        "  when: revenue >= 100 AND plan = 'pro'",
        "  when: revenue >= 100\n  segment: big",
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("segflow::icp-target"), "{text}");
    assert!(text.contains("pipeline.yaml:"), "{text}");
}

#[test]
fn the_example_profiles_match_an_independent_duckdb_computation() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let run = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let output = std::process::Command::new(python)
        .arg(repo_path("tests/tools/profiles_oracle.py"))
        .arg(run.path("assignments.parquet"))
        .output()
        .expect("run python");
    assert!(output.status.success(), "oracle: {}", stderr(&output));
    let oracle: Value = serde_json::from_slice(&output.stdout).expect("oracle JSON");
    let segments = read_json(&run.path("segments.json"));
    let criteria = read_json(&run.path("criteria.json"));

    // Category counts per segment and value.
    for mix in segments["categories"].as_array().expect("mixes") {
        let feature = mix["feature"].as_str().expect("feature");
        for group in mix["segments"].as_array().expect("groups") {
            let segment = group["segment"].as_str().unwrap_or("(unassigned)");
            for (value, count) in mix["values"]
                .as_array()
                .expect("values")
                .iter()
                .zip(group["counts"].as_array().expect("counts"))
            {
                let value = value.as_str().unwrap_or("(null)");
                let expected = oracle["counts"][feature][segment][value]
                    .as_u64()
                    .unwrap_or(0);
                assert_eq!(
                    count.as_u64(),
                    Some(expected),
                    "{feature} = {value} in {segment}"
                );
            }
        }
    }
    // Gini (as the mean absolute difference over twice the mean) and the Lorenz curve.
    for concentration in segments["concentration"].as_array().expect("concentration") {
        let feature = concentration["feature"].as_str().expect("feature");
        let expected = &oracle["concentration"][feature];
        close(
            &concentration["gini"],
            expected["gini"].as_f64().expect("gini"),
            feature,
        );
        for (point, want) in concentration["lorenz"]
            .as_array()
            .expect("curve")
            .iter()
            .zip(expected["lorenz"].as_array().expect("curve"))
        {
            close(&point[1], want.as_f64().expect("share"), feature);
        }
    }
    // Chi-square and Cramér's V of every pair on plan.
    for pair in criteria["category_differentiation"]
        .as_array()
        .expect("pairs")
    {
        let key = format!(
            "{}~{}",
            pair["a"].as_str().expect("a"),
            pair["b"].as_str().expect("b")
        );
        let test = &pair["by_feature"][0][1];
        let expected = &oracle["pairs"][&key];
        close(
            &test["chi_square"],
            expected["chi_square"].as_f64().expect("χ²"),
            &key,
        );
        close(
            &test["cramers_v"],
            expected["cramers_v"].as_f64().expect("V"),
            &key,
        );
    }
    // The ICP: its customers and its revenue.
    assert_eq!(segments["icp"]["customers"], oracle["icp"]["customers"]);
    let revenue = segments["icp"]["features"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["feature"] == "revenue_12m"))
        .expect("revenue");
    close(
        &revenue["sum"],
        oracle["icp"]["revenue_12m"].as_f64().expect("sum"),
        "ICP revenue",
    );
}

#[test]
fn an_icp_named_by_segment_is_that_segments_customers_against_everyone_else() {
    let workspace = Workspace::from_fixture("profiles");
    workspace.edit_pipeline("  when: revenue >= 100 AND plan = 'pro'", "  segment: big");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let segments = read_json(&workspace.path().join("out/segments.json"));
    let icp = &segments["icp"];
    assert_eq!(icp["customers"], 4);
    for (icp_side, segment) in [("features", 0), ("rest", 1)] {
        let measured = segments["segments"][segment]["features"]
            .as_array()
            .expect("stats");
        for (got, want) in icp[icp_side]
            .as_array()
            .expect("stats")
            .iter()
            .zip(measured)
        {
            for figure in [
                "feature", "non_null", "mean", "std_dev", "sum", "min", "max",
            ] {
                assert_eq!(got[figure], want[figure], "{icp_side} {figure}");
            }
            assert_eq!(
                got["median"],
                Value::Null,
                "the ICP's medians are not computed"
            );
        }
    }
    let report = workspace.read("out/report.md");
    assert!(
        report.contains(
            "Who: the customers of the segment **Big spenders**. **4** customers, 40.0% of all."
        ),
        "{report}"
    );
    assert!(
        report.contains("They hold **91.7%** of the total `revenue`."),
        "{report}"
    );
}

/// Found by an adversarial round: an infinite value in a concentration feature made segments.json
/// unreadable (exit 10); a `--` comment ending an ICP condition swallowed the closing brackets.
#[test]
fn an_infinite_value_and_a_commented_icp_condition_run_and_say_so() {
    let workspace = Workspace::from_fixture("profiles");
    let customers = workspace.read("customers.csv");
    workspace.write(
        "customers.csv",
        &customers.replace("1,pro,500,5", "1,pro,inf,5"),
    );
    workspace.edit_pipeline(
        "  when: revenue >= 100 AND plan = 'pro'",
        "  when: \"revenue >= 100 AND plan = 'pro' -- paying pro accounts\"",
    );
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let segments = read_json(&workspace.path().join("out/segments.json"));
    assert_eq!(segments["concentration"][0]["infinite"], true);
    assert_eq!(segments["concentration"][0]["gini"], Value::Null);
    assert_eq!(segments["icp"]["customers"], 3);
    let report = workspace.read("out/report.md");
    assert!(
        report.contains(
            "A value is infinite or not a number (or the total overflows), so no shares are given."
        ),
        "{report}"
    );
    // `segflow report` reads the run folder back.
    workspace.segflow_ok(&["report", "out", "--out", "again"]);
}
