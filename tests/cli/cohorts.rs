//! Cohorts, retention and lifetime value: a hand-worked fixture (tests/fixtures/cohorts), every
//! shape of `active` aggregate giving the same tables, the checks of the sections, re-rendering
//! from `cohorts.json`, and the example's tables against an independent DuckDB computation
//! (tests/oracles/cohorts.py).

use serde_json::{Value, json};

use crate::support::{
    ExampleRun, Workspace, read_json, repo_path, stderr, stderr_unwrapped, stdout,
};

/// The fixture, as of 2026-06-01 with four monthly cohorts (February to May 2026) and
/// `active_30` = events in the 30 days before a date. The period ends observed are 1 April
/// (window [2 March, 1 April)), 1 May ([1 April, 1 May)) and 1 June ([2 May, 1 June)).
///
/// | customer | signup | segment | events                          | 1 Apr | 1 May | 1 Jun |
/// |---|---|---|---|---|---|---|
/// | 1 | 02-03 | big   | 03-15, 04-20, 05-20              | yes | yes | yes |
/// | 2 | 02-10 | big   | 03-10                            | yes | no  | no  |
/// | 3 | 02-20 | small | 03-20, 05-25 (churns, comes back)| yes | no  | yes |
/// | 9 | 02-01 | small | none                             | no  | no  | no  |
/// | 11| 02-25 | big   | 03-01 12:00 (before the window)  | no  | no  | no  |
/// | 4 | 03-05 | small | 04-10, 06-01 (the as-of date)    |  –  | yes | no  |
/// | 5 | 03-31 | big   | 04-30 23:59, 05-01 00:00         |  –  | yes | no  |
/// | 6 | 04-15 | small | 05-20                            |  –  |  –  | yes |
/// | 7 | 05-10 | big   | 05-12                            |  –  |  –  |  –  |
///
/// Customer 8 signed up in January and 10 on the as-of date: in no cohort. For a cohort of
/// month m, step k ends on the first day of month m + k + 1; ends after 1 June are null.
/// February: 5 customers, active 3 (1, 2, 3), 1 (1), 2 (1, 3), null. March: 2, then 2 (4, 5),
/// 0, null, null. April: 1, then 1, null... May: 1, all null.
#[test]
fn hand_worked_cohort_tables_are_a_triangle_with_a_returning_customer() {
    let workspace = Workspace::from_fixture("cohorts");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
    let doc = read_json(&workspace.path().join("run/cohorts.json"));
    assert_eq!(doc["as_of"], "2026-06-01");
    assert_eq!(doc["period"], "month");
    let n = Value::Null;
    let expected = [
        (
            Value::Null,
            [
                ("2026-02", 5, json!([3, 1, 2, n])),
                ("2026-03", 2, json!([2, 0, n, n])),
                ("2026-04", 1, json!([1, n, n, n])),
                ("2026-05", 1, json!([n, n, n, n])),
            ],
        ),
        (
            json!("big"),
            [
                ("2026-02", 3, json!([2, 1, 1, n])),
                ("2026-03", 1, json!([1, 0, n, n])),
                ("2026-04", 0, json!([0, n, n, n])),
                ("2026-05", 1, json!([n, n, n, n])),
            ],
        ),
        (
            json!("small"),
            [
                ("2026-02", 2, json!([1, 0, 1, n])),
                ("2026-03", 1, json!([1, 0, n, n])),
                ("2026-04", 1, json!([1, n, n, n])),
                ("2026-05", 0, json!([n, n, n, n])),
            ],
        ),
    ];
    let tables = doc["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), expected.len());
    for (table, (segment, cohorts)) in tables.iter().zip(&expected) {
        assert_eq!(&table["segment"], segment);
        for (row, (cohort, customers, active)) in table["cohorts"]
            .as_array()
            .expect("cohorts")
            .iter()
            .zip(cohorts)
        {
            assert_eq!(row["cohort"], *cohort, "{segment}");
            assert_eq!(row["customers"], *customers, "{segment} {cohort}");
            assert_eq!(&row["active"], active, "{segment} {cohort}");
        }
    }
    // Shares by hand: February of all customers 3/5, 1/5, 2/5; big February 2/3, 1/3, 1/3; an
    // empty cohort has no shares.
    let shares =
        |table: usize, row: usize| doc["tables"][table]["cohorts"][row]["retention"].clone();
    assert_eq!(shares(0, 0), json!([0.6, 0.2, 0.4, n]));
    assert_eq!(shares(1, 0), json!([2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, n]));
    assert_eq!(shares(2, 0), json!([0.5, 0.0, 0.5, n]));
    assert_eq!(shares(1, 2), json!([n, n, n, n]));

    let manifest = read_json(&workspace.path().join("run/manifest.json"));
    assert!(
        manifest["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .any(|o| o == "cohorts.json")
    );
    let markdown = workspace.read("run/report.md");
    assert!(
        markdown.contains("| 2026-02 | 5 | 60% | 20% | 40% | – |"),
        "{markdown}"
    );
    assert!(markdown.contains("![Retention heatmaps by cohort and segment](charts/cohorts.svg)"));
    let svg = workspace.read("run/charts/cohorts.svg");
    assert!(
        svg.contains(">60%<") && svg.contains("Big companies"),
        "{svg}"
    );
    assert!(
        workspace
            .read("run/report.html")
            .contains("Retention by month cohort")
    );
}

/// Lifetime value worked by hand on the same fixture (margin 0.5, cap 10 months; months since
/// signup counted through May 2026, at least 1).
///
/// Pooled retention, Σ active after k + 1 ÷ Σ active after k over observed cells (k = 0: size):
/// - big: February 3→2, 2→1, 1→1; March 1→1, 1→0: r = 5/8, lifetime 1/(3/8) = 8/3 months.
/// - small: February 2→1, 1→0, 0→1; March 1→1, 1→0; April 1→1: r = 4/6, lifetime 3.
/// - all: February 5→3, 3→1, 1→2; March 2→2, 2→0; April 1→1: r = 9/14, lifetime 14/5 = 2.8.
///
/// Value per month: big 400/4, 200/4, 90/3, 10/1, 0/4 = 100, 50, 30, 10, 0 (mean 38, median 30,
/// total 190); small 120/4, 60/3, 40/2, 50/5, 0/4, 0/1 = 30, 20, 20, 10, 0, 0 (mean 40/3,
/// median 15, total 80). Predictive = 0.5 × that × lifetime: big 50.67, 40, 253.33; small 20,
/// 22.5, 120; all customers' median per month is 20, so 0.5 × 20 × 2.8 = 28, total 378.
#[test]
fn hand_worked_lifetime_value_by_segment() {
    let workspace = Workspace::from_fixture("cohorts");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
    let doc = read_json(&workspace.path().join("run/cohorts.json"));
    let ltv = &doc["lifetime_value"];
    assert_eq!(
        (ltv["margin"].as_f64(), ltv["max_periods"].as_u64()),
        (Some(0.5), Some(10))
    );
    let close = |got: &Value, want: f64| {
        let got = got.as_f64().expect("a number");
        assert!((got - want).abs() < 1e-9, "{got} != {want}");
    };
    let expected = [
        (
            Value::Null,
            (9, 14),
            2.8,
            [970.0 / 11.0, 50.0, 970.0],
            [135.0 * 2.8 / 11.0, 28.0, 378.0],
        ),
        (
            json!("big"),
            (5, 8),
            8.0 / 3.0,
            [140.0, 90.0, 700.0],
            [38.0 * 4.0 / 3.0, 40.0, 190.0 * 4.0 / 3.0],
        ),
        (
            json!("small"),
            (4, 6),
            3.0,
            [45.0, 45.0, 270.0],
            [20.0, 22.5, 120.0],
        ),
    ];
    for (row, (segment, (retained, exposed), lifetime, value, predictive)) in ltv["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .zip(expected)
    {
        assert_eq!(row["segment"], segment);
        assert_eq!(
            (row["retained"].as_u64(), row["exposed"].as_u64()),
            (Some(retained), Some(exposed))
        );
        close(&row["retention"], retained as f64 / exposed as f64);
        close(&row["expected_lifetime"], lifetime);
        assert_eq!(row["capped"], false);
        for (stat, (value, predictive)) in ["mean", "median", "total"]
            .iter()
            .zip(value.iter().zip(predictive))
        {
            close(&row["value"][stat], *value);
            close(&row["predictive"][stat], predictive);
        }
    }
    let markdown = workspace.read("run/report.md");
    assert!(
        markdown.contains("## Lifetime value by segment"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| Big companies | 62.5% | 2.7 months |"),
        "{markdown}"
    );
    assert!(markdown.contains("margin 50%"), "{markdown}");
}

/// Counts take the distinct-day shortcut; a sum and a true/false aggregate are evaluated per
/// (customer, period end). All three say "an event in the window", so the tables agree.
#[test]
fn every_shape_of_active_aggregate_gives_the_same_tables() {
    let tables_with = |active: Option<&str>| {
        let workspace = Workspace::from_fixture("cohorts");
        if let Some(active) = active {
            workspace.edit_pipeline("expr: count(*), window_days: 30, default: 0", active);
        }
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
        read_json(&workspace.path().join("run/cohorts.json"))["tables"].clone()
    };
    let counted = tables_with(None);
    for active in [
        "expr: sum(1), window_days: 30, default: 0",
        "expr: max(ts) IS NOT NULL, window_days: 30, default: false",
    ] {
        assert_eq!(tables_with(Some(active)), counted, "{active}");
    }
}

#[test]
fn cohorts_and_lifetime_value_are_checked_with_their_locations() {
    let cases = [
        (
            "active: active_30, periods: 4",
            "active: paid, periods: 4",
            "feature `paid` is not an aggregate",
        ),
        ("periods: 4 }", "periods: 0 }", "0 periods is out of range"),
        (
            "by: signup_date",
            "by: company_size",
            "feature `company_size` holds Int64",
        ),
        ("margin: 0.5", "margin: 1.5", "margin 1.5 is not a share"),
        (
            "cohorts: { by: signup_date, period: month, active: active_30, periods: 4 }\n",
            "",
            "lifetime value needs `cohorts`",
        ),
        (
            "active: active_30,",
            "active: active_31,",
            "unknown feature `active_31`",
        ),
    ];
    for (from, to, message) in cases {
        let workspace = Workspace::from_fixture("cohorts");
        workspace.edit_pipeline(from, to);
        let output = workspace.segflow(&["validate", "pipeline.yaml"]);
        assert_eq!(output.status.code(), Some(3), "{to}: {}", stderr(&output));
        let text = stderr_unwrapped(&output);
        assert!(text.contains(message), "{to}: {text}");
        assert!(
            text.contains("[pipeline.yaml:"),
            "{to}: no location in {text}"
        );
        let code = if message.starts_with("unknown feature") {
            "segflow::unknown-feature"
        } else {
            "segflow::cohorts"
        };
        assert!(text.contains(code), "{to}: not {code} in {text}");
    }
}

/// `segflow report` renders the cohorts from `cohorts.json` as written, not from the data.
#[test]
fn report_re_renders_the_cohorts_from_cohorts_json() {
    let workspace = Workspace::from_fixture("cohorts");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
    let text = workspace.read("run/cohorts.json");
    let mut doc: Value = serde_json::from_str(&text).expect("JSON");
    doc["tables"][0]["cohorts"][0]["retention"][0] = json!(0.55);
    workspace.write(
        "run/cohorts.json",
        &serde_json::to_string_pretty(&doc).expect("JSON"),
    );
    workspace.segflow_ok(&["report", "run", "--out", "again"]);
    let markdown = workspace.read("again/report.md");
    assert!(
        markdown.contains("| 2026-02 | 5 | 55% | 20% | 40% | – |"),
        "{markdown}"
    );

    std::fs::remove_file(workspace.path().join("run/cohorts.json")).expect("remove");
    let output = workspace.segflow(&["report", "run", "--out", "third"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cohorts.json is missing"),
        "{}",
        stderr(&output)
    );
}

/// The example's cohort tables, every cell of every segment, against DuckDB computing them
/// independently from the run's assignments and the event file (tests/oracles/cohorts.py).
#[test]
fn the_example_cohorts_match_an_independent_duckdb_computation() {
    let Some(python) = crate::support::duckdb_python() else {
        return;
    };
    let run = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let output = std::process::Command::new(python)
        .arg(repo_path("tests/oracles/cohorts.py"))
        .arg(run.path("assignments.parquet"))
        .arg(repo_path("pipelines/data/saas/events.parquet"))
        .args(["2026-10-01", "12", "90"])
        .output()
        .expect("run python");
    assert!(output.status.success(), "oracle: {}", stderr(&output));
    let oracle: Value = serde_json::from_str(&stdout(&output)).expect("oracle JSON");
    let doc = read_json(&run.path("cohorts.json"));
    let mut cells = 0;
    for table in doc["tables"].as_array().expect("tables") {
        let name = table["segment"].as_str().unwrap_or("*");
        for row in table["cohorts"].as_array().expect("cohorts") {
            let cohort = row["cohort"].as_str().expect("label");
            let want = &oracle[name][cohort];
            if want.is_null() {
                assert_eq!(
                    row["customers"], 0,
                    "{name} {cohort}: the oracle has nobody"
                );
                continue;
            }
            assert_eq!(row["customers"], want["customers"], "{name} {cohort}");
            assert_eq!(row["active"], want["active"], "{name} {cohort}");
            cells += row["active"].as_array().expect("active").len();
        }
    }
    assert!(cells >= 12 * 12 * 3, "{cells} cells compared");
}

/// The ideal customer profile's retention is its customers' cohort tables: named by segment
/// (`small`), they are that segment's tables, and everyone else's are `big`'s (every customer
/// is in one of the two). Pooled over the observed cohorts, three periods after joining only
/// February is observed: small 1 of 2 (customer 3 came back), big 1 of 3.
#[test]
fn the_icp_retention_is_its_customers_cohort_tables_beside_everyone_elses() {
    let workspace = Workspace::from_fixture("cohorts");
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}icp: {{ name: Small accounts, segment: small }}\n"),
    );
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
    let cohorts = read_json(&workspace.path().join("run/cohorts.json"));
    let segments = read_json(&workspace.path().join("run/segments.json"));
    let table = |id: &str| {
        cohorts["tables"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["segment"] == id))
            .map(|t| t["cohorts"].clone())
            .expect("segment table")
    };
    let retention = &segments["icp"]["retention"];
    assert_eq!(retention[0]["segment"], "icp");
    assert_eq!(retention[0]["cohorts"], table("small"));
    assert_eq!(retention[1]["segment"], "rest");
    assert_eq!(retention[1]["cohorts"], table("big"));
    let report = workspace.read("run/report.md");
    assert!(report.contains("| 1 month | 75.0% | 75.0% |"), "{report}");
    assert!(report.contains("| 3 months | 50.0% | 33.3% |"), "{report}");
}
