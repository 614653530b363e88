//! Time done right: customers as of the as-of date (join dates, tables that keep history,
//! customers from event keys), quantiles that keep ties together (checked against pandas), and
//! drift gates judging a run against an earlier one.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{
    Workspace, read_assignments, read_json, repo_path, stderr, stderr_unwrapped, stdout,
};

/// Run `pipeline` in `workspace` into `out` with `args`, requiring success.
fn run(workspace: &Workspace, pipeline: &str, out: &str, args: &[&str]) {
    let mut all = vec!["run", pipeline, "--out", out];
    all.extend(args);
    workspace.segflow_ok(&all);
}

/// Segment per customer of a run folder.
fn segments_of(workspace: &Workspace, out: &str) -> BTreeMap<i64, Value> {
    let (rows, _) = read_assignments(
        &workspace.path().join(out).join("assignments.parquet"),
        "customer_id",
    );
    rows.into_iter()
        .map(|(id, row)| (id, row["segment"].clone()))
        .collect()
}

/// The `exclusions` of a run's segments.json as (reason, customers).
fn exclusions(workspace: &Workspace, out: &str) -> Vec<(String, u64)> {
    let document = read_json(&workspace.path().join(out).join("segments.json"));
    document["exclusions"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|x| {
                    (
                        x["reason"].as_str().unwrap_or_default().to_string(),
                        x["customers"].as_u64().unwrap_or(u64::MAX),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn customers_from_the_distinct_keys_of_a_transactions_export() {
    let workspace = Workspace::from_fixture("entity");
    run(&workspace, "distinct.yaml", "out", &[]);
    let (rows, types) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let table: Vec<(i64, Value, Value, Value)> = rows
        .iter()
        .map(|(id, r)| {
            (
                *id,
                r["segment"].clone(),
                r["purchases"].clone(),
                r["revenue"].clone(),
            )
        })
        .collect();
    assert_eq!(
        table,
        [
            (1, json!("repeat"), json!(2), json!(30.0)),
            (2, json!("once"), json!(1), json!(5.0)),
            (4, json!("once"), json!(1), json!(1.0)),
        ]
    );
    assert_eq!(types["customer_id"], "Int64");
    assert_eq!(
        exclusions(&workspace, "out"),
        [("only_later_rows".to_string(), 1)]
    );
    let report = workspace.read("out/report.md");
    assert!(
        report.contains(
            "Left out: 1 customer — their keys appear in transactions only on or after 2026-10-01 (or in rows without a time)."
        ),
        "{report}"
    );
}

#[test]
fn customers_from_the_keys_of_several_sources() {
    let workspace = Workspace::from_fixture("entity");
    run(&workspace, "union.yaml", "out", &[]);
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let table: Vec<(i64, Value, Value)> = rows
        .iter()
        .map(|(id, r)| (*id, r["purchases"].clone(), r["visits"].clone()))
        .collect();
    assert_eq!(
        table,
        [
            (1, json!(2), json!(0)),
            (2, json!(1), json!(1)),
            (4, json!(1), json!(0)),
            (5, json!(0), json!(1)),
        ]
    );
    assert_eq!(
        exclusions(&workspace, "out"),
        [("only_later_rows".to_string(), 2)]
    );
    let plan = stdout(&workspace.segflow_ok(&["plan", "union.yaml"]));
    assert!(
        plan.contains(
            "-- stage 1: the customers as of 2026-10-01: distinct keys of transactions, web_events"
        ),
        "{plan}"
    );
}

#[test]
fn an_event_table_as_entity_is_rejected_by_validate_and_run_alike() {
    let workspace = Workspace::from_fixture("entity");
    workspace.edit_pipeline_file(
        "distinct.yaml",
        "entity: { source: transactions, key: customer_id, distinct: true }",
        "entity: { source: transactions, key: customer_id }",
    );
    for command in ["validate", "run"] {
        let output = workspace.segflow(&[command, "distinct.yaml"]);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{command}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.contains("segflow::entity-repeats"), "{message}");
        assert!(message.contains("distinct: true"), "{message}");
    }
}

#[test]
fn repeated_keys_without_a_time_column_are_found_by_run_only() {
    let workspace = Workspace::from_fixture("entity");
    workspace.write(
        "customers.csv",
        "customer_id,plan,signup_date\n1,pro,2026-01-10\n1,free,2026-01-10\n",
    );
    let validated = workspace.segflow(&["validate", "since.yaml"]);
    assert!(validated.status.success(), "{}", stderr(&validated));
    assert!(
        stdout(&validated).contains("rows are not read"),
        "validate says what it cannot know: {}",
        stdout(&validated)
    );
    let output = workspace.segflow(&["run", "since.yaml", "--out", "out"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("1 row repeats a `customer_id` already seen (e.g. 1)"));
    assert!(!workspace.path().join("out").exists());
}

#[test]
fn a_history_table_gives_each_quarter_the_rows_valid_then() {
    let workspace = Workspace::from_fixture("entity");
    run(&workspace, "history.yaml", "may", &[]);
    assert_eq!(
        segments_of(&workspace, "may"),
        BTreeMap::from([(1, json!("free")), (2, json!("paying"))])
    );
    assert_eq!(
        exclusions(&workspace, "may"),
        [
            ("not_yet_valid".to_string(), 1),
            ("no_longer_valid".to_string(), 1),
            ("joined_later".to_string(), 0),
        ]
    );
    run(
        &workspace,
        "history.yaml",
        "july",
        &["--as-of", "2026-07-01"],
    );
    assert_eq!(
        segments_of(&workspace, "july"),
        BTreeMap::from([
            (1, json!("paying")),
            (2, json!("paying")),
            (3, json!("paying"))
        ])
    );
    let html = workspace.read("july/report.html");
    assert!(html.contains("<p id=\"exclusions\">"), "{html}");
}

#[test]
fn overlapping_versions_are_a_data_error_naming_the_overlap() {
    let workspace = Workspace::from_fixture("entity");
    workspace.write(
        "customers_history.csv",
        "customer_id,plan,signup_date,valid_from,valid_to\n\
         1,free,2026-01-10,2026-01-10,\n\
         1,pro,2026-01-10,2026-03-01,\n",
    );
    let output = workspace.segflow(&["run", "history.yaml", "--out", "out"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("1 row repeats a `customer_id`"),
        "{message}"
    );
    assert!(message.contains("ranges overlap"), "{message}");
}

#[test]
fn since_leaves_out_later_joiners_and_keeps_customers_without_a_date() {
    let workspace = Workspace::from_fixture("entity");
    run(&workspace, "since.yaml", "out", &[]);
    assert_eq!(
        segments_of(&workspace, "out"),
        BTreeMap::from([
            (1, json!("paying")),
            (2, json!("paying")),
            (4, json!("free"))
        ])
    );
    assert_eq!(
        exclusions(&workspace, "out"),
        [("joined_later".to_string(), 1)]
    );
}

/// Whether two assignments rows agree: equal values, and sums of money equal up to the order
/// in which parallel partitions added them (a relative 1e-12).
fn same_row(a: &crate::support::Row, b: &crate::support::Row) -> bool {
    a.len() == b.len()
        && a.iter().all(|(column, x)| match (x, b.get(column)) {
            (Value::Number(x), Some(Value::Number(y))) if x.is_f64() || y.is_f64() => {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                (x - y).abs() <= 1e-12 * x.abs().max(1.0)
            }
            (x, y) => Some(x) == y,
        })
}

/// `segflow-datagen` with `args`, requiring success.
fn datagen(workspace: &Workspace, args: &[&str]) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_segflow-datagen"))
        .current_dir(workspace.path())
        .args(args)
        .output()
        .expect("run datagen");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn rerunning_a_past_quarter_on_todays_export_gives_that_quarters_answer() {
    let workspace = Workspace::from_fixture("entity");
    // Parquet keeps a table's columns even when the export has no rows yet (tickets in Q3).
    let common = [
        "--customers",
        "1500",
        "--seed",
        "5",
        "--as-of",
        "2026-10-01",
        "--format",
        "parquet",
    ];
    let today: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--history", "--out", "today"])
        .collect();
    datagen(&workspace, &today);
    let then: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--export-as-of", "2026-07-01", "--out", "q3"])
        .collect();
    datagen(&workspace, &then);
    let pipeline = std::fs::read_to_string(repo_path("pipelines/saas_quarterly.yaml"))
        .expect("example pipeline")
        .replace("data/saas/", "today/")
        .replace(".csv", ".parquet")
        .replace(".ndjson", ".parquet")
        .replace(
            "      email: string\n",
            "      email: string\n      valid_from: date\n      valid_to: date\n    valid_from: valid_from\n    valid_to: valid_to\n",
        )
;
    assert!(pipeline.contains("since: signup_date") && pipeline.contains("valid_to: valid_to"));
    workspace.write("quarterly.yaml", &pipeline);
    // The plan is a feature of the rules' inputs: a customer's plan then must be used.
    workspace.edit_pipeline_file(
        "quarterly.yaml",
        "segments:\n",
        "  - { name: paid, kind: firmographic, description: On a paid plan., expr: \"plan <> 'free'\" }\nsegments:\n",
    );
    workspace.edit_pipeline_file(
        "quarterly.yaml",
        "when: active_days_90 >= 40",
        "when: paid AND active_days_90 >= 40",
    );
    let sources = |folder: &str| -> Vec<String> {
        [
            "customers.parquet",
            "events.parquet",
            "invoices.parquet",
            "tickets.parquet",
        ]
        .iter()
        .map(|file| {
            format!(
                "{}={folder}/{file}",
                file.split('.').next().unwrap_or_default()
            )
        })
        .collect()
    };
    let mut rerun = vec![
        "run",
        "quarterly.yaml",
        "--as-of",
        "2026-07-01",
        "--out",
        "rerun",
    ];
    rerun.push("--criteria-as-warnings");
    workspace.segflow_ok(&rerun);
    let mut own: Vec<String> = [
        "run",
        "quarterly.yaml",
        "--as-of",
        "2026-07-01",
        "--out",
        "own",
        "--criteria-as-warnings",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for source in sources("q3") {
        own.push("--source".into());
        own.push(source);
    }
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    workspace.segflow_ok(&own);

    let rerun_rows = read_assignments(
        &workspace.path().join("rerun/assignments.parquet"),
        "customer_id",
    );
    let own_rows = read_assignments(
        &workspace.path().join("own/assignments.parquet"),
        "customer_id",
    );
    assert!(own_rows.0.len() > 1000, "{} customers", own_rows.0.len());
    assert_eq!(rerun_rows.1, own_rows.1, "same column types");
    let differing: Vec<_> = rerun_rows
        .0
        .iter()
        .filter(|(id, row)| !own_rows.0.get(id).is_some_and(|own| same_row(row, own)))
        .map(|(id, row)| (row.clone(), own_rows.0.get(id).cloned()))
        .take(3)
        .collect();
    assert!(differing.is_empty(), "rerun vs own export: {differing:?}");
    assert_eq!(rerun_rows.0.len(), own_rows.0.len(), "same customers");
    let excluded = exclusions(&workspace, "rerun");
    let later: u64 = excluded.iter().map(|(_, n)| n).sum();
    assert!(
        later > 0,
        "today's export knows customers who joined later: {excluded:?}"
    );
    assert_eq!(own_rows.0.len() as u64 + later, 1500, "{excluded:?}");

    // Without the as-of bounds, today's export leaks later customers and today's plans.
    let leaky = workspace
        .read("quarterly.yaml")
        .replace("  since: signup_date\n", "")
        .replace("    valid_from: valid_from\n    valid_to: valid_to\n", "");
    workspace.write("leaky.yaml", &leaky);
    let output = workspace.segflow(&[
        "run",
        "leaky.yaml",
        "--as-of",
        "2026-07-01",
        "--out",
        "leaky",
    ]);
    assert_eq!(
        output.status.code(),
        Some(4),
        "history rows repeat keys: {}",
        stderr(&output)
    );
}

#[test]
fn quantiles_keeping_ties_together_match_pandas() {
    let workspace = Workspace::from_fixture("ties");
    run(&workspace, "pipeline.yaml", "out", &[]);
    let (rows, types) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let expected = workspace.read("expected.csv");
    let mut lines = expected.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let mut compared = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let id: i64 = cells[0].parse().expect("id");
        for (column, cell) in header.iter().zip(&cells).skip(1) {
            let want = if cell.is_empty() {
                Value::Null
            } else {
                json!(cell.parse::<i64>().expect("bucket"))
            };
            assert_eq!(rows[&id][*column], want, "customer {id}, {column}");
            compared += 1;
        }
    }
    assert_eq!(compared, 211 * 6);
    // ntile in an expression and a quantile give the same numbers and the same type.
    for row in rows.values() {
        assert_eq!(row["f_score_by_key"], row["f_ntile"]);
    }
    assert_eq!(types["f_score"], "Int64");
    assert_eq!(types["f_score_by_key"], "Int64");
    assert_eq!(types["f_ntile"], "Int64");
    let report = workspace.read("out/report.md");
    assert!(
        report.contains("`f_score` in buckets `frequency` (equal values are kept in one bucket (ties: together), so buckets may be unequal: 3 of 5 buckets used, holding 35 to 129 customers):"),
        "{report}"
    );
}

#[test]
fn drift_gates_judge_a_run_against_the_earlier_one() {
    let workspace = Workspace::from_fixture("entity");
    let pipeline = std::fs::read_to_string(repo_path("pipelines/saas_quarterly.yaml"))
        .expect("example pipeline")
        .replace(
            "data/saas/",
            &format!("{}/", repo_path("pipelines/data/saas").display()),
        );
    let gated = pipeline.replace(
        "criteria:\n",
        "criteria:\n  stable:\n    psi: { warn_if_above: 0.1, error_if_above: 0.25 }\n    features: [events_90, email_reachable]\n    migration: { warn_if_above: 0.01, error_if_above: 0.9 }\n",
    );
    assert_ne!(gated, pipeline, "the example declares criteria");
    workspace.write("gated.yaml", &gated);
    // The example's data is made for 2026-10-01; a quarter earlier some criteria fail.
    let first = workspace.segflow(&[
        "run",
        "gated.yaml",
        "--as-of",
        "2026-07-01",
        "--out",
        "q3",
        "--criteria-as-warnings",
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let criteria = read_json(&workspace.path().join("q3/criteria.json"));
    let stable = criteria["criteria"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["criterion"] == "stable"))
        .expect("stable criterion")
        .clone();
    assert_eq!(stable["status"], "pass");
    assert_eq!(
        stable["checks"][0]["detail"],
        "not judged: no earlier run was given with --compare-to"
    );

    let second = workspace.segflow(&[
        "run",
        "gated.yaml",
        "--as-of",
        "2026-10-01",
        "--out",
        "q4",
        "--compare-to",
        "q3",
    ]);
    let comparison = read_json(&workspace.path().join("q4/comparison.json"));
    let migration = &comparison["migration"];
    let moved = migration["moved"].as_u64().expect("moved");
    let stayed = migration["stayed"].as_u64().expect("stayed");
    let criteria = read_json(&workspace.path().join("q4/criteria.json"));
    let stable = criteria["criteria"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["criterion"] == "stable"))
        .expect("stable criterion")
        .clone();
    let checks = stable["checks"].as_array().expect("checks");
    let share = checks
        .iter()
        .find(|c| c["measure"] == "share of customers who changed segment")
        .expect("migration check");
    let expected_share = moved as f64 / (moved + stayed) as f64;
    assert!((share["value"].as_f64().expect("share") - expected_share).abs() < 1e-12);
    assert_eq!(
        share["status"],
        if expected_share > 0.01 {
            "warn"
        } else {
            "pass"
        }
    );
    // Every segment's largest judged PSI is the largest of its drift rows.
    for check in checks
        .iter()
        .filter(|c| c["measure"] == "largest feature PSI")
    {
        let segment = check["subject"].as_str().expect("segment");
        let largest = comparison["drift"]
            .as_array()
            .expect("drift")
            .iter()
            .filter(|d| {
                d["segment"] == segment
                    && (d["feature"] == "events_90" || d["feature"] == "email_reachable")
            })
            .filter_map(|d| d["psi"].as_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(check["value"].as_f64(), Some(largest), "{segment}");
    }
    // PSI covers true/false features too.
    assert!(
        comparison["drift"]
            .as_array()
            .expect("drift")
            .iter()
            .any(|d| d["feature"] == "email_reachable" && d["psi"].is_number()),
        "{comparison}"
    );
    assert!(
        comparison["criteria_changes"]
            .as_array()
            .expect("criteria changes")
            .iter()
            .all(|change| change["criterion"] != "stable"),
        "the gate judges the comparison; it is no change of the run"
    );
    let failed = stable["status"] == "fail";
    assert_eq!(
        second.status.code(),
        Some(if failed { 6 } else { 0 }),
        "{}",
        stderr(&second)
    );

    // A gate on features without a PSI (a date) measured nothing: it warns, it does not pass.
    let dates = gated.replace(
        "features: [events_90, email_reachable]",
        "features: [last_event_date]",
    );
    workspace.write("dates.yaml", &dates);
    workspace.segflow_ok(&[
        "run",
        "dates.yaml",
        "--as-of",
        "2026-10-01",
        "--out",
        "dates",
        "--compare-to",
        "q3",
        "--criteria-as-warnings",
    ]);
    let criteria = read_json(&workspace.path().join("dates/criteria.json"));
    let stable = criteria["criteria"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["criterion"] == "stable"))
        .expect("stable criterion");
    assert!(
        stable["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["status"] == "warn"
                && c["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("not measured"))),
        "{stable}"
    );

    // A strict gate fails the run with the criteria exit code, after writing everything.
    let strict = gated.replace("error_if_above: 0.9", "error_if_above: 0.011");
    workspace.write("strict.yaml", &strict);
    let output = workspace.segflow(&[
        "run",
        "strict.yaml",
        "--as-of",
        "2026-10-01",
        "--out",
        "strict",
        "--compare-to",
        "q3",
    ]);
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("stable · all customers · share of customers who changed segment"),
        "{}",
        stderr(&output)
    );
    assert!(workspace.path().join("strict/report.html").is_file());
}

#[test]
fn an_empty_ndjson_export_is_a_table_of_its_declared_columns() {
    let workspace = Workspace::from_fixture("entity");
    workspace.write("tickets.ndjson", "");
    let pipeline = workspace.read("distinct.yaml").replace(
        "entity:",
        "  tickets:\n    path: tickets.ndjson\n    time_column: created_at\n    columns: { customer_id: int64, created_at: timestamp }\nentity:",
    ).replace(
        "segments:",
        "  - name: tickets\n    kind: behavioral\n    description: Support tickets.\n    aggregate: { source: tickets, expr: count(*), default: 0 }\nsegments:",
    );
    workspace.write("tickets.yaml", &pipeline);
    run(&workspace, "tickets.yaml", "out", &[]);
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    assert_eq!(rows.len(), 3);
    assert!(rows.values().all(|row| row["tickets"] == json!(0)));
}

#[test]
fn plans_grow_linearly_with_quantiles_keeping_ties_together() {
    // Regression: each such quantile once read the previous stage twice, doubling the plan
    // per feature; a dozen of them ran out of memory on eight customers.
    let workspace = Workspace::from_fixture("ties");
    let lines = |features: u32| -> usize {
        let quantiles: String = (0..features)
            .map(|i| {
                format!(
                    "  - {{ name: q{i}, kind: value, description: Buckets., quantile: {{ of: monetary, buckets: {}, ties: together }} }}\n",
                    i + 2
                )
            })
            .collect();
        let pipeline = workspace
            .read("pipeline.yaml")
            .replace("segments:", &format!("{quantiles}segments:"));
        let name = format!("many{features}.yaml");
        workspace.write(&name, &pipeline);
        stdout(&workspace.segflow_ok(&["plan", &name, "--format", "logical"]))
            .lines()
            .count()
    };
    let (three, six, twelve) = (lines(3), lines(6), lines(12));
    assert_eq!(
        twelve - six,
        2 * (six - three),
        "{three}, {six}, {twelve} lines"
    );
    workspace.segflow_ok(&["run", "many12.yaml", "--out", "out"]);
}

#[test]
fn keys_of_different_kinds_and_validity_on_keys_are_refused_when_the_file_loads() {
    let workspace = Workspace::from_fixture("entity");
    workspace.edit_pipeline_file("union.yaml", "user: int64", "user: string");
    let output = workspace.segflow(&["validate", "union.yaml", "--format", "json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stdout(&output);
    assert!(message.contains("\"code\":\"entity\""), "{message}");
    assert!(
        message.contains("the customer keys of `transactions` (Int64) and `web_events` (Utf8) are of different kinds"),
        "{message}"
    );
    workspace.edit_pipeline_file(
        "distinct.yaml",
        "    time_column: date\n",
        "    time_column: date\n    valid_from: date\n",
    );
    let output = workspace.segflow(&["validate", "distinct.yaml", "--format", "json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stdout(&output)
            .contains("declares validity columns, but the customers are taken from its keys"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn keys_seen_only_in_rows_without_a_time_are_counted_as_left_out() {
    let workspace = Workspace::from_fixture("entity");
    let transactions = workspace.read("transactions.csv") + "7,,4.0\n";
    workspace.write("transactions.csv", &transactions);
    run(&workspace, "distinct.yaml", "out", &[]);
    assert_eq!(segments_of(&workspace, "out").len(), 3);
    assert_eq!(
        exclusions(&workspace, "out"),
        [("only_later_rows".to_string(), 2)]
    );
}

/// The customers stage can be the first to parse a typed column (a join date, a validity
/// column, the time column of the keys' source): its data errors name the source, the file and
/// the column, as the features stage's do, and leave no run folder.
#[test]
fn a_bad_value_read_by_the_customers_stage_names_source_file_and_column() {
    let cases = [
        (
            "since.yaml",
            "customers.csv",
            "2026-03-01",
            "someday",
            "customers",
            "signup_date",
        ),
        (
            "history.yaml",
            "customers_history.csv",
            "2026-06-15,2026-06-15,",
            "2026-06-15,someday,",
            "customers",
            "valid_from",
        ),
        (
            "distinct.yaml",
            "transactions.csv",
            "2026-09-15",
            "someday",
            "transactions",
            "date",
        ),
    ];
    for (pipeline, file, value, bad, source, column) in cases {
        let workspace = Workspace::from_fixture("entity");
        let data = workspace.read(file);
        let broken = data.replacen(value, bad, 1);
        assert_ne!(broken, data, "{file} holds {value}");
        workspace.write(file, &broken);
        let output = workspace.segflow(&["run", pipeline, "--out", "out"]);
        assert_eq!(
            output.status.code(),
            Some(4),
            "{pipeline}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.contains(&format!("source `{source}`: {file}, column `{column}`: ")),
            "{pipeline}: {message}"
        );
        assert!(message.contains("'someday'"), "{pipeline}: {message}");
        assert!(!workspace.path().join("out").exists(), "{pipeline}");
    }
}

/// Minus zero equals zero and NaN is no value, as in pandas: Arrow's total order of floats
/// would otherwise rank -0.0 below 0.0 and NaN above every number.
#[test]
fn quantiles_rank_minus_zero_as_zero_and_nan_as_no_value() {
    let workspace = Workspace::from_fixture("ties");
    workspace.write(
        "zeros.csv",
        "customer_id,v\n1,-0.0\n2,0.0\n3,1.0\n4,NaN\n5,\n6,-0.0\n",
    );
    workspace.write(
        "zeros.yaml",
        "version: 1\nname: zeros\nas_of: 2026-10-01\n\
         sources:\n  customers: { path: zeros.csv, columns: { customer_id: int64, v: float64 } }\n\
         entity: { source: customers, key: customer_id }\n\
         features:\n\
         \x20 - { name: x, kind: value, description: The value., expr: v }\n\
         \x20 - { name: together, kind: value, description: Ties together., quantile: { of: x, buckets: 2, ties: together } }\n\
         \x20 - { name: by_key, kind: value, description: Ties by key., quantile: { of: x, buckets: 2 } }\n\
         \x20 - { name: cut, kind: value, description: Cut at one., quantile: { of: x, cuts: [0.5] } }\n\
         segments:\n  - { id: all, name: All, owner: crm, actions: [Act] }\n",
    );
    run(&workspace, "zeros.yaml", "out", &["--criteria-as-warnings"]);
    let (rows, _) = read_assignments(
        &workspace.path().join("out/assignments.parquet"),
        "customer_id",
    );
    let column = |name: &str| -> Vec<Value> { rows.values().map(|r| r[name].clone()).collect() };
    // pandas: qcut(x.rank(method="min"), 2, labels=False, duplicates="drop") + 1 gives
    // 1, 1, 1, NaN, NaN, 1: ranks 1, 1, 4, -, -, 1, so the median edge equals the lowest and
    // one bucket is left. (Ranking -0.0 below 0.0 gave 1, 2, 2, -, -, 1.)
    assert_eq!(
        column("together"),
        [
            json!(1),
            json!(1),
            json!(1),
            Value::Null,
            Value::Null,
            json!(1)
        ]
    );
    // By key: the three zeros in key order, then 1.0; NaN and null get no bucket.
    assert_eq!(
        column("by_key"),
        [
            json!(1),
            json!(1),
            json!(2),
            Value::Null,
            Value::Null,
            json!(2)
        ]
    );
    assert_eq!(
        column("cut"),
        [
            json!(1),
            json!(1),
            json!(2),
            Value::Null,
            Value::Null,
            json!(1)
        ]
    );
}

#[test]
fn customers_from_keys_that_all_come_later_are_named_as_such() {
    let workspace = Workspace::from_fixture("entity");
    let output = workspace.segflow(&[
        "run",
        "distinct.yaml",
        "--out",
        "out",
        "--as-of",
        "2025-01-01",
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains("no customers as of the as-of date: no row before it holds a key"),
        "{message}"
    );
    assert!(!workspace.path().join("out").exists());
}
