//! What the SQL snippets of a pipeline refer to, checked where they are written: names that must
//! parse, and conditions (segment rules, the accessible criterion's `reachable`) that may use
//! features only.

use std::collections::BTreeSet;

use crate::diagnostic::{PipelineFile, Problem, available_help, codes};
use crate::pipeline::sql::{NOT_ALLOWED, referenced_names};

/// The names `sql` (at node `path`) refers to; a parse error is a problem pointing at the column.
pub fn sql_names(
    file: &PipelineFile,
    path: &str,
    sql: &str,
    problems: &mut Vec<Problem>,
) -> BTreeSet<String> {
    referenced_names(sql).unwrap_or_else(|message| {
        if let Some(what) = message.strip_prefix(NOT_ALLOWED) {
            problems.push(
                file.at(codes::SQL_NOT_ALLOWED, path, format!("{what} is {}", NOT_ALLOWED.trim_end_matches(": ")))
                    .help("features and rules compute one value per customer from features, entity columns or their own source's rows"),
            );
            return BTreeSet::new();
        }
        // sqlparser ends its messages with " at Line: L, Column: C"; on the first line of a
        // one-line snippet that is a position in the file.
        let position = message.rsplit_once(" at Line: ").and_then(|(text, at)| {
            let (line, column) = at.split_once(", Column: ")?;
            let column: usize = column.trim().parse().ok()?;
            (line.trim() == "1" && !sql.contains('\n')).then(|| (text.to_string(), column))
        });
        let problem = match position {
            Some((text, column)) => file
                .at_column(
                    codes::SQL_SYNTAX,
                    path,
                    column,
                    format!("SQL does not parse: {text}"),
                )
                .label("here"),
            None => file
                .at(
                    codes::SQL_SYNTAX,
                    path,
                    format!("SQL does not parse: {message}"),
                )
                .label("in this expression"),
        };
        problems.push(problem);
        BTreeSet::new()
    })
}

/// The names condition `sql` (at node `path`, belonging to `owner`, e.g. "segment `busy`")
/// refers to, each of which must be one of `features`.
pub fn feature_condition(
    file: &PipelineFile,
    path: &str,
    sql: &str,
    owner: &str,
    features: &[&str],
    problems: &mut Vec<Problem>,
) -> BTreeSet<String> {
    let names = sql_names(file, path, sql, problems);
    for name in &names {
        if !features.contains(&name.as_str()) {
            problems.push(
                file.at_word(
                    codes::UNKNOWN_FEATURE,
                    path,
                    name,
                    format!("{owner} uses `{name}`, which is not a feature"),
                )
                .label(format!("`{name}` is used here"))
                .help(format!(
                    "segment rules use features only (declare one for an entity column with `expr: <column>`); {}",
                    available_help(name, "feature", features.iter().copied())
                )),
            );
        }
    }
    names
}
