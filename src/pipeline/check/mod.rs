//! Semantic checks of a parsed pipeline: names, references, feature dependencies and segment
//! rules. Every problem is collected, with its location, before any is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

mod cohorts;
mod exports;
mod references;
mod sections;
mod tiers;

use references::{feature_condition, sql_names};

use super::model::{
    FeatureSpec, MAX_UNIT_CHARS, NAME_PATTERN, PipelineSpec, Ties, format_from_path, is_valid_name,
};
use super::validated::{
    Aggregate, Bucketing, Entity, EntityOrigin, Feature, FeatureDefinition, Quantile, Relation,
    Segment, Source, SourceOrigin, Validity,
};
use crate::diagnostic::{PipelineFile, Problem, available_help, codes};

/// What the checks learnt about the pipeline, in typed form.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Sources with resolved formats and join keys.
    pub sources: BTreeMap<String, Source>,
    /// The customers.
    pub entity: Entity,
    /// Features in declaration order.
    pub features: Vec<Feature>,
    /// Feature indices with every feature after the features it uses.
    pub evaluation_order: Vec<usize>,
    /// Segments in rule order.
    pub segments: Vec<Segment>,
}

/// Most buckets of a quantile with `ties: together` (its SQL carries one edge per bucket).
pub const MAX_TIED_BUCKETS: u32 = 100;

/// Column names segflow adds to the assignments table, which features may not take.
pub const RESERVED_NAMES: &[&str] = &["segment"];

/// Check `spec`, returning the typed plan or every problem found.
pub fn plan(spec: &PipelineSpec, file: &PipelineFile) -> Result<Checked, Vec<Problem>> {
    let mut problems = Vec::new();
    if spec.version != 1 {
        problems.push(
            file.at(
                codes::UNSUPPORTED_VERSION,
                "version",
                format!("unsupported pipeline version {}", spec.version),
            )
            .help("this segflow reads version 1 pipeline files; write `version: 1`"),
        );
    }
    if !is_valid_name(&spec.name) {
        problems.push(
            file.at(
                codes::INVALID_NAME,
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
                file.at_key(
                    codes::INVALID_NAME,
                    &format!("sources.{source}"),
                    format!("invalid source name `{source}`"),
                )
                .help(format!("source names follow the pattern {NAME_PATTERN}")),
            );
        }
    }
    check_sources(spec, file, &mut problems);
    let entity = check_entity(spec, file, &mut problems);

    let feature_names: Vec<&str> = spec.features.iter().map(|f| f.name.as_str()).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut feature_references = Vec::with_capacity(spec.features.len());
    for (i, feature) in spec.features.iter().enumerate() {
        let path = format!("features[{i}]");
        if !is_valid_name(&feature.name) {
            problems.push(
                file.at(
                    codes::INVALID_NAME,
                    &format!("{path}.name"),
                    format!("invalid feature name `{}`", feature.name),
                )
                .help(format!("feature names follow the pattern {NAME_PATTERN}")),
            );
        }
        if let Some(first) = seen.insert(&feature.name, i) {
            problems.push(
                file.at(
                    codes::DUPLICATE_NAME,
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
                file
                    .at(codes::RESERVED_NAME, &format!("{path}.name"), format!("feature name `{}` is taken", feature.name))
                    .help(format!(
                        "the assignments table already has columns `{}` and `segment`; choose another name",
                        spec.entity.key
                    )),
            );
        }
        if let Some(unit) = &feature.unit
            && let Err(problem) = check_unit(unit)
        {
            problems.push(
                file.at(
                    codes::INVALID_UNIT,
                    &format!("{path}.unit"),
                    format!("unit of feature `{}` {problem}", feature.name),
                )
                .help(
                    "write a currency code such as `EUR` or `USD` for money, or a short unit \
                     such as `days`",
                ),
            );
        }
        let definitions = [
            feature.expr.is_some(),
            feature.aggregate.is_some(),
            feature.quantile.is_some(),
            feature.tiers.is_some(),
        ];
        if definitions.iter().filter(|d| **d).count() != 1 {
            problems.push(
                file
                    .at(codes::FEATURE_DEFINITION, &format!("{path}.name"), format!("feature `{}` needs exactly one of `expr`, `aggregate`, `quantile` or `tiers`", feature.name))
                    .help("a feature is an expression over the entity and other features (`expr`), an aggregate over another source (`aggregate`), buckets of another feature (`quantile`), or named tiers of one (`tiers`)"),
            );
        }
        let mut references = BTreeSet::new();
        if let Some(expr) = &feature.expr {
            references.extend(sql_names(
                file,
                &format!("{path}.expr"),
                expr,
                &mut problems,
            ));
        }
        if let Some(aggregate) = &feature.aggregate {
            check_source_reference(
                spec,
                file,
                &format!("{path}.aggregate.source"),
                &aggregate.source,
                &mut problems,
            );
            if let (Some(days), Some(source)) =
                (aggregate.window_days, spec.sources.get(&aggregate.source))
            {
                if source.time_column.is_none() {
                    problems.push(
                        file
                            .at(codes::WINDOW_WITHOUT_TIME, &format!("{path}.aggregate.window_days"), format!("feature `{}` has a {days}-day window, but source `{}` has no `time_column`", feature.name, aggregate.source))
                            .help(format!("declare `time_column` on source `{}`, or remove `window_days`", aggregate.source)),
                    );
                }
                if days == 0 {
                    problems.push(
                        file.at(
                            codes::INVALID_WINDOW,
                            &format!("{path}.aggregate.window_days"),
                            "a window of 0 days holds no rows",
                        )
                        .help("use a positive number of days"),
                    );
                }
            }
            references.extend(sql_names(
                file,
                &format!("{path}.aggregate.expr"),
                &aggregate.expr,
                &mut problems,
            ));
            if let Some(filter) = &aggregate.filter {
                references.extend(sql_names(
                    file,
                    &format!("{path}.aggregate.where"),
                    filter,
                    &mut problems,
                ));
            }
        }
        if let Some((quantile, key)) = tiers::declared_quantile(feature) {
            let at = format!("{path}.{key}");
            tiers::check_labels(&feature.name, &quantile, &at, file, &mut problems);
            tiers::check_label_type(feature, &quantile, &path, file, &mut problems);
            if !feature_names.contains(&quantile.of.as_str()) || quantile.of == feature.name {
                problems.push(
                    file.at(
                        codes::UNKNOWN_FEATURE,
                        &format!("{at}.of"),
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
                (Some(buckets), None)
                    if *buckets >= 2
                        && (quantile.ties == Ties::ByKey || *buckets <= MAX_TIED_BUCKETS) => {}
                (Some(buckets), None) if *buckets > MAX_TIED_BUCKETS => problems.push(
                    file
                        .at(codes::INVALID_QUANTILE, &format!("{at}.buckets"), format!("feature `{}` keeps ties together in {buckets} buckets, more than the {MAX_TIED_BUCKETS} segflow computes edges for", feature.name))
                        .help(format!("use at most {MAX_TIED_BUCKETS} buckets (percentiles), or `ties: by_key`")),
                ),
                (None, Some(_)) if quantile.ties == Ties::Together => problems.push(
                    file
                        .at(codes::INVALID_QUANTILE, &format!("{at}.ties"), format!("feature `{}` sets `ties` with declared `cuts`", feature.name))
                        .help("`ties` decides how equal-count `buckets` treat equal values; with `cuts` equal values always share a bucket"),
                ),
                // One tier label: reported with the labels.
                (Some(buckets), None) if key == "tiers" && *buckets < 2 => {}
                (None, Some(cuts))
                    if !cuts.is_empty()
                        && cuts.iter().all(|c| c.is_finite())
                        && cuts.windows(2).all(|w| w[0] < w[1]) => {}
                _ => problems.push(
                    file
                        .at(codes::INVALID_QUANTILE, &at, format!("feature `{}` needs either `buckets` (at least 2) or strictly ascending `cuts`", feature.name))
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
                file
                    .at(codes::FEATURE_CYCLE, &format!("features[{first}].name"), format!("features depend on each other in a cycle: {}", names.join(" -> ")))
                    .help("a feature can use other features only if they do not, directly or indirectly, use it"),
            );
            Vec::new()
        }
    };

    let segment_references = check_segments(spec, file, &feature_names, &mut problems);
    sections::check_sections(spec, file, &mut problems);
    exports::check_exports(spec, file, &mut problems);
    cohorts::check_cohorts(spec, file, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        sources: resolved_sources(spec),
        entity: entity.ok_or_else(Vec::new)?,
        features: spec
            .features
            .iter()
            .zip(feature_references)
            .enumerate()
            .filter_map(|(index, (feature, references))| {
                Some(Feature {
                    name: feature.name.clone(),
                    kind: feature.kind,
                    definition: definition(feature)?,
                    column_type: feature.column_type,
                    references,
                    index,
                })
            })
            .collect(),
        evaluation_order: feature_order,
        segments: spec
            .segments
            .iter()
            .zip(segment_references)
            .map(|(segment, references)| Segment {
                id: segment.id.clone(),
                rule: segment.when.clone(),
                references,
            })
            .collect(),
    })
}

/// Every source with its origin and join key resolved (the checks made sure both exist).
fn resolved_sources(spec: &PipelineSpec) -> BTreeMap<String, Source> {
    spec.sources
        .iter()
        .filter_map(|(name, source)| {
            let origin = match (&source.path, &source.postgres) {
                (Some(path), None) => SourceOrigin::Files {
                    location: path.clone(),
                    overridden: false,
                    format: source.format.or_else(|| format_from_path(path))?,
                },
                (None, Some(postgres)) => SourceOrigin::Postgres {
                    url: postgres.url.clone(),
                    relation: match (&postgres.table, &postgres.query) {
                        (Some(table), None) => Relation::Table(table.clone()),
                        (None, Some(query)) => Relation::Query(query.clone()),
                        _ => return None,
                    },
                },
                _ => return None,
            };
            Some((
                name.clone(),
                Source {
                    name: name.clone(),
                    origin,
                    join_key: source
                        .key
                        .clone()
                        .unwrap_or_else(|| spec.entity.key.clone()),
                    time_column: source.time_column.clone(),
                    columns: source.columns.clone(),
                    validity: source.valid_from.clone().map(|from| Validity {
                        from,
                        to: source.valid_to.clone(),
                    }),
                },
            ))
        })
        .collect()
}

/// The one definition of a feature (the checks made sure there is exactly one).
fn definition(feature: &FeatureSpec) -> Option<FeatureDefinition> {
    if let Some(sql) = &feature.expr {
        return Some(FeatureDefinition::Expr { sql: sql.clone() });
    }
    if let Some(aggregate) = &feature.aggregate {
        return Some(FeatureDefinition::Aggregate(Aggregate {
            source: aggregate.source.clone(),
            expr: aggregate.expr.clone(),
            window_days: aggregate.window_days,
            filter: aggregate.filter.clone(),
            default: aggregate.default.clone(),
        }));
    }
    let (quantile, _) = tiers::declared_quantile(feature)?;
    let bucketing = match (&quantile.buckets, &quantile.cuts) {
        (Some(buckets), _) if quantile.ties == Ties::Together => Bucketing::TiesTogether(*buckets),
        (Some(buckets), _) => Bucketing::Equal(*buckets),
        (None, Some(cuts)) => Bucketing::Cuts(cuts.clone()),
        (None, None) => return None,
    };
    Some(FeatureDefinition::Quantile(Quantile {
        of: quantile.of.clone(),
        bucketing,
        descending: quantile.descending,
        labels: quantile.labels,
    }))
}

/// Why a feature's `unit` cannot be shown beside its values, if it cannot.
fn check_unit(unit: &str) -> Result<(), String> {
    if unit.trim().is_empty() {
        return Err("is empty".into());
    }
    let chars = unit.chars().count();
    if chars > MAX_UNIT_CHARS {
        return Err(format!(
            "has {chars} characters, more than {MAX_UNIT_CHARS}"
        ));
    }
    if unit.chars().any(char::is_control) {
        return Err("holds a line break or another control character".into());
    }
    Ok(())
}

fn check_sources(spec: &PipelineSpec, file: &PipelineFile, problems: &mut Vec<Problem>) {
    for (name, source) in &spec.sources {
        let (text, at) = match (&source.path, &source.postgres) {
            (Some(path), None) => (path, format!("sources.{name}.path")),
            (None, Some(postgres)) => {
                check_postgres(name, postgres, file, problems);
                if source.format.is_some() {
                    problems.push(
                        file.at_key(
                            codes::SOURCE_ORIGIN,
                            &format!("sources.{name}.format"),
                            format!("postgres source `{name}` declares a file `format`"),
                        )
                        .help(
                            "`format` says how files are read; remove it from a `postgres` source",
                        ),
                    );
                }
                (&postgres.url, format!("sources.{name}.postgres.url"))
            }
            (Some(_), Some(_)) => {
                problems.push(
                    file.at_key(codes::SOURCE_ORIGIN, &format!("sources.{name}.postgres"), format!("source `{name}` has both `path` and `postgres`"))
                        .help("a source is read from files (`path`) or from a database (`postgres`); keep one"),
                );
                continue;
            }
            (None, None) => {
                problems.push(
                    file.at_key(codes::SOURCE_ORIGIN, &format!("sources.{name}"), format!("source `{name}` has neither `path` nor `postgres`"))
                        .help("write `path:` to read files, or `postgres:` with a `url` and a `table` to read a database table"),
                );
                continue;
            }
        };
        match super::interpolate::variables(text) {
            Err(message) => problems.push(file.at(codes::INTERPOLATION, &at, message).help(
                "write `${NAME}` with letters, digits and `_` to insert an environment variable",
            )),
            Ok(variables) => {
                for variable in variables {
                    if std::env::var_os(variable).is_none() {
                        problems.push(
                            file
                                .at_word(codes::UNSET_VARIABLE, &at, variable, format!("environment variable `{variable}` is not set"))
                                .help(format!("set `{variable}` before running segflow; its value is never written to outputs or messages")),
                        );
                    }
                }
            }
        }
        if let Some(path) = &source.path
            && source.format.is_none()
            && format_from_path(path).is_none()
        {
            problems.push(
                file
                    .at(codes::UNKNOWN_FORMAT, &at, format!("cannot tell the format of source `{name}` from `{path}`"))
                    .help("name files `.csv`, `.parquet` or `.ndjson`, or declare `format: csv | parquet | ndjson`"),
            );
        }
    }
}

/// A Postgres source: exactly one of `table` and `query`, no `format`, and a URL whose password
/// (if any) comes from an environment variable, never written in the file.
fn check_postgres(
    name: &str,
    postgres: &super::model::PostgresSpec,
    file: &PipelineFile,
    problems: &mut Vec<Problem>,
) {
    let at = format!("sources.{name}.postgres");
    if postgres.table.is_some() == postgres.query.is_some() {
        let which = if postgres.table.is_some() {
            "both `table` and `query`"
        } else {
            "neither `table` nor `query`"
        };
        problems.push(
            file.at_key(codes::SOURCE_ORIGIN, &at, format!("postgres source `{name}` has {which}"))
                .help("write `table: schema.table` to read a table, or `query: SELECT ...` to read a query's rows"),
        );
    }
    let written = super::interpolate::written_part(&postgres.url);
    if written.contains('@')
        && let Some(password) = crate::secrets::password_of(&written)
    {
        // The problem's snippet quotes this line of the file: the password is masked there.
        crate::secrets::remember(vec![password]);
        problems.push(
            file.at(codes::SOURCE_ORIGIN, &format!("{at}.url"), format!("the URL of postgres source `{name}` holds a password"))
                .help("write the URL as an environment variable, `url: \"${CRM_DATABASE_URL}\"`, so the password stays out of the file"),
        );
    }
}

/// Where the customers come from: exactly one of `source` and `from`, known sources, and the
/// repeated keys that can be known without reading rows. `None` after a problem.
fn check_entity(
    spec: &PipelineSpec,
    file: &PipelineFile,
    problems: &mut Vec<Problem>,
) -> Option<Entity> {
    let entity = &spec.entity;
    let before = problems.len();
    let origin = match (&entity.source, entity.from.as_slice()) {
        (Some(source), []) => {
            check_source_reference(spec, file, "entity.source", source, problems);
            if entity.distinct {
                EntityOrigin::Keys(vec![source.clone()])
            } else {
                EntityOrigin::Table(source.clone())
            }
        }
        (None, from) if !from.is_empty() => {
            for (i, source) in from.iter().enumerate() {
                check_source_reference(spec, file, &format!("entity.from[{i}]"), source, problems);
            }
            EntityOrigin::Keys(from.to_vec())
        }
        (source, _) => {
            let message = if source.is_some() {
                "the entity gives both `source` and `from`"
            } else {
                "the entity names no source: give `source` or `from`"
            };
            problems.push(
                file.at_key(codes::ENTITY, "entity", message)
                    .help("`source: customers` for a table with one row per customer, `source: transactions` with `distinct: true` for the keys of one table, or `from: [transactions, web_events]` for the keys of several"),
            );
            return None;
        }
    };
    match &origin {
        EntityOrigin::Table(name) => {
            if let Some(source) = spec.sources.get(name)
                && let (Some(time_column), None) = (&source.time_column, &source.valid_from)
            {
                problems.push(
                    file.at(codes::ENTITY_REPEATS, "entity.source", format!("entity source `{name}` declares time column `{time_column}`, so it holds events, and its keys repeat"))
                        .help(format!("write `distinct: true` to take the customers from the distinct keys of `{name}`, or point `entity.source` at a table with one row per customer (a customer table's join date goes in `since:`, not `time_column`)")),
                );
            }
        }
        EntityOrigin::Keys(sources) => {
            for name in sources {
                if spec
                    .sources
                    .get(name)
                    .is_some_and(|s| s.valid_from.is_some())
                {
                    problems.push(
                        file.at(codes::ENTITY, &format!("sources.{name}.valid_from"), format!("source `{name}` declares validity columns, but the customers are taken from its keys, not from rows valid at a date"))
                            .help(format!("validity columns pick the rows of a table with one row per customer at a time: use `entity.source: {name}` without `distinct`, or remove `valid_from`/`valid_to`")),
                    );
                }
            }
            if let Some(since) = &entity.since {
                problems.push(
                    file.at(codes::ENTITY, "entity.since", format!("`since: {since}` needs a table with one row per customer, but these customers are distinct keys with no other column"))
                        .help("customers taken from keys exist from their first row before the as-of date; remove `since`"),
                );
            }
        }
    }
    for (name, source) in &spec.sources {
        let in_entity = match &origin {
            EntityOrigin::Table(table) => table == name,
            EntityOrigin::Keys(sources) => sources.contains(name),
        };
        if source.valid_from.is_some() && !in_entity {
            // Only the entity's table is cut to the rows valid at the as-of date; ignoring the
            // declaration elsewhere would let rows valid only later feed the features.
            problems.push(
                file.at(codes::ENTITY, &format!("sources.{name}.valid_from"), format!("source `{name}` declares validity columns, but only the entity's customer table is cut to the rows valid at the as-of date: every row of `{name}` would be used"))
                    .help(format!("remove `valid_from`/`valid_to` from `{name}`, or make it the customer table with `entity.source: {name}`")),
            );
        }
        if let (Some(from), Some(to)) = (&source.valid_from, &source.valid_to)
            && from == to
        {
            problems.push(
                file.at(
                    codes::ENTITY,
                    &format!("sources.{name}.valid_to"),
                    format!("source `{name}` names `{to}` as both `valid_from` and `valid_to`, so no row is ever valid"),
                )
                .help("`valid_to` is the column where each row stops being valid; leave it out if the table has none"),
            );
        }
        if source.valid_to.is_some() && source.valid_from.is_none() {
            problems.push(
                file.at(
                    codes::ENTITY,
                    &format!("sources.{name}.valid_to"),
                    format!("source `{name}` declares `valid_to` without `valid_from`"),
                )
                .help("declare `valid_from`, the column from which each row is valid"),
            );
        }
    }
    (problems.len() == before).then(|| Entity {
        origin,
        key: entity.key.clone(),
        since: entity.since.clone(),
    })
}

fn check_source_reference(
    spec: &PipelineSpec,
    file: &PipelineFile,
    path: &str,
    name: &str,
    problems: &mut Vec<Problem>,
) {
    if !spec.sources.contains_key(name) {
        problems.push(
            file.at(
                codes::UNKNOWN_SOURCE,
                path,
                format!("unknown source `{name}`"),
            )
            .help(available_help(
                name,
                "source",
                spec.sources.keys().map(String::as_str),
            )),
        );
    }
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
    file: &PipelineFile,
    feature_names: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<BTreeSet<String>> {
    if spec.segments.is_empty() {
        problems.push(
            file.at_key(
                codes::NO_SEGMENTS,
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
                file.at(
                    codes::INVALID_NAME,
                    &format!("{path}.id"),
                    format!("invalid segment id `{}`", segment.id),
                )
                .help(format!(
                    "segment ids name files and columns, so they follow the pattern {NAME_PATTERN}"
                )),
            );
        }
        if let Some(first) = seen.insert(&segment.id, i) {
            problems.push(
                file.at(
                    codes::DUPLICATE_NAME,
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
                    file
                        .at(codes::CATCH_ALL, &format!("{path}.id"), format!("catch-all segment `{}` (no `when`) is not the last segment", segment.id))
                        .help("rules are tried in order and the catch-all matches everyone, so segments after it could never match; move it to the end or give it a `when`"),
                );
            }
            references.push(BTreeSet::new());
            continue;
        };
        let names = feature_condition(
            file,
            &format!("{path}.when"),
            when,
            &format!("segment `{}`", segment.id),
            feature_names,
            problems,
        );
        references.push(names);
    }
    references
}

#[cfg(test)]
mod tests {
    use super::check_unit;

    #[test]
    fn units_are_short_single_line_words() {
        assert_eq!(check_unit("EUR"), Ok(()));
        assert_eq!(check_unit("days"), Ok(()));
        assert_eq!(check_unit("€ per seat/month"), Ok(()));
        assert_eq!(check_unit(" "), Err("is empty".to_string()));
        assert_eq!(
            check_unit("tickets per customer"),
            Err("has 20 characters, more than 16".to_string())
        );
        assert!(check_unit("days\nhours").is_err());
    }
}
