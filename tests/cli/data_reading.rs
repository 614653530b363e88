//! Reading sources: every file of a glob checked against the declared types whatever its name,
//! one time-zone rule for every format, literal paths, and messages naming the file.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;

use crate::support::{Workspace, segflow, stderr, stderr_unwrapped};

/// The `windows` fixture's events as rows (customer, ts, feature).
fn events(workspace: &Workspace) -> Vec<(i64, String, String)> {
    workspace
        .read("events.csv")
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (
                cells[0].parse().expect("id"),
                cells[1].to_string(),
                cells[2].to_string(),
            )
        })
        .collect()
}

fn write_parquet(workspace: &Workspace, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    workspace.write_bytes(name, &bytes);
}

/// Write `rows` as Parquet events, with `ts` as their `ts` column.
fn events_parquet(workspace: &Workspace, name: &str, rows: &[(i64, String, String)], ts: ArrayRef) {
    let ids = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
    let features = StringArray::from_iter_values(rows.iter().map(|r| r.2.clone()));
    write_parquet(
        workspace,
        name,
        vec![
            ("customer_id", Arc::new(ids) as ArrayRef),
            ("ts", ts),
            ("feature", Arc::new(features)),
        ],
    );
}

/// Run the pipeline and require a refusal (exit 4, nothing written) whose message holds `parts`.
fn refused(workspace: &Workspace, parts: &[&str]) {
    let output = workspace.segflow(&["run", "pipeline.yaml", "--out", "out"]);
    let message = stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(4), "{message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
    assert!(!workspace.path().join("out").exists());
}

/// Issue 17: a Parquet glob where one file's `ts` is int64 was read as microseconds since 1970
/// when that file's name sorted last. Whatever the name, it is refused, naming file and column.
#[test]
fn a_parquet_file_with_numbers_for_a_timestamp_is_refused_whatever_its_name() {
    for odd_name in ["a.parquet", "m.parquet", "z.parquet"] {
        let workspace = Workspace::lint_clean();
        std::fs::create_dir(workspace.path().join("events")).expect("mkdir");
        workspace.edit_pipeline("path: events.csv", "path: events/*.parquet");
        let rows = events(&workspace);
        let (text, numbers) = rows.split_at(rows.len() - 2);
        let text_ts = StringArray::from_iter_values(text.iter().map(|r| r.1.clone()));
        events_parquet(&workspace, "events/f.parquet", text, Arc::new(text_ts));
        let micros = Int64Array::from_iter_values(numbers.iter().map(|_| 1_790_000_000_000_000));
        let name = format!("events/{odd_name}");
        events_parquet(&workspace, &name, numbers, Arc::new(micros));
        refused(
            &workspace,
            &[
                "source `events`",
                odd_name,
                "column `ts`",
                "holds numbers (Int64)",
            ],
        );
    }
}

/// NDJSON where some rows of a declared timestamp hold numbers and others strings: refused, with
/// the file and the editor's line, in whichever file and on whichever line the number is.
#[test]
fn ndjson_numbers_among_timestamp_strings_are_refused_wherever_they_are() {
    let files = ["events/a.ndjson", "events/m.ndjson", "events/z.ndjson"];
    for (bad_file, bad_line) in [(0, 1), (1, 2), (2, 3), (2, 1)] {
        let workspace = Workspace::lint_clean();
        std::fs::create_dir(workspace.path().join("events")).expect("mkdir");
        workspace.edit_pipeline("path: events.csv", "path: events/*.ndjson");
        let rows = events(&workspace);
        for (f, file) in files.iter().enumerate() {
            let mut text = String::new();
            for (i, (id, ts, feature)) in rows.iter().skip(f * 3).take(3).enumerate() {
                let ts = if f == bad_file && i + 1 == bad_line {
                    "1790000000000000".to_string()
                } else {
                    format!("\"{ts}\"")
                };
                text.push_str(&format!(
                    "{{\"customer_id\": {id}, \"ts\": {ts}, \"feature\": \"{feature}\"}}\n"
                ));
            }
            workspace.write(file, &text);
        }
        let line = format!("{}, line {bad_line}, column `ts`", files[bad_file]);
        refused(&workspace, &["source `events`", &line, "holds numbers"]);
    }
}

/// Dates too: a number among date strings in NDJSON is not read as days since 1970.
#[test]
fn ndjson_numbers_among_date_strings_are_refused() {
    let workspace = Workspace::lint_clean();
    let mut ndjson = String::new();
    for (i, line) in workspace.read("customers.csv").lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let date = if i == 2 {
            "20000".to_string()
        } else {
            format!("\"{}\"", cells[1])
        };
        ndjson.push_str(&format!(
            "{{\"customer_id\": {}, \"signup_date\": {date}, \"plan\": \"{}\", \"score\": null}}\n",
            cells[0], cells[2]
        ));
    }
    workspace.write("customers.ndjson", &ndjson);
    workspace.edit_pipeline("path: customers.csv", "path: customers.ndjson");
    refused(
        &workspace,
        &[
            "customers.ndjson, line 3, column `signup_date`",
            "declared date",
        ],
    );
}

/// Instants on both sides of the as-of date's midnight UTC (2026-10-01) and of the 30-day
/// window's start, written with offsets that put their local dates on the other side.
const INSTANTS: [(i64, &str); 4] = [
    (1, "2026-09-30T22:00:00-05:00"), // 03:00 UTC on the as-of date: outside
    (1, "2026-10-01T08:00:00+09:00"), // 23:00 UTC the day before: inside
    (3, "2026-09-01T02:00:00+03:00"), // 23:00 UTC before the window: outside
    (3, "2026-08-31T22:00:00-04:00"), // 02:00 UTC on the window's first day: inside
];

/// `events_30` of customers 1 and 3 in a run of the workspace's pipeline with TZ=`zone`.
fn events_30(workspace: &Workspace, zone: &str) -> Vec<serde_json::Value> {
    let out = workspace.path().join("out");
    let _ = std::fs::remove_dir_all(&out);
    let output = crate::support::segflow()
        .current_dir(workspace.path())
        .env("TZ", zone)
        .args(["run", "pipeline.yaml", "--out", "out"])
        .output()
        .expect("run segflow");
    assert!(output.status.success(), "{}", stderr_unwrapped(&output));
    let (rows, _) =
        crate::support::read_assignments(&out.join("assignments.parquet"), "customer_id");
    [1, 3]
        .iter()
        .map(|id| rows[id]["events_30"].clone())
        .collect()
}

/// Issue 17: the as-of cutoff was local midnight for Parquet timestamps with a time zone and
/// midnight UTC for CSV and NDJSON with offsets. Every format now compares instants in UTC,
/// whatever the zone of the data or of the machine.
#[test]
fn the_same_instants_count_the_same_in_every_format_and_machine_zone() {
    let workspace = Workspace::lint_clean();
    let mut csv = String::from("customer_id,ts,feature\n");
    let mut ndjson = String::new();
    for (id, ts) in INSTANTS {
        csv.push_str(&format!("{id},{ts},a\n"));
        ndjson.push_str(&format!(
            "{{\"customer_id\": {id}, \"ts\": \"{ts}\", \"feature\": \"a\"}}\n"
        ));
    }
    workspace.write("events.csv", &csv);
    workspace.write("events.ndjson", &ndjson);
    let micros: Vec<i64> = INSTANTS
        .iter()
        .map(|(_, ts)| {
            chrono::DateTime::parse_from_rfc3339(ts)
                .expect("instant")
                .timestamp_micros()
        })
        .collect();
    for zone in ["America/New_York", "Asia/Tokyo"] {
        let name = format!("events-{}.parquet", zone.replace('/', "-"));
        write_parquet(
            &workspace,
            &name,
            vec![
                (
                    "customer_id",
                    Arc::new(Int64Array::from_iter_values(INSTANTS.iter().map(|r| r.0)))
                        as ArrayRef,
                ),
                (
                    "ts",
                    Arc::new(TimestampMicrosecondArray::from(micros.clone()).with_timezone(zone)),
                ),
                (
                    "feature",
                    Arc::new(StringArray::from_iter_values(INSTANTS.iter().map(|_| "a"))),
                ),
            ],
        );
    }
    let expected = vec![serde_json::json!(1), serde_json::json!(1)];
    let mut path = "events.csv".to_string();
    // Parquet with the column declared `timestamp`, then as stored (undeclared, with its zone).
    let files = [
        "events.csv",
        "events.ndjson",
        "events-America-New_York.parquet",
        "events-Asia-Tokyo.parquet",
        "undeclared",
        "events-America-New_York.parquet",
        "events-Asia-Tokyo.parquet",
    ];
    for file in files {
        if file == "undeclared" {
            workspace.edit_pipeline("columns: { ts: timestamp }", "columns: {}");
            continue;
        }
        workspace.edit_pipeline(&format!("path: {path}"), &format!("path: {file}"));
        path = file.to_string();
        for zone in ["America/New_York", "Asia/Tokyo", "UTC"] {
            let found = events_30(&workspace, zone);
            assert_eq!(found, expected, "{path} with TZ={zone}");
        }
    }
}

/// Names with every glob character and spaces, for folders and files.
const ODD_NAMES: [&str; 3] = ["q4 [draft]", "what? *all*", "a]b[c"];

/// Issue 17: a project folder whose name holds `[`, `]`, `?` or `*` was taken as a pattern, and
/// the run failed with "No files found". The folder is literal; the pipeline's glob still works.
#[test]
fn a_project_folder_with_glob_characters_is_read_literally() {
    for odd in ODD_NAMES {
        let workspace = Workspace::lint_clean();
        let project = workspace.path().join(format!("Projects {odd}"));
        std::fs::create_dir_all(project.join("events")).expect("mkdir");
        for name in ["pipeline.yaml", "customers.csv"] {
            std::fs::copy(workspace.path().join(name), project.join(name)).expect("copy");
        }
        std::fs::copy(
            workspace.path().join("events.csv"),
            project.join("events/all.csv"),
        )
        .expect("copy");
        let pipeline = project.join("pipeline.yaml");
        let text = std::fs::read_to_string(&pipeline).expect("read");
        std::fs::write(
            &pipeline,
            text.replace("path: events.csv", "path: events/*.csv"),
        )
        .expect("write");
        let pipeline = format!("Projects {odd}/pipeline.yaml");
        workspace.segflow_ok(&["run", &pipeline, "--out", "out"]);
    }
}

/// `--source NAME=PATH` is always a literal path, and a pipeline's `path:` naming a file that
/// exists is that file, though it reads as a pattern.
#[test]
fn source_paths_with_glob_characters_are_literal() {
    for odd in ODD_NAMES {
        let workspace = Workspace::lint_clean();
        std::fs::create_dir(workspace.path().join(odd)).expect("mkdir");
        let file = format!("{odd}/{odd}.csv");
        std::fs::copy(
            workspace.path().join("events.csv"),
            workspace.path().join(&file),
        )
        .expect("copy");
        let given = format!("events={file}");
        workspace.segflow_ok(&["run", "pipeline.yaml", "--source", &given, "--out", "out"]);
        std::fs::remove_dir_all(workspace.path().join("out")).expect("clean");
        workspace.edit_pipeline("path: events.csv", &format!("path: \"{file}\""));
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
    }
}

/// Issue 17: errors for unreadable CSV and NDJSON did not name the file, and gave line numbers
/// one less than an editor's. Each names source, file and line (the CSV header is line 1).
#[test]
fn text_file_errors_name_file_and_editor_line() {
    let header = "customer_id,ts,feature\n";
    let row = "1,2026-09-01T00:00:00,a\n";
    let json = "{\"customer_id\": 1, \"ts\": \"2026-09-01T00:00:00\", \"feature\": \"a\"}\n";
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            format!("{header}{row}")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "e.csv",
            [
                format!("{header}{row}1,2026-09-02T00:00:00,caf").as_bytes(),
                b"\xE9\n",
            ]
            .concat(),
            "e.csv, line 3: is not UTF-8 text",
        ),
        ("e.csv", utf16, "e.csv: is UTF-16 text"),
        (
            "e.csv",
            format!("{header}{row}{row}1,2026-09-02T00:00:00\n").into_bytes(),
            "e.csv, line 4: has 2 fields, but the header has 3",
        ),
        (
            "e.csv",
            format!("{header}{row}1,x,b\n").into_bytes(),
            "e.csv, column `ts`: Error parsing column 1 at line 3",
        ),
        (
            "e.csv",
            "customer_id,ts,feature,ts\n1,2026-09-01T00:00:00,a,b\n".into(),
            "column `ts` appears twice in the header of e.csv",
        ),
        (
            "e.ndjson",
            format!("{json}{{\"customer_id\": 1,\n").into_bytes(),
            "e.ndjson, line 2: is not valid JSON",
        ),
        (
            "e.ndjson",
            format!("{json}{json}{}", json.replace("2026-09-01T00:00:00", "x")).into_bytes(),
            "e.ndjson, line 3, column `ts`: Parser error",
        ),
    ];
    for (name, bytes, expected) in cases {
        let workspace = Workspace::lint_clean();
        workspace.write_bytes(name, &bytes);
        workspace.edit_pipeline("path: events.csv", &format!("path: {name}"));
        refused(&workspace, &["source `events`: ", expected]);
    }
}

/// A change that spoils one file of a workspace.
type Spoil = dyn Fn(&Workspace);

/// Parquet problems name the file of the glob they are in: a column typed differently from the
/// other files, and a damaged footer.
#[test]
fn parquet_file_errors_name_the_file() {
    let clash = |workspace: &Workspace| {
        let rows = events(workspace);
        let ids = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
        let ts = StringArray::from_iter_values(rows.iter().map(|r| r.1.clone()));
        let numbers = Int64Array::from_iter_values(rows.iter().map(|_| 7));
        write_parquet(
            workspace,
            "events/b.parquet",
            vec![
                ("customer_id", Arc::new(ids) as ArrayRef),
                ("ts", Arc::new(ts)),
                ("feature", Arc::new(numbers)),
            ],
        );
    };
    let damage = |workspace: &Workspace| {
        let path = workspace.path().join("events/b.parquet");
        let mut bytes = std::fs::read(&path).expect("read");
        let at = bytes.len() - 8;
        bytes[at..at + 4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x7F]);
        std::fs::write(&path, bytes).expect("write");
    };
    let cases: [(&Spoil, &str); 2] = [
        (
            &clash,
            "events/b.parquet, column `feature`: is Int64 here but Utf8",
        ),
        (&damage, "events/b.parquet: not a readable Parquet file"),
    ];
    for (spoil, expected) in cases {
        let workspace = Workspace::lint_clean();
        std::fs::create_dir(workspace.path().join("events")).expect("mkdir");
        workspace.edit_pipeline("path: events.csv", "path: events/*.parquet");
        let rows = events(&workspace);
        for name in ["events/a.parquet", "events/b.parquet", "events/c.parquet"] {
            let ts = StringArray::from_iter_values(rows.iter().map(|r| r.1.clone()));
            events_parquet(&workspace, name, &rows, Arc::new(ts));
        }
        spoil(&workspace);
        refused(&workspace, &["source `events`: ", expected]);
    }
}

/// Issue 17: a time column of the wrong type was reported once per aggregate over its source.
#[test]
fn a_time_column_error_is_printed_once() {
    let workspace = Workspace::lint_clean();
    workspace.edit_pipeline("columns: { ts: timestamp }", "columns: { ts: string }");
    let output = workspace.segflow(&["validate", "pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr_unwrapped(&output);
    let problem = "time column `ts` of source `events` holds Utf8";
    assert_eq!(message.matches(problem).count(), 1, "{message}");
}

/// A CSV large enough for DataFusion to split into byte ranges (over 10 MB) still gets the
/// editor's line of a bad value, not its line within a range.
#[test]
fn a_bad_value_deep_in_a_large_csv_gets_its_editor_line() {
    let workspace = Workspace::lint_clean();
    let rows = 400_000;
    let mut csv = String::from("customer_id,ts,feature\n");
    csv.push_str(&"1,2026-09-01T00:00:00,aaaaaaaaaa\n".repeat(rows));
    csv.push_str("1,x,b\n");
    workspace.write("events.csv", &csv);
    let line = format!(
        "events.csv, column `ts`: Error parsing column 1 at line {}",
        rows + 2
    );
    refused(&workspace, &["source `events`: ", &line]);
}

/// Only what the pipeline wrote is a pattern: a `${VAR}` value is matched literally, brackets and
/// stars included.
#[test]
fn variable_values_in_a_glob_path_are_literal() {
    let workspace = Workspace::from_fixture("windows");
    let folder = workspace.path().join("Projects [2026]").join("exports");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::rename(
        workspace.path().join("events.csv"),
        folder.join("events.csv"),
    )
    .unwrap();
    workspace.edit_pipeline("path: events.csv", "path: ${EXPORT_DIR}/ev*.csv");
    let run = |value: &str, out: &str| {
        segflow()
            .current_dir(workspace.path())
            .env("EXPORT_DIR", value)
            .args(["run", "pipeline.yaml", "--out", out])
            .output()
            .unwrap()
    };
    let output = run(&folder.display().to_string(), "a");
    assert!(output.status.success(), "{}", stderr(&output));
    // A star in the value does not reach into other folders.
    let star = workspace.path().join("Projects [2026]").join("*");
    let output = run(&star.display().to_string(), "b");
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no files match"),
        "{}",
        stderr(&output)
    );
}

/// Issue 17: a column named `we"ird` exited 4 "No field named": column names are names, never
/// parsed, whatever quotes, dots, spaces or capitals they hold, in every format; and an
/// aggregate and an expression can use them quoted as SQL quotes them.
#[test]
fn column_names_with_quotes_dots_and_spaces_are_read_as_they_are() {
    let names = ["we\"ird", "a.b", "two words", "MixedCase"];
    let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    for format in ["csv", "ndjson", "parquet"] {
        let workspace = Workspace::from_fixture("ties");
        let ids: Vec<i64> = (1..=6).collect();
        // Customer i has i in every odd column; the expected feature is 4 * i.
        match format {
            "csv" => {
                let header: Vec<String> = names
                    .iter()
                    .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
                    .collect();
                let mut text = format!("id,{}\n", header.join(","));
                for i in &ids {
                    text.push_str(&format!("{i},{i},{i},{i},{i}\n"));
                }
                workspace.write("odd.csv", &text);
            }
            "ndjson" => {
                let mut text = String::new();
                for i in &ids {
                    let mut row = serde_json::Map::new();
                    row.insert("id".into(), (*i).into());
                    for name in names {
                        row.insert(name.into(), (*i).into());
                    }
                    text.push_str(&format!("{}\n", serde_json::Value::Object(row)));
                }
                workspace.write("odd.ndjson", &text);
            }
            _ => {
                let mut columns = vec![("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef)];
                for name in names {
                    columns.push((name, Arc::new(Int64Array::from(ids.clone())) as ArrayRef));
                }
                write_parquet(&workspace, "odd.parquet", columns);
            }
        }
        let sum = names
            .iter()
            .map(|n| quoted(n))
            .collect::<Vec<_>>()
            .join(" + ");
        workspace.write(
            "pipeline.yaml",
            &format!(
                "reports: {{ min_cell: 1 }}\nversion: 1\nname: odd\nas_of: 2026-10-01\n\
                 sources:\n  odd: {{ path: odd.{format}, key: id }}\n\
                 entity: {{ source: odd, key: id }}\n\
                 features:\n\
                 \x20 - {{ name: total, kind: value, description: Sum., expr: '{sum}' }}\n\
                 \x20 - {{ name: weird_max, kind: value, description: Max., aggregate: {{ source: odd, expr: 'max({})' }} }}\n\
                 segments:\n\
                 \x20 - {{ id: high, name: High, when: total >= 16, owner: crm, actions: [Reward] }}\n\
                 \x20 - {{ id: rest, name: Rest, owner: crm, actions: [Nudge] }}\n",
                quoted(names[0]).replace('\'', "''")
            ),
        );
        workspace.segflow_ok(&["run", "pipeline.yaml", "--out", "out"]);
        let (rows, _) = crate::support::read_assignments(
            &workspace.path().join("out/assignments.parquet"),
            "id",
        );
        assert_eq!(rows.len(), ids.len(), "{format}");
        for i in &ids {
            let row = &rows[i];
            assert_eq!(
                row["total"].as_f64(),
                Some(4.0 * *i as f64),
                "{format}: {row:?}"
            );
            assert_eq!(
                row["weird_max"].as_f64(),
                Some(*i as f64),
                "{format}: {row:?}"
            );
            let segment = if 4 * i >= 16 { "high" } else { "rest" };
            assert_eq!(row["segment"].as_str(), Some(segment), "{format}: {row:?}");
        }
    }
}
