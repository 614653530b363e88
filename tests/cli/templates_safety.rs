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
