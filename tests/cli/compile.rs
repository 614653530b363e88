//! `segflow compile`: the pipeline as one SQL statement, run in a real PostgreSQL and in DuckDB
//! over the same data, must give every customer the segment and every feature value the
//! embedded run gives. The dialects not run here are golden files (tests/golden/compile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::postgres::{fresh_schema, load};
use crate::support::{
    Row, postgres_url, read_assignments, repo_path, segflow, stderr, stderr_unwrapped, stdout,
};

/// A pipeline's file sources: name → (file, declared column types).
fn file_sources(pipeline: &Path) -> BTreeMap<String, (PathBuf, BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(pipeline).expect("read pipeline");
    let spec: serde_yaml::Value = serde_yaml::from_str(&text).expect("pipeline YAML");
    let base = pipeline.parent().expect("pipeline folder");
    let mut sources = BTreeMap::new();
    for (name, source) in spec["sources"].as_mapping().expect("sources") {
        let name = name.as_str().expect("source name").to_string();
        let path = base.join(source["path"].as_str().expect("a file source"));
        let mut columns = BTreeMap::new();
        if let Some(declared) = source["columns"].as_mapping() {
            for (column, column_type) in declared {
                columns.insert(
                    column.as_str().expect("column").to_string(),
                    column_type.as_str().expect("type").to_string(),
                );
            }
        }
        sources.insert(name, (path, columns));
    }
    sources
}

/// The SQL type a warehouse table would give a column declared as `declared` in the pipeline.
fn sql_type(declared: &str, postgres: bool) -> &'static str {
    match declared {
        "int64" => "bigint",
        "int32" => "integer",
        "float64" if postgres => "double precision",
        "float64" => "double",
        "bool" => "boolean",
        "date" => "date",
        "timestamp" => "timestamp",
        _ => "varchar",
    }
}

/// `segflow compile` of `pipeline` (relative to the repository) for `dialect`, with `args`.
fn compile(pipeline: &str, dialect: &str, args: &[&str]) -> Output {
    segflow()
        .current_dir(repo_path(""))
        .args(["compile", pipeline, "--dialect", dialect])
        .args(args)
        .output()
        .expect("run segflow")
}

fn compiled(pipeline: &str, dialect: &str, args: &[&str]) -> String {
    let output = compile(pipeline, dialect, args);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// Whether a value an engine returned is the embedded run's: numbers to 1e-9 relative (sums
/// may add in another order), text and dates as text, null as null.
fn same(expected: &Value, found: &Value) -> bool {
    match (expected, found) {
        (Value::Number(a), _) => {
            let a = a.as_f64().expect("number");
            let b = match found {
                Value::Number(b) => b.as_f64(),
                Value::String(b) => b.parse::<f64>().ok(),
                _ => None,
            };
            b.is_some_and(|b| (a - b).abs() <= 1e-9 * a.abs().max(1.0))
        }
        (Value::String(a), Value::String(b)) => a == b || b.starts_with(&format!("{a} ")),
        _ => expected == found,
    }
}

/// Compare every customer's row of an engine's result with the embedded run's.
fn assert_same_rows(engine: &str, expected: &BTreeMap<i64, Row>, found: &[Value], key: &str) {
    assert_eq!(found.len(), expected.len(), "{engine}: customers");
    let mut mismatches = Vec::new();
    for row in found {
        let object = row.as_object().expect("a row is an object");
        let id = object[key].as_i64().expect("integer key");
        let Some(wanted) = expected.get(&id) else {
            mismatches.push(format!("customer {id} is not in the embedded run"));
            continue;
        };
        let columns: Vec<&String> = wanted.keys().collect();
        let got: Vec<&String> = object.keys().collect();
        assert_eq!(got, columns, "{engine}: columns");
        for (column, value) in wanted {
            if !same(value, &object[column]) {
                mismatches.push(format!(
                    "customer {id}, {column}: embedded {value}, {engine} {}",
                    object[column]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{engine}: {} differences, first: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}

/// Run `sql` in DuckDB over `pipeline`'s files, each a view named after its source with the
/// declared types, returning the rows.
fn run_in_duckdb(python: &str, pipeline: &Path, sql: &str) -> Vec<Value> {
    let folder = TempDir::new().expect("temp dir");
    let mut setup = String::new();
    for (name, (path, columns)) in file_sources(pipeline) {
        let path = path.to_str().expect("path");
        let reader = match path.rsplit('.').next() {
            Some("parquet") => format!("read_parquet('{path}')"),
            Some("csv") => format!("read_csv('{path}', header = true)"),
            _ => format!("read_json('{path}', format = 'newline_delimited')"),
        };
        let casts: Vec<String> = columns
            .iter()
            .map(|(column, declared)| {
                format!(
                    "CAST(\"{column}\" AS {}) AS \"{column}\"",
                    sql_type(declared, false)
                )
            })
            .collect();
        let select = if casts.is_empty() {
            "*".to_string()
        } else {
            format!("* REPLACE ({})", casts.join(", "))
        };
        setup.push_str(&format!(
            "CREATE VIEW \"{name}\" AS SELECT {select} FROM {reader};\n"
        ));
    }
    std::fs::write(folder.path().join("setup.sql"), setup).expect("write setup");
    std::fs::write(folder.path().join("query.sql"), sql).expect("write query");
    let output = std::process::Command::new(python)
        .arg(repo_path("tests/tools/duckdb_query.py"))
        .arg(folder.path().join("setup.sql"))
        .arg(folder.path().join("query.sql"))
        .output()
        .expect("run python");
    assert!(output.status.success(), "duckdb: {}", stderr(&output));
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect()
}

/// Run `sql` in the test PostgreSQL, returning the rows.
fn run_in_postgres(url: &str, sql: &str) -> Vec<Value> {
    let query = format!(
        "SELECT row_to_json(t)::text FROM (\n{}\n) AS t",
        sql.trim().trim_end_matches(';')
    );
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let (client, _) = segflow::postgres::connect(url).await.expect("connect");
            client
                .query(&query, &[])
                .await
                .unwrap_or_else(|e| panic!("postgres: {e:?}\n{query}"))
                .iter()
                .map(|row| serde_json::from_str(row.get::<_, &str>(0)).expect("JSON row"))
                .collect()
        })
}

/// The embedded run's assignments of `pipeline`, keyed by `key`.
fn embedded(pipeline: &Path, key: &str) -> BTreeMap<i64, Row> {
    let folder = TempDir::new().expect("temp dir");
    let output = segflow()
        .current_dir(repo_path(""))
        .arg("run")
        .arg(pipeline)
        .arg("--out")
        .arg(folder.path().join("run"))
        .arg("--criteria-as-warnings")
        .output()
        .expect("run segflow");
    assert!(output.status.success(), "{}", stderr(&output));
    read_assignments(&folder.path().join("run/assignments.parquet"), key).0
}

/// The example pipelines, and the `windows` fixture with whole-number divisions (negative too)
/// and a window function over values with nulls added: every feature form they use.
fn pipelines() -> (crate::support::Workspace, Vec<PathBuf>) {
    let windows = crate::support::Workspace::from_fixture("windows");
    let added: String = [
        ("per_week", "(events_30 - 3) / 7"),
        ("per_week_share", "events_30 / 7.0"),
        (
            "recency_rank",
            "rank() OVER (ORDER BY days_since_last_event DESC)",
        ),
        // Halves round away from zero (Postgres rounds a double's halves to even).
        ("half_score", "round(score / 2.0)"),
        // EXTRACT is a whole number in DataFusion, NUMERIC in Postgres.
        ("signup_third", "EXTRACT(MONTH FROM signup_date) / 4"),
        // A window sum of whole numbers is whole.
        ("score_share", "score * 3 / sum(score) OVER ()"),
        // `date + interval` is a date in DataFusion, a timestamp in Postgres and DuckDB.
        ("thirty", "(signup_date + INTERVAL '30 days') - signup_date"),
        // Decimal literals are doubles in DataFusion, exact in Postgres and DuckDB.
        ("above", "score * 0.1 + 0.2 > 0.3"),
    ]
    .iter()
    .map(|(name, expr)| {
        format!(
            "  - name: {name}\n    kind: behavioral\n    description: Tested.\n    expr: {expr}\n"
        )
    })
    .collect();
    windows.edit_pipeline(
        "  - name: score_double\n",
        &(added + "  - name: score_double\n"),
    );
    let mut paths: Vec<PathBuf> = [
        "pipelines/saas_quarterly.yaml",
        "pipelines/rfm_retail.yaml",
        "pipelines/prioritization_example.yaml",
        "pipelines/needs_survey.yaml",
        // Labelled quantiles and tiers: text buckets.
        "tests/fixtures/tiers/pipeline.yaml",
    ]
    .into_iter()
    .map(repo_path)
    .collect();
    paths.push(windows.path().join("pipeline.yaml"));
    (windows, paths)
}

/// The customer key column of every pipeline tested here.
const KEY: &str = "customer_id";

#[test]
fn compiled_duckdb_sql_assigns_every_customer_as_the_embedded_run() {
    let Some(python) = crate::support::duckdb_python() else {
        return;
    };
    let (_workspace, pipelines) = pipelines();
    for pipeline in &pipelines {
        let expected = embedded(pipeline, KEY);
        let sql = compiled(pipeline.to_str().expect("path"), "duckdb", &[]);
        let found = run_in_duckdb(&python, pipeline, &sql);
        assert_same_rows(
            &format!("duckdb, {}", pipeline.display()),
            &expected,
            &found,
            KEY,
        );
    }
}

#[test]
fn compiled_postgres_sql_assigns_every_customer_as_the_embedded_run() {
    let Some(url) = postgres_url() else { return };
    let (_workspace, pipelines) = pipelines();
    for (i, pipeline) in pipelines.iter().enumerate() {
        let schema = format!("sf_compile_{i}");
        fresh_schema(&url, &schema);
        let mut tables = Vec::new();
        for (name, (path, columns)) in file_sources(pipeline) {
            let types: Vec<(&str, &str)> = columns
                .iter()
                .map(|(c, t)| (c.as_str(), sql_type(t, true)))
                .collect();
            load(&url, &format!("{schema}.{name}"), &path, &types);
            tables.push(format!("{name}={schema}.{name}"));
        }
        let mut args = Vec::new();
        for table in &tables {
            args.extend(["--table", table.as_str()]);
        }
        let expected = embedded(pipeline, KEY);
        let sql = compiled(pipeline.to_str().expect("path"), "postgres", &args);
        let found = run_in_postgres(&url, &sql);
        assert_same_rows(
            &format!("postgres, {}", pipeline.display()),
            &expected,
            &found,
            KEY,
        );
    }
}

#[test]
fn every_dialect_matches_its_golden_file() {
    let bless = std::env::var_os("SEGFLOW_BLESS").is_some();
    for pipeline in ["saas_quarterly", "rfm_retail"] {
        for dialect in [
            "postgres",
            "duckdb",
            "bigquery",
            "snowflake",
            "mysql",
            "sqlite",
        ] {
            let sql = compiled(&format!("pipelines/{pipeline}.yaml"), dialect, &[]);
            let golden = repo_path(&format!("tests/golden/compile/{pipeline}.{dialect}.sql"));
            if bless {
                std::fs::create_dir_all(golden.parent().expect("folder")).expect("mkdir");
                std::fs::write(&golden, &sql).expect("write golden");
                continue;
            }
            let expected = std::fs::read_to_string(&golden)
                .unwrap_or_else(|_| panic!("{} is missing: SEGFLOW_BLESS=1", golden.display()));
            assert_eq!(sql, expected, "{pipeline} for {dialect}");
        }
    }
}

#[test]
fn warehouse_sql_has_no_segflow_functions_and_the_as_of_date_is_a_literal() {
    let sql = compiled(
        "pipelines/saas_quarterly.yaml",
        "postgres",
        &["--as-of", "2027-01-01"],
    );
    for own in ["as_of(", "bit_count", "bit_or", "arrow_cast", "isnan"] {
        assert!(!sql.contains(own), "compiled SQL uses `{own}`:\n{sql}");
    }
    assert!(sql.contains("DATE '2027-01-01'"));
    // Active days as plain SQL: the distinct dates grouped per customer, then counted.
    assert!(
        sql.contains("(CAST(ts AS DATE)) AS v") && sql.contains("count(v) AS \"active_days_90\""),
        "{sql}"
    );
}

#[test]
fn a_table_for_an_unknown_source_and_a_bad_dialect_are_refused() {
    let output = compile(
        "pipelines/saas_quarterly.yaml",
        "postgres",
        &["--table", "evnts=analytics.events"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(message.contains("`evnts`"), "{message}");
    assert!(message.contains("events"), "{message}");

    let output = compile("pipelines/saas_quarterly.yaml", "oracle", &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("postgres, duckdb"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_timestamp_difference_is_refused_naming_the_feature_and_dialect() {
    let dir = crate::support::Workspace::from_fixture("windows");
    dir.edit_pipeline(
        "  - name: score_double\n",
        "  - name: active_span\n    kind: behavioral\n    description: First to last event.\n    aggregate: { source: events, expr: max(ts) - min(ts) }\n  - name: score_double\n",
    );
    let output = dir.segflow(&["compile", "pipeline.yaml", "--dialect", "duckdb"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    for words in [
        "duckdb",
        "active_span",
        "subtracts timestamps",
        "CAST(a AS DATE)",
    ] {
        assert!(message.contains(words), "`{words}` not in: {message}");
    }
    assert!(stdout(&output).is_empty(), "no SQL is printed");
}

#[test]
fn compiled_sql_on_100k_generated_customers_matches_in_duckdb_and_postgres() {
    let python = crate::support::duckdb_python();
    let url = postgres_url();
    if python.is_none() && url.is_none() {
        return;
    }
    let folder = TempDir::new().expect("temp dir");
    let data = folder.path().join("data/saas");
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_segflow-datagen"))
        .args(["--customers", "100000", "--seed", "7", "--out"])
        .arg(&data)
        .output()
        .expect("run datagen");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let pipeline = folder.path().join("pipeline.yaml");
    std::fs::copy(repo_path("pipelines/saas_quarterly.yaml"), &pipeline).expect("copy");
    let expected = embedded(&pipeline, KEY);
    assert_eq!(expected.len(), 100_000);

    if let Some(python) = python {
        let sql = compiled(pipeline.to_str().expect("path"), "duckdb", &[]);
        let found = run_in_duckdb(&python, &pipeline, &sql);
        assert_same_rows("duckdb, 100k customers", &expected, &found, KEY);
    }
    if let Some(url) = url {
        let schema = "sf_compile_100k";
        fresh_schema(&url, schema);
        let mut args = Vec::new();
        for (name, (path, columns)) in file_sources(&pipeline) {
            let types: Vec<(&str, &str)> = columns
                .iter()
                .map(|(c, t)| (c.as_str(), sql_type(t, true)))
                .collect();
            load(&url, &format!("{schema}.{name}"), &path, &types);
            args.push(format!("{name}={schema}.{name}"));
        }
        let args: Vec<&str> = args.iter().flat_map(|t| ["--table", t.as_str()]).collect();
        let sql = compiled(pipeline.to_str().expect("path"), "postgres", &args);
        let found = run_in_postgres(&url, &sql);
        assert_same_rows("postgres, 100k customers", &expected, &found, KEY);
    }
}

#[test]
fn what_a_dialect_would_compute_otherwise_is_refused_naming_the_feature() {
    let cases = [
        ("duckdb", "substr(plan, -1, 3)", "DuckDB counts differently"),
        ("sqlite", "plan LIKE 'p%'", "LIKE ignores case in sqlite"),
        (
            "postgres",
            "CAST(score / 3.0 AS VARCHAR)",
            "floating-point number",
        ),
    ];
    for (dialect, expr, words) in cases {
        let dir = crate::support::Workspace::from_fixture("windows");
        dir.edit_pipeline(
            "  - name: score_double\n",
            &format!("  - name: probe\n    kind: behavioral\n    description: Probe.\n    expr: {expr}\n  - name: score_double\n"),
        );
        let output = dir.segflow(&["compile", "pipeline.yaml", "--dialect", dialect]);
        assert_eq!(output.status.code(), Some(3), "{expr}: {}", stderr(&output));
        let message = stderr_unwrapped(&output);
        // The feature, not the whole stage of features computed with it.
        assert!(message.contains("feature `probe`"), "{message}");
        assert!(!message.contains("`engagement`"), "{message}");
        assert!(message.contains(words), "`{words}` not in: {message}");
    }
}

#[test]
fn a_table_name_with_anything_after_it_is_refused() {
    for table in [
        "analytics.events WHERE false --",
        "a.b, c.d",
        "x; DROP TABLE y",
    ] {
        let output = compile(
            "pipelines/saas_quarterly.yaml",
            "postgres",
            &["--table", &format!("events={table}")],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{table}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("is not a table name"),
            "{}",
            stderr(&output)
        );
    }
}
