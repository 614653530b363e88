//! The corpus of broken inputs: each case breaks the `windows` fixture in one way and pins the
//! exact message (snapshot), the exit code, that nothing panicked and that no output was left.

use crate::support::{Workspace, stderr};

enum Edit {
    /// Replace the first `from` in pipeline.yaml with `to`.
    Pipeline(&'static str, &'static str),
    /// Append to pipeline.yaml.
    Append(&'static str),
    /// Write a file of the workspace.
    File(&'static str, &'static [u8]),
}

use Edit::{Append, File, Pipeline};

const RUN: &[&str] = &["run", "pipeline.yaml", "--out", "out"];
const VALIDATE: &[&str] = &["validate", "pipeline.yaml"];

struct Case {
    name: &'static str,
    edits: &'static [Edit],
    args: &'static [&'static str],
    code: i32,
}

const CASES: &[Case] = &[
    Case {
        name: "empty_file",
        edits: &[File("pipeline.yaml", b"")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "list_instead_of_mapping",
        edits: &[File("pipeline.yaml", b"- version\n- 1\n")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "tab_indentation",
        edits: &[Pipeline("  customers:\n", "\tcustomers:\n")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "duplicate_yaml_key",
        edits: &[Pipeline("entity:", "name: again\nentity:")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "missing_entity",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }\n",
            "",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "misspelt_top_level_key",
        edits: &[Pipeline("segments:", "segmnts:")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "segments_not_a_list",
        edits: &[Pipeline("segments:\n", "segments: busy\nold_segments:\n")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "window_days_not_a_number",
        edits: &[Pipeline(
            "window_days: 30, default: 0 }\n  - name: events_30",
            "window_days: thirty, default: 0 }\n  - name: events_30",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "feature_uses_itself",
        edits: &[Pipeline("expr: score * 2", "expr: score_double * 2")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "negative_window",
        edits: &[Pipeline(
            "window_days: 30, default: 0 }\n  - name: events_30",
            "window_days: -30, default: 0 }\n  - name: events_30",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "zero_window",
        edits: &[Pipeline(
            "window_days: 30, default: 0 }\n  - name: events_30",
            "window_days: 0, default: 0 }\n  - name: events_30",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "unknown_format",
        edits: &[Pipeline(
            "path: events.csv",
            "path: events.csv\n    format: xlsx",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "unknown_column_type",
        edits: &[Pipeline("score: int64", "score: integer")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "unknown_extension",
        edits: &[Pipeline("path: customers.csv", "path: customers.txt")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "source_with_path_and_postgres",
        edits: &[Pipeline(
            "path: customers.csv",
            "path: customers.csv\n    postgres: { url: \"postgres://localhost/crm\", table: customers }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "source_with_neither_path_nor_postgres",
        edits: &[Pipeline("    path: customers.csv\n", "")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "postgres_source_with_table_and_query",
        edits: &[Pipeline(
            "path: customers.csv",
            "postgres: { url: \"postgres://localhost/crm\", table: customers, query: SELECT 1 }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "postgres_url_with_a_written_password",
        edits: &[Pipeline(
            "path: customers.csv",
            "postgres: { url: \"postgres://crm:hunter22@localhost/crm\", table: customers }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "postgres_url_variable_unset",
        edits: &[Pipeline(
            "path: customers.csv",
            "postgres: { url: \"${SEGFLOW_CORPUS_UNSET_URL}\", table: customers }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "postgres_source_with_a_format",
        edits: &[Pipeline(
            "path: customers.csv",
            "postgres: { url: \"postgres://localhost/crm\", table: customers }\n    format: csv",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "entity_key_not_in_source",
        edits: &[Pipeline("key: customer_id }", "key: customer }")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "time_column_not_in_source",
        edits: &[Pipeline("time_column: ts", "time_column: timestamp")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "time_column_not_temporal",
        edits: &[Pipeline("time_column: ts", "time_column: feature")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "declared_column_missing_from_file",
        edits: &[Pipeline("score: int64 }", "score: int64, tier: string }")],
        args: VALIDATE,
        code: 4,
    },
    Case {
        name: "expr_and_aggregate",
        edits: &[Pipeline(
            "    expr: score * 2\n",
            "    expr: score * 2\n    aggregate: { source: events, expr: count(*) }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "feature_without_definition",
        edits: &[Pipeline("    expr: score * 2\n", "")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "reserved_feature_name",
        edits: &[Pipeline("- name: score_double", "- name: segment")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "invalid_feature_name",
        edits: &[Pipeline("- name: score_double", "- name: Score-Double")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "duplicate_feature",
        edits: &[Pipeline("- name: score_double", "- name: tenure_days")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "two_catch_alls",
        edits: &[
            Pipeline("    when: events_30 >= 3\n", ""),
            Pipeline("    when: active_days_30 >= 1\n", ""),
        ],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "no_segments",
        edits: &[Append("")],
        args: &["validate", "empty_segments.yaml"],
        code: 3,
    },
    Case {
        name: "rule_uses_entity_column",
        edits: &[Pipeline("when: events_30 >= 3", "when: score >= 3")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "string_compared_with_number",
        edits: &[Pipeline("when: events_30 >= 3", "when: plan > 5")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "aggregate_without_aggregation",
        edits: &[Pipeline("expr: count(DISTINCT feature)", "expr: feature")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "empty_source_file",
        edits: &[File("events.csv", b"")],
        args: RUN,
        code: 4,
    },
    Case {
        name: "ragged_csv_rows",
        edits: &[File(
            "events.csv",
            b"customer_id,ts,feature\n1,2026-09-01T00:00:00,a\n3,2026-09-15T10:00:00\n",
        )],
        args: RUN,
        code: 4,
    },
    Case {
        name: "truncated_parquet",
        edits: &[
            Pipeline("path: events.csv", "path: events.parquet"),
            File(
                "events.parquet",
                b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00",
            ),
        ],
        args: RUN,
        code: 4,
    },
    Case {
        name: "text_file_named_parquet",
        edits: &[
            Pipeline("path: events.csv", "path: events.parquet"),
            File(
                "events.parquet",
                b"customer_id,ts,feature\n1,2026-09-01T00:00:00,a\n",
            ),
        ],
        args: RUN,
        code: 4,
    },
    Case {
        name: "bad_as_of_flag",
        edits: &[],
        args: &["run", "pipeline.yaml", "--as-of", "2026-13-01"],
        code: 2,
    },
    Case {
        name: "template_syntax_error",
        edits: &[
            Pipeline("name: windows\n", "name: windows\ntemplates: tpl\n"),
            File(
                "tpl/report.md.j2",
                b"# {{ pipeline.title }\n{% for s in segments %}\n",
            ),
        ],
        args: RUN,
        code: 3,
    },
    Case {
        name: "template_folder_missing",
        edits: &[Pipeline(
            "name: windows\n",
            "name: windows\ntemplates: no_such_folder\n",
        )],
        args: RUN,
        code: 3,
    },
    Case {
        name: "output_under_a_file",
        edits: &[File("taken", b"not a folder")],
        args: &["run", "pipeline.yaml", "--out", "taken/run"],
        code: 5,
    },
    Case {
        name: "quantile_of_unknown_feature",
        edits: &[Pipeline(
            "    expr: score * 2\n",
            "    quantile: { of: scor, buckets: 4 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "quantile_buckets_and_cuts",
        edits: &[Pipeline(
            "    expr: score * 2\n",
            "    quantile: { of: tenure_days, buckets: 4, cuts: [10, 100] }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "hand_score_out_of_range",
        edits: &[
            Pipeline(
                "    name: Busy\n",
                "    name: Busy\n    scores: { fit: { score: 11 } }\n",
            ),
            Append("scoring:\n  factors:\n    - { id: fit, name: Fit, weight: 100 }\n"),
        ],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "hand_score_missing",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: fit, name: Fit, weight: 100 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "unit_too_long_and_empty",
        edits: &[
            Pipeline(
                "    expr: score * 2\n",
                "    expr: score * 2\n    unit: survey points per customer\n",
            ),
            Pipeline(
                "    expr: as_of() - signup_date\n",
                "    expr: as_of() - signup_date\n    unit: \"\"\n",
            ),
        ],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "reports_misspelt_min_cell",
        edits: &[Pipeline(
            "reports: { min_cell: 1 }",
            "reports: { min_cells: 10 }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "reports_negative_min_cell",
        edits: &[Pipeline(
            "reports: { min_cell: 1 }",
            "reports: { min_cell: -1 }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "matrix_unknown_feature",
        edits: &[Append(
            "matrix:\n  value: { feature: revenue, split: median }\n  engagement: { feature: events_30, split: { quantile: 1.5 } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "two_personas_for_a_segment",
        edits: &[Append(
            "personas:\n  - { segment: busy, name: A }\n  - { segment: busy, name: B }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "threshold_without_levels",
        edits: &[Append(
            "criteria:\n  identifiable:\n    unassigned_share: {}\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "malformed_interpolation",
        edits: &[Pipeline(
            "path: events.csv",
            "path: ${EVENTS_DIR/events.csv",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "invalid_pipeline_name",
        edits: &[Pipeline("name: windows\n", "name: My Windows\n")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "non_boolean_reachable",
        edits: &[Append(
            "criteria:\n  accessible:\n    reachable: score_double\n    share: { error_if_below: 0.5 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "unsupported_version",
        edits: &[Pipeline("version: 1\n", "version: 2\n")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "window_without_time_column",
        edits: &[Pipeline("    time_column: ts\n", "")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "no_features_to_differentiate",
        edits: &[Append(
            "criteria:\n  differentiable:\n    features: []\n    effect_size: { warn_if_below: 0.5 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "negative_weight",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: size, name: Size, weight: 120, derived: { metric: customers, method: min_max } }\n    - { id: fit, name: Fit, weight: -20, derived: { metric: share, method: min_max } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "descending_breakpoints",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: size, name: Size, weight: 100, derived: { metric: customers, method: { breakpoints: [10, 5] } } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "scores_without_scoring",
        edits: &[Pipeline(
            "    when: events_30 >= 3\n",
            "    when: events_30 >= 3\n    scores: { fit: { score: 5 } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "hand_score_for_a_derived_factor",
        edits: &[
            Pipeline(
                "    when: events_30 >= 3\n",
                "    when: events_30 >= 3\n    scores: { size: { score: 5 } }\n",
            ),
            Append(
                "scoring:\n  factors:\n    - { id: size, name: Size, weight: 60, derived: { metric: customers, method: min_max } }\n    - { id: fit, name: Fit, weight: 40, derived: { metric: share, method: min_max } }\n",
            ),
        ],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "stability_without_draws",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: size, name: Size, weight: 100, derived: { metric: customers, method: min_max } }\n  stability: { draws: 0 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "test_expects_unknown_segment",
        edits: &[Append(
            "tests:\n  - name: t\n    sources: { customers: [{ customer_id: 1 }] }\n    expect: [{ customer: 1, segment: bussy }]\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "threshold_levels_in_the_wrong_order",
        edits: &[Append(
            "criteria:\n  identifiable:\n    unassigned_share: { warn_if_above: 0.2, error_if_above: 0.1 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "reachable_uses_a_column_not_a_feature",
        edits: &[Append(
            "criteria:\n  accessible:\n    reachable: signup_date IS NOT NULL\n    share: { error_if_below: 0.5 }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "weight_not_a_number",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: size, name: Size, weight: .nan, derived: { metric: customers, method: min_max } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "stability_infinite_shift_and_too_many_draws",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: size, name: Size, weight: 100, derived: { metric: customers, method: min_max } }\n  stability: { draws: 4294967295, max_shift: .inf }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "stable_empty_feature_list",
        edits: &[Append(
            "criteria:\n  stable: { psi: { warn_if_above: 0.1 }, features: [] }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "validity_on_a_source_that_is_not_the_entity",
        edits: &[Pipeline(
            "    path: events.csv\n",
            "    path: events.csv\n    valid_from: ts\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "validity_from_and_to_the_same_column",
        edits: &[Pipeline(
            "    path: customers.csv\n",
            "    path: customers.csv\n    valid_from: signup_date\n    valid_to: signup_date\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "threshold_not_a_number",
        edits: &[Append(
            "criteria:\n  stable: { psi: { warn_if_above: .nan, error_if_above: .inf }, migration: { warn_if_above: -.inf } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "breakpoint_not_a_number",
        edits: &[Append(
            "scoring:\n  factors:\n    - { id: size, name: Size, weight: 100, derived: { metric: customers, method: { breakpoints: [.nan] } } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "matrix_split_not_a_number",
        edits: &[Append(
            "matrix:\n  value: { feature: events_30, split: { value: .nan } }\n  engagement: { feature: active_days_30, split: median }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "matrix_on_a_date_feature",
        edits: &[Append(
            "matrix:\n  value: { feature: last_event, split: median }\n  engagement: { feature: active_days_30, split: median }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "window_before_the_earliest_timestamp",
        edits: &[Pipeline(
            "window_days: 30, default: 0 }\n  - name: events_30",
            "window_days: 400000, default: 0 }\n  - name: events_30",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "as_of_beyond_the_latest_timestamp",
        edits: &[],
        args: &["validate", "pipeline.yaml", "--as-of", "2300-01-01"],
        code: 3,
    },
    Case {
        name: "subquery_in_a_rule",
        edits: &[Pipeline(
            "when: events_30 >= 3",
            "when: (SELECT count(*) FROM events) > 0",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "row_generator_in_a_feature",
        edits: &[Pipeline(
            "expr: score * 2",
            "expr: cardinality(generate_series(1, 1000000000000))",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "entity_source_and_from",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }",
            "entity: { source: customers, from: [events], key: customer_id }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "entity_without_source",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }",
            "entity: { key: customer_id }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "entity_is_an_event_table",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }",
            "entity: { source: events, key: customer_id }",
        )],
        args: RUN,
        code: 3,
    },
    Case {
        name: "since_on_distinct_keys",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }",
            "entity: { source: events, key: customer_id, distinct: true, since: ts }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "distinct_keys_source_without_the_key",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }",
            "entity: { source: events, key: user_id, distinct: true }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "since_not_a_date",
        edits: &[Pipeline(
            "entity: { source: customers, key: customer_id }",
            "entity: { source: customers, key: customer_id, since: score }",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "valid_to_without_valid_from",
        edits: &[Pipeline(
            "score: int64 }\n",
            "score: int64 }\n    valid_to: signup_date\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "valid_from_not_a_column",
        edits: &[Pipeline(
            "score: int64 }\n",
            "score: int64 }\n    valid_from: valid_since\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "ties_with_cuts",
        edits: &[Pipeline(
            "features:\n",
            "features:\n  - { name: score_band, kind: needs, description: Bands., quantile: { of: score_double, cuts: [2, 4], ties: together } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "ties_together_with_too_many_buckets",
        edits: &[Pipeline(
            "features:\n",
            "features:\n  - { name: score_band, kind: needs, description: Bands., quantile: { of: score_double, buckets: 101, ties: together } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "stable_without_levels",
        edits: &[Append("criteria:\n  stable: { features: [engagement] }\n")],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "stable_unknown_feature_and_share_above_one",
        edits: &[Append(
            "criteria:\n  stable: { features: [engagment], migration: { warn_if_above: 1.5 } }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "exports_broken_in_every_way",
        edits: &[Append(
            "exports:\n  - name: both\n    file: out.csv\n    postgres: { url: \"${CRM_URL_NOT_SET}\", table: t }\n  - name: neither\n    features: [engagment, engagement, engagement]\n  - name: bad_table\n    postgres: { url: \"postgres://localhost/db\", table: Public.Segments, history_table: Public.Segments }\n  - name: both\n    file: segments.xlsx\n  - name: again\n    file: out.csv\n  - name: again_too\n    file: out.csv\n  - name: same_table\n    postgres: { url: \"postgres://localhost/db\", table: t2, history_table: t2_history }\n  - name: same_table_again\n    postgres: { url: \"postgres://localhost/db\", table: t2_history }\n",
        )],
        args: VALIDATE,
        code: 3,
    },
    Case {
        name: "unknown_source_override",
        edits: &[],
        args: &["validate", "pipeline.yaml", "--source", "event=x.csv"],
        code: 2,
    },
    Case {
        name: "missing_pipeline_file",
        edits: &[],
        args: &["validate", "nowhere.yaml"],
        code: 3,
    },
];

#[test]
fn every_broken_input_gets_its_exact_message_and_exit_code() {
    assert!(CASES.len() >= 40, "the corpus has {} cases", CASES.len());
    for case in CASES {
        let workspace = Workspace::lint_clean();
        if case.name == "no_segments" {
            let pipeline = workspace.read("pipeline.yaml");
            let cut = pipeline.find("segments:").unwrap();
            workspace.write(
                "empty_segments.yaml",
                &format!("{}segments: []\n", &pipeline[..cut]),
            );
        }
        for edit in case.edits {
            match edit {
                Pipeline(from, to) => workspace.edit_pipeline(from, to),
                Append(text) => {
                    let pipeline = workspace.read("pipeline.yaml");
                    workspace.write("pipeline.yaml", &format!("{pipeline}{text}"));
                }
                File(name, bytes) => {
                    let path = workspace.path().join(name);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(path, bytes).unwrap();
                }
            }
        }
        let before = workspace.entries();
        let output = workspace.segflow(case.args);
        let message = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(case.code),
            "{}: {message}",
            case.name
        );
        assert!(
            !message.contains("panicked") && !message.contains("internal error"),
            "{}: {message}",
            case.name
        );
        assert_eq!(
            workspace.entries(),
            before,
            "{}: files were left behind",
            case.name
        );
        let root = regex_escape(&workspace.path().display().to_string());
        insta::with_settings!({
            snapshot_suffix => case.name,
            filters => vec![(root.as_str(), "[WORKSPACE]")],
            description => format!("segflow {}", case.args.join(" ")),
        }, {
            insta::assert_snapshot!(message);
        });
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
