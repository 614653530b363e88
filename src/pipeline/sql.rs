//! Reading the SQL snippets of a pipeline file (feature expressions, segment conditions) just
//! enough to know which names they use, so references are checked before DataFusion plans them.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Ident, visit_expressions};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer, Whitespace};

/// The column names an SQL expression refers to, as DataFusion will resolve them: unquoted names
/// are lower-cased, quoted names kept as written. A qualified name `t.c` counts as `c`.
pub fn referenced_names(sql: &str) -> Result<BTreeSet<String>, String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| clean_parser_message(&e.to_string()))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| clean_parser_message(&e.to_string()))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(format!(
            "unexpected `{}` after the end of the expression",
            next.token
        ));
    }
    if let Some(what) = not_allowed(&expr) {
        return Err(format!("{NOT_ALLOWED}{what}"));
    }
    let mut names = BTreeSet::new();
    let _ = visit_expressions(&expr, |e: &Expr| {
        let ident = match e {
            Expr::Identifier(ident) => Some(ident),
            Expr::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        };
        if let Some(ident) = ident {
            names.insert(resolved_name(ident));
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(names)
}

/// Start of the message for SQL a pipeline may not use.
pub const NOT_ALLOWED: &str = "not allowed in a pipeline expression: ";

/// Functions that generate rows or arrays of any size: a feature or rule computes one value per
/// customer from what it names, and `generate_series(1, 1e12)` would run until killed.
const GENERATORS: &[&str] = &["generate_series", "range", "unnest"];

/// What `expr` uses that pipeline expressions may not: a subquery (features and rules read the
/// customer's features, or the rows of their own aggregate's source, never other tables), or a
/// function that generates rows.
fn not_allowed(expr: &Expr) -> Option<String> {
    let mut found = None;
    let _ = visit_expressions(expr, |e: &Expr| {
        let what = match e {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                Some("a subquery (use a feature: an `aggregate` over the source)".to_string())
            }
            Expr::Function(function) => {
                let name = function.name.to_string().to_ascii_lowercase();
                GENERATORS
                    .contains(&name.as_str())
                    .then(|| format!("`{name}`, which generates rows"))
            }
            _ => None,
        };
        match what {
            Some(what) => {
                found = Some(what);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    found
}

/// The column name DataFusion resolves `ident` to: unquoted names lower-cased, quoted names
/// as written.
pub fn resolved_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn clean_parser_message(message: &str) -> String {
    message.trim_start_matches("sql parser error: ").to_string()
}

/// `sql` with its comments (`-- ...` to the end of the line, `/* ... */`) replaced by spaces, so
/// that a rule like `events_90 >= 30 -- active` still means what it says when segflow embeds it
/// in larger SQL, and positions in messages still point at the user's text. Text that does not
/// tokenize is returned as is: the parser reports it.
pub fn blank_comments(sql: &str) -> String {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return sql.to_string();
    };
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // Token locations are 1-based lines and character columns.
    let offset = |location: Location| -> usize {
        let Some(start) = usize::try_from(location.line)
            .ok()
            .and_then(|line| line_starts.get(line.saturating_sub(1)))
        else {
            return sql.len();
        };
        let column = usize::try_from(location.column)
            .unwrap_or(1)
            .saturating_sub(1);
        start
            + sql[*start..]
                .chars()
                .take(column)
                .map(char::len_utf8)
                .sum::<usize>()
    };
    let mut out = sql.to_string();
    for token in tokens {
        if let Token::Whitespace(
            Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
        ) = token.token
        {
            let (start, end) = (offset(token.span.start), offset(token.span.end));
            if start < end && end <= out.len() {
                let blank: String = out[start..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' })
                    .collect();
                out.replace_range(start..end, &blank);
            }
        }
    }
    out.trim_end().to_string()
}

/// Quote `name` as an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote `text` as an SQL string literal.
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_quoted_and_qualified_names() {
        let names =
            referenced_names("Active_Days >= 4 AND \"Mixed\" = t.plan AND lower(x) IN ('a')")
                .unwrap();
        let names: Vec<_> = names.into_iter().collect();
        assert_eq!(names, ["Mixed", "active_days", "plan", "x"]);
    }

    #[test]
    fn function_names_are_not_columns() {
        let names =
            referenced_names("ntile(5) OVER (ORDER BY revenue DESC) + as_of() - d").unwrap();
        let names: Vec<_> = names.into_iter().collect();
        assert_eq!(names, ["d", "revenue"]);
    }

    #[test]
    fn rejects_subqueries_and_row_generators() {
        for sql in [
            "(SELECT count(*) FROM events) > 0",
            "EXISTS (SELECT 1)",
            "customer_id IN (SELECT customer_id FROM events)",
            "cardinality(generate_series(1, 1000000000000)) > 0",
            "array_length(RANGE(1, 10)) = 9",
        ] {
            let message = referenced_names(sql).unwrap_err();
            assert!(message.starts_with(NOT_ALLOWED), "{sql}: {message}");
        }
    }

    #[test]
    fn comments_become_spaces_and_strings_keep_theirs() {
        assert_eq!(blank_comments("a >= 30 -- busy"), "a >= 30");
        assert_eq!(
            blank_comments("a /* x */ > 1 -- y\n AND b = '-- not a comment'"),
            "a         > 1     \n AND b = '-- not a comment'"
        );
        assert_eq!(blank_comments("é /* ü */ + 1"), "é         + 1");
        assert_eq!(blank_comments("'unterminated"), "'unterminated");
    }

    #[test]
    fn rejects_trailing_garbage_and_bad_syntax() {
        assert!(
            referenced_names("a b")
                .unwrap_err()
                .contains("unexpected `b`")
        );
        assert!(referenced_names("a >= ").is_err());
    }
}
