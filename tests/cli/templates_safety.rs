//! Report templates are confined to their folder and the built-in set, bounded in the work they
//! do, and what they render from pipeline text and data cannot inject Markdown, HTML or formulas.

use std::os::unix::fs::symlink;
use std::process::Output;

use crate::support::{Workspace, stderr};

const SECRET: &str = "TOP-SECRET-7c1e";

/// The windows fixture with `templates: tpl`, a secret file beside the folder and `files`
/// written into the folder.
fn with_templates(files: &[(&str, &[u8])]) -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline("name: windows\n", "name: windows\ntemplates: tpl\n");
    std::fs::create_dir(workspace.path().join("tpl")).unwrap();
    workspace.write("secret.txt", SECRET);
    for (name, bytes) in files {
        let path = workspace.path().join("tpl").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    workspace
}

/// Run the pipeline into `out`; require the template error (exit 3) naming the template and the
/// refused name, with nothing written.
fn assert_refused(workspace: &Workspace, template: &str, refused: &str) {
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    assert_refused_output(&output, template, refused);
    assert!(!workspace.path().join("out").exists());
}

fn assert_refused_output(output: &Output, template: &str, refused: &str) {
    let message = squashed(&stderr(output));
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains(&squashed(&format!("template `{template}"))),
        "{message}"
    );
    assert!(
        message.contains(&squashed(&format!("refused to load template `{refused}`"))),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn includes_that_climb_out_of_the_folder_are_refused() {
    for name in [
        "../secret.txt",
        "../../../../../../etc/passwd",
        "a/../../secret.txt",
    ] {
        let template = format!("{{% include \"{name}\" %}}");
        let workspace = with_templates(&[("report.md.j2", template.as_bytes())]);
        assert_refused(&workspace, "report.md.j2", name);
    }
}

#[test]
fn absolute_backslash_and_nul_names_are_refused() {
    for (name, shown) in [
        ("/etc/passwd", "/etc/passwd"),
        ("/proc/self/environ", "/proc/self/environ"),
        ("..\\\\secret.txt", "..\\\\secret.txt"),
        ("sub\\\\x.j2", "sub\\\\x.j2"),
        ("x\0.j2", "x\\u{0}.j2"),
        ("./report.html.j2", "./report.html.j2"),
    ] {
        let template = format!("{{% include \"{name}\" %}}");
        let workspace = with_templates(&[("report.md.j2", template.as_bytes())]);
        assert_refused(&workspace, "report.md.j2", shown);
    }
}

#[test]
fn every_way_of_naming_another_template_is_confined() {
    for template in [
        "{% extends \"../secret.txt\" %}",
        "{% import \"../secret.txt\" as m %}",
        "{% from \"../secret.txt\" import x %}",
        "{% set n = \"../secret.txt\" %}{% include n %}",
        "{% include [\"missing.j2\", \"../secret.txt\"] %}",
    ] {
        let workspace = with_templates(&[("report.md.j2", template.as_bytes())]);
        assert_refused(&workspace, "report.md.j2", "../secret.txt");
    }
}

#[test]
fn a_name_from_the_pipeline_cannot_reach_outside_either() {
    let workspace = with_templates(&[("report.md.j2", b"{% include pipeline.title %}")]);
    workspace.edit_pipeline("name: windows\n", "name: windows\ntitle: /etc/passwd\n");
    assert_refused(&workspace, "report.md.j2", "/etc/passwd");
}

#[test]
fn symlinks_out_of_the_folder_are_refused() {
    let workspace = with_templates(&[("report.md.j2", b"{% include \"leak.j2\" %}")]);
    symlink(
        workspace.path().join("secret.txt"),
        workspace.path().join("tpl/leak.j2"),
    )
    .unwrap();
    assert_refused(&workspace, "report.md.j2", "leak.j2");

    let workspace = with_templates(&[]);
    symlink("/etc/passwd", workspace.path().join("tpl/report.md.j2")).unwrap();
    assert_refused(&workspace, "report.md.j2", "report.md.j2");

    let workspace = with_templates(&[("report.md.j2", b"{% include \"up/secret.txt\" %}")]);
    symlink(workspace.path(), workspace.path().join("tpl/up")).unwrap();
    assert_refused(&workspace, "report.md.j2", "up/secret.txt");
}

#[test]
fn templates_inside_the_folder_and_built_in_ones_still_load() {
    let workspace = with_templates(&[
        (
            "report.md.j2",
            b"{% include \"alias.j2\" %}|{% include \"parts/real.j2\" %}",
        ),
        ("parts/real.j2", b"real part"),
    ]);
    symlink("parts/real.j2", workspace.path().join("tpl/alias.j2")).unwrap();
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(workspace.read("out/report.md"), "real part|real part");
    assert!(workspace.read("out/report.html").contains("<html"));
}

#[test]
fn history_templates_are_confined_to_their_folder() {
    let workspace = Workspace::from_fixture("windows");
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--as-of",
        "2026-09-01",
        "--out",
        "q3",
    ]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4"]);
    workspace.write("secret.txt", SECRET);
    std::fs::create_dir(workspace.path().join("mine")).unwrap();
    for (name, refused) in [
        ("history.md.j2", "../secret.txt"),
        ("history.html.j2", "/proc/self/environ"),
    ] {
        workspace.write(
            &format!("mine/{name}"),
            &format!("{{% include \"{refused}\" %}}"),
        );
        let output =
            workspace.segflow(&["history", "q3", "q4", "--templates", "mine", "--out", "h"]);
        assert_refused_output(&output, name, refused);
        assert!(!workspace.path().join("h").exists());
        std::fs::remove_file(workspace.path().join(format!("mine/{name}"))).unwrap();
    }
}

/// Text without whitespace or miette's gutter: miette wraps long messages anywhere, even inside
/// a path.
fn squashed(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

/// Run the pipeline with `report.md.j2` (and `others`) in its templates folder; require exit 3
/// and a message containing each of `expected`, with nothing written.
fn assert_render_fails(report: &str, others: &[(&str, &[u8])], expected: &[&str]) {
    let mut files = vec![("report.md.j2", report.as_bytes())];
    files.extend_from_slice(others);
    let workspace = with_templates(&files);
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = squashed(&stderr(&output));
    assert_eq!(output.status.code(), Some(3), "{message}");
    for text in expected {
        assert!(message.contains(&squashed(text)), "{text}: {message}");
    }
    assert!(!workspace.path().join("out").exists());
}

#[test]
fn a_template_that_never_ends_is_stopped_with_its_name() {
    for report in [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for s in segments %}{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}\
         {% endfor %}{% endfor %}{% endfor %}",
    ] {
        assert_render_fails(
            report,
            &[],
            &["template `report.md.j2 (tpl/report.md.j2)`: did too much work"],
        );
    }
}

#[test]
fn a_template_including_itself_is_named() {
    assert_render_fails(
        "{% include \"report.md.j2\" %}",
        &[],
        &["`report.md.j2` includes itself", "recursion too deep"],
    );
    assert_render_fails(
        "a{% include \"b.j2\" %}",
        &[("b.j2", b"b{% include \"report.md.j2\" %}")],
        &["includes itself (report.md.j2 → b.j2 → report.md.j2)"],
    );
    assert_render_fails(
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
        &[],
        &["template `report.md.j2", "a macro calls itself"],
    );
}

/// Markup that must render as text: raw HTML, a `javascript:` link, emphasis, a table-breaking
/// pipe and a NUL byte (YAML's `\0`).
const PAYLOAD: &str =
    r"<img src=x onerror=alert(1)> [click](javascript:alert(1)) a|b **bold** \0end";

/// The windows fixture with the payload in every kind of pipeline text and in a data value.
fn injected() -> Workspace {
    let workspace = Workspace::from_fixture("windows");
    let p = |tag: &str| format!("\"{tag} {PAYLOAD}\"");
    workspace.edit_pipeline(
        "name: windows\n",
        &format!(
            "name: windows\ntitle: {}\ndescription: \"Intro\\n# {PAYLOAD}\\n- {PAYLOAD}\"\n",
            p("Title")
        ),
    );
    workspace.edit_pipeline(
        "    name: Busy\n    when: events_30 >= 3\n",
        &format!(
            "    name: {}\n    description: {}\n    owner: {}\n    actions: [{}]\n    \
             when: \"events_30 >= 3 OR plan = '<b>|`x`</b>'\"\n",
            p("Busy"),
            p("Desc"),
            p("Owner"),
            p("Act")
        ),
    );
    workspace.edit_pipeline(
        "    description: Events in [as_of - 30 days, as_of).\n",
        &format!("    description: {}\n", p("Feature")),
    );
    let persona = [
        "name",
        "role",
        "context",
        "quote",
        "primary_job",
        "key_pain",
        "success_metric",
    ]
    .map(|field| format!("{field}: {}", p(field)))
    .join(", ");
    let text = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!(
            "{text}personas:\n  - {{ segment: busy, {persona}, goals: [{}], frustrations: [{}], \
             behaviours: [{}], research_questions: {{ new: [{}], existing: [{}], at_risk: [{}] }} }}\n",
            p("goal"),
            p("frustration"),
            p("behaviour"),
            p("new_question"),
            p("existing_question"),
            p("at_risk_question")
        ),
    );
    let customers = workspace.read("customers.csv").replacen(
        "1,2026-09-01,pro,5",
        "1,2026-09-01,\"<img src=x onerror=alert(1)> [a](javascript:x) a|b\",5",
        1,
    );
    workspace.write("customers.csv", &customers);
    workspace
}

/// Every way the payload could escape: raw HTML, a live link, a NUL byte, a row with more cells
/// than its table's header.
fn assert_inert(name: &str, text: &str) {
    assert!(!text.contains('\0'), "{name} holds a NUL byte");
    for raw in ["<img", "<IMG", "[click]", "[a]", "[A]", "**bold**"] {
        assert!(!text.contains(raw), "{name} holds raw `{raw}`:\n{text}");
    }
    let mut columns = None;
    for line in text.lines() {
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let cells = cell_count(line);
        assert_eq!(*columns.get_or_insert(cells), cells, "{name}: {line}");
    }
}

/// The cells of a Markdown table row as GitHub splits it: at each `|` not right after a
/// backslash (cmark-gfm's table scanner).
fn cell_count(row: &str) -> usize {
    let chars: Vec<char> = row.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i] == '|' && (i == 0 || chars[i - 1] != '\\'))
        .count()
}

#[test]
fn pipeline_text_and_data_render_as_text_in_every_markdown_report() {
    let workspace = injected();
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--as-of",
        "2026-09-01",
        "--out",
        "q3",
    ]);
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "q4", "--compare-to", "q3"]);
    workspace.segflow_ok(&["history", "q3", "q4", "--out", "h"]);
    let diff = workspace.segflow_ok(&["diff", "q3", "q4"]);
    let report = workspace.read("q4/report.md");
    assert!(report.contains("## Compared with"), "{report}");
    assert!(
        report.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{report}"
    );
    // The data value reached the run (the reports no longer list text features' smallest and
    // largest values, which describe single customers); wherever a document shows it, it must
    // be inert (below).
    assert!(
        workspace
            .read("q4/segments.csv")
            .contains("<IMG SRC=X ONERROR=ALERT(1)>"),
        "data value"
    );
    for (name, text) in [
        ("report.md", report.clone()),
        ("personas/busy.md", workspace.read("q4/personas/busy.md")),
        ("history.md", workspace.read("h/history.md")),
        ("diff", String::from_utf8(diff.stdout).unwrap()),
    ] {
        assert_inert(name, &text);
    }
    for file in ["q4/report.html", "h/history.html", "q4/segments.csv"] {
        assert!(
            !workspace.read(file).contains('\0'),
            "{file} holds a NUL byte"
        );
    }
}

#[test]
fn markdown_block_markers_in_pipeline_text_stay_text() {
    let workspace = injected();
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let report = workspace.read("out/report.md");
    assert!(report.contains("\\# &lt;img"), "{report}");
    assert!(report.contains("\\- &lt;img"), "{report}");
    let persona = workspace.read("out/personas/busy.md");
    assert!(
        report.contains("| ``events_30 >= 3 OR plan = '<b>\\|`x`</b>'`` |")
            && persona.contains("- Rule: ``events_30 >= 3 OR plan = '<b>|`x`</b>'``"),
        "rules are code, fenced past their backticks: {report}\n{persona}"
    );
}

#[test]
fn formula_cells_in_segments_csv_are_neutralised_and_numbers_kept() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline(
        "    name: Busy\n",
        "    name: \"=HYPERLINK(\\\"http://x\\\",\\\"y\\\")\"\n",
    );
    workspace.edit_pipeline("    name: Active\n", "    name: \"@SUM(A1:A9)\"\n");
    workspace.edit_pipeline("    name: Lapsed\n", "    name: \"\\tlapsed\\0\"\n");
    workspace.edit_pipeline("    expr: upper(plan)\n", "    expr: concat('-', plan)\n");
    workspace.edit_pipeline("    expr: score * 2\n", "    expr: score * 2 - 100\n");
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let csv = workspace.read("out/segments.csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let names: Vec<&str> = rows.iter().map(|r| &r[column("segment_name")]).collect();
    assert!(
        names.contains(&"'=HYPERLINK(\"http://x\",\"y\")"),
        "{names:?}"
    );
    assert!(names.contains(&"'@SUM(A1:A9)"), "{names:?}");
    assert!(names.contains(&"'\tlapsed"), "{names:?}");
    for row in &rows {
        for stat in ["plan__min", "plan__max"] {
            let text = &row[column(stat)];
            assert!(text.is_empty() || text.starts_with("'-"), "{stat}: {text}");
        }
        let min = &row[column("score_double__min")];
        assert!(
            min.is_empty() || min.parse::<f64>().is_ok(),
            "numbers stay numbers: {min}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r[column("score_double__min")].starts_with('-')),
        "a negative number keeps its sign: {csv}"
    );
}

#[test]
fn an_error_in_an_included_template_is_reported_where_it_is() {
    assert_render_fails(
        "first line\n{% include \"part.j2\" %}",
        &[("part.j2", b"ok\n{{ no_such.thing }}\n")],
        &[
            "template `part.j2 (tpl/part.j2)`: line 2:",
            "(included from report.md.j2 at line 2)",
        ],
    );
    assert_render_fails(
        "{% include \"part.j2\" %}",
        &[("part.j2", b"{% include \"../secret.txt\" %}")],
        &[
            "template `part.j2 (tpl/part.j2)`",
            "refused to load template `../secret.txt`",
            "(included from report.md.j2 at line 1)",
        ],
    );
}

/// A hard link is another name of a file that may live outside the folder (an unpacked archive
/// can carry one); it is refused like a symlink out.
#[test]
fn a_hard_link_in_the_folder_is_refused() {
    let workspace = with_templates(&[("report.md.j2", b"{% include \"linked\" %}")]);
    std::fs::hard_link(
        workspace.path().join("secret.txt"),
        workspace.path().join("tpl/linked"),
    )
    .unwrap();
    assert_refused(&workspace, "report.md.j2", "linked");
}

/// One step of a template can take very long (`[1, 2] * 10000000000`): fuel does not stop it,
/// the render time limit does (lowered here from 120 s for the test), with nothing left behind.
#[test]
fn a_render_that_outlives_the_time_limit_is_stopped() {
    let workspace = with_templates(&[("report.md.j2", b"{{ [1, 2] * 10000000000 }}")]);
    let before = workspace.entries();
    let output = crate::support::output_within(
        crate::support::segflow()
            .current_dir(workspace.path())
            .env("SEGFLOW_TEST_RENDER_SECONDS", "3")
            .args(["run", "pipeline.yaml", "--out", "out"]),
        std::time::Duration::from_secs(120),
    );
    let message = squashed(&stderr(&output));
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains(&squashed("rendered for more than 3 s")),
        "{message}"
    );
    assert_eq!(workspace.entries(), before, "{message}");
}

/// Type names can carry text from data or pipeline (a struct's field names): they are escaped
/// like any other text in report.md.
#[test]
fn type_names_are_escaped_in_report_md() {
    let workspace = Workspace::from_fixture("windows");
    workspace.edit_pipeline(
        "expr: score * 2",
        "expr: \"named_struct('<img src=x onerror=alert(1)> | [x](javascript:alert(4))', score)\"",
    );
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let report = workspace.read("out/report.md");
    // Inside a code span GitHub shows text as it is; outside one it would be markup.
    for line in report.lines() {
        for bad in ["<img", "](javascript:"] {
            for (at, _) in line.match_indices(bad) {
                let escaped = line[..at].ends_with('\\');
                let fences = line[..at].matches('`').count();
                assert!(
                    escaped || fences % 2 == 1,
                    "`{bad}` outside a code span: {line}"
                );
            }
        }
    }
    assert!(report.contains("img src=x"), "the type name is shown");
}

#[test]
fn persona_fields_from_the_seed_are_shown_escaped_in_every_report() {
    let workspace = injected();
    workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let escaped = |tag: &str| format!("{tag} &lt;img src=x onerror=alert(1)&gt;");
    let persona = workspace.read("out/personas/busy.md");
    for line in [
        format!("- Primary job: {}", escaped("primary_job")),
        format!("- Key pain: {}", escaped("key_pain")),
        format!("- Success metric: {}", escaped("success_metric")),
        "## Research questions".to_string(),
        format!("New segment (exploring):\n\n- {}", escaped("new_question")),
        format!(
            "Existing segment (deepening):\n\n- {}",
            escaped("existing_question")
        ),
        format!(
            "At-risk segment (retaining):\n\n- {}",
            escaped("at_risk_question")
        ),
    ] {
        assert!(persona.contains(&line), "`{line}` missing:\n{persona}");
    }
    // Beside the measured profile, which follows them.
    assert!(
        persona.find("## Research questions") < persona.find("## The data behind this persona")
    );
    let report = workspace.read("out/report.md");
    assert!(
        report.contains(&format!("  - Primary job: {}", escaped("primary_job"))),
        "{report}"
    );
    let html = workspace.read("out/report.html");
    for text in [
        format!(
            "<li><strong>Primary job:</strong> {}",
            escaped("primary_job")
        ),
        format!(
            "<li><strong>Success metric:</strong> {}",
            escaped("success_metric")
        ),
        format!(
            "<li>At-risk segment (retaining): {}",
            escaped("at_risk_question")
        ),
    ] {
        assert!(html.contains(&text), "`{text}` missing");
    }
    assert!(!html.contains("<img"), "raw HTML in report.html");
    assert_inert("personas/busy.md", &persona);
    assert_inert("report.md", &report);
}
