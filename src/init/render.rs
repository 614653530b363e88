//! The text of the pipeline `segflow init` writes: YAML in the shape of the shipped examples,
//! with every guess's evidence as a comment beside what it produced.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::guess::{Computation, Customers, Plan, SourcePlan};
use super::segments::Segment;
use crate::pipeline::model::SourceFormat;

/// How source paths are written.
pub enum Paths<'a> {
    /// Relative to the folder of the pipeline file.
    RelativeTo(&'a std::path::Path),
    /// Absolute (the draft init runs to measure the features).
    Absolute,
}

/// What to render beyond the plan.
pub struct Rendering<'a> {
    /// The `$schema` reference for editors, relative to the pipeline file; `None` when no
    /// schema file was found (a file beside the pipeline is referenced, to be written).
    pub schema: Option<String>,
    /// How the files were named on the command line.
    pub inputs: &'a [String],
    /// The segments (empty: a single catch-all).
    pub segments: &'a [Segment],
    /// Why there are fewer than three segments, when there are.
    pub fewer_tiers: Option<&'a str>,
    /// Whether to write the criteria, scoring-free review sections (not in the draft).
    pub criteria: bool,
    /// How source paths are written.
    pub paths: Paths<'a>,
}

/// `text` as a YAML scalar: plain when YAML reads it back as the same string, else
/// double-quoted.
pub fn scalar(text: &str) -> String {
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n",
    ];
    let lower = text.to_ascii_lowercase();
    let plain = !text.is_empty()
        && !text.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.chars().any(char::is_control)
        && !reserved.contains(&lower.as_str())
        && text.parse::<f64>().is_err()
        && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_err();
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
    }
}

/// Lines of the file are kept to this width where words allow.
const WIDTH: usize = 100;

/// A `# ...` comment, one line per line of `text`, indented by `indent`, long lines wrapped at
/// spaces (a continuation is indented two more).
fn comment(out: &mut String, indent: &str, text: &str) {
    let limit = WIDTH.saturating_sub(indent.len() + 2);
    for line in text.lines() {
        let body = line.trim_start();
        let lead = &line[..line.len() - body.len()];
        let mut current = lead.to_string();
        for word in body.split(' ') {
            if current.len() > lead.len() && current.len() + 1 + word.len() > limit {
                let _ = writeln!(out, "{indent}# {current}");
                current = format!("{lead}  {word}");
            } else {
                if current.len() > lead.len() {
                    current.push(' ');
                }
                current.push_str(word);
            }
        }
        let _ = writeln!(out, "{indent}# {}", current.trim_end());
    }
}

/// `path` relative to `dir` (both absolute and normalised), with `/` separators.
pub fn relative(path: &std::path::Path, dir: &std::path::Path) -> String {
    let from: Vec<_> = dir.components().collect();
    let to: Vec<_> = path.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

fn source_path(source: &SourcePlan, paths: &Paths<'_>) -> String {
    match paths {
        Paths::RelativeTo(dir) => relative(&source.table.path, dir),
        Paths::Absolute => source.table.path.display().to_string(),
    }
}

/// The pipeline text.
pub fn render(plan: &Plan, how: &Rendering<'_>) -> String {
    let mut out = String::new();
    match &how.schema {
        Some(schema) => {
            let _ = writeln!(out, "# yaml-language-server: $schema={schema}");
        }
        None => out.push_str(
            "# yaml-language-server: $schema=pipeline.schema.json\n\
             # (`segflow schema > pipeline.schema.json` in this folder writes it for your editor)\n",
        ),
    }
    out.push_str("#\n");
    comment(
        &mut out,
        "",
        &format!(
            "Written by `segflow init` from {}.\nEvery guess is a comment beside what it produced: \
             check them, then\n`segflow validate segments.yaml` and `segflow run segments.yaml`.",
            how.inputs.join(", ")
        ),
    );
    let skeleton = !plan.needs.is_empty();
    if skeleton {
        out.push_str("#\n");
        comment(
            &mut out,
            "",
            "A SKELETON: init could not guess a segmentation from these files. It needs:",
        );
        for need in &plan.needs {
            comment(&mut out, "", &format!("  - {need}"));
        }
        comment(
            &mut out,
            "",
            "Fill in what is marked TODO; `segflow validate` fails until the entity is right.",
        );
    }
    out.push_str("version: 1\n");
    let _ = writeln!(out, "name: {}   # from the folder's name", plan.name);
    let _ = writeln!(
        out,
        "title: {}",
        scalar(&format!("{} — starter segmentation", plan.name))
    );
    out.push_str(
        "description: >\n  Starter segmentation written by segflow init from the data's columns; \
         rename,\n  refine and own the features and segments.\n",
    );
    if let Some((date, why)) = &plan.as_of {
        let _ = writeln!(out, "as_of: {date}");
        comment(&mut out, "", &format!("as_of: {why}"));
    }
    out.push('\n');
    for left in &plan.left_out {
        comment(
            &mut out,
            "",
            &format!("Left out {}: {}", left.file, left.reason),
        );
    }
    out.push_str("sources:\n");
    for source in &plan.sources {
        render_source(&mut out, source, &how.paths);
    }
    out.push('\n');
    render_entity(&mut out, plan);
    out.push('\n');
    render_features(&mut out, plan);
    out.push('\n');
    render_segments(&mut out, plan, how.segments, how.fewer_tiers);
    if how.criteria && !skeleton {
        out.push('\n');
        render_criteria(&mut out, plan, how.segments);
    }
    out
}

fn render_source(out: &mut String, source: &SourcePlan, paths: &Paths<'_>) {
    let table = &source.table;
    let _ = writeln!(out, "  {}:", table.name);
    let _ = writeln!(out, "    path: {}", scalar(&source_path(source, paths)));
    let _ = writeln!(
        out,
        "    description: {}",
        scalar(&format!(
            "{} ({} row{}, {}).",
            table.shown,
            super::guess::count(table.rows),
            if table.rows == 1 { "" } else { "s" },
            table.format.name()
        ))
    );
    comment(out, "    ", &format!("role: {}", source.role_evidence));
    if let Some(key) = &source.key {
        let _ = writeln!(out, "    key: {}", scalar(key));
        comment(
            out,
            "    ",
            "key: the column joining this file to the entity key (named after the customers' file)",
        );
    }
    if let Some(time) = &source.time_column {
        let _ = writeln!(out, "    time_column: {}", scalar(time));
        comment(
            out,
            "    ",
            "time_column: its date or timestamp column; aggregates count rows before as_of",
        );
    }
    let declared: Vec<_> = table
        .columns
        .iter()
        .filter(|c| c.declared.is_some())
        .collect();
    if !declared.is_empty() {
        let how = match table.format {
            SourceFormat::Parquet => "the Parquet file's types",
            SourceFormat::Csv | SourceFormat::Ndjson => "inferred from the first 1,000 rows",
        };
        comment(
            out,
            "    ",
            &format!("columns: {how}; declared, so every export reads alike"),
        );
        out.push_str("    columns:\n");
    }
    for column in &table.columns {
        match column.declared {
            Some(column_type) if column.times_as_text => {
                let _ = writeln!(
                    out,
                    "      {}: {}   # text in the file; every value reads as a {}",
                    scalar(&column.name),
                    column_type.name(),
                    column_type.name()
                );
            }
            Some(column_type) => {
                let _ = writeln!(
                    out,
                    "      {}: {}",
                    scalar(&column.name),
                    column_type.name()
                );
            }
            None => comment(
                out,
                "      ",
                &format!(
                    "{}: {} in the file, no declared type for it (read as found)",
                    column.name, column.found
                ),
            ),
        }
    }
}

fn render_entity(out: &mut String, plan: &Plan) {
    out.push_str("entity:\n");
    let Some(entity) = &plan.entity else {
        let source = plan
            .sources
            .first()
            .map_or("customers".to_string(), |s| s.table.name.clone());
        let key = plan
            .sources
            .iter()
            .flat_map(|s| &s.table.columns)
            .find(|c| super::inspect::is_key_like(&c.name))
            .map_or("customer_id".to_string(), |c| c.name.clone());
        let _ = writeln!(
            out,
            "  source: {}   # TODO: the file with one row per customer",
            scalar(&source)
        );
        let _ = writeln!(
            out,
            "  key: {}   # TODO: the column naming the customer, also in the other files",
            scalar(&key)
        );
        return;
    };
    for line in &entity.evidence {
        comment(out, "  ", line);
    }
    match &entity.customers {
        Customers::Table { source, since } => {
            let _ = writeln!(out, "  source: {}", scalar(source));
            let _ = writeln!(out, "  key: {}", scalar(&entity.key));
            if let Some(since) = since {
                let _ = writeln!(out, "  since: {}", scalar(since));
                comment(
                    out,
                    "  ",
                    &format!(
                        "since: `{since}` reads as a join date; customers who joined on or after as_of are left out"
                    ),
                );
            }
        }
        Customers::Keys(sources) if sources.len() == 1 => {
            let _ = writeln!(out, "  source: {}", scalar(&sources[0]));
            let _ = writeln!(out, "  key: {}", scalar(&entity.key));
            out.push_str("  distinct: true\n");
        }
        Customers::Keys(sources) => {
            let names: Vec<String> = sources.iter().map(|s| scalar(s)).collect();
            let _ = writeln!(out, "  from: [{}]", names.join(", "));
            let _ = writeln!(out, "  key: {}", scalar(&entity.key));
        }
    }
}

fn render_features(out: &mut String, plan: &Plan) {
    if plan.features.is_empty() {
        out.push_str("features: []\n");
        comment(
            out,
            "",
            "TODO: per-customer features, e.g.\n\
             - name: orders_90\n  kind: behavioral\n  description: Orders in the last 90 days.\n  \
             aggregate: { source: orders, expr: count(*), window_days: 90, default: 0 }",
        );
        return;
    }
    out.push_str("features:\n");
    for feature in &plan.features {
        if let Some(note) = &feature.note {
            comment(out, "  ", note);
        }
        let _ = writeln!(out, "  - name: {}", feature.name);
        let kind = serde_json::to_value(feature.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "    kind: {kind}");
        let _ = writeln!(out, "    description: {}", scalar(&feature.description));
        if let Some(unit) = feature.unit {
            let _ = writeln!(out, "    unit: {unit}");
        }
        match &feature.computation {
            Computation::Expr(expr) => {
                let _ = writeln!(out, "    expr: {}", scalar(expr));
            }
            Computation::Aggregate {
                source,
                expr,
                window_days,
                default,
            } => {
                out.push_str("    aggregate:\n");
                let _ = writeln!(out, "      source: {}", scalar(source));
                let _ = writeln!(out, "      expr: {}", scalar(expr));
                if let Some(days) = window_days {
                    let _ = writeln!(out, "      window_days: {days}");
                }
                if let Some(default) = default {
                    let _ = writeln!(out, "      default: {default}");
                }
            }
        }
    }
}

fn render_segments(out: &mut String, plan: &Plan, segments: &[Segment], fewer: Option<&str>) {
    out.push_str("segments:\n");
    if segments.is_empty() {
        out.push_str(
            "  - id: everyone\n    name: Everyone\n    description: Every customer, until segments are defined.\n    owner: analytics\n    actions: [Define the segments]\n",
        );
        comment(
            out,
            "    ",
            "TODO: segments, first match wins; the last may omit `when` and catch everyone else",
        );
        return;
    }
    if let Some(tiering) = &plan.tiering {
        comment(
            out,
            "  ",
            &format!(
                "{}; thresholds are percentiles of it on this data (first match wins)",
                tiering.evidence
            ),
        );
    }
    if let Some(why) = fewer {
        comment(out, "  ", why);
    }
    for segment in segments {
        let _ = writeln!(out, "  - id: {}", segment.id);
        let _ = writeln!(out, "    name: {}", scalar(segment.name));
        let _ = writeln!(out, "    description: {}", scalar(&segment.description));
        let _ = writeln!(
            out,
            "    owner: {}   # a placeholder: the team that acts on this segment",
            scalar(segment.owner)
        );
        if let Some(when) = &segment.when {
            let _ = writeln!(out, "    when: {}", scalar(when));
        }
        comment(out, "    ", &segment.evidence);
        let _ = writeln!(out, "    actions: [{}]", scalar(segment.action));
    }
}

fn render_criteria(out: &mut String, plan: &Plan, segments: &[Segment]) {
    comment(
        out,
        "",
        "Step 4 of the method: are these good segments? Thresholds as in the shipped examples.",
    );
    out.push_str("criteria:\n");
    let catch_all = segments.iter().any(|s| s.when.is_none());
    out.push_str("  identifiable:\n");
    let _ = writeln!(
        out,
        "    unassigned_share: {{ warn_if_above: 0.02, error_if_above: 0.05 }}{}",
        if catch_all {
            "   # the catch-all keeps it at 0"
        } else {
            ""
        }
    );
    out.push_str("  substantial:\n    share: { warn_if_below: 0.05, error_if_below: 0.02 }\n");
    match &plan.reachable {
        Some(reachable) => {
            let _ = writeln!(
                out,
                "  accessible:\n    reachable: {reachable}\n    share: {{ warn_if_below: 0.5, error_if_below: 0.3 }}"
            );
        }
        None => comment(
            out,
            "  ",
            "accessible: left out, no column says who can be reached (an opt-in flag or an\n\
             e-mail address). Add a feature for it and\n\
             accessible: { reachable: FEATURE, share: { warn_if_below: 0.5, error_if_below: 0.3 } }",
        ),
    }
    let features: Vec<&str> = plan
        .features
        .iter()
        .filter(|f| f.differentiates)
        .map(|f| f.name.as_str())
        .collect();
    if !features.is_empty() {
        let _ = writeln!(
            out,
            "  differentiable:\n    features: [{}]\n    effect_size: {{ warn_if_below: 0.8, error_if_below: 0.5 }}",
            features.join(", ")
        );
    }
    out.push_str("  actionable: {}   # every segment has an owner and an action\n");
    if let Some((value, engagement)) = &plan.matrix {
        out.push('\n');
        comment(
            out,
            "",
            "The 2x2 value x engagement matrix, split at the medians.",
        );
        let _ = writeln!(
            out,
            "matrix:\n  value: {{ feature: {value}, split: median }}\n  engagement: {{ feature: {engagement}, split: median }}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_only_when_yaml_needs_it() {
        assert_eq!(scalar("count(*)"), "count(*)");
        assert_eq!(scalar("as_of() - signup_date"), "as_of() - signup_date");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("12"), "\"12\"");
        assert_eq!(scalar("2026-01-01"), "\"2026-01-01\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("\"Amount\""), "\"\\\"Amount\\\"\"");
        assert_eq!(scalar("- x"), "\"- x\"");
    }

    #[test]
    fn long_comments_wrap_at_spaces() {
        let mut out = String::new();
        comment(&mut out, "  ", &"word ".repeat(40));
        assert!(out.lines().all(|l| l.len() <= WIDTH), "{out}");
        assert!(
            out.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("  #   word")),
            "{out}"
        );
        let mut out = String::new();
        comment(&mut out, "", "  - indented stays indented");
        assert_eq!(out, "#   - indented stays indented\n");
    }

    #[test]
    fn paths_relative_to_the_pipeline_folder() {
        use std::path::Path;
        assert_eq!(
            relative(Path::new("/w/data/a.csv"), Path::new("/w/seg")),
            "../data/a.csv"
        );
        assert_eq!(
            relative(Path::new("/w/seg/a.csv"), Path::new("/w/seg")),
            "a.csv"
        );
    }
}
