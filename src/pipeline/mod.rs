//! The user's pipeline file: its typed model, loading with precise YAML errors, and the semantic
//! checks that turn it into a [`Pipeline`] the engine can trust.

mod check;
mod interpolate;
pub mod model;
pub mod sql;
pub mod validated;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

pub use model::{NAME_PATTERN, PipelineSpec, format_from_path, is_valid_name};
pub use validated::{Entity, Feature, FeatureDefinition, Relation, Segment, Source, SourceOrigin};

use crate::diagnostic::{
    MAX_DEPTH, PipelineFile, available_help, byte_offset, codes, did_you_mean,
};
use crate::error::{Error, Result};

/// The validated plan: a pipeline file that parsed and passed every check that needs no data,
/// with its features, sources and segments in typed, resolved form. Later stages read
/// declarations (owners, actions, criteria, personas) from `spec` and plan only from the typed
/// parts.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The file's content as written.
    pub spec: PipelineSpec,
    /// The file's text and node positions, for problems found later.
    pub file: PipelineFile,
    /// Folder that relative source and template paths start from.
    pub base_dir: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Sources by name, with resolved formats and join keys.
    pub sources: BTreeMap<String, Source>,
    /// The customers.
    pub entity: Entity,
    /// Features in declaration order.
    pub features: Vec<Feature>,
    /// Feature indices, each after the features it uses.
    pub evaluation_order: Vec<usize>,
    /// Segments in rule order.
    pub segments: Vec<Segment>,
}

impl Pipeline {
    /// Read and check the pipeline file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|reason| Error::ReadFile {
            path: path.to_path_buf(),
            reason,
        })?;
        let display_name = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| Error::Pipeline {
            file: display_name.clone(),
            problems: vec![PipelineFile::new(&display_name, String::new()).problem(
                codes::INVALID_YAML,
                None,
                format!("the file is not UTF-8 text: {e}"),
            )],
        })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_text(&display_name, text, base_dir)
    }

    /// Parse and check pipeline `text`, shown to users as `display_name`.
    pub fn from_text(display_name: &str, text: String, base_dir: PathBuf) -> Result<Self> {
        let sha256 = hex(&Sha256::digest(text.as_bytes()));
        let file = PipelineFile::new(display_name, text);
        if let Some(span) = file.too_deep() {
            return Err(Error::Pipeline {
                file: display_name.to_string(),
                problems: vec![
                    file.problem(
                        codes::INVALID_YAML,
                        Some(span),
                        format!(
                            "the file nests mappings and lists more than {MAX_DEPTH} levels deep"
                        ),
                    )
                    .help(
                        "a pipeline needs a few levels; check for runaway brackets or indentation",
                    ),
                ],
            });
        }
        let mut spec = parse_spec(&file).map_err(|problem| Error::Pipeline {
            file: display_name.to_string(),
            problems: vec![*problem],
        })?;
        for snippet in spec.sql_snippets_mut() {
            *snippet = sql::blank_comments(snippet);
        }
        let checked = check::plan(&spec, &file).map_err(|problems| Error::Pipeline {
            file: display_name.to_string(),
            problems,
        })?;
        Ok(Pipeline {
            spec,
            file,
            base_dir,
            sha256,
            sources: checked.sources,
            entity: checked.entity,
            features: checked.features,
            evaluation_order: checked.evaluation_order,
            segments: checked.segments,
        })
    }

    /// This plan reduced to the features named in `wanted` and the features they use, every
    /// customer in one catch-all segment: what recomputing some features needs. The spec keeps
    /// its sources, entity and declarations but not what names other features or segments
    /// (criteria, scoring, matrix, personas).
    pub fn reduced_to(&self, wanted: &BTreeSet<String>) -> Pipeline {
        let by_name: BTreeMap<&str, &Feature> =
            self.features.iter().map(|f| (f.name.as_str(), f)).collect();
        let mut kept: BTreeSet<&str> = BTreeSet::new();
        let mut pending: Vec<&str> = wanted.iter().map(String::as_str).collect();
        while let Some(name) = pending.pop() {
            let Some(feature) = by_name.get(name) else {
                continue;
            };
            if !kept.insert(feature.name.as_str()) {
                continue;
            }
            pending.extend(feature.references.iter().map(String::as_str));
            if let FeatureDefinition::Quantile(quantile) = &feature.definition {
                pending.push(quantile.of.as_str());
            }
        }
        let old_positions: Vec<usize> = (0..self.features.len())
            .filter(|&i| kept.contains(self.features[i].name.as_str()))
            .collect();
        let new_position = |old: usize| old_positions.iter().position(|&i| i == old);
        let mut reduced = self.clone();
        reduced.features = old_positions
            .iter()
            .map(|&i| self.features[i].clone())
            .collect();
        reduced.evaluation_order = self
            .evaluation_order
            .iter()
            .filter_map(|&i| new_position(i))
            .collect();
        reduced.spec.criteria = None;
        reduced.spec.scoring = None;
        reduced.spec.matrix = None;
        reduced.spec.concentration.clear();
        reduced.spec.icp = None;
        reduced.spec.cohorts = None;
        reduced.spec.lifetime_value = None;
        reduced.spec.personas.clear();
        reduced.segments = vec![Segment {
            id: "all".into(),
            rule: None,
            references: BTreeSet::new(),
        }];
        reduced
    }

    /// The as-of date: the override, else the file's, else today (see [`today`]).
    pub fn as_of(&self, override_date: Option<NaiveDate>) -> NaiveDate {
        override_date.or(self.spec.as_of).unwrap_or_else(today)
    }

    /// Read source `name` from `path` (relative to the working directory) instead of its
    /// declared origin; the format follows the new path unless the source declares one. A
    /// Postgres source is replaced by the file too (to rerun a pipeline offline on an export).
    pub fn override_source(&mut self, name: &str, path: &Path) -> Result<()> {
        let Some(source) = self.sources.get_mut(name) else {
            return Err(Error::Usage {
                message: format!("--source names unknown source `{name}`"),
                help: Some(available_help(
                    name,
                    "source",
                    self.spec.sources.keys().map(String::as_str),
                )),
            });
        };
        let location = path.display().to_string();
        let format = self.spec.sources[name]
            .format
            .or_else(|| format_from_path(&location))
            .ok_or_else(|| Error::Source {
                source_name: name.to_string(),
                message: format!("cannot tell the format of `{location}`"),
                help: Some("name files .csv, .parquet or .ndjson, or declare `format`".into()),
            })?;
        source.origin = SourceOrigin::Files {
            location,
            overridden: true,
            format,
        };
        Ok(())
    }

    /// Where file source `name`'s files are: an overridden path as given, a declared one
    /// relative to the pipeline's folder with `${VAR}`s filled in from the environment (checked
    /// when the pipeline loaded).
    pub fn source_path(&self, name: &str) -> Result<PathBuf> {
        let (declared, overridden) = self.file_location(name)?;
        if overridden {
            return Ok(PathBuf::from(declared));
        }
        interpolate::interpolate(declared)
            .map(|path| self.base_dir.join(path))
            .map_err(|variable| unset(name, &variable))
    }

    /// The glob pattern of file source `name`'s declared `path:`, or `None` when the pipeline
    /// wrote no wildcard there (or the path was overridden, which is always literal). The
    /// pipeline's folder and the values of `${VAR}`s are matched literally: only what the
    /// pipeline wrote is a pattern.
    pub fn source_pattern(&self, name: &str) -> Result<Option<String>> {
        let (location, overridden) = self.file_location(name)?;
        if overridden || !interpolate::written_part(location).contains(['*', '?', '[']) {
            return Ok(None);
        }
        let written = interpolate::interpolate_with(location, glob::Pattern::escape)
            .map_err(|variable| unset(name, &variable))?;
        let base = self.base_dir.to_string_lossy();
        Ok(Some(
            if Path::new(&written).is_absolute() || base.is_empty() {
                written
            } else {
                format!("{}/{written}", glob::Pattern::escape(&base))
            },
        ))
    }

    /// The connection URL of Postgres source `name`, `${VAR}`s filled in (it holds a password:
    /// never show it).
    pub fn source_url(&self, name: &str) -> Result<String> {
        match &self.sources[name].origin {
            SourceOrigin::Postgres { url, .. } => {
                interpolate::interpolate(url).map_err(|variable| unset(name, &variable))
            }
            SourceOrigin::Files { .. } => Err(Error::Internal(format!(
                "source `{name}` is read from files, not a database"
            ))),
        }
    }

    /// The location and whether it was overridden, of file source `name`.
    fn file_location(&self, name: &str) -> Result<(&str, bool)> {
        match &self.sources[name].origin {
            SourceOrigin::Files {
                location,
                overridden,
                ..
            } => Ok((location, *overridden)),
            SourceOrigin::Postgres { .. } => Err(Error::Internal(format!(
                "source `{name}` is read from a database, not files"
            ))),
        }
    }

    /// Values of the environment variables the pipeline interpolates, to redact from any output,
    /// and the password of every connection URL on its own (a message may quote it without the
    /// URL).
    pub fn secrets(&self) -> Vec<String> {
        self.secret_variables()
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .flat_map(|value| {
                let password = crate::secrets::password_of(&value);
                std::iter::once(value).chain(password)
            })
            .chain(
                self.connection_urls()
                    .filter_map(|url| interpolate::interpolate(url).ok())
                    .filter_map(|url| crate::secrets::password_of(&url)),
            )
            .filter(|value| value.len() >= 4)
            .collect()
    }

    /// The names of the variables whose values [`Pipeline::secrets`] masks, in order, each once:
    /// recorded in the manifest so `segflow report` masks the same values again.
    pub fn secret_variables(&self) -> Vec<String> {
        let paths = self.spec.sources.values().filter_map(|s| s.path.as_deref());
        let mut names: Vec<String> = Vec::new();
        for name in paths
            .chain(self.connection_urls())
            .filter_map(|text| interpolate::variables(text).ok())
            .flatten()
        {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// Every connection URL as declared: of Postgres sources and of exports.
    fn connection_urls(&self) -> impl Iterator<Item = &str> {
        let sources = self
            .spec
            .sources
            .values()
            .filter_map(|s| s.postgres.as_ref())
            .map(|p| p.url.as_str());
        let exports = self
            .spec
            .exports
            .iter()
            .filter_map(|e| e.postgres.as_ref())
            .map(|p| p.url.as_str());
        sources.chain(exports)
    }

    /// An export's connection `url` as declared, with its `${VAR}`s filled in from the
    /// environment (never to be shown), or the first unset variable.
    pub fn export_url(&self, url: &str) -> std::result::Result<String, String> {
        interpolate::interpolate(url)
    }

    /// The title shown in reports.
    pub fn title(&self) -> &str {
        self.spec.title.as_deref().unwrap_or(&self.spec.name)
    }
}

/// The error for `${variable}` unset when source `name` is read.
fn unset(name: &str, variable: &str) -> Error {
    Error::Source {
        source_name: name.to_string(),
        message: format!("environment variable `{variable}` is not set"),
        help: Some(format!(
            "set `{variable}` before running, or write the source without it"
        )),
    }
}

/// Today's date in UTC, or the date of `SOURCE_DATE_EPOCH` when it is set, so that builds and
/// runs that print dates can be reproduced.
pub fn today() -> NaiveDate {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|epoch| epoch.trim().parse::<i64>().ok())
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .unwrap_or_else(chrono::Utc::now)
        .date_naive()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The typed content of `file`. YAML merge keys (`<<: *defaults`, how YAML users share blocks)
/// are applied first; serde_yaml only applies them on a generic value, so a file with them takes
/// that way, and its remaining errors name the key path instead of a line.
fn parse_spec(
    file: &PipelineFile,
) -> std::result::Result<PipelineSpec, Box<crate::diagnostic::Problem>> {
    let direct = serde_yaml::from_str::<PipelineSpec>(file.text());
    match direct {
        Ok(spec) => return Ok(spec),
        Err(error) if error.to_string().contains("unknown field `<<`") => {}
        Err(error) => return Err(Box::new(yaml_problem(file, &error))),
    }
    let merged = serde_yaml::from_str::<serde_yaml::Value>(file.text()).and_then(|mut value| {
        value.apply_merge()?;
        serde_yaml::from_value::<PipelineSpec>(value)
    });
    merged.map_err(|merged_error| {
        if merged_error.location().is_some() {
            return Box::new(yaml_problem(file, &merged_error));
        }
        let message = in_user_words(&merged_error.to_string());
        Box::new(file.problem(codes::INVALID_YAML, None, message).help(
            "the file uses YAML merge keys (`<<`), after which positions are not known; \
             look for the key the message names",
        ))
    })
}

fn yaml_problem(file: &PipelineFile, error: &serde_yaml::Error) -> crate::diagnostic::Problem {
    if file.text().trim().is_empty() {
        return file
            .problem(codes::INVALID_YAML, None, "the pipeline file is empty")
            .help(
                "start from an example in pipelines/, or see the README's pipeline file section",
            );
    }
    let full = in_user_words(&error.to_string());
    // serde_yaml appends " at line L column C"; the snippet shows that better.
    let message = match full.rfind(" at line ") {
        Some(at) => full[..at].to_string(),
        None => full.clone(),
    };
    let span = error.location().map(|location| {
        let offset = byte_offset(
            file.text(),
            location.line(),
            location.column().saturating_sub(1),
        );
        let len = file.text()[offset..]
            .split(['\n', ':'])
            .next()
            .map_or(1, |s| s.trim_end().len().max(1));
        miette::SourceSpan::new(offset.into(), len)
    });
    // serde names the mapping of a duplicate field; point at the second occurrence instead,
    // which the location index holds (later keys replace earlier ones).
    if let Some(key) = message
        .split_once("duplicate field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(key, _)| key)
    {
        let parent = message
            .split_once(": duplicate field")
            .map_or("", |(p, _)| p);
        let path = if parent.is_empty() || message.starts_with("duplicate field") {
            key.to_string()
        } else {
            format!("{parent}.{key}")
        };
        return file
            .at_key(codes::INVALID_YAML, &path, message.clone())
            .help(format!(
                "`{key}` appears twice in the same mapping; keep one"
            ));
    }
    let problem = file.problem(codes::INVALID_YAML, span, message.clone());
    problem.maybe_help(suggestion(&message))
}

/// serde's message without Rust's names for types (`struct PipelineSpec`, `u32`, `sequence`),
/// which mean nothing to someone writing YAML.
fn in_user_words(message: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut tokens = message.split(' ').peekable();
    while let Some(token) = tokens.next() {
        let (word, tail) = split_punctuation(token);
        let replacement = match word {
            "struct" | "enum" if words.last().is_some_and(|w| w == "expected") => {
                // `expected struct FeatureSpec,` → `expected a mapping,`
                let (_, tail) = tokens.next().map(split_punctuation).unwrap_or_default();
                let what = if word == "struct" {
                    "a mapping"
                } else {
                    "one of the allowed values"
                };
                format!("{what}{tail}")
            }
            "untagged" if tokens.peek() == Some(&"enum") => {
                tokens.next();
                let (name, tail) = tokens.next().map(split_punctuation).unwrap_or_default();
                let forms = match name {
                    "Literal" => "the allowed forms (true or false, a number, or text)",
                    "FixtureRows" => "the allowed forms (a list of rows, or `path: FILE`)",
                    _ => "the allowed forms",
                };
                format!("{forms}{tail}")
            }
            "u8" | "u16" | "u32" | "u64" | "usize" => format!("a whole number of 0 or more{tail}"),
            "i8" | "i16" | "i32" | "i64" | "isize" => format!("a whole number{tail}"),
            "f32" | "f64" => format!("a number{tail}"),
            "sequence" => format!("list{tail}"),
            "map" => format!("mapping{tail}"),
            _ => token.to_string(),
        };
        words.push(replacement);
    }
    words.join(" ")
}

/// `"PipelineSpec,"` → `("PipelineSpec", ",")`: a word and the punctuation after it.
fn split_punctuation(token: &str) -> (&str, &str) {
    let end = token.trim_end_matches([',', ';', ':', '.']).len();
    token.split_at(end)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" messages: the likely intended name.
fn suggestion(message: &str) -> Option<String> {
    let rest = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))?
        .1;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    did_you_mean(unknown, candidates.iter().copied()).map(|best| format!("did you mean `{best}`?"))
}

#[cfg(test)]
mod tests {
    use super::{Pipeline, in_user_words};

    const MINIMAL: &str = "version: 1\nname: p\nsources: { c: { path: c.csv } }\n\
        entity: { source: c, key: id }\nfeatures:\n  - { name: revenue, kind: value, \
        description: Revenue., expr: amount, unit: EUR }\nsegments: [{ id: all, name: All }]\n";

    fn pipeline(text: &str) -> Pipeline {
        Pipeline::from_text("p.yaml", text.to_string(), std::path::PathBuf::new())
            .expect("the pipeline loads")
    }

    #[test]
    fn reports_suppress_cells_under_ten_unless_told_otherwise() {
        assert_eq!(pipeline(MINIMAL).spec.reports.min_cell, 10);
        assert_eq!(
            pipeline(&format!("{MINIMAL}reports: {{}}\n"))
                .spec
                .reports
                .min_cell,
            10
        );
        assert_eq!(
            pipeline(&format!("{MINIMAL}reports: {{ min_cell: 0 }}\n"))
                .spec
                .reports
                .min_cell,
            0
        );
    }

    #[test]
    fn a_feature_keeps_its_unit() {
        let spec = pipeline(MINIMAL).spec;
        assert_eq!(spec.features[0].unit.as_deref(), Some("EUR"));
        assert!(crate::pipeline::model::is_currency("EUR"));
        assert!(!crate::pipeline::model::is_currency("days"));
    }

    #[test]
    fn serde_messages_lose_rust_type_names() {
        assert_eq!(
            in_user_words("invalid type: sequence, expected struct PipelineSpec"),
            "invalid type: list, expected a mapping"
        );
        assert_eq!(
            in_user_words(
                "features[0].aggregate.window_days: invalid value: integer `-3`, expected u32"
            ),
            "features[0].aggregate.window_days: invalid value: integer `-3`, expected a whole number of 0 or more"
        );
        assert_eq!(
            in_user_words("invalid type: map, expected a sequence"),
            "invalid type: mapping, expected a list"
        );
        assert_eq!(
            in_user_words("data did not match any variant of untagged enum Literal"),
            "data did not match any variant of the allowed forms (true or false, a number, or text)"
        );
    }
}
