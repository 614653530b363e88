//! The HTML report in a real headless Chromium: values from data and from the pipeline file are
//! escaped, so injected markup never runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{ExampleRun, Workspace, stderr};

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
        crate::support::skipping("Chromium is not installed");
    }
    found
}

/// A headless Chromium with a throwaway profile, which lives as long as the returned folder.
fn headless(browser: &Path) -> (Command, tempfile::TempDir) {
    let profile = tempfile::TempDir::new().unwrap();
    let mut command = Command::new(browser);
    command
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
        .arg(format!("--user-data-dir={}", profile.path().display()));
    (command, profile)
}

/// The DOM of `page` after Chromium loaded it and ran whatever scripts it has.
fn rendered_dom(browser: &Path, page: &Path) -> String {
    let (mut command, _profile) = headless(browser);
    let output = command
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

// ---------------------------------------------------------------------------------------------
// The report as a reader sees it: on screen at desktop and phone width, and printed to PDF.

const DESKTOP: u32 = 1280;
const PHONE: u32 = 390;

/// `pdftotext` (Debian's poppler-utils), or `None` outside CI when it is not installed.
fn pdftotext() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("pdftotext"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "pdftotext is missing: install Debian's `poppler-utils` package (as .ci/run does)"
        );
        crate::support::skipping("pdftotext is not installed");
    }
    found
}

/// Where the screenshots and the PDF of the example's report are kept for people to look at.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What Chromium showed of a page at one width.
#[derive(Debug)]
struct Rendering {
    /// Console messages and uncaught errors of the page (from Chromium's log).
    console: Vec<String>,
    /// The URL of every resource the page requested (Resource Timing entries: requests to the
    /// network, also failed ones, and local files that loaded).
    resources: Vec<String>,
    /// Width and height on screen of every `svg[role=img]`, with its title.
    charts: Vec<(String, f64, f64)>,
    /// The page's scroll width and visible width: wider content scrolls the whole page sideways.
    scroll_width: f64,
    client_width: f64,
    /// The page's full height.
    height: f64,
}

/// Loads `page` in an `<iframe>` of `width` CSS pixels inside a probe page next to it, which
/// measures it after it loaded and writes the measurements into its own DOM (same-origin
/// `file://` access needs `--allow-file-access-from-files`).
fn render(browser: &Path, page: &Path, width: u32) -> Rendering {
    let name = page.file_name().unwrap().to_str().unwrap();
    let probe = page.with_file_name(format!(".probe-{width}.html"));
    std::fs::write(
        &probe,
        format!(
            r#"<!DOCTYPE html><html><body style="margin:0"><pre id="probe">pending</pre>
<iframe id="frame" src="{name}" style="width:{width}px;height:844px;border:0"></iframe>
<script>
document.getElementById('frame').addEventListener('load', function () {{
  var w = this.contentWindow, d = w.document, root = d.documentElement;
  var charts = Array.from(d.querySelectorAll('svg[role=img]')).map(function (svg) {{
    var r = svg.getBoundingClientRect(), t = svg.querySelector('title');
    return [t ? t.textContent : '', r.width, r.height];
  }});
  document.getElementById('probe').textContent = JSON.stringify({{
    resources: w.performance.getEntriesByType('resource').map(function (e) {{ return e.name; }}),
    charts: charts, scroll_width: root.scrollWidth, client_width: root.clientWidth,
    height: root.scrollHeight
  }});
}});
</script></body></html>"#
        ),
    )
    .unwrap();
    let (mut command, _profile) = headless(browser);
    let output = command
        .args([
            "--allow-file-access-from-files",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .output()
        .unwrap();
    std::fs::remove_file(&probe).unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chromium failed: {log}");
    let dom = String::from_utf8_lossy(&output.stdout);
    let json = dom
        .split_once("<pre id=\"probe\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(text, _)| unescape(text))
        .unwrap_or_default();
    let measured: serde_json::Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("the probe did not measure {name} ({e}): {json}\n{log}"));
    let number = |key: &str| measured[key].as_f64().unwrap();
    Rendering {
        console: log
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_string)
            .collect(),
        resources: measured["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
        charts: measured["charts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_str().unwrap().to_string(),
                    c[1].as_f64().unwrap(),
                    c[2].as_f64().unwrap(),
                )
            })
            .collect(),
        scroll_width: number("scroll_width"),
        client_width: number("client_width"),
        height: number("height"),
    }
}

/// What a reader would find wrong with `rendering`, which should show `charts` charts.
fn screen_problems(rendering: &Rendering, charts: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if !rendering.console.is_empty() {
        problems.push(format!("console messages: {:?}", rendering.console));
    }
    if !rendering.resources.is_empty() {
        problems.push(format!("resources loaded: {:?}", rendering.resources));
    }

    if rendering.charts.len() != charts {
        problems.push(format!(
            "{} charts rendered, {charts} in the file",
            rendering.charts.len()
        ));
    }
    for (title, width, height) in &rendering.charts {
        if *width < 1.0 || *height < 1.0 {
            problems.push(format!("chart {title:?} is {width}×{height}"));
        }
    }
    if rendering.scroll_width > rendering.client_width {
        problems.push(format!(
            "the page scrolls sideways: {} px wide in {} px",
            rendering.scroll_width, rendering.client_width
        ));
    }
    problems
}

/// References in `html` that would make a browser fetch something: scripts, stylesheets,
/// imports, and `src`/`url()` values (any but `data:` and `#fragment`), and links to other
/// sites.
fn external_references(html: &str) -> Vec<String> {
    let lower = html.to_lowercase();
    let mut found = Vec::new();
    for tag in [
        "<script", "<link", "<iframe", "<object", "<embed", "@import",
    ] {
        if lower.contains(tag) {
            found.push(tag.to_string());
        }
    }
    for attribute in ["src=", "href=", "url("] {
        for (at, _) in lower.match_indices(attribute) {
            let value = lower[at + attribute.len()..].trim_start_matches(['"', '\'', ' ']);
            let local = value.starts_with('#') || value.starts_with("data:");
            let remote = ["http:", "https:", "//"]
                .iter()
                .any(|scheme| value.starts_with(scheme));
            if remote || (!local && attribute != "href=") {
                found.push(lower[at..].chars().take(60).collect());
            }
        }
    }
    found
}

/// The text of `html` with its entities replaced (as `--dump-dom` and the report write them).
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Screenshot of `page` at `width` × `height` CSS pixels into `png`.
fn screenshot(browser: &Path, page: &Path, width: u32, height: u32, png: &Path) {
    let (mut command, _profile) = headless(browser);
    let output = command
        .args(["--hide-scrollbars", "--virtual-time-budget=2000"])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success() && png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_example_report_renders_on_desktop_and_phone_without_errors_requests_or_sideways_scrolling() {
    let Some(browser) = chromium() else { return };
    let run = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let report = run.path("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        external_references(&html),
        Vec::<String>::new(),
        "the report is self-contained"
    );
    let charts = html.matches("<svg role=\"img\"").count();
    assert!(charts >= 2, "the example's report has its charts");
    let folder = screenshots();
    for width in [DESKTOP, PHONE] {
        let rendering = render(&browser, &report, width);
        assert_eq!(
            screen_problems(&rendering, charts),
            Vec::<String>::new(),
            "at {width} px: {rendering:?}"
        );
        // The whole page in one picture (Chromium's screenshot is as tall as the window).
        let height = (rendering.height.ceil() as u32).clamp(600, 16_000);
        let png = folder.join(format!("report-{width}.png"));
        screenshot(&browser, &report, width, height, &png);
        eprintln!("screenshot: {}", png.display());
    }
}

#[test]
fn the_screen_checks_catch_errors_requests_empty_charts_and_a_page_wider_than_a_phone() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::TempDir::new().unwrap();
    let broken = dir.path().join("broken.html");
    let html = r#"<!DOCTYPE html><html><head><style>@import "theme.css";</style></head><body>
<script>console.error('deliberate'); not_a_function();</script>
<img src="https://example.com/pixel.png"><a href="https://example.com/">elsewhere</a>
<div style="width: 1000px">a wide block</div>
<svg role="img" width="0" height="0"><title>Empty chart</title></svg>
<svg role="img" width="100" height="50"><title>Fine chart</title></svg>
</body></html>"#;
    std::fs::write(&broken, html).unwrap();
    let references = external_references(html);
    for expected in ["<script", "@import", "src=\"https:", "href=\"https:"] {
        assert!(
            references.iter().any(|r| r.starts_with(expected)),
            "{expected} not caught: {references:?}"
        );
    }
    assert_eq!(
        external_references(r##"<a href="#segments">x</a><img src="data:image/png;base64,AA">"##),
        Vec::<String>::new(),
        "fragments and data URLs load nothing"
    );

    let rendering = render(&browser, &broken, PHONE);
    let problems = screen_problems(&rendering, 3);
    let caught = |what: &str| problems.iter().any(|p| p.contains(what));
    assert!(caught("deliberate"), "console.error: {problems:?}");
    assert!(
        caught("Uncaught ReferenceError"),
        "a script error: {problems:?}"
    );
    // Resource Timing lists failed requests to the network too (file:// ones it does not: the
    // static check above is what finds those).
    assert!(
        caught("resources loaded: [\"https://example.com/pixel.png\"]"),
        "a request to the network: {problems:?}"
    );
    assert!(
        caught("2 charts rendered, 3"),
        "a chart count: {problems:?}"
    );
    assert!(
        caught("\"Empty chart\" is 0×0"),
        "an empty chart: {problems:?}"
    );
    assert!(!caught("Fine chart"), "a fine chart: {problems:?}");
    assert!(caught("scrolls sideways"), "a wide page: {problems:?}");
}

/// The text of every page of `pdf`, as `pdftotext -layout` lays it out.
fn pdf_pages(pdftotext: &Path, pdf: &Path) -> Vec<String> {
    let output = Command::new(pdftotext)
        .args(["-layout", "-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    // pdftotext ends every page with a form feed.
    pages.pop();
    pages
}

/// One chart's title and the texts drawn at its top and at its bottom (rotated texts left out:
/// PDF text extraction may not keep them whole).
fn chart_edges(html: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut charts = Vec::new();
    for (start, _) in html.match_indices("<svg role=\"img\"") {
        let svg = &html[start..start + html[start..].find("</svg>").unwrap()];
        let title = svg
            .split_once("<title")
            .and_then(|(_, rest)| rest.split_once('>'))
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map_or(String::new(), |(t, _)| unescape(t));
        let mut texts: Vec<(f64, String)> = Vec::new();
        for piece in svg.split("<text").skip(1) {
            let (attributes, rest) = piece.split_once('>').unwrap();
            if attributes.contains("transform") {
                continue;
            }
            let y = attributes
                .split_once(" y=\"")
                .and_then(|(_, v)| v.split_once('"'))
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or(0.0);
            let text = unescape(rest.split_once("</text>").unwrap().0);
            texts.push((y, text.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
        let at = |edge: f64| -> Vec<String> {
            texts
                .iter()
                .filter(|(y, _)| *y == edge)
                .map(|(_, t)| t.clone())
                .collect()
        };
        let top = texts.iter().map(|(y, _)| *y).fold(f64::INFINITY, f64::min);
        let bottom = texts.iter().map(|(y, _)| *y).fold(0.0, f64::max);
        charts.push((title, at(top), at(bottom)));
    }
    charts
}

/// Charts of `html` whose top and bottom are not on one page of `pages`: for each edge, a text
/// found exactly once in the whole PDF marks the page it is on.
fn charts_cut(html: &str, pages: &[String]) -> Vec<String> {
    let pages: Vec<String> = pages
        .iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let page_of = |candidates: &[String]| -> Option<usize> {
        candidates.iter().find_map(|text| {
            let counts: Vec<usize> = pages
                .iter()
                .map(|p| p.matches(text.as_str()).count())
                .collect();
            (counts.iter().sum::<usize>() == 1).then(|| counts.iter().position(|&c| c == 1))?
        })
    };
    let mut problems = Vec::new();
    for (title, top, bottom) in chart_edges(html) {
        match (page_of(&top), page_of(&bottom)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => problems.push(format!(
                "chart {title:?} starts on page {} and ends on page {}",
                a + 1,
                b + 1
            )),
            _ => problems.push(format!(
                "chart {title:?}: no text of its top {top:?} or bottom {bottom:?} is once in the PDF"
            )),
        }
    }
    problems
}

/// Words of column headings of `html`'s tables that are nowhere in the text of `pages`: a table
/// wider than the paper in a box that scrolls on screen loses its right-hand columns in print
/// (Chromium clips them, and clipped text is not in the PDF). Words, not whole headings: a
/// heading may wrap onto two lines.
fn headings_not_printed(html: &str, pages: &[String]) -> Vec<String> {
    let printed: std::collections::BTreeSet<&str> =
        pages.iter().flat_map(|p| p.split_whitespace()).collect();
    let mut missing = Vec::new();
    for piece in html.split("<th").skip(1) {
        let Some((_, rest)) = piece.split_once('>') else {
            continue;
        };
        let Some((cell, _)) = rest.split_once("</th>") else {
            continue;
        };
        // The heading's text between its markup (`Market size<br><small>25%`).
        for (i, part) in cell.split(['<', '>']).enumerate() {
            if i % 2 == 1 {
                continue;
            }
            for word in unescape(part).split_whitespace() {
                if !printed.contains(word) && !missing.iter().any(|m| m == word) {
                    missing.push(word.to_string());
                }
            }
        }
    }
    missing
}

#[test]
fn the_example_report_prints_to_a_few_pages_with_no_chart_cut_and_no_table_column_clipped() {
    let Some(_) = chromium() else { return };
    let Some(pdftotext) = pdftotext() else { return };
    let run = ExampleRun::new("pipelines/saas_quarterly.yaml", &[]);
    let report = run.path("report.html");
    let pdf = run.path("report.pdf");
    segflow::report::print_to_pdf(&report, &pdf).unwrap();
    let kept = screenshots().join("report.pdf");
    std::fs::copy(&pdf, &kept).unwrap();
    eprintln!("pdf: {}", kept.display());

    let pages = pdf_pages(&pdftotext, &pdf);
    assert!(pages.len() > 1 && pages.len() < 40, "{} pages", pages.len());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        chart_edges(&html).len() >= 2,
        "the example's report has its charts"
    );
    assert_eq!(charts_cut(&html, &pages), Vec::<String>::new());
    assert_eq!(
        headings_not_printed(&html, &pages),
        Vec::<String>::new(),
        "every table column is on paper"
    );
}

#[test]
fn the_print_checks_catch_a_chart_cut_across_pages_and_table_columns_clipped_off_the_paper() {
    let Some(_) = chromium() else { return };
    let Some(pdftotext) = pdftotext() else { return };
    let dir = tempfile::TempDir::new().unwrap();
    // Taller than a page: Chromium has to cut it.
    let html = r#"<!DOCTYPE html><html><body><p>Before the chart</p>
<svg role="img" width="400" height="2400" viewBox="0 0 400 2400"><title>Tall chart</title>
<text x="10" y="20">top of the tall chart</text><text x="10" y="2380">bottom of the tall chart</text></svg>
<div style="overflow-x: auto"><table><tr><th style="min-width: 1200px">Wide</th><th>Clipped heading</th></tr></table></div>
</body></html>"#;
    let page = dir.path().join("tall.html");
    std::fs::write(&page, html).unwrap();
    let pdf = dir.path().join("tall.pdf");
    segflow::report::print_to_pdf(&page, &pdf).unwrap();
    let pages = pdf_pages(&pdftotext, &pdf);
    assert!(pages.len() > 1, "the chart spans pages");
    let problems = charts_cut(html, &pages);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("chart \"Tall chart\" starts on page "),
        "{problems:?}"
    );
    assert_eq!(headings_not_printed(html, &pages), ["Clipped", "heading"]);
}

#[test]
fn printing_without_chromium_names_the_package_to_install() {
    let empty = tempfile::TempDir::new().unwrap();
    let error = segflow::report::pdf::find_chromium(None, Some(empty.path().as_os_str().into()))
        .unwrap_err();
    assert_eq!(error.exit_code(), 11);
    let code = miette::Diagnostic::code(&error).unwrap().to_string();
    assert_eq!(code, "segflow::chromium");
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert!(help.contains("apt-get install chromium"), "{help}");
    assert!(help.contains("SEGFLOW_CHROMIUM"), "{help}");
}
