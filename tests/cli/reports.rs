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

/// The example pipeline with `reports: { min_cell }` set, beside the example's data.
fn example_with_min_cell(min_cell: u64) -> tempfile::NamedTempFile {
    let pipeline = std::fs::read_to_string(repo_path(EXAMPLE)).unwrap();
    let pipeline = pipeline.replacen(
        "\nsources:",
        &format!("\nreports: {{ min_cell: {min_cell} }}\nsources:"),
        1,
    );
    let file = tempfile::Builder::new()
        .prefix(".min-cell-")
        .suffix(".yaml")
        .tempfile_in(repo_path("pipelines"))
        .unwrap();
    std::fs::write(file.path(), pipeline).unwrap();
    file
}

/// Run `pipeline` into `out` with `args` and `--context`, and return the template context.
fn run_with_context(pipeline: &Path, out: &Path, args: &[&str]) -> Value {
    let output = segflow()
        .arg("run")
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .args(["--context", "--criteria-as-warnings"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    read_json(&out.join("report-context.json"))
}

#[test]
fn the_quadrant_mix_goes_with_a_masked_segment_so_margins_cannot_solve_it() {
    // At 250, power users (282) are masked beside struggling users (229): quadrant totals and
    // the shown segments' sizes would give both back through the mix.
    let pipeline = example_with_min_cell(250);
    let dir = tempfile::TempDir::new().unwrap();
    let context = run_with_context(pipeline.path(), &dir.path().join("run"), &[]);
    let matrix = &context["matrix"];
    assert_eq!(matrix["mix_masked"], true);
    for quadrant in matrix["quadrants"].as_array().unwrap() {
        assert_eq!(quadrant["segments"], serde_json::json!([]), "{quadrant}");
    }
    let report = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(
        !report.contains("Power users 2"),
        "no mix cell of power users"
    );
}

#[test]
fn a_compared_quarter_masks_whole_lines_of_masked_segments_and_the_totals_they_feed() {
    let pipeline = example_with_min_cell(30);
    let dir = tempfile::TempDir::new().unwrap();
    let q3 = dir.path().join("q3");
    run_with_context(pipeline.path(), &q3, &[]);
    let q4 = dir.path().join("q4");
    let q3_arg = q3.to_str().unwrap();
    let context = run_with_context(
        pipeline.path(),
        &q4,
        &["--as-of", "2026-11-01", "--compare-to", q3_arg],
    );
    let hidden: Vec<String> = context["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["masked"] == true)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        hidden.len() >= 2,
        "power users (26) and a partner: {hidden:?}"
    );
    let migration = &context["comparison"]["migration"];
    let columns: Vec<&str> = migration["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for id in &hidden {
        let c = columns.iter().position(|c| c == id).unwrap();
        for row in migration["counts"].as_array().unwrap() {
            assert!(row[c].is_null(), "every cell into {id} is masked: {row}");
        }
    }
    for total in ["stayed", "moved", "appeared", "disappeared"] {
        assert!(
            migration[total].is_null(),
            "{total} would give the diagonal away"
        );
    }
    // No row or column of the migration keeps exactly one masked cell.
    let counts = migration["counts"].as_array().unwrap();
    for row in counts {
        let masked = row
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n.is_null())
            .count();
        assert_ne!(masked, 1, "{row}");
    }
    for c in 0..columns.len() {
        let masked = counts.iter().filter(|row| row[c].is_null()).count();
        assert_ne!(masked, 1, "column {}", columns[c]);
    }

    // The other way round, the earlier run has the small segment: its old size gets a partner.
    let back = dir.path().join("back");
    let q4_arg = q4.to_str().unwrap();
    let context = run_with_context(pipeline.path(), &back, &["--compare-to", q4_arg]);
    let old_masked = context["comparison"]["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["old_customers"].is_null())
        .count();
    assert!(
        old_masked >= 2,
        "the earlier run's small size and a partner"
    );

    // history: the flows into a masked segment and the step's totals are masked.
    let output = segflow()
        .arg("history")
        .args([q3_arg, q4_arg])
        .arg("--out")
        .arg(dir.path().join("h"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let history = std::fs::read_to_string(dir.path().join("h/history.md")).unwrap();
    assert!(
        history.contains("How many stayed, moved, appeared and disappeared is suppressed"),
        "{history}"
    );
    assert!(
        !history.contains("| struggling | struggling | 153 |"),
        "{history}"
    );
}

#[test]
fn a_masked_number_left_out_hides_the_row_counts_it_could_be_computed_from() {
    // As of 2026-09-20 one customer has not joined yet: 3,000 rows, 2,999 customers.
    let pipeline = example_with_min_cell(30);
    let dir = tempfile::TempDir::new().unwrap();
    let context = run_with_context(
        pipeline.path(),
        &dir.path().join("run"),
        &["--as-of", "2026-09-20"],
    );
    assert_eq!(context["exclusions"][0]["masked"], true);
    assert_eq!(context["run"]["rows_masked"], true);
    let report = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(
        !report.contains("3,000 rows"),
        "the customer table's rows are not shown"
    );
}

#[test]
fn a_variables_value_is_masked_in_the_html_report_and_when_re_rendered() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline("path: customers.csv", "path: ${SEGDIR}/customers.csv");
    workspace.edit_pipeline(
        "name: windows\n",
        "name: windows\ndescription: Data in data/sub-dir & more.\n",
    );
    std::fs::create_dir(workspace.path().join("data")).unwrap();
    std::fs::create_dir(workspace.path().join("data/sub-dir")).unwrap();
    std::fs::copy(
        workspace.path().join("customers.csv"),
        workspace.path().join("data/sub-dir/customers.csv"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        segflow()
            .current_dir(workspace.path())
            .env("SEGDIR", "data/sub-dir")
            .args(args)
            .output()
            .unwrap()
    };
    let output = run(&["run", "pipeline.yaml", "--out", "run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let html = workspace.read("run/report.html");
    assert!(
        !html.contains("data&#x2f;sub-dir"),
        "the HTML-escaped spelling is masked"
    );
    assert!(!html.contains("data/sub-dir"));
    assert!(html.contains("[redacted]"));
    let manifest = read_json(&workspace.path().join("run/manifest.json"));
    assert_eq!(manifest["masked_variables"], serde_json::json!(["SEGDIR"]));
    // Re-rendered with the variable set: the same reports.
    let output = run(&["report", "run", "--out", "again"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(workspace.read("again/report.html"), html);
    // Without it: said, not silently different.
    let output = segflow()
        .current_dir(workspace.path())
        .env_remove("SEGDIR")
        .args(["report", "run", "--out", "unset"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`${SEGDIR}`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn reports_never_replace_a_run_folder_and_a_run_folder_missing_a_listed_document_is_refused() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "run"]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "other"]);
    let before = files_below(&workspace.path().join("other"));
    let output = workspace.segflow(&["report", "run", "--out", "other", "--replace"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run folder"),
        "{}",
        stderr(&output)
    );
    assert_eq!(files_below(&workspace.path().join("other")), before);
    // And a run never replaces a folder of reports.
    workspace.segflow_ok(&["report", "run", "--out", "briefing"]);
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "briefing", "--replace"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));

    std::fs::remove_file(workspace.path().join("run/lint.json")).unwrap();
    let output = workspace.segflow(&["report", "run", "--out", "fresh"]);
    assert_eq!(output.status.code(), Some(10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("lint.json is missing"),
        "{}",
        stderr(&output)
    );
    assert!(!workspace.path().join("fresh").exists());
}
