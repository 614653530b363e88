//! Semantic checks of a parsed pipeline: names, references, feature dependencies and segment
//! rules. Every problem is collected, with its location, before any is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{PipelineSpec, SourceFormat};
use super::sql::referenced_names;
use crate::error::{Origin, Problem};

/// Names of pipelines, sources, features and segments: safe as SQL identifiers, file names and
/// in URLs.
pub const NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,62}$";

/// Column names segflow adds to the assignments table, which features may not take.
pub const RESERVED_NAMES: &[&str] = &["segment"];

/// Whether `name` matches [`NAME_PATTERN`].
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The closest of `candidates` to `name`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A help line naming the likely intended name and the available ones.
pub fn available_help<'a>(
    name: &str,
    what: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    let list: Vec<&str> = candidates.clone().into_iter().collect();
    let listed = if list.is_empty() {
        format!("there are no {what}s")
    } else {
        format!("available {what}s: {}", list.join(", "))
    };
    match did_you_mean(name, candidates) {
        Some(best) => format!("did you mean `{best}`? {listed}"),
        None => listed,
    }
}

/// The format a source path implies by its extension.
pub fn format_from_path(path: &str) -> Option<SourceFormat> {
    let lower = path.to_ascii_lowercase();
    let ext = lower.rsplit('.').next()?;
    match ext {
        "csv" => Some(SourceFormat::Csv),
        "parquet" | "pq" => Some(SourceFormat::Parquet),
        "ndjson" | "jsonl" | "json" => Some(SourceFormat::Ndjson),
        _ => None,
    }
}

/// What the checks learnt about the pipeline, for the engine.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Feature indices with every feature after the features it uses.
    pub feature_order: Vec<usize>,
    /// Per feature, the column names its SQL refers to.
    pub feature_references: Vec<BTreeSet<String>>,
    /// Per segment, the column names its condition refers to.
    pub segment_references: Vec<BTreeSet<String>>,
}

/// Check `spec`, returning what the engine needs or every problem found.
pub fn check(spec: &PipelineSpec, origin: &Origin) -> Result<Checked, Vec<Problem>> {
    let mut problems = Vec::new();
    if spec.version != 1 {
        problems.push(
            origin
                .at(
                    "unsupported-version",
                    "version",
                    format!("unsupported pipeline version {}", spec.version),
                )
                .help("this segflow reads version 1 pipeline files; write `version: 1`"),
        );
    }
    if !is_valid_name(&spec.name) {
        problems.push(
            origin
                .at(
                    "invalid-name",
                    "name",
                    format!("invalid pipeline name `{}`", spec.name),
                )
                .help(format!(
                    "pipeline names use lowercase letters, digits and `_`, start with a letter and \
                     have at most 63 characters (pattern {NAME_PATTERN})"
                )),
        );
    }
    for source in spec.sources.keys() {
        if !is_valid_name(source) {
            problems.push(
                origin
                    .at_key(
                        "invalid-name",
                        &format!("sources.{source}"),
                        format!("invalid source name `{source}`"),
                    )
                    .help(format!("source names follow the pattern {NAME_PATTERN}")),
            );
        }
    }
    check_sources(spec, origin, &mut problems);
    check_source_reference(
        spec,
        origin,
        "entity.source",
        &spec.entity.source,
        &mut problems,
    );

    let feature_names: Vec<&str> = spec.features.iter().map(|f| f.name.as_str()).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut feature_references = Vec::with_capacity(spec.features.len());
    for (i, feature) in spec.features.iter().enumerate() {
        let path = format!("features[{i}]");
        if !is_valid_name(&feature.name) {
            problems.push(
                origin
                    .at(
                        "invalid-name",
                        &format!("{path}.name"),
                        format!("invalid feature name `{}`", feature.name),
                    )
                    .help(format!("feature names follow the pattern {NAME_PATTERN}")),
            );
        }
        if let Some(first) = seen.insert(&feature.name, i) {
            problems.push(
                origin
                    .at(
                        "duplicate-name",
                        &format!("{path}.name"),
                        format!("feature `{}` is declared twice", feature.name),
                    )
                    .help(format!(
                        "the first declaration is features[{first}]; rename one of them"
                    )),
            );
        }
        if RESERVED_NAMES.contains(&feature.name.as_str()) || feature.name == spec.entity.key {
            problems.push(
                origin
                    .at("reserved-name", &format!("{path}.name"), format!("feature name `{}` is taken", feature.name))
                    .help(format!(
                        "the assignments table already has columns `{}` and `segment`; choose another name",
                        spec.entity.key
                    )),
            );
        }
        let definitions = [
            feature.expr.is_some(),
            feature.aggregate.is_some(),
            feature.quantile.is_some(),
        ];
        if definitions.iter().filter(|d| **d).count() != 1 {
            problems.push(
                origin
                    .at("feature-definition", &format!("{path}.name"), format!("feature `{}` needs exactly one of `expr`, `aggregate` or `quantile`", feature.name))
                    .help("a feature is an expression over the entity and other features (`expr`), an aggregate over another source (`aggregate`), or buckets of another feature (`quantile`)"),
            );
        }
        let mut references = BTreeSet::new();
        if let Some(expr) = &feature.expr {
            references.extend(sql_names(
                origin,
                &format!("{path}.expr"),
                expr,
                &mut problems,
            ));
        }
        if let Some(aggregate) = &feature.aggregate {
            check_source_reference(
                spec,
                origin,
                &format!("{path}.aggregate.source"),
                &aggregate.source,
                &mut problems,
            );
            if let (Some(days), Some(source)) =
                (aggregate.window_days, spec.sources.get(&aggregate.source))
            {
                if source.time_column.is_none() {
                    problems.push(
                        origin
                            .at("window-without-time", &format!("{path}.aggregate.window_days"), format!("feature `{}` has a {days}-day window, but source `{}` has no `time_column`", feature.name, aggregate.source))
                            .help(format!("declare `time_column` on source `{}`, or remove `window_days`", aggregate.source)),
                    );
                }
                if days == 0 {
                    problems.push(
                        origin
                            .at(
                                "invalid-window",
                                &format!("{path}.aggregate.window_days"),
                                "a window of 0 days holds no rows",
                            )
                            .help("use a positive number of days"),
                    );
                }
            }
            references.extend(sql_names(
                origin,
                &format!("{path}.aggregate.expr"),
                &aggregate.expr,
                &mut problems,
            ));
            if let Some(filter) = &aggregate.filter {
                references.extend(sql_names(
                    origin,
                    &format!("{path}.aggregate.where"),
                    filter,
                    &mut problems,
                ));
            }
        }
        if let Some(quantile) = &feature.quantile {
            if !feature_names.contains(&quantile.of.as_str()) || quantile.of == feature.name {
                problems.push(
                    origin
                        .at(
                            "unknown-feature",
                            &format!("{path}.quantile.of"),
                            format!(
                                "feature `{}` buckets `{}`, which is not another feature",
                                feature.name, quantile.of
                            ),
                        )
                        .help(available_help(
                            &quantile.of,
                            "feature",
                            feature_names.iter().copied().filter(|n| *n != feature.name),
                        )),
                );
            }
            match (&quantile.buckets, &quantile.cuts) {
                (Some(buckets), None) if *buckets >= 2 => {}
                (None, Some(cuts)) if !cuts.is_empty() && cuts.windows(2).all(|w| w[0] < w[1]) => {}
                _ => problems.push(
                    origin
                        .at("invalid-quantile", &format!("{path}.quantile"), format!("feature `{}` needs either `buckets` (at least 2) or strictly ascending `cuts`", feature.name))
                        .help("e.g. `quantile: { of: revenue_12m, buckets: 5 }` or `quantile: { of: revenue_12m, cuts: [100, 1000] }`"),
                ),
            }
            references.insert(quantile.of.clone());
        }
        feature_references.push(references);
    }

    let feature_order = match dependency_order(spec, &feature_references) {
        Ok(order) => order,
        Err(cycle) => {
            let first = cycle[0];
            let names: Vec<&str> = cycle
                .iter()
                .chain([&first])
                .map(|&i| feature_names[i])
                .collect();
            problems.push(
                origin
                    .at("feature-cycle", &format!("features[{first}].name"), format!("features depend on each other in a cycle: {}", names.join(" -> ")))
                    .help("a feature can use other features only if they do not, directly or indirectly, use it"),
            );
            Vec::new()
        }
    };

    let segment_references = check_segments(spec, origin, &feature_names, &mut problems);
    super::method::check(spec, origin, &mut problems);
    if problems.is_empty() {
        Ok(Checked {
            feature_order,
            feature_references,
            segment_references,
        })
    } else {
        Err(problems)
    }
}

fn check_sources(spec: &PipelineSpec, origin: &Origin, problems: &mut Vec<Problem>) {
    for (name, source) in &spec.sources {
        match super::interpolate::variables(&source.path) {
            Err(message) => problems.push(
                origin
                    .at("interpolation", &format!("sources.{name}.path"), message)
                    .help("write `${NAME}` with letters, digits and `_` to insert an environment variable"),
            ),
            Ok(variables) => {
                for variable in variables {
                    if std::env::var_os(variable).is_none() {
                        problems.push(
                            origin
                                .at_word("unset-variable", &format!("sources.{name}.path"), variable, format!("environment variable `{variable}` is not set"))
                                .help(format!("set `{variable}` before running segflow; its value is never written to outputs or messages")),
                        );
                    }
                }
            }
        }
        if source.format.is_none() && format_from_path(&source.path).is_none() {
            problems.push(
                origin
                    .at("unknown-format", &format!("sources.{name}.path"), format!("cannot tell the format of source `{name}` from `{}`", source.path))
                    .help("name files `.csv`, `.parquet` or `.ndjson`, or declare `format: csv | parquet | ndjson`"),
            );
        }
    }
}

fn check_source_reference(
    spec: &PipelineSpec,
    origin: &Origin,
    path: &str,
    name: &str,
    problems: &mut Vec<Problem>,
) {
    if !spec.sources.contains_key(name) {
        problems.push(
            origin
                .at("unknown-source", path, format!("unknown source `{name}`"))
                .help(available_help(
                    name,
                    "source",
                    spec.sources.keys().map(String::as_str),
                )),
        );
    }
}

fn sql_names(
    origin: &Origin,
    path: &str,
    sql: &str,
    problems: &mut Vec<Problem>,
) -> BTreeSet<String> {
    referenced_names(sql).unwrap_or_else(|message| {
        // sqlparser ends its messages with " at Line: L, Column: C"; on the first line of a
        // one-line snippet that is a position in the file.
        let position = message.rsplit_once(" at Line: ").and_then(|(text, at)| {
            let (line, column) = at.split_once(", Column: ")?;
            let column: usize = column.trim().parse().ok()?;
            (line.trim() == "1" && !sql.contains('\n')).then(|| (text.to_string(), column))
        });
        let problem = match position {
            Some((text, column)) => origin
                .at_column(
                    "sql-syntax",
                    path,
                    column,
                    format!("SQL does not parse: {text}"),
                )
                .label("here"),
            None => origin
                .at("sql-syntax", path, format!("SQL does not parse: {message}"))
                .label("in this expression"),
        };
        problems.push(problem);
        BTreeSet::new()
    })
}

/// Feature indices ordered so that each comes after the features it uses (declaration order
/// among independent ones), or the indices of one cycle.
fn dependency_order(
    spec: &PipelineSpec,
    references: &[BTreeSet<String>],
) -> Result<Vec<usize>, Vec<usize>> {
    let index: BTreeMap<&str, usize> = spec
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    // A feature naming itself refers to the entity column it replaces; aggregates never use
    // features (their SQL runs over another source).
    let uses: Vec<Vec<usize>> = spec
        .features
        .iter()
        .zip(references)
        .map(|(feature, names)| {
            if feature.aggregate.is_some() {
                return Vec::new();
            }
            names
                .iter()
                .filter(|n| **n != feature.name)
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect();

    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        uses: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> Result<(), Vec<usize>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|&s| s == i).unwrap_or(0);
                return Err(stack[start..].to_vec());
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        stack.push(i);
        for &dep in &uses[i] {
            visit(dep, uses, marks, stack, order)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; uses.len()];
    let mut order = Vec::with_capacity(uses.len());
    for i in 0..uses.len() {
        visit(i, &uses, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

fn check_segments(
    spec: &PipelineSpec,
    origin: &Origin,
    feature_names: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<BTreeSet<String>> {
    if spec.segments.is_empty() {
        problems.push(
            origin
                .at_key(
                    "no-segments",
                    "segments",
                    "the pipeline declares no segments",
                )
                .help("add at least one segment; the seeds recommend starting with 3 to 4"),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let last = spec.segments.len().saturating_sub(1);
    let mut references = Vec::with_capacity(spec.segments.len());
    for (i, segment) in spec.segments.iter().enumerate() {
        let path = format!("segments[{i}]");
        if !is_valid_name(&segment.id) {
            problems.push(
                origin
                    .at("invalid-name", &format!("{path}.id"), format!("invalid segment id `{}`", segment.id))
                    .help(format!("segment ids name files and columns, so they follow the pattern {NAME_PATTERN}")),
            );
        }
        if let Some(first) = seen.insert(&segment.id, i) {
            problems.push(
                origin
                    .at(
                        "duplicate-name",
                        &format!("{path}.id"),
                        format!("segment `{}` is declared twice", segment.id),
                    )
                    .help(format!(
                        "the first declaration is segments[{first}]; segment ids must be unique"
                    )),
            );
        }
        let Some(when) = &segment.when else {
            if i != last {
                problems.push(
                    origin
                        .at("catch-all", &format!("{path}.id"), format!("catch-all segment `{}` (no `when`) is not the last segment", segment.id))
                        .help("rules are tried in order and the catch-all matches everyone, so segments after it could never match; move it to the end or give it a `when`"),
                );
            }
            references.push(BTreeSet::new());
            continue;
        };
        let names = sql_names(origin, &format!("{path}.when"), when, problems);
        for name in &names {
            if !feature_names.contains(&name.as_str()) {
                problems.push(
                    origin
                        .at_word("unknown-feature", &format!("{path}.when"), name, format!("segment `{}` uses `{name}`, which is not a feature", segment.id))
                        .label(format!("`{name}` is used here"))
                        .help(format!(
                            "segment rules use features only (declare one for an entity column with `expr: <column>`); {}",
                            available_help(name, "feature", feature_names.iter().copied())
                        )),
                );
            }
        }
        references.push(names);
    }
    references
}
