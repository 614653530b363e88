//! The needs-based example, pipelines/needs_survey.yaml, run as shipped: every customer's needs
//! features, engagement tier and segment, and each segment's NPS, recomputed here in plain Rust
//! from the survey CSV files and the written assignments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::support::{ExampleRun, read_assignments, read_json, repo_path, segflow, stdout};

const PIPELINE: &str = "pipelines/needs_survey.yaml";
const AS_OF: &str = "2026-10-01";

/// One customer's answers given before the as-of date.
#[derive(Debug)]
struct Answer {
    primary_job: String,
    pain: i64,
    success_metric: String,
    willingness_to_pay: Option<f64>,
    nps: Option<i64>,
}

fn counted(date: &str) -> bool {
    let as_of: NaiveDate = AS_OF.parse().expect("as-of date");
    date.parse::<NaiveDate>().expect("answered_on") < as_of
}

fn answers() -> BTreeMap<i64, Answer> {
    let path = repo_path("pipelines/data/survey/survey.csv");
    let mut reader = csv::Reader::from_path(path).expect("survey.csv");
    let mut answers = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("survey row");
        if !counted(&record[1]) {
            continue;
        }
        let answer = Answer {
            primary_job: record[2].to_string(),
            pain: record[3].parse().expect("pain"),
            success_metric: record[4].to_string(),
            willingness_to_pay: (!record[5].is_empty()).then(|| record[5].parse().expect("pay")),
            nps: (!record[6].is_empty()).then(|| record[6].parse().expect("nps")),
        };
        let id: i64 = record[0].parse().expect("id");
        assert!(answers.insert(id, answer).is_none(), "{id} answered twice");
    }
    answers
}

fn jobs() -> BTreeMap<i64, BTreeSet<String>> {
    let path = repo_path("pipelines/data/survey/survey_jobs.csv");
    let mut reader = csv::Reader::from_path(path).expect("survey_jobs.csv");
    let mut jobs: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("job row");
        if counted(&record[1]) {
            jobs.entry(record[0].parse().expect("id"))
                .or_default()
                .insert(record[2].to_string());
        }
    }
    jobs
}

/// Tiers as pandas makes them: `qcut(x.rank(method="min"), 3, labels=False,
/// duplicates="drop")`, with the interpolated edges scaled by 3 to stay whole numbers.
fn tiers(values: &BTreeMap<i64, i64>) -> BTreeMap<i64, &'static str> {
    const LABELS: [&str; 3] = ["low", "middle", "high"];
    let q = 3_i64;
    let sorted: Vec<i64> = {
        let mut v: Vec<i64> = values.values().copied().collect();
        v.sort_unstable();
        v
    };
    let rank = |x: i64| sorted.partition_point(|&v| v < x) as i64 + 1;
    let ranks: Vec<i64> = sorted.iter().map(|&v| rank(v)).collect();
    let n = ranks.len() as i64;
    let mut edges: Vec<i64> = (0..=q)
        .map(|j| {
            let (lo, k) = (((n - 1) * j / q) as usize, (n - 1) * j % q);
            let next = ranks.get(lo + 1).copied().unwrap_or(ranks[lo]);
            q * ranks[lo] + k * (next - ranks[lo])
        })
        .collect();
    edges.dedup();
    values
        .iter()
        .map(|(&id, &v)| {
            let scaled = q * rank(v);
            // Bin i holds (edge i, edge i+1]; the first bin also holds its lower edge.
            let bin = edges[1..]
                .iter()
                .position(|&edge| scaled <= edge)
                .expect("every rank lies within the edges");
            (id, LABELS[bin])
        })
        .collect()
}

#[test]
fn needs_segments_and_their_nps_match_the_survey_files() {
    let run = ExampleRun::new(PIPELINE, &[]);
    let (rows, types) = read_assignments(&run.path("assignments.parquet"), "customer_id");
    assert_eq!(rows.len(), 3000, "every customer once");
    assert_eq!(types["engagement_tier"], "Utf8");
    let answers = answers();
    let jobs = jobs();
    assert!(
        (800..1200).contains(&answers.len()),
        "about a third answered: {}",
        answers.len()
    );

    let active: BTreeMap<i64, i64> = rows
        .iter()
        .map(|(id, row)| (*id, row["active_days_90"].as_i64().expect("active days")))
        .collect();
    let tier = tiers(&active);
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    // (promoters, detractors, answers) per segment.
    let mut nps: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (id, row) in &rows {
        let answer = answers.get(id);
        let chosen = jobs.get(id);
        // The needs features, from the files.
        assert_eq!(row["answered_survey"], json!(answer.is_some()), "{id}");
        assert_eq!(
            row["primary_job"],
            json!(answer.map(|a| &a.primary_job)),
            "{id}"
        );
        assert_eq!(row["pain_intensity"], json!(answer.map(|a| a.pain)), "{id}");
        assert_eq!(
            row["success_metric"],
            json!(answer.map(|a| &a.success_metric)),
            "{id}"
        );
        assert_eq!(
            row["willingness_to_pay"].as_f64(),
            answer.and_then(|a| a.willingness_to_pay),
            "{id}"
        );
        let points = answer.and_then(|a| a.nps).map(|score| match score {
            9..=10 => 100,
            7..=8 => 0,
            _ => -100,
        });
        assert_eq!(row["nps_points"], json!(points), "{id}");
        assert_eq!(row["jobs_chosen"], json!(chosen.map(BTreeSet::len)), "{id}");
        for job in [
            "track_kpis",
            "find_churn_risk",
            "automate_reporting",
            "share_insights",
            "prove_roi",
        ] {
            let expected = chosen.map(|c| c.contains(job));
            assert_eq!(row[&format!("job_{job}")], json!(expected), "{id} {job}");
        }
        assert_eq!(row["engagement_tier"], json!(tier[id]), "{id}");

        // The rules, first match wins.
        let job = answer.map(|a| a.primary_job.as_str());
        let pain = answer.map(|a| a.pain);
        let pay = answer.and_then(|a| a.willingness_to_pay).unwrap_or(0.0);
        let segment = if job == Some("find_churn_risk") && pain >= Some(4) {
            "churn_fighters"
        } else if job == Some("automate_reporting") && tier[id] == "high" {
            "engaged_automators"
        } else if pain.is_some_and(|p| p <= 2) && pay < 100.0 && tier[id] != "high" {
            "low_need_low_use"
        } else if answer.is_some() {
            "other_respondents"
        } else {
            "not_surveyed"
        };
        assert_eq!(row["segment"], json!(segment), "{id}");
        *sizes.entry(segment).or_default() += 1;
        if let Some(score) = answer.and_then(|a| a.nps) {
            let tally = nps.entry(segment).or_default();
            tally.0 += i64::from(score >= 9);
            tally.1 += i64::from(score <= 6);
            tally.2 += 1;
        }
    }

    let segments = read_json(&run.path("segments.json"));
    for segment in segments["segments"].as_array().expect("segments") {
        let id = segment["id"].as_str().expect("id");
        assert_eq!(
            segment["customers"].as_u64(),
            sizes.get(id).copied(),
            "{id}"
        );
        let mean = segment["features"]
            .as_array()
            .expect("features")
            .iter()
            .find(|f| f["feature"] == "nps_points")
            .map(|f| f["mean"].clone())
            .expect("nps_points");
        match nps.get(id) {
            // NPS = % promoters − % detractors among those who answered.
            Some(&(promoters, detractors, answered)) => {
                let expected = 100.0 * (promoters - detractors) as f64 / answered as f64;
                let measured = mean.as_f64().expect("NPS");
                assert!(
                    (measured - expected).abs() < 1e-9,
                    "{id}: {measured} vs {expected}"
                );
            }
            None => assert_eq!(mean, Value::Null, "{id} has no answers, so no NPS"),
        }
    }
    // Every segment is there, and the answers tell them apart.
    assert_eq!(sizes.len(), 5, "{sizes:?}");
    assert!(
        nps["engaged_automators"].0 > nps["engaged_automators"].1,
        "{nps:?}"
    );
    assert!(
        nps["low_need_low_use"].1 > nps["low_need_low_use"].0,
        "{nps:?}"
    );
    let report = std::fs::read_to_string(run.path("report.md")).expect("report");
    assert!(
        report.contains("| `nps_points` |"),
        "NPS per segment in the report"
    );
}

#[test]
fn the_needs_example_is_lint_clean_and_its_segment_tests_pass() {
    let output = segflow()
        .current_dir(repo_path(""))
        .args(["lint", PIPELINE])
        .output()
        .expect("run segflow");
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("0 lint warning(s)"),
        "{}",
        stdout(&output)
    );
    // Late answers and a skipped NPS question, checked on fixture customers.
    let output = segflow()
        .current_dir(repo_path(""))
        .args(["test", PIPELINE])
        .output()
        .expect("run segflow");
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("segment tests: 1 ok, 0 failed"),
        "{}",
        stdout(&output)
    );
}
