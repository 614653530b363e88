//! What the pipeline file and the command line may hold: hostile nesting, SQL comments, YAML
//! merge keys, messages in the user's words, repeated options, and output that cannot be written.

use std::process::Stdio;

use crate::support::{Workspace, segflow, stderr, stderr_unwrapped, stdout};

/// Every command that reads a pipeline file.
const READERS: &[&[&str]] = &[
    &["validate", "pipeline.yaml"],
    &["lint", "pipeline.yaml"],
    &["plan", "pipeline.yaml"],
    &["test", "pipeline.yaml"],
    &["run", "pipeline.yaml", "--out", "out"],
];

#[test]
fn nesting_beyond_the_limit_is_refused_quickly_in_every_command() {
    let depth = 30_000;
    let shapes = [
        // Flow lists, flow mappings, and block mappings indented level by level.
        format!(
            "version: 1\nname: x\ndescription: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        format!(
            "version: 1\nname: x\ndescription: {}1{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        ),
        (0..200)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect(),
        format!(
            "version: 1\nname: x\ndescription:\n{}",
            (0..100)
                .map(|i| format!("{}- \n", "  ".repeat(i)))
                .collect::<String>()
        ),
    ];
    for text in &shapes {
        let workspace = Workspace::from_fixture("windows");
        workspace.write("pipeline.yaml", text);
        for args in READERS {
            let started = std::time::Instant::now();
            let output = workspace.segflow(args);
            let message = stderr_unwrapped(&output);
            assert_eq!(output.status.code(), Some(3), "{args:?}: {message}");
            assert!(
                message.contains("more than 64 levels deep") && message.contains("pipeline.yaml:"),
                "{args:?}: {message}"
            );
            // Not a timing test of speed: a parse that recursed or copied paths per level took
            // 9 s and 1.3 GB here; a bound check takes milliseconds.
            assert!(
                started.elapsed().as_secs() < 5,
                "{args:?} took {:?}",
                started.elapsed()
            );
            assert!(!workspace.path().join("out").exists());
        }
    }
}

#[test]
fn nesting_within_the_limit_is_still_read() {
    let workspace = Workspace::from_fixture("windows");
    // 40 levels inside a persona's free text list still parse (and fail only as YAML types).
    let nested = format!("{}x{}", "[".repeat(40), "]".repeat(40));
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!("{pipeline}description: {nested}\n"),
    );
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    let message = stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(!message.contains("levels deep"), "{message}");
    assert!(message.contains("expected a string"), "{message}");
}

/// The windows fixture's results with SQL comments added to every kind of SQL snippet must be
/// the results without them.
#[test]
fn sql_comments_in_rules_and_expressions_are_ignored() {
    let plain = Workspace::lint_clean();
    plain.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let commented = Workspace::lint_clean();
    for (from, to) in [
        (
            "when: events_30 >= 3",
            "when: events_30 >= 3 -- three or more events",
        ),
        (
            "when: active_days_30 >= 1",
            "when: \"active_days_30 /* any */ >= 1 --\"",
        ),
        (
            "expr: active_days_30 * 10 + events_30",
            "expr: \"active_days_30 * 10 -- days weigh ten\\n + events_30 -- and events one\"",
        ),
        (
            "expr: count(*), window_days: 30",
            "expr: count(*) -- all rows, window_days: 30",
        ),
        (
            "expr: upper(plan)",
            "expr: upper(plan) /* shown upper-case */",
        ),
    ] {
        commented.edit_pipeline(from, to);
    }
    let output = commented.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    assert!(stdout(&output).contains("busy"));
    assert_eq!(
        commented.read("out/segments.csv"),
        plain.read("out/segments.csv")
    );
    // The numbers agree; the rule text shown keeps what the user wrote, comments blanked.
    let numbers = |workspace: &Workspace| {
        let json: serde_json::Value =
            serde_json::from_str(&workspace.read("out/segments.json")).unwrap();
        let segments = json["segments"].as_array().unwrap().iter();
        segments
            .map(|s| {
                (
                    s["id"].to_string(),
                    s["customers"].to_string(),
                    s["features"].to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&commented), numbers(&plain));
    // A comment marker inside a string literal is text, not a comment.
    let quoted = Workspace::lint_clean();
    quoted.edit_pipeline("expr: upper(plan)", "expr: \"upper(plan) || '--x'\"");
    quoted.edit_pipeline("when: events_30 >= 3", "when: \"plan = 'PRO--X'\"");
    quoted.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let segments = quoted.read("out/segments.csv");
    assert!(segments.contains("busy"), "{segments}");
}

#[test]
fn yaml_merge_keys_share_blocks() {
    let plain = Workspace::lint_clean();
    plain.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    let merged = Workspace::lint_clean();
    merged.edit_pipeline(
        "aggregate: { source: events, expr: count(DISTINCT CAST(ts AS DATE)), window_days: 30, default: 0 }",
        "aggregate: &last30\n      source: events\n      expr: count(DISTINCT CAST(ts AS DATE))\n      window_days: 30\n      default: 0",
    );
    merged.edit_pipeline(
        "aggregate: { source: events, expr: count(*), window_days: 30, default: 0 }",
        "aggregate:\n      <<: *last30\n      expr: count(*)",
    );
    merged.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    assert_eq!(
        merged.read("out/segments.csv"),
        plain.read("out/segments.csv")
    );

    // A mistake next to a merge key is still named.
    merged.edit_pipeline(
        "      expr: count(*)",
        "      expr: count(*)\n      widow_days: 7",
    );
    let output = merged.segflow(&["validate", "pipeline.yaml"]);
    let message = stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("unknown field `widow_days`"), "{message}");
    assert!(!message.contains("`<<`, expected"), "{message}");
}

#[test]
fn type_messages_use_yaml_words_not_rust_names() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "window_days: 30, default: 0 }\n  - name: events_30",
            "window_days: -30, default: 0 }\n  - name: events_30",
            &["a whole number of 0 or more"],
        ),
        (
            "window_days: 30, default: 0 }\n  - name: events_30",
            "window_days: [30], default: 0 }\n  - name: events_30",
            &["list", "a whole number of 0 or more"],
        ),
        (
            "features:\n",
            "features: { a: 1 }\nx:\n",
            &["mapping", "expected a list"],
        ),
        (
            "entity: { source: customers, key: customer_id }",
            "entity: [customers]",
            &["list", "expected a mapping"],
        ),
    ];
    for (from, to, words) in cases {
        let workspace = Workspace::lint_clean();
        workspace.edit_pipeline(from, to);
        let output = workspace.segflow(&["validate", "pipeline.yaml"]);
        let message = stderr_unwrapped(&output);
        assert_eq!(output.status.code(), Some(3), "{to}: {message}");
        for word in *words {
            assert!(
                message.contains(word),
                "{to}: `{word}` missing in {message}"
            );
        }
        for rust in ["struct", "Spec", "u32", "i64", "sequence", " map,", "enum"] {
            assert!(!message.contains(rust), "{to}: `{rust}` in {message}");
        }
    }
    let workspace = Workspace::lint_clean();
    workspace.write("pipeline.yaml", "- version\n- 1\n");
    let message = stderr_unwrapped(&workspace.segflow(&["validate", "pipeline.yaml"]));
    assert!(
        message.contains("invalid type: list, expected a mapping"),
        "{message}"
    );
}

#[test]
fn a_source_given_twice_on_the_command_line_is_refused() {
    let workspace = Workspace::lint_clean();
    for command in ["run", "validate", "plan", "test", "lint"] {
        let output = workspace.segflow(&[
            command,
            "pipeline.yaml",
            "--source",
            "events=events.csv",
            "--source",
            "events=events.csv",
        ]);
        let message = stderr_unwrapped(&output);
        if output.status.code() == Some(2) && message.contains("unexpected argument") {
            continue; // a command without --source
        }
        assert_eq!(output.status.code(), Some(2), "{command}: {message}");
        assert!(
            message.contains("source `events` more than once"),
            "{command}: {message}"
        );
    }
    assert!(!workspace.path().join("out").exists());
    assert!(!workspace.entries().iter().any(|e| e.starts_with("runs")));
}

#[test]
fn explain_accepts_codes_as_errors_print_them() {
    for code in ["feature-cycle", "segflow::feature-cycle"] {
        let output = segflow().args(["explain", code]).output().unwrap();
        assert!(output.status.success(), "{code}: {}", stderr(&output));
        assert!(stdout(&output).contains("cycle"), "{code}");
    }
    let output = segflow()
        .args(["explain", "segflow::no-such"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// Output that cannot be written is exit 5, whatever printed it: help, version, diagnostics in
/// JSON, warnings for people.
#[test]
fn output_to_a_full_device_is_an_error_not_a_silent_success() {
    if !std::path::Path::new("/dev/full").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "/dev/full is missing on CI"
        );
        crate::support::skipping("no /dev/full here");
        return;
    }
    let warned = Workspace::from_fixture("windows"); // unowned segments: lint warnings
    let cases: &[&[&str]] = &[
        &["--help"],
        &["--version"],
        &["run", "--help"],
        &["schema"],
        &["validate", "pipeline.yaml", "--format", "json"],
    ];
    for args in cases {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
            .current_dir(warned.path())
            .args(*args)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(5),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("cannot write"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // Warnings for people go to stderr: a full stderr is an error too.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_segflow"))
        .current_dir(warned.path())
        .args(["lint", "pipeline.yaml"])
        .stderr(Stdio::from(full))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
}

#[test]
fn a_fixture_value_of_the_wrong_type_is_pointed_at() {
    let workspace = Workspace::lint_clean();
    let pipeline = workspace.read("pipeline.yaml");
    workspace.write(
        "pipeline.yaml",
        &format!(
            "{pipeline}tests:\n  - name: typed\n    sources:\n      customers:\n        - {{ customer_id: 1, signup_date: 2026-01-01, score: 3, plan: pro }}\n        - {{ customer_id: 2, signup_date: 2026-13-01, score: 3, plan: pro }}\n      events:\n        - {{ customer_id: 1, ts: \"2026-09-01T00:00:00\", feature: a }}\n    expect:\n      - {{ customer: 1, segment: lapsed }}\n  - name: numbers\n    sources:\n      customers:\n        - {{ customer_id: 1, signup_date: 2026-01-01, score: lots, plan: pro }}\n      events:\n        - {{ customer_id: 1, ts: \"2026-09-01T00:00:00\", feature: a }}\n    expect:\n      - {{ customer: 1, segment: lapsed }}\n"
        ),
    );
    let lines = workspace.read("pipeline.yaml");
    let date_line = lines
        .lines()
        .position(|l| l.contains("2026-13-01"))
        .unwrap()
        + 1;
    let output = workspace.segflow(&["test", "pipeline.yaml"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(message.contains("segflow::fixture-value"), "{message}");
    assert!(
        message.contains(&format!("pipeline.yaml:{date_line}:")),
        "{message}"
    );
    assert!(
        stderr_unwrapped(&output)
            .contains("in column `signup_date` of `customers` is not a valid `date` value"),
        "{message}"
    );

    workspace.edit_pipeline("2026-13-01", "2026-12-01");
    let output = workspace.segflow(&["test", "pipeline.yaml"]);
    let message = stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains("\"lots\" in column `score` of `customers` is not a valid `int64` value"),
        "{message}"
    );
}

/// Flat but long SQL (400 terms, 1,000 ORed conditions) and long chains of features make
/// DataFusion recurse deeply; they must plan and run, not overflow the stack (exit 134).
#[test]
fn long_expressions_and_feature_chains_do_not_overflow_the_stack() {
    let workspace = Workspace::lint_clean();
    let terms = vec!["score"; 400].join(" + ");
    workspace.edit_pipeline("expr: score * 2", &format!("expr: {terms}"));
    let conditions: Vec<String> = (0..1000).map(|i| format!("plan = 'p{i}'")).collect();
    workspace.edit_pipeline(
        "when: events_30 >= 3",
        &format!("when: events_30 >= 3 OR {}", conditions.join(" OR ")),
    );
    let chain: String = (1..=200)
        .map(|i| {
            let previous = if i == 1 { "score".to_string() } else { format!("c{}", i - 1) };
            format!("  - name: c{i}\n    kind: needs\n    description: Chain.\n    expr: {previous} + 1\n")
        })
        .collect();
    workspace.edit_pipeline("segments:\n", &format!("{chain}segments:\n"));
    for args in [
        &["validate", "pipeline.yaml"][..],
        &["plan", "pipeline.yaml"],
        &["run", "pipeline.yaml", "--out", "out", "--quiet"],
    ] {
        let output = workspace.segflow(args);
        assert!(
            output.status.success(),
            "{args:?}: exit {:?} {}",
            output.status.code(),
            stderr(&output)
        );
    }
    let segments = workspace.read("out/segments.csv");
    assert!(segments.contains("busy"), "{segments}");
}

/// Terminal escapes and bidirectional overrides in names (a received pipeline or run folder)
/// reach neither the terminal nor the reports.
#[test]
fn control_characters_never_reach_the_terminal_or_reports() {
    let workspace = Workspace::lint_clean();
    workspace.edit_pipeline(
        "name: Busy",
        "name: \"Busy\\e]0;pwned\\a\\e[31m\\u202Eevil\\x9b\"",
    );
    let run = workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "r1"]);
    workspace.segflow_ok(&[
        "run",
        "pipeline.yaml",
        "--out",
        "r2",
        "--as-of",
        "2026-11-01",
    ]);
    let diff = workspace.segflow(&["diff", "r1", "r2"]);
    let mut everything = stdout(&run) + &stdout(&diff);
    for file in ["report.md", "report.html", "segments.csv"] {
        everything.push_str(&workspace.read(&format!("r1/{file}")));
    }
    for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
        assert!(!everything.contains(bad), "{:?} reached an output", bad);
    }
    assert!(workspace.read("r1/report.md").contains("Busy"));
}

#[test]
fn a_source_the_pipeline_does_not_declare_is_refused_by_every_command_that_reads_sources() {
    let workspace = Workspace::lint_clean();
    for command in ["run", "validate", "plan", "test", "lint"] {
        let output = workspace.segflow(&[command, "pipeline.yaml", "--source", "bogus=/x"]);
        let message = stderr_unwrapped(&output);
        assert_eq!(output.status.code(), Some(2), "{command}: {message}");
        assert!(message.contains("bogus"), "{command}: {message}");
    }
    assert!(!workspace.entries().iter().any(|e| e.starts_with("runs")));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_segflow()"),
        ("zsh", "#compdef segflow"),
        ("fish", "complete -c segflow"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let output = segflow().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("impact") && script.contains("memory-limit"),
            "{shell}"
        );
    }
    let output = segflow().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn settings_made_once_per_machine_come_from_the_environment() {
    let workspace = Workspace::lint_clean();
    let output = segflow()
        .current_dir(workspace.path())
        .env("SEGFLOW_RUNS_DIR", "quarterly")
        .env("SEGFLOW_THREADS", "1")
        .env("SEGFLOW_MEMORY_LIMIT", "512MiB")
        .args(["run", "pipeline.yaml", "--criteria-as-warnings", "--quiet"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let runs: Vec<_> = std::fs::read_dir(workspace.path().join("quarterly"))
        .expect("the run folder is made under SEGFLOW_RUNS_DIR")
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(!workspace.path().join("runs").exists());
    // A value the flag refuses is refused from the environment too.
    let output = segflow()
        .current_dir(workspace.path())
        .env("SEGFLOW_THREADS", "0")
        .args(["run", "pipeline.yaml", "--out", "other"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("threads"), "{}", stderr(&output));
}
