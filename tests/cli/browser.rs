//! The HTML report in a real headless Chromium: values from data and from the pipeline file are
//! escaped, so injected markup never runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Workspace, stderr};

/// Debian's Chromium, or `None` outside CI when it is not installed. In CI (`CI` set) a missing
/// browser fails the test: `.ci/run` installs it.
fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SEGFLOW_CHROMIUM").map(PathBuf::from),
        Some("/usr/bin/chromium".into()),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is missing: install Debian's `chromium` package (as .ci/run does) or set SEGFLOW_CHROMIUM"
        );
        eprintln!("note: Chromium not installed; skipping the browser check (CI runs it)");
    }
    found
}

/// The DOM of `page` after Chromium loaded it and ran whatever scripts it has.
fn rendered_dom(browser: &Path, page: &Path) -> String {
    let profile = tempfile::TempDir::new().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .args([
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=2000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const PAYLOAD: &str =
    r#"<script>document.title='PWNED'</script><img src=x onerror="document.body.dataset.pwned=1">"#;
const ATTRIBUTE_PAYLOAD: &str = r#"x" onerror="document.body.dataset.pwned=2" y=""#;

#[test]
fn injected_markup_in_data_and_pipeline_never_runs_in_the_report() {
    let Some(browser) = chromium() else { return };
    let workspace = Workspace::from_fixture("windows");
    let yaml = |text: &str| serde_json::to_string(text).unwrap();
    let payload = yaml(PAYLOAD);
    workspace.edit_pipeline(
        "name: windows\n",
        &format!(
            "name: windows\ntitle: {payload}\ndescription: {}\n",
            yaml(ATTRIBUTE_PAYLOAD)
        ),
    );
    workspace.edit_pipeline("    name: Busy\n", &format!("    name: {payload}\n    description: {}\n    owner: {payload}\n    actions: [{payload}]\n", yaml(ATTRIBUTE_PAYLOAD)));
    workspace.edit_pipeline(
        "description: Days since signup.",
        &format!("description: {payload}"),
    );
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}personas:\n  - segment: busy\n    name: {payload}\n    role: {}\n    quote: {payload}\n    goals: [{payload}]\n", yaml(ATTRIBUTE_PAYLOAD)),
    );
    // A value from the data: the plan feature's min and max are shown in the report.
    let customers = workspace.read("customers.csv");
    workspace.write(
        "customers.csv",
        &customers.replace(
            "1,2026-09-01,pro,5",
            "1,2026-09-01,\"<img src=x onerror=document.body.dataset.pwned=3>\",5",
        ),
    );

    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let html = workspace.read("out/report.html");
    assert!(
        html.contains("&lt;script&gt;document.title="),
        "payloads are escaped in the file"
    );
    assert!(
        !html.contains("<script"),
        "the report contains no script element"
    );
    // The plan feature upper-cases the value; its min and max show it, escaped.
    assert!(
        html.contains("&lt;IMG SRC"),
        "data values are shown escaped"
    );
    assert!(
        !html.to_lowercase().contains("<img"),
        "no image element was injected"
    );

    let dom = rendered_dom(&browser, &workspace.path().join("out/report.html"));
    assert!(
        dom.contains("<title>&lt;script&gt;"),
        "the title is the escaped payload, not PWNED: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(!dom.contains("data-pwned"), "an injected handler ran");
    assert!(
        !dom.contains("<script"),
        "an injected script element exists"
    );
}

#[test]
fn the_history_chart_renders_and_injected_segment_names_stay_text() {
    let Some(browser) = chromium() else { return };
    let workspace = Workspace::from_fixture("windows");
    let payload = serde_json::to_string(PAYLOAD).unwrap();
    workspace.edit_pipeline("    name: Busy\n", &format!("    name: {payload}\n"));
    for (as_of, out) in [("2026-09-01", "q3"), ("2026-10-01", "q4")] {
        workspace.segflow_ok(&["run", "pipeline.yaml", "--as-of", as_of, "--out", out]);
    }
    workspace.segflow_ok(&["history", "q3", "q4", "--out", "h"]);
    let html = workspace.read("h/history.html");
    assert!(
        !html.contains("<script"),
        "the history holds no script element"
    );
    assert!(
        html.contains("&lt;script&gt;"),
        "the segment name is escaped"
    );

    let dom = rendered_dom(&browser, &workspace.path().join("h/history.html"));
    let flows = dom.matches("<path class=\"flow\"").count();
    let history: serde_json::Value =
        serde_json::from_str(&workspace.read("h/history.json")).unwrap();
    assert_eq!(
        flows,
        history["steps"][0]["flows"].as_array().unwrap().len(),
        "one band per flow in the rendered SVG"
    );
    assert!(dom.contains("<svg role=\"img\""), "the chart is in the DOM");
    assert!(
        dom.contains("<title id=\"flow-chart-title\">"),
        "the chart has an accessible title"
    );
    assert!(!dom.contains("data-pwned"), "an injected handler ran");
    assert!(
        !dom.contains("<script"),
        "an injected script element exists"
    );
    assert!(
        !dom.contains("<title>PWNED</title>"),
        "an injected script ran"
    );
}
