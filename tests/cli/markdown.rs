//! The Markdown documents render on GitHub and GitLab as they are: no stray blank lines, every
//! table row as wide as its header, no empty trailing cells, tables set apart by blank lines; and
//! a failed run says so at the top.

use crate::support::{ExampleRun, read_json, repo_path};

/// The unescaped `|` of a table row: one more than its cells.
fn pipes(line: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in line.trim().chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '|' {
            count += 1;
        }
    }
    count
}

/// What would render badly, one message per problem, with its line number.
fn problems(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut header: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let previous = if i > 0 { lines[i - 1] } else { "" };
        let mut problem = |what: &str| found.push(format!("line {}: {what}: {line:?}", i + 1));
        if i > 0 && line.trim().is_empty() && previous.trim().is_empty() {
            problem("two blank lines in a row");
        }
        if line.ends_with("| |") || line.ends_with("|  |") {
            problem("an empty last cell");
        }
        if line.ends_with(' ') {
            problem("trailing space");
        }
        let row = line.starts_with('|');
        let previous_row = previous.starts_with('|');
        if row && !previous_row && !previous.trim().is_empty() {
            problem("a table right after text (GitHub reads it as text)");
        }
        if !row && previous_row && !line.trim().is_empty() {
            problem("text right after a table (GitHub reads it as a row)");
        }
        if row {
            match header {
                None => header = Some(pipes(line)),
                Some(width) if pipes(line) != width => problem(&format!(
                    "{} cells, its header has {}",
                    pipes(line) - 1,
                    width - 1
                )),
                Some(_) => {}
            }
        } else {
            header = None;
        }
    }
    if !text.ends_with('\n') || text.ends_with("\n\n") {
        found.push("the file does not end with exactly one line break".into());
    }
    found
}

#[test]
fn the_checker_catches_broken_markdown() {
    let good = "# Title\n\nText.\n\n| a | b |\n|---|---:|\n| `x \\| y` | 2 |\n\nMore.\n";
    assert_eq!(problems(good), Vec::<String>::new());
    for (broken, expected) in [
        ("# Title\n\n\nText.\n", "two blank lines"),
        ("| a | b |\n|---|---|\n| 1 |\n", "1 cells, its header has 2"),
        (
            "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n",
            "3 cells, its header has 2",
        ),
        ("| a | b |\n|---|---|\n| 1 | |\n", "an empty last cell"),
        ("| a | b |\n|---|---|\n| 1 | a|b |\n", "3 cells"),
        ("Text.\n| a |\n|---|\n", "a table right after text"),
        ("| a |\n|---|\n| 1 |\nText.\n", "text right after a table"),
        ("Text. \n", "trailing space"),
        ("Text.", "exactly one line break"),
    ] {
        let found = problems(broken);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{broken:?}: {found:?}"
        );
    }
}

fn documents(run: &ExampleRun) -> Vec<(String, String)> {
    let mut documents = vec![(
        "report.md".to_string(),
        std::fs::read_to_string(run.path("report.md")).unwrap(),
    )];
    for entry in std::fs::read_dir(run.path("personas")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("personas/{}", path.file_name().unwrap().to_string_lossy());
        documents.push((name, std::fs::read_to_string(path).unwrap()));
    }
    documents
}

#[test]
fn reports_are_well_formed_markdown_and_a_failed_run_says_so_first() {
    let q3 = ExampleRun::new("pipelines/saas_quarterly.yaml", &["--as-of", "2026-10-01"]);
    let old = q3.dir();
    let q4 = ExampleRun::new(
        "pipelines/saas_quarterly.yaml",
        &[
            "--as-of",
            "2026-11-01",
            "--compare-to",
            old.to_str().unwrap(),
            "--criteria-as-warnings",
        ],
    );
    for run in [&q3, &q4] {
        let documents = documents(run);
        assert_eq!(documents.len(), 3, "report.md and two personas");
        for (name, text) in documents {
            assert_eq!(problems(&text), Vec::<String>::new(), "{name}:\n{text}");
        }
    }

    let head = |run: &ExampleRun| -> String {
        let text = std::fs::read_to_string(run.path("report.md")).unwrap();
        text.lines().take(15).collect::<Vec<_>>().join("\n")
    };
    let (passed, failed) = (head(&q3), head(&q4));
    assert!(failed.contains("Criteria failed"), "{failed}");
    assert!(failed.contains("fail"), "{failed}");
    // The failing checks are named in words, and the comparison's movements are in the summary.
    assert!(
        failed.contains("Power users: share of customers 0.87%"),
        "{failed}"
    );
    assert!(
        failed.contains("Biggest movements since 2026-10-01"),
        "{failed}"
    );
    assert!(!passed.contains("fail"), "{passed}");
    assert!(passed.contains("Criteria pass"), "{passed}");

    // A broken row in the real report is caught.
    let report = std::fs::read_to_string(q4.path("report.md")).unwrap();
    let broken = report.replacen("| Power users |", "| Power users | extra |", 1);
    assert_ne!(broken, report);
    assert!(!problems(&broken).is_empty());
}

/// The example pipeline with `reports.min_cell` raised so that some segments are masked, beside a
/// link to the example's data.
fn example_with_min_cell(min_cell: u64) -> (tempfile::TempDir, String) {
    let dir = tempfile::TempDir::new().unwrap();
    std::os::unix::fs::symlink(repo_path("pipelines/data"), dir.path().join("data")).unwrap();
    let pipeline = std::fs::read_to_string(repo_path("pipelines/saas_quarterly.yaml")).unwrap();
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(
        &path,
        format!("{pipeline}\nreports:\n  min_cell: {min_cell}\n"),
    )
    .unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

/// `1079` as reports show it: `1,079`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The words and numbers of a document: `1,079` and `282` are tokens, `a229f` is one too.
fn tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == ',' || c == '.'))
        .map(|t| t.trim_matches(|c| c == ',' || c == '.'))
        .filter(|t| !t.is_empty())
        .collect()
}

#[test]
fn suppressed_segment_sizes_appear_nowhere_in_the_markdown() {
    let (_dir, pipeline) = example_with_min_cell(300);
    let q3 = ExampleRun::new(&pipeline, &["--context", "--criteria-as-warnings"]);
    let old = q3.dir();
    let q4 = ExampleRun::new(
        &pipeline,
        &[
            "--as-of",
            "2026-11-01",
            "--compare-to",
            old.to_str().unwrap(),
            "--context",
            "--criteria-as-warnings",
        ],
    );
    let mut hidden = Vec::new();
    for run in [&q3, &q4] {
        let context = read_json(&run.path("report-context.json"));
        let segments = read_json(&run.path("segments.json"));
        for (i, card) in context["segments"].as_array().unwrap().iter().enumerate() {
            if card["masked"] == true {
                assert!(card["customers"].is_null());
                let n = segments["segments"][i]["customers"].as_u64().unwrap();
                hidden.push(n);
            }
        }
    }
    // 282 and 229 customers then, 26 and 153 now.
    assert_eq!(hidden.len(), 4, "{hidden:?}");
    for run in [&q3, &q4] {
        for (name, text) in documents(run) {
            assert_eq!(problems(&text), Vec::<String>::new(), "{name}:\n{text}");
            assert!(text.contains("suppressed"), "{name}");
            for n in &hidden {
                let shown = [n.to_string(), grouped(*n)];
                assert!(
                    !tokens(&text).iter().any(|t| shown.contains(&t.to_string())),
                    "{name} shows the suppressed count {n}:\n{text}"
                );
            }
        }
    }
    let report = std::fs::read_to_string(q4.path("report.md")).unwrap();
    assert!(
        report.contains("Figures about fewer than 300 customers are suppressed"),
        "{report}"
    );
}
