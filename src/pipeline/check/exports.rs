//! Checks of the `exports:` section: unique names, exactly one destination, table names segflow
//! can write without quoting, file formats, `${VAR}`s in the URL and the features exported.

use std::collections::HashMap;

use crate::diagnostic::{PipelineFile, Problem, available_help, codes};
use crate::pipeline::interpolate;
use crate::pipeline::model::{
    NAME_PATTERN, PipelineSpec, export_format, is_valid_name, is_valid_table_name,
};

/// Columns a Postgres export adds after the features.
const EXPORT_COLUMNS: &[&str] = &["run_id", "as_of"];

/// Check the exports of `spec`, appending problems.
pub fn check_exports(spec: &PipelineSpec, file: &PipelineFile, problems: &mut Vec<Problem>) {
    let features: Vec<&str> = spec.features.iter().map(|f| f.name.as_str()).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    // Each table (per connection URL as written) and each file is written by one export: two
    // transactions of one run on the same table would wait for each other forever.
    let mut destinations: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, export) in spec.exports.iter().enumerate() {
        let path = format!("exports[{i}]");
        if !is_valid_name(&export.name) {
            problems.push(
                file.at(
                    codes::INVALID_NAME,
                    &format!("{path}.name"),
                    format!("invalid export name `{}`", export.name),
                )
                .help(format!("export names follow the pattern {NAME_PATTERN}")),
            );
        }
        if let Some(first) = seen.insert(&export.name, i) {
            problems.push(
                file.at(
                    codes::DUPLICATE_NAME,
                    &format!("{path}.name"),
                    format!("export `{}` is declared twice", export.name),
                )
                .help(format!(
                    "the first declaration is exports[{first}]; rename one of them"
                )),
            );
        }
        match (&export.postgres, &export.file) {
            (Some(postgres), None) => {
                check_url(
                    file,
                    &format!("{path}.postgres.url"),
                    &postgres.url,
                    problems,
                );
                let tables = [
                    ("table", Some(&postgres.table)),
                    ("history_table", postgres.history_table.as_ref()),
                ];
                for (key, table) in tables {
                    if let Some(table) = table
                        && !is_valid_table_name(table)
                    {
                        problems.push(
                            file.at(
                                codes::EXPORT_DEFINITION,
                                &format!("{path}.postgres.{key}"),
                                format!("`{table}` is not a table name segflow writes"),
                            )
                            .help(
                                "write `table` or `schema.table` in lowercase letters, digits \
                                 and `_`, starting with a letter or `_`",
                            ),
                        );
                    }
                }
                for (key, table) in [
                    ("table", Some(&postgres.table)),
                    ("history_table", postgres.history_table.as_ref()),
                ] {
                    if let Some(table) = table
                        && let Some(first) = destinations.insert((&postgres.url, table), i)
                        && first != i
                    {
                        problems.push(
                            file.at(
                                codes::EXPORT_DEFINITION,
                                &format!("{path}.postgres.{key}"),
                                format!("table `{table}` is written by two exports"),
                            )
                            .help(format!(
                                "exports[{first}] writes it too; give each export its own tables"
                            )),
                        );
                    }
                }
                if postgres.history_table.as_ref() == Some(&postgres.table) {
                    problems.push(
                        file.at(
                            codes::EXPORT_DEFINITION,
                            &format!("{path}.postgres.history_table"),
                            "the history table is the export's own table",
                        )
                        .help("name another table for the history, or remove `history_table`"),
                    );
                }
            }
            (None, Some(target)) => {
                if let Some(first) = destinations.insert(("", target), i) {
                    problems.push(
                        file.at(
                            codes::EXPORT_DEFINITION,
                            &format!("{path}.file"),
                            format!("file `{target}` is written by two exports"),
                        )
                        .help(format!(
                            "exports[{first}] writes it too; give each export its own file"
                        )),
                    );
                }
                if export_format(target).is_none() {
                    problems.push(
                        file.at(
                            codes::UNKNOWN_FORMAT,
                            &format!("{path}.file"),
                            format!("cannot tell the format of export file `{target}`"),
                        )
                        .help("name export files `.parquet` or `.csv`"),
                    );
                }
            }
            (postgres, _) => {
                let both = postgres.is_some();
                problems.push(
                    file.at(
                        codes::EXPORT_DEFINITION,
                        &format!("{path}.name"),
                        format!(
                            "export `{}` has {} of `postgres` and `file`",
                            export.name,
                            if both { "both" } else { "neither" }
                        ),
                    )
                    .help("give each export exactly one destination: `postgres: { url, table }` or `file: path.parquet`"),
                );
            }
        }
        let mut chosen: HashMap<&str, usize> = HashMap::new();
        for (j, feature) in export.features.iter().enumerate() {
            let at = format!("{path}.features[{j}]");
            if !features.contains(&feature.as_str()) {
                problems.push(
                    file.at(
                        codes::UNKNOWN_FEATURE,
                        &at,
                        format!("unknown feature `{feature}`"),
                    )
                    .help(available_help(
                        feature,
                        "feature",
                        features.iter().copied(),
                    )),
                );
            } else if EXPORT_COLUMNS.contains(&feature.as_str()) {
                problems.push(
                    file.at(
                        codes::RESERVED_NAME,
                        &at,
                        format!("feature `{feature}` is named like a column exports add"),
                    )
                    .help("exports add `run_id` and `as_of`; rename the feature"),
                );
            } else if chosen.insert(feature, j).is_some() {
                problems.push(
                    file.at(
                        codes::DUPLICATE_NAME,
                        &at,
                        format!("feature `{feature}` is exported twice"),
                    )
                    .help("name each feature once"),
                );
            }
        }
    }
}

/// The `${VAR}`s of a connection URL are well formed and set.
fn check_url(file: &PipelineFile, path: &str, url: &str, problems: &mut Vec<Problem>) {
    match interpolate::variables(url) {
        // The message does not quote the URL: it may hold a password.
        Err(_) => problems.push(
            file.at(
                codes::INTERPOLATION,
                path,
                "the connection URL holds a malformed `${...}`",
            )
            .help("write `${NAME}` with letters, digits and `_` to insert an environment variable"),
        ),
        Ok(variables) => {
            for variable in variables {
                if std::env::var_os(variable).is_none() {
                    problems.push(
                        file.at_word(
                            codes::UNSET_VARIABLE,
                            path,
                            variable,
                            format!("environment variable `{variable}` is not set"),
                        )
                        .help(format!(
                            "set `{variable}` before running segflow; its value is never \
                             written to outputs or messages"
                        )),
                    );
                }
            }
        }
    }
}
