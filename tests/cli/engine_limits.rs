//! The engine's limits: NaN and infinities in the data, and many features.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{read_assignments, segflow};

const PIPELINE: &str = "version: 1
name: numbers
as_of: 2026-10-01
sources:
  customers:
    path: customers.FORMAT
    columns: { customer_id: int64, amount: float64 }
entity: { source: customers, key: customer_id }
features:
  - { name: amt, kind: value, description: The amount., expr: amount }
  - { name: doubled, kind: value, description: Twice the amount., expr: amount * 2 }
segments:
  - { id: big, name: Big, owner: t, actions: [A], when: amt > 10 }
  - { id: small, name: Small, owner: t, actions: [A], when: NOT (amt > 10) }
  - { id: rest, name: Rest, owner: t, actions: [A] }
";

/// Customers 1 to 5 with amounts 5, NaN, inf, -inf, 20.
const AMOUNTS: [f64; 5] = [5.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 20.0];

fn project(format: &str) -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    let pipeline = PIPELINE.replace("FORMAT", format);
    std::fs::write(dir.path().join("pipeline.yaml"), pipeline).expect("pipeline");
    let data = dir.path().join(format!("customers.{format}"));
    if format == "csv" {
        std::fs::write(
            data,
            "customer_id,amount\n1,5.0\n2,NaN\n3,inf\n4,-inf\n5,20.0\n",
        )
        .expect("csv");
    } else {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
                Arc::new(Float64Array::from(AMOUNTS.to_vec())),
            ],
        )
        .expect("batch");
        let file = std::fs::File::create(data).expect("parquet file");
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }
    dir
}

/// The statistics of `feature` in group `id` of segments.json (`None` for all customers).
fn stats(run: &Value, id: Option<&str>, feature: &str) -> Value {
    let features = match id {
        None => &run["overall"],
        Some(id) => {
            let segments = run["segments"].as_array().expect("segments");
            &segments.iter().find(|s| s["id"] == id).expect("segment")["features"]
        }
    };
    features
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["feature"] == feature)
        .expect("feature")
        .clone()
}

#[test]
fn nan_is_no_value_in_rules_and_statistics_and_infinities_are_reported() {
    for format in ["csv", "parquet"] {
        let dir = project(format);
        let output = segflow()
            .current_dir(dir.path())
            .args(["run", "pipeline.yaml", "--out", "out"])
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (rows, _) =
            read_assignments(&dir.path().join("out/assignments.parquet"), "customer_id");
        let segment = |id: i64| rows[&id]["segment"].clone();
        // NaN is neither greater than 10 nor not: like a null, only the catch-all takes it.
        assert_eq!(
            [1, 2, 3, 4, 5].map(segment),
            ["small", "rest", "big", "small", "big"].map(|s| json!(s)),
            "{format}"
        );
        assert_eq!(rows[&2]["amt"], Value::Null, "{format}");
        let text = std::fs::read_to_string(dir.path().join("out/segments.json")).expect("json");
        let run: Value = serde_json::from_str(&text).expect("segments.json");
        let all = stats(&run, None, "amt");
        assert_eq!(all["non_null"], json!(4), "{format}: {all}");
        assert_eq!((&all["min"], &all["max"]), (&json!("-inf"), &json!("inf")));
        let big = stats(&run, Some("big"), "doubled");
        assert_eq!((&big["mean"], &big["max"]), (&json!("inf"), &json!("inf")));
        let small = stats(&run, Some("small"), "amt");
        assert_eq!(
            (&small["mean"], &small["min"]),
            (&json!("-inf"), &json!("-inf"))
        );
        assert_eq!(small["max"], json!(5.0), "{format}: {small}");
        // The typed document reads back: a diff of the run with itself succeeds.
        let diff = segflow()
            .current_dir(dir.path())
            .args(["diff", "out", "out"])
            .output()
            .expect("diff");
        assert!(
            diff.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&diff.stderr)
        );
    }
}

#[test]
fn functions_asked_for_huge_values_fail_with_the_resources_error_naming_the_feature() {
    let cases = [
        "length(repeat('a', customer_id * 100000000))",
        "length(lpad('a', customer_id * 100000000))",
        "length(rpad('a', customer_id * 100000000, 'xy'))",
    ];
    for expr in cases {
        let dir = project("csv");
        let pipeline = PIPELINE
            .replace("FORMAT", "csv")
            .replace("expr: amount * 2", &format!("expr: \"{expr}\""));
        std::fs::write(dir.path().join("pipeline.yaml"), pipeline).expect("pipeline");
        let output = segflow()
            .current_dir(dir.path())
            .args(["run", "pipeline.yaml", "--out", "out"])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr).replace("\n  │ ", " ");
        assert_eq!(output.status.code(), Some(9), "{expr}: {stderr}");
        assert!(stderr.contains("feature `doubled`"), "{expr}: {stderr}");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["customers.csv", "pipeline.yaml"], "{expr}");
    }
}
