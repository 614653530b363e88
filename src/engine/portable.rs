//! The compiled stages as one SQL statement for another engine (`segflow compile`): the stages
//! in their portable shapes (no day bitmaps), each rewritten for the target dialect and joined
//! as common table expressions.
//!
//! What differs between engines is decided from the types DataFusion gives each expression, not
//! from its text: `a / b` of two whole numbers divides whole numbers (DataFusion's meaning,
//! DuckDB's `//`), `d1 - d2` of two dates is a number of days, a cast of a fraction to a whole
//! number truncates. What a dialect cannot express is refused, naming the stage and dialect.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, CastKind, Expr, GroupByExpr, ObjectName, Select, TableAlias, TableFactor,
    Value, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::compile::Stage;
use crate::error::{Error, Result};

/// An SQL dialect `segflow compile` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dialect {
    /// PostgreSQL 12 or later.
    Postgres,
    /// DuckDB.
    DuckDb,
    /// Google BigQuery (GoogleSQL).
    BigQuery,
    /// Snowflake.
    Snowflake,
    /// MySQL 8.
    MySql,
    /// SQLite 3.30 or later.
    Sqlite,
}

impl Dialect {
    /// Every dialect, in the order the help lists them.
    pub const ALL: [Dialect; 6] = [
        Dialect::Postgres,
        Dialect::DuckDb,
        Dialect::BigQuery,
        Dialect::Snowflake,
        Dialect::MySql,
        Dialect::Sqlite,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::DuckDb => "duckdb",
            Dialect::BigQuery => "bigquery",
            Dialect::Snowflake => "snowflake",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// Whether the tests run this dialect's SQL in the real engine (others are golden files).
    pub fn verified(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::DuckDb)
    }

    /// How identifiers are quoted.
    fn quote(self) -> char {
        match self {
            Dialect::BigQuery | Dialect::MySql => '`',
            _ => '"',
        }
    }

    /// Whole-number division `a / b`, truncating toward zero as DataFusion does.
    fn whole_division(self, left: Expr, right: Expr) -> Result<Expr> {
        match self {
            // Both truncate whole numbers toward zero.
            Dialect::Postgres | Dialect::Sqlite => Ok(binary(left, BinaryOperator::Divide, right)),
            // `/` divides as fractions there; `//` and DIV divide whole numbers.
            Dialect::DuckDb => Ok(binary(left, BinaryOperator::DuckIntegerDivide, right)),
            Dialect::MySql => Ok(binary(left, BinaryOperator::MyIntegerDivide, right)),
            Dialect::BigQuery => template("DIV(__0, __1)", vec![left, right]),
            Dialect::Snowflake => template("CAST(TRUNC(__0 / __1) AS BIGINT)", vec![left, right]),
        }
    }

    /// Days from date `right` to date `left` (DataFusion's `left - right`).
    fn days_between(self, left: Expr, right: Expr) -> Result<Expr> {
        match self {
            Dialect::Postgres | Dialect::DuckDb | Dialect::Snowflake => {
                Ok(binary(left, BinaryOperator::Minus, right))
            }
            Dialect::BigQuery => template("DATE_DIFF(__0, __1, DAY)", vec![left, right]),
            Dialect::MySql => template("DATEDIFF(__0, __1)", vec![left, right]),
            Dialect::Sqlite => template(
                "CAST(julianday(__0) - julianday(__1) AS INTEGER)",
                vec![left, right],
            ),
        }
    }

    /// Whether floating-point `value` is NaN.
    fn is_nan(self, value: Expr) -> Result<Expr> {
        match self {
            Dialect::Postgres | Dialect::Snowflake => {
                template("(__0 = CAST('NaN' AS DOUBLE PRECISION))", vec![value])
            }
            Dialect::DuckDb => template("isnan(__0)", vec![value]),
            Dialect::BigQuery => template("IS_NAN(__0)", vec![value]),
            // Neither stores NaN (SQLite stores it as null, MySQL refuses it).
            Dialect::MySql | Dialect::Sqlite => template("(__0 IS NULL AND FALSE)", vec![value]),
        }
    }

    /// The dialect's name of a type, or `None` when it has none.
    fn type_name(self, kind: TypeKind) -> Option<&'static str> {
        use Dialect::*;
        use TypeKind::*;
        Some(match (self, kind) {
            (BigQuery, Int32 | Int64) => "INT64",
            (MySql, Int32 | Int64) => "SIGNED",
            (Sqlite, Int32 | Int64) => "INTEGER",
            (_, Int32) => "INTEGER",
            (_, Int64) => "BIGINT",
            (BigQuery, Float64) => "FLOAT64",
            (Postgres | Snowflake, Float64) => "DOUBLE PRECISION",
            (Sqlite, Float64) => "REAL",
            (_, Float64) => "DOUBLE",
            (BigQuery, Text) => "STRING",
            (MySql, Text) => "CHAR",
            (Sqlite, Text) => "TEXT",
            (_, Text) => "VARCHAR",
            (BigQuery, Bool) => "BOOL",
            (MySql, Bool) => return None,
            (Sqlite, Bool) => "INTEGER",
            (_, Bool) => "BOOLEAN",
            (Sqlite, Date) => return None,
            (_, Date) => "DATE",
            (BigQuery | MySql, Timestamp) => "DATETIME",
            (Snowflake, Timestamp) => "TIMESTAMP_NTZ",
            (Sqlite, Timestamp) => return None,
            (_, Timestamp) => "TIMESTAMP",
        })
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
                format!("unknown dialect `{name}`; one of: {}", names.join(", "))
            })
    }
}

/// The kinds of values a cast can make, as far as the dialects differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeKind {
    Int32,
    Int64,
    Float64,
    Text,
    Bool,
    Date,
    Timestamp,
}

impl TypeKind {
    fn of_arrow(data_type: &DataType) -> Option<TypeKind> {
        Some(match data_type {
            DataType::Int8 | DataType::Int16 | DataType::Int32 => TypeKind::Int32,
            DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => {
                TypeKind::Int64
            }
            DataType::Float32 | DataType::Float64 => TypeKind::Float64,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => TypeKind::Text,
            DataType::Boolean => TypeKind::Bool,
            DataType::Date32 | DataType::Date64 => TypeKind::Date,
            DataType::Timestamp(_, None) => TypeKind::Timestamp,
            _ => return None,
        })
    }

    /// A type as written in SQL, e.g. `BIGINT`, `DOUBLE`, `VARCHAR`.
    fn of_sql(data_type: &ast::DataType) -> Option<TypeKind> {
        let name = data_type.to_string().to_ascii_uppercase();
        let base = name
            .split('(')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        Some(match base.as_str() {
            "TINYINT" | "SMALLINT" | "INT" | "INTEGER" | "INT2" | "INT4" => TypeKind::Int32,
            "BIGINT" | "INT8" | "INT64" => TypeKind::Int64,
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT64" | "REAL" | "FLOAT" | "FLOAT4" => {
                TypeKind::Float64
            }
            "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER VARYING" => TypeKind::Text,
            "BOOLEAN" | "BOOL" => TypeKind::Bool,
            "DATE" => TypeKind::Date,
            "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" | "DATETIME" => TypeKind::Timestamp,
            _ => return None,
        })
    }

    fn is_whole(self) -> bool {
        matches!(self, TypeKind::Int32 | TypeKind::Int64)
    }
}

/// A table's name as the target spells it (`analytics.events`).
pub type TableName = ObjectName;

/// What the target reads for each source: a source's name maps to a table name, or (when not
/// mapped) the source is read from a table named after it.
pub type Tables = BTreeMap<String, TableName>;

/// Parse `schema.table` as given with `--table`.
pub fn parse_table(text: &str) -> std::result::Result<TableName, String> {
    let not_a_name = |why: String| format!("`{text}` is not a table name: {why}");
    let mut parser = Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .map_err(|e| not_a_name(e.to_string()))?;
    let name = parser
        .parse_object_name(false)
        .map_err(|e| not_a_name(e.to_string()))?;
    match parser.peek_token().token {
        Token::EOF => Ok(name),
        other => Err(not_a_name(format!("`{other}` follows the name"))),
    }
}

/// The common table expression a query source is read from: not the source's own name, which
/// another source's query may use for a table of the database.
pub fn query_source_name(source: &str) -> String {
    format!("__segflow_source_{source}")
}

/// The stages (compiled with portable shapes, their views registered in `ctx`) as one statement
/// for `dialect`, reading each source from `tables`; a source in `queries` is read from its
/// query, as a common table expression named after it.
pub async fn statement(
    ctx: &SessionContext,
    stages: &[Stage],
    as_of: NaiveDate,
    dialect: Dialect,
    tables: &Tables,
    queries: &BTreeMap<String, String>,
) -> Result<String> {
    let (mut ctes, tables) = query_sources(dialect, tables, queries);
    let tables = &tables;
    let mut last = String::new();
    for stage in stages {
        let sql = match translate(ctx, &stage.title, &stage.sql, as_of, dialect, tables).await {
            Ok(sql) => sql,
            Err(error) => return Err(narrowed(ctx, stage, as_of, dialect, tables, error).await),
        };
        if stage.view == "assignments" {
            last = sql;
        } else {
            ctes.push(format!(
                "-- {}\n{} AS (\n{sql}\n)",
                one_line(&stage.title),
                quoted(&stage.view, dialect)
            ));
        }
    }
    let statement = if ctes.is_empty() {
        last
    } else {
        format!("WITH\n{}\n{last}", ctes.join(",\n"))
    };
    Ok(requote(&statement, dialect))
}

/// A stage's refusal told of the feature that causes it, when the stage computes several.
async fn narrowed(
    ctx: &SessionContext,
    stage: &Stage,
    as_of: NaiveDate,
    dialect: Dialect,
    tables: &Tables,
    error: Error,
) -> Error {
    if !matches!(error, Error::Dialect { .. }) {
        return error;
    }
    for part in &stage.parts {
        if let Err(narrow @ Error::Dialect { .. }) =
            translate(ctx, &part.title, &part.sql, as_of, dialect, tables).await
        {
            return narrow;
        }
    }
    error
}

/// One query segflow wrote over the sources (a count), rewritten for `dialect` as
/// [`statement`] rewrites the stages; `title` says what it computes.
pub async fn query(
    ctx: &SessionContext,
    title: &str,
    sql: &str,
    as_of: NaiveDate,
    dialect: Dialect,
    tables: &Tables,
    queries: &BTreeMap<String, String>,
) -> Result<String> {
    let (ctes, tables) = query_sources(dialect, tables, queries);
    let sql = translate(ctx, title, sql, as_of, dialect, &tables).await?;
    let sql = if ctes.is_empty() {
        sql
    } else {
        format!("WITH\n{}\n{sql}", ctes.join(",\n"))
    };
    Ok(requote(&sql, dialect))
}

/// The common table expressions of the query sources, and `tables` with each query source read
/// from its own.
fn query_sources(
    dialect: Dialect,
    tables: &Tables,
    queries: &BTreeMap<String, String>,
) -> (Vec<String>, Tables) {
    let mut tables = tables.clone();
    // On lines of their own, so that a trailing `--` comment ends with its line.
    let ctes = queries
        .iter()
        .map(|(name, query)| {
            let cte = query_source_name(name);
            tables.insert(
                name.clone(),
                ObjectName::from(vec![ast::Ident::with_quote('"', cte.clone())]),
            );
            format!("{} AS (\n{query}\n)", quoted(&cte, dialect))
        })
        .collect();
    (ctes, tables)
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn quoted(name: &str, dialect: Dialect) -> String {
    let q = dialect.quote();
    format!("{q}{}{q}", name.replace(q, &format!("{q}{q}")))
}

/// Quote every quoted identifier of `sql` as `dialect` does (backticks for BigQuery and MySQL).
fn requote(sql: &str, dialect: Dialect) -> String {
    let quote = dialect.quote();
    if quote == '"' {
        return sql.to_string();
    }
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return sql.to_string();
    };
    tokens
        .into_iter()
        .map(|token| match token {
            Token::Word(mut word) if word.quote_style == Some('"') => {
                word.quote_style = Some(quote);
                Token::Word(word).to_string()
            }
            other => other.to_string(),
        })
        .collect()
}

/// One query's SQL (a stage's, computing `title`) rewritten for `dialect`.
async fn translate(
    ctx: &SessionContext,
    title: &str,
    sql: &str,
    as_of: NaiveDate,
    dialect: Dialect,
    tables: &Tables,
) -> Result<String> {
    let refuse = |message: String, help: Option<String>| Error::Dialect {
        dialect: dialect.name().into(),
        message: format!("{title} ({message})"),
        help,
    };
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| Error::Internal(format!("stage SQL does not parse: {e}")))?;
    let [statement] = statements.as_mut_slice() else {
        return Err(Error::Internal("a stage is one statement".into()));
    };
    let mut questions = Questions::default();
    let _ = Visit::visit(&*statement, &mut questions);
    let mut answers = VecDeque::new();
    for question in &questions.asked {
        answers.push_back(answer(ctx, question).await);
    }
    let mut rewriter = Rewriter {
        dialect,
        as_of,
        tables,
        answers,
        pending: Vec::new(),
        aliases: 0,
        refused: None,
    };
    let _ = VisitMut::visit(statement, &mut rewriter);
    if let Some((message, help)) = rewriter.refused {
        return Err(refuse(message, help));
    }
    Ok(statement.to_string())
}

/// An expression whose meaning depends on the types of its operands.
#[derive(Debug, Clone)]
struct Question {
    /// `FROM ...` (and `GROUP BY ...`) of the SELECT it is in.
    from: String,
    group_by: String,
    /// The operands, as DataFusion SQL.
    operands: Vec<String>,
}

/// Collects the questions in the order the rewriter meets them.
#[derive(Default)]
struct Questions {
    scopes: Vec<(String, String)>,
    asked: Vec<Question>,
}

impl Visitor for Questions {
    type Break = ();

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        self.scopes.push(scope_of(select));
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, _select: &Select) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Some(operands) = typed_operands(expr) {
            let (from, group_by) = self.scopes.last().cloned().unwrap_or_default();
            self.asked.push(Question {
                from,
                group_by,
                operands: operands.iter().map(ToString::to_string).collect(),
            });
        }
        ControlFlow::Continue(())
    }
}

/// `FROM ...` and `GROUP BY ...` of `select`, to plan its expressions alone.
fn scope_of(select: &Select) -> (String, String) {
    let from: Vec<String> = select.from.iter().map(ToString::to_string).collect();
    let from = if from.is_empty() {
        String::new()
    } else {
        format!(" FROM {}", from.join(", "))
    };
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) if !exprs.is_empty() => format!(" {}", select.group_by),
        _ => String::new(),
    };
    (from, group_by)
}

/// The operands whose types decide how `expr` is written: of a division, a subtraction, a cast
/// to a whole number or to text, a `round`, and a sum (itself).
fn typed_operands(expr: &Expr) -> Option<Vec<&Expr>> {
    match expr {
        Expr::Function(function) => {
            let name = function.name.to_string().to_ascii_lowercase();
            match (name.as_str(), &function.args) {
                ("sum", _) => Some(vec![expr]),
                ("round", ast::FunctionArguments::List(list)) => match list.args.first() {
                    Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(value))) => {
                        Some(vec![value])
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Divide | BinaryOperator::Minus,
            right,
        } => Some(vec![left, right]),
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if TypeKind::of_sql(data_type)
            .is_some_and(|kind| kind.is_whole() || kind == TypeKind::Text) =>
        {
            Some(vec![inner])
        }
        _ => None,
    }
}

/// The types of a question's operands, planned by DataFusion; `None` for an operand it could not
/// plan alone.
async fn answer(ctx: &SessionContext, question: &Question) -> Vec<Option<DataType>> {
    let select: Vec<String> = question
        .operands
        .iter()
        .enumerate()
        .map(|(i, operand)| format!("({operand}) AS __segflow_operand_{i}"))
        .collect();
    let base = format!("SELECT {}{}", select.join(", "), question.from);
    for sql in [format!("{base}{}", question.group_by), base.clone()] {
        if let Ok(frame) = ctx.sql(&sql).await {
            return frame
                .schema()
                .fields()
                .iter()
                .map(|f| Some(f.data_type().clone()))
                .collect();
        }
    }
    vec![None; question.operands.len()]
}

/// Rewrites one stage for a dialect, using the answered questions in order.
struct Rewriter<'a> {
    dialect: Dialect,
    as_of: NaiveDate,
    tables: &'a Tables,
    answers: VecDeque<Vec<Option<DataType>>>,
    /// The answers of the expressions being visited, innermost last.
    pending: Vec<Option<Vec<Option<DataType>>>>,
    aliases: usize,
    refused: Option<(String, Option<String>)>,
}

impl Rewriter<'_> {
    fn refuse<T>(&mut self, message: String, help: Option<String>) -> ControlFlow<(), T> {
        self.refused = Some((message, help));
        ControlFlow::Break(())
    }

    /// The rewritten form of `expr` (its operands already rewritten), given its operands' types.
    fn rewrite(
        &mut self,
        expr: &Expr,
        types: Option<Vec<Option<DataType>>>,
    ) -> ControlFlow<(), Option<Expr>> {
        let dialect = self.dialect;
        let types = types.unwrap_or_default();
        let kinds: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } => self.division(expr, left, right, &kinds),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Minus,
                right,
            } => self.subtraction(expr, left, right, &kinds),
            Expr::Cast {
                kind: cast_kind @ (CastKind::Cast | CastKind::DoubleColon | CastKind::TryCast),
                expr: inner,
                data_type,
                ..
            } => self.cast_as(expr, cast_kind.clone(), inner, data_type, &kinds),
            Expr::Function(function) => self.function(expr, function, &kinds),
            Expr::Value(value) if matches!(&value.value, Value::Number(n, _) if n.contains(['.', 'e', 'E'])) =>
            {
                // DataFusion reads `0.7` as a double; Postgres and DuckDB as an exact decimal,
                // which compares differently (3 * 0.7 < 2.1).
                let cast = self.cast(expr.clone(), TypeKind::Float64, false);
                self.done(cast)
            }
            Expr::Like { .. } | Expr::ILike { .. }
                if matches!(dialect, Dialect::Sqlite | Dialect::MySql) =>
            {
                self.refuse(
                    format!("`{expr}`: LIKE ignores case in {dialect}, and not in DataFusion"),
                    Some(
                        "compare lower(x) with a lower-case pattern, or run on the embedded engine"
                            .into(),
                    ),
                )
            }
            Expr::Substring {
                substring_from: Some(start),
                ..
            } if dialect == Dialect::DuckDb && !is_positive_literal(start) => {
                self.refuse_negative_start(expr)
            }
            Expr::TypedString(typed) if dialect == Dialect::Sqlite => {
                // SQLite keeps dates and timestamps as ISO text.
                ControlFlow::Continue(Some(Expr::Value(
                    Value::SingleQuotedString(
                        typed.value.clone().into_string().unwrap_or_default(),
                    )
                    .into(),
                )))
            }
            _ => ControlFlow::Continue(None),
        }
    }

    /// A rewritten expression, or a refusal saying why it could not be.
    fn done(&mut self, result: Result<Expr>) -> ControlFlow<(), Option<Expr>> {
        match result {
            Ok(rewritten) => ControlFlow::Continue(Some(rewritten)),
            Err(e) => self.refuse(e.to_string(), None),
        }
    }

    fn refuse_negative_start(&mut self, expr: &Expr) -> ControlFlow<(), Option<Expr>> {
        self.refuse(
            format!("`{expr}` starts at a position that is not a positive number, which DuckDB counts differently"),
            Some("start at 1 or later".into()),
        )
    }

    /// `left / right`: of two whole numbers, a whole-number division.
    fn division(
        &mut self,
        expr: &Expr,
        left: &Expr,
        right: &Expr,
        kinds: &[Option<&DataType>],
    ) -> ControlFlow<(), Option<Expr>> {
        match kinds {
            // Each side as the whole number DataFusion has: Postgres keeps EXTRACT's and
            // numeric sums as NUMERIC, which `/` would divide as fractions.
            [Some(l), Some(r)] if l.is_integer() && r.is_integer() => {
                let division = self
                    .as_whole(left)
                    .and_then(|left| Ok((left, self.as_whole(right)?)))
                    .and_then(|(left, right)| self.dialect.whole_division(left, right));
                self.done(division)
            }
            [Some(_), Some(_)] => ControlFlow::Continue(None),
            _ => self.refuse(
                format!("cannot tell whether `{expr}` divides whole numbers"),
                Some("write the division so that each side is a column or a plain expression of columns".into()),
            ),
        }
    }

    /// `left - right`: of two dates, a number of days; of timestamps, refused.
    fn subtraction(
        &mut self,
        expr: &Expr,
        left: &Expr,
        right: &Expr,
        kinds: &[Option<&DataType>],
    ) -> ControlFlow<(), Option<Expr>> {
        match kinds {
            // Each side as the date DataFusion has: Postgres and DuckDB make `date + interval`
            // a timestamp, whose difference would be an interval.
            [Some(l), Some(r)] if is_date(l) && is_date(r) => {
                let days = self
                    .as_date(left)
                    .and_then(|left| Ok((left, self.as_date(right)?)))
                    .and_then(|(left, right)| self.dialect.days_between(left, right));
                self.done(days)
            }
            [Some(l), Some(r)]
                if matches!(l, DataType::Timestamp(..)) || matches!(r, DataType::Timestamp(..)) =>
            {
                self.refuse(
                    format!("`{expr}` subtracts timestamps, whose difference each engine gives as a different type"),
                    Some("subtract dates instead, e.g. `CAST(a AS DATE) - CAST(b AS DATE)` for days".into()),
                )
            }
            [Some(_), Some(_)] => ControlFlow::Continue(None),
            _ => self.refuse(
                format!("cannot tell the types of the operands of `{expr}`"),
                None,
            ),
        }
    }

    /// `CAST(inner AS data_type)` (or `TRY_CAST`), `kinds` holding the type of `inner` when it
    /// matters: to a whole number or to text.
    fn cast_as(
        &mut self,
        expr: &Expr,
        cast_kind: CastKind,
        inner: &Expr,
        data_type: &ast::DataType,
        kinds: &[Option<&DataType>],
    ) -> ControlFlow<(), Option<Expr>> {
        let Some(kind) = TypeKind::of_sql(data_type) else {
            return self.refuse(
                format!("`{expr}` casts to {data_type}, which segflow does not translate"),
                Some("cast to BIGINT, INT, DOUBLE, VARCHAR, BOOLEAN, DATE or TIMESTAMP".into()),
            );
        };
        let from = kinds.first().copied().flatten();
        if kind == TypeKind::Text
            && let Some(from) =
                from.filter(|t| t.is_floating() || matches!(t, DataType::Timestamp(..)))
        {
            let what = if from.is_floating() {
                "floating-point number"
            } else {
                "timestamp"
            };
            return self.refuse(
                format!("`{expr}` writes a {what} as text, which each engine spells differently (3.0 or 3; a T or a space in timestamps)"),
                Some("compare the value itself, or make it a whole number or a date before casting".into()),
            );
        }
        let from_fraction = from.is_some_and(|t| {
            t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
        });
        let cast = self
            .cast(inner.clone(), kind, from_fraction)
            .map(|mut cast| {
                if let Expr::Cast { kind, .. } = &mut cast
                    && cast_kind == CastKind::TryCast
                {
                    *kind = CastKind::TryCast;
                }
                cast
            });
        self.done(cast)
    }

    /// A function call: segflow's own functions replaced, and those whose meaning differs
    /// between engines written as DataFusion means them.
    fn function(
        &mut self,
        expr: &Expr,
        function: &ast::Function,
        kinds: &[Option<&DataType>],
    ) -> ControlFlow<(), Option<Expr>> {
        let dialect = self.dialect;
        let name = function.name.to_string().to_ascii_lowercase();
        let args = plain_args(function);
        match (name.as_str(), args.as_deref()) {
            ("as_of", Some([])) => ControlFlow::Continue(Some(self.date_literal())),
            ("arrow_cast", Some([value, Expr::Value(v)])) => {
                let Value::SingleQuotedString(arrow) = &v.value else {
                    return self.refuse(format!("`{expr}` is not a cast segflow wrote"), None);
                };
                let Some(kind) = arrow
                    .parse::<DataType>()
                    .ok()
                    .as_ref()
                    .and_then(TypeKind::of_arrow)
                else {
                    return self.refuse(
                        format!("`{expr}` casts to {arrow}, which segflow does not translate"),
                        None,
                    );
                };
                let cast = self.cast(value.clone(), kind, false);
                self.done(cast)
            }
            ("isnan", Some([value])) => {
                let test = dialect.is_nan(value.clone());
                self.done(test)
            }
            ("substr" | "substring", Some([_, start, ..]))
                if dialect == Dialect::DuckDb && !is_positive_literal(start) =>
            {
                self.refuse_negative_start(expr)
            }
            // Postgres and MySQL round a double's halves to even; DataFusion away from zero, as
            // they do for exact numbers.
            ("round", Some([value, rest @ ..]))
                if matches!(dialect, Dialect::Postgres | Dialect::MySql)
                    && matches!(kinds, [Some(t)] if t.is_floating()) =>
            {
                let exact = if dialect == Dialect::Postgres {
                    "NUMERIC"
                } else {
                    "DECIMAL(65, 30)"
                };
                let double = dialect.type_name(TypeKind::Float64).unwrap_or("DOUBLE");
                let mut args = vec![value.clone()];
                args.extend(rest.iter().cloned());
                let digits = if rest.is_empty() { "" } else { ", __1" };
                let rounded = template(
                    &format!("CAST(round(CAST(__0 AS {exact}){digits}) AS {double})"),
                    args,
                );
                self.done(rounded)
            }
            // A sum of whole numbers is whole in DataFusion (BIGINT); Postgres makes it NUMERIC
            // and DuckDB HUGEINT, which would then divide as fractions.
            ("sum", _) if matches!(kinds, [Some(t)] if t.is_integer()) => {
                let mut function = function.clone();
                self.order_nulls_as_datafusion(&mut function);
                let cast = self.cast(Expr::Function(function), TypeKind::Int64, false);
                self.done(cast)
            }
            ("bit_count", _) => self.refuse("`bit_count` is segflow's own function".into(), None),
            _ => {
                let mut function = function.clone();
                self.order_nulls_as_datafusion(&mut function);
                ControlFlow::Continue(Some(Expr::Function(function)))
            }
        }
    }

    /// `value` as the dialect's whole number (a whole literal as it is).
    fn as_whole(&self, value: &Expr) -> Result<Expr> {
        if is_whole_literal(value) {
            return Ok(value.clone());
        }
        self.cast(value.clone(), TypeKind::Int64, false)
    }

    /// `value` as a date (SQLite's date functions read its ISO text as it is).
    fn as_date(&self, value: &Expr) -> Result<Expr> {
        if self.dialect == Dialect::Sqlite || matches!(value, Expr::TypedString(_)) {
            return Ok(value.clone());
        }
        self.cast(value.clone(), TypeKind::Date, false)
    }

    /// The as-of date as a date literal (text in SQLite, which keeps dates as ISO text).
    fn date_literal(&self) -> Expr {
        let date = self.as_of.to_string();
        if self.dialect == Dialect::Sqlite {
            Expr::Value(Value::SingleQuotedString(date).into())
        } else {
            Expr::TypedString(ast::TypedString {
                data_type: ast::DataType::Date,
                value: Value::SingleQuotedString(date).into(),
                uses_odbc_syntax: false,
            })
        }
    }

    /// `CAST(value AS kind)` in the dialect; a fraction made whole is truncated toward zero,
    /// as DataFusion does (Postgres and DuckDB round).
    fn cast(&self, value: Expr, kind: TypeKind, from_fraction: bool) -> Result<Expr> {
        let dialect = self.dialect;
        if dialect == Dialect::Sqlite && kind == TypeKind::Date {
            return template("date(__0)", vec![value]);
        }
        let Some(name) = dialect.type_name(kind) else {
            return Err(Error::Internal(format!(
                "{dialect} has no type for {kind:?} values"
            )));
        };
        if from_fraction && kind.is_whole() {
            template(&format!("CAST(TRUNC(__0) AS {name})"), vec![value])
        } else {
            template(&format!("CAST(__0 AS {name})"), vec![value])
        }
    }

    /// Window orders with the null ordering DataFusion uses (nulls last ascending, first
    /// descending), spelled out: DuckDB puts them last both ways, MySQL first ascending.
    fn order_nulls_as_datafusion(&self, function: &mut ast::Function) {
        let Some(ast::WindowType::WindowSpec(spec)) = &mut function.over else {
            return;
        };
        let mut order = Vec::new();
        for mut item in std::mem::take(&mut spec.order_by) {
            let ascending = item.options.asc.unwrap_or(true);
            let nulls_first = item.options.nulls_first.unwrap_or(!ascending);
            if self.dialect == Dialect::MySql {
                // No NULLS FIRST/LAST: order by whether the value is null first.
                let mut nulls = item.clone();
                nulls.expr = Expr::IsNull(Box::new(item.expr.clone()));
                nulls.options.asc = Some(!nulls_first);
                nulls.options.nulls_first = None;
                order.push(nulls);
                item.options.nulls_first = None;
            } else {
                item.options.nulls_first = Some(nulls_first);
            }
            order.push(item);
        }
        spec.order_by = order;
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let types = if typed_operands(expr).is_some() {
            self.answers.pop_front()
        } else {
            None
        };
        self.pending.push(types);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let types = self.pending.pop().flatten();
        if let Some(rewritten) = self.rewrite(expr, types)? {
            *expr = rewritten;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        match factor {
            // Postgres before 16 needs a name for every subquery in FROM.
            TableFactor::Derived { alias: None, .. } => {
                if let TableFactor::Derived { alias, .. } = factor {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: ast::Ident::with_quote('"', format!("__segflow_t{}", self.aliases)),
                        columns: Vec::new(),
                        at: None,
                    });
                    self.aliases += 1;
                }
            }
            TableFactor::Table { name, .. } => {
                if let Some(table) = self
                    .tables
                    .get(&name.to_string().trim_matches('"').to_string())
                {
                    *name = table.clone();
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn is_whole_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.chars().all(|c| c.is_ascii_digit())))
}

fn is_positive_literal(expr: &Expr) -> bool {
    is_whole_literal(expr)
        && !matches!(expr, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.trim_start_matches('0').is_empty()))
}

fn is_date(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Date32 | DataType::Date64)
}

fn binary(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }))
}

/// The plain arguments of a call (`f(a, b)`), `None` for any other form.
fn plain_args(function: &ast::Function) -> Option<Vec<Expr>> {
    match &function.args {
        ast::FunctionArguments::None => Some(Vec::new()),
        ast::FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
        {
            list.args
                .iter()
                .map(|arg| match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect()
        }
        _ => None,
    }
}

/// Parse `sql` (generic SQL with placeholders `__0`, `__1`, …) and put `args` in their places.
fn template(sql: &str, args: Vec<Expr>) -> Result<Expr> {
    let mut expr = Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|e| Error::Internal(format!("template `{sql}` does not parse: {e}")))?;
    let _ = ast::visit_expressions_mut(&mut expr, |e: &mut Expr| {
        if let Expr::Identifier(ident) = e
            && let Some(i) = ident
                .value
                .strip_prefix("__")
                .and_then(|n| n.parse::<usize>().ok())
            && let Some(arg) = args.get(i)
        {
            *e = arg.clone();
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(expr)
}
