//! Reports for stakeholders: re-rendered from a run folder alone, with the team's templates, and
//! safe to forward (small-cell suppression).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{
    ExampleRun, Workspace, files_below, read_json, repo_path, segflow, stderr, stdout,
};

const EXAMPLE: &str = "pipelines/saas_quarterly.yaml";

/// The files of a folder that are stakeholder documents: reports, personas, charts.
fn stakeholder_documents(dir: &Path) -> BTreeMap<String, String> {
    files_below(dir)
        .into_iter()
        .filter(|(name, _)| {
            name.ends_with(".md") || name.ends_with(".html") || name.ends_with(".svg")
        })
        .map(|(name, bytes)| (name, String::from_utf8(bytes).unwrap()))
        .collect()
}

#[test]
fn segflow_report_renders_byte_identical_reports_from_the_run_folder_alone() {
    let first = ExampleRun::new(EXAMPLE, &["--as-of", "2026-10-01"]);
    let second = ExampleRun::new(
        EXAMPLE,
        &[
            "--as-of",
            "2026-11-01",
            "--criteria-as-warnings",
            "--compare-to",
            first.dir().to_str().unwrap(),
        ],
    );
    let out = tempfile::TempDir::new().unwrap();
    let rendered = out.path().join("again");
    let output = segflow()
        .arg("report")
        .arg(second.dir())
        .arg("--out")
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let original = stakeholder_documents(&second.dir());
    let again = stakeholder_documents(&rendered);
    assert!(original.contains_key("report.html") && original.contains_key("charts/migration.svg"));
    assert!(original.keys().any(|k| k.starts_with("personas/")));
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        again.keys().collect::<Vec<_>>(),
        "the same documents"
    );
    for (name, text) in &original {
        assert!(again[name] == *text, "{name} differs when re-rendered");
    }
    assert_eq!(
        std::fs::read(second.path("suppression.json")).unwrap(),
        std::fs::read(rendered.join("suppression.json")).unwrap()
    );
    let manifest = read_json(&rendered.join("manifest.json"));
    assert_eq!(manifest["kind"], "report");

    // Rendering again into the same folder is refused; --replace replaces what segflow wrote.
    let again = segflow()
        .arg("report")
        .arg(second.dir())
        .arg("--out")
        .arg(&rendered)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    let replaced = segflow()
        .arg("report")
        .arg(second.dir())
        .arg("--out")
        .arg(&rendered)
        .arg("--replace")
        .output()
        .unwrap();
    assert!(replaced.status.success(), "{}", stderr(&replaced));
}

#[test]
fn an_edited_template_re_renders_a_finished_run_without_running_the_data_again() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
    workspace.segflow_ok(&["templates", "export", "mine"]);
    let exported = workspace.read("mine/report.md.j2");
    assert_eq!(
        exported,
        std::fs::read_to_string(repo_path("templates/report.md.j2")).unwrap()
    );
    // Exporting again keeps the edited file.
    workspace.write(
        "mine/report.md.j2",
        "# Briefing for {{ pipeline.title }}: {{ customers | thousands }} customers\n",
    );
    let output = workspace.segflow_ok(&["templates", "export", "mine"]);
    assert!(stdout(&output).contains("kept"), "{}", stdout(&output));
    assert!(
        workspace
            .read("mine/report.md.j2")
            .starts_with("# Briefing")
    );

    // The data files are gone: only the run folder's documents are read.
    std::fs::remove_file(workspace.path().join("events.csv")).unwrap();
    workspace.segflow_ok(&["report", "run", "--templates", "mine", "--out", "briefing"]);
    let segments = read_json(&workspace.path().join("run/segments.json"));
    assert_eq!(
        workspace.read("briefing/report.md"),
        format!(
            "# Briefing for windows: {} customers",
            segments["customers"].as_u64().unwrap()
        )
    );
    // The other templates are the built-in ones.
    assert_eq!(
        workspace.read("briefing/report.html"),
        workspace.read("run/report.html")
    );
}

#[test]
fn report_context_json_holds_what_the_templates_see() {
    let run = ExampleRun::new(EXAMPLE, &["--context"]);
    let context = read_json(&run.path("report-context.json"));
    let segments = read_json(&run.path("segments.json"));
    assert_eq!(context["customers"], segments["customers"]);
    assert_eq!(
        context["segments"].as_array().unwrap().len(),
        segments["segments"].as_array().unwrap().len()
    );
    assert_eq!(context["summary"]["beachhead"]["id"], "task_completers");
    let manifest = read_json(&run.path("manifest.json"));
    assert!(
        manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "report-context.json")
    );
}

#[test]
fn the_committed_context_reference_is_current_and_documents_every_field() {
    let output = segflow().args(["templates", "reference"]).output().unwrap();
    assert!(output.status.success());
    let committed = std::fs::read_to_string(repo_path("docs/template-context.md")).unwrap();
    assert_eq!(
        stdout(&output),
        committed,
        "docs/template-context.md is stale: run `cargo run -- templates reference > docs/template-context.md`"
    );
    let undocumented: Vec<&str> = committed
        .lines()
        .filter(|line| line.starts_with("| `") && line.trim_end().ends_with("|  |"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "fields without a meaning: {undocumented:?}"
    );
}

/// The numbers a masked segment must not show anywhere, as reports would print them.
fn printed_forms(customers: u64) -> Vec<String> {
    let plain = customers.to_string();
    let grouped = if customers >= 1000 {
        format!("{},{:03}", customers / 1000, customers % 1000)
    } else {
        plain.clone()
    };
    vec![plain, grouped]
}

fn contains_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        let digit_or_separator =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == ',' || c == '.');
        !digit_or_separator(before) && !digit_or_separator(after)
    })
}

#[test]
fn small_segments_are_masked_in_every_stakeholder_document_and_nowhere_else() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline("reports: { min_cell: 1 }", "reports: { min_cell: 3 }");
    workspace.write(
        "pipeline.yaml",
        &format!(
            "{}personas:\n  - segment: busy\n    name: Bea\n",
            workspace.read("pipeline.yaml")
        ),
    );
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--out",
        "run",
        "--criteria-as-warnings",
        "--context",
    ]);
    let segments = read_json(&workspace.path().join("run/segments.json"));
    let sizes: Vec<(String, u64)> = segments["segments"]
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
    let small: Vec<&(String, u64)> = sizes.iter().filter(|(_, n)| *n > 0 && *n < 3).collect();
    assert!(
        !small.is_empty(),
        "the fixture has a segment under 3 customers: {sizes:?}"
    );

    let suppression = read_json(&workspace.path().join("run/suppression.json"));
    assert_eq!(suppression["min_cell"], 3);
    let masked_segments: Vec<&str> = suppression["masked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["table"] == "segments")
        .map(|m| m["row"].as_str().unwrap())
        .collect();
    for (id, _) in &small {
        assert!(
            masked_segments.contains(&id.as_str()),
            "{id} is recorded as masked"
        );
    }
    // Complementary suppression: never exactly one masked size beside the total.
    assert_ne!(masked_segments.len(), 1, "{masked_segments:?}");

    let documents = stakeholder_documents(&workspace.path().join("run"));
    assert!(documents.contains_key("personas/busy.md"));
    // Counts of 1 and 2 also occur as positions and ranks in the text, so what the templates
    // were given is checked: the context holds no masked figure.
    let context = read_json(&workspace.path().join("run/report-context.json"));
    for card in context["segments"].as_array().unwrap() {
        let id = card["id"].as_str().unwrap();
        if masked_segments.contains(&id) {
            assert_eq!(card["masked"], true, "{card}");
            for field in ["customers", "share", "value", "value_share", "reachable"] {
                assert!(card[field].is_null(), "{id}.{field} is masked: {card}");
            }
            assert_eq!(card["features"], serde_json::json!([]), "{id} statistics");
            assert_eq!(
                card["distinguishing"],
                serde_json::json!([]),
                "{id} profile"
            );
        } else {
            assert_eq!(card["masked"], false);
            assert!(card["customers"].is_u64());
        }
    }
    for check in context["criteria"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["checks"].as_array().unwrap())
    {
        let subject = check["subject"].as_str().unwrap();
        if subject.split(" ~ ").any(|s| masked_segments.contains(&s)) {
            assert!(
                check["value"].is_null() && check["detail"].is_null(),
                "{check}"
            );
        }
    }
    for report in ["report.md", "report.html"] {
        assert!(
            documents[report].contains("suppressed"),
            "{report} says what it suppressed"
        );
    }
    // segments.json stays complete.
    let total: u64 =
        sizes.iter().map(|(_, n)| n).sum::<u64>() + segments["unassigned"].as_u64().unwrap();
    assert_eq!(total, segments["customers"].as_u64().unwrap());
}

#[test]
fn no_masked_figure_of_the_example_appears_in_any_stakeholder_document() {
    // A threshold above the two smallest segments (282 and 229 customers) of the example.
    let dir = tempfile::TempDir::new().unwrap();
    let pipeline = std::fs::read_to_string(repo_path(EXAMPLE)).unwrap();
    let pipeline = pipeline.replacen("\nsources:", "\nreports: { min_cell: 300 }\nsources:", 1);
    // The pipeline refers to its data relative to itself, so it sits beside the example.
    let file = tempfile::Builder::new()
        .prefix(".min-cell-")
        .suffix(".yaml")
        .tempfile_in(repo_path("pipelines"))
        .unwrap();
    std::fs::write(file.path(), pipeline).unwrap();
    let output = segflow()
        .arg("run")
        .arg(file.path())
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let run = dir.path().join("run");
    let segments = read_json(&run.join("segments.json"));
    let masked: Vec<&Value> = segments["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["customers"].as_u64().unwrap() < 300)
        .collect();
    assert_eq!(masked.len(), 2, "power users and struggling users");
    let mut secrets: Vec<String> = Vec::new();
    for segment in &masked {
        let customers = segment["customers"].as_u64().unwrap();
        secrets.extend(printed_forms(customers));
        // Its share as the reports print it.
        secrets.push(format!(
            "{:.1}%",
            segment["share"].as_f64().unwrap() * 100.0
        ));
    }
    let documents = stakeholder_documents(&run);
    assert!(documents.len() >= 5, "{:?}", documents.keys());
    for (name, text) in &documents {
        for secret in &secrets {
            assert!(
                !contains_number(text, secret),
                "{name} shows the masked figure {secret}"
            );
        }
    }
    let html = &documents["report.html"];
    assert!(html.contains("suppressed"), "the report marks masked cells");
    assert!(html.contains("safe to forward"), "and says why");
}
