//! The shipped example, run as the README tells users to, with its numbers recomputed here
//! independently from the raw files (plain Rust over the Parquet, CSV and NDJSON rows).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;

use crate::support::{read_assignments, read_json, repo_path, segflow, stdout};

const AS_OF: &str = "2026-10-01";

#[derive(Default, Debug)]
struct Expected {
    active_days: BTreeSet<NaiveDate>,
    events_90: i64,
    features: BTreeSet<String>,
    last_event: Option<NaiveDate>,
    revenue_12m: f64,
    tickets_90: i64,
    tenure_days: i64,
}

fn expected() -> BTreeMap<i64, Expected> {
    let as_of: NaiveDate = AS_OF.parse().unwrap();
    let start_90 = as_of - chrono::Days::new(90);
    let start_365 = as_of - chrono::Days::new(365);
    let data = repo_path("pipelines/data/saas");
    let mut customers: BTreeMap<i64, Expected> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(data.join("customers.csv")).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let signup: NaiveDate = record[5].parse().unwrap();
        customers.insert(
            record[0].parse().unwrap(),
            Expected {
                tenure_days: (as_of - signup).num_days(),
                ..Default::default()
            },
        );
    }
    let events =
        ParquetRecordBatchReaderBuilder::try_new(File::open(data.join("events.parquet")).unwrap())
            .unwrap()
            .build()
            .unwrap();
    for batch in events {
        let batch = batch.unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let ts = batch
            .column(1)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let features = batch
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for row in 0..batch.num_rows() {
            let date = DateTime::from_timestamp_micros(ts.value(row))
                .unwrap()
                .date_naive();
            if date >= as_of {
                continue;
            }
            let customer = customers.get_mut(&ids.value(row)).unwrap();
            customer.last_event = customer.last_event.max(Some(date));
            if date >= start_90 {
                customer.active_days.insert(date);
                customer.events_90 += 1;
                customer.features.insert(features.value(row).to_string());
            }
        }
    }
    let mut reader = csv::Reader::from_path(data.join("invoices.csv")).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let date: NaiveDate = record[1].parse().unwrap();
        if date >= start_365 && date < as_of {
            customers
                .get_mut(&record[0].parse().unwrap())
                .unwrap()
                .revenue_12m += record[2].parse::<f64>().unwrap();
        }
    }
    let tickets = std::fs::read_to_string(data.join("tickets.ndjson")).unwrap();
    for line in tickets.lines() {
        let ticket: serde_json::Value = serde_json::from_str(line).unwrap();
        let created = NaiveDateTime::parse_from_str(
            ticket["created_at"].as_str().unwrap(),
            "%Y-%m-%dT%H:%M:%S",
        )
        .unwrap();
        if created.date() >= start_90 && created.date() < as_of {
            customers
                .get_mut(&ticket["customer_id"].as_i64().unwrap())
                .unwrap()
                .tickets_90 += 1;
        }
    }
    customers
}

/// The example's rules, written out again in Rust.
fn segment_of(c: &Expected) -> &'static str {
    let active = c.active_days.len() as i64;
    if active >= 40 && c.features.len() >= 10 {
        "power_users"
    } else if c.tenure_days <= 120 && active < 4 && c.tickets_90 >= 1 {
        "struggling"
    } else if active >= 10 {
        "task_completers"
    } else if active >= 1 {
        "occasional"
    } else {
        "dormant"
    }
}

#[test]
fn saas_example_matches_an_independent_computation() {
    let out = tempfile::TempDir::new().unwrap();
    let run_dir = out.path().join("run");
    let output = segflow()
        .args(["run", "pipelines/saas_quarterly.yaml", "--out"])
        .arg(&run_dir)
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout(&output).contains(&format!(
        "report: {}",
        run_dir.join("report.html").display()
    )));
    let mut files: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "assignments.parquet",
            "charts",
            "cohorts.json",
            "criteria.json",
            "lint.json",
            "manifest.json",
            "personas",
            "report.html",
            "report.md",
            "scoring.json",
            "segments.csv",
            "segments.json",
            "suppression.json"
        ]
    );

    let expected = expected();
    let (rows, types) = read_assignments(&run_dir.join("assignments.parquet"), "customer_id");
    assert_eq!(rows.len(), expected.len());
    assert_eq!(types["active_days_90"], "Int64");
    assert_eq!(types["revenue_12m"], "Float64");
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for (id, want) in &expected {
        let row = &rows[id];
        let as_of: NaiveDate = AS_OF.parse().unwrap();
        assert_eq!(
            row["active_days_90"],
            json!(want.active_days.len()),
            "customer {id}"
        );
        assert_eq!(row["events_90"], json!(want.events_90), "customer {id}");
        assert_eq!(
            row["features_used_90"],
            json!(want.features.len()),
            "customer {id}"
        );
        assert_eq!(row["tickets_90"], json!(want.tickets_90), "customer {id}");
        assert_eq!(row["tenure_days"], json!(want.tenure_days), "customer {id}");
        assert_eq!(
            row["days_since_last_event"],
            json!(want.last_event.map(|d| (as_of - d).num_days())),
            "customer {id}"
        );
        let revenue = row["revenue_12m"].as_f64().unwrap();
        assert!(
            (revenue - want.revenue_12m).abs() < 1e-6,
            "customer {id}: {revenue} vs {}",
            want.revenue_12m
        );
        let segment = segment_of(want);
        assert_eq!(row["segment"], json!(segment), "customer {id}");
        *sizes.entry(segment).or_default() += 1;
    }

    let summary = read_json(&run_dir.join("segments.json"));
    assert_eq!(summary["customers"], json!(3000));
    for segment in summary["segments"].as_array().unwrap() {
        let id = segment["id"].as_str().unwrap();
        assert_eq!(segment["customers"], json!(sizes[id]), "segment {id}");
        assert_eq!(
            segment["share"],
            json!(sizes[id] as f64 / 3000.0),
            "segment {id}"
        );
    }
    // Every segment of the example is populated: the generator's archetypes cover them all.
    assert!(
        sizes.len() == 5 && sizes.values().all(|&n| n >= 100),
        "{sizes:?}"
    );

    let manifest = read_json(&run_dir.join("manifest.json"));
    assert_eq!(manifest["as_of"], json!(AS_OF));
    assert_eq!(manifest["sources"][1]["name"], json!("events"));
    assert!(manifest["sources"][1]["rows"].as_u64().unwrap() > 50_000);
    assert_eq!(manifest["pipeline_sha256"].as_str().unwrap().len(), 64);
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains(&format!(
        "| 1 | Power users | `power_users` | {} |",
        sizes["power_users"]
    )));
}
