//! Turning a checked pipeline into DataFusion plans: one aggregate query per (source, window,
//! filter), a left join onto the customers, one projection step per expression feature, and a
//! first-match-wins `CASE` for the segments. Every step is planned on its own, so a failure is
//! reported against the feature or segment that caused it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Days, NaiveDate};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{DataFrame, SessionContext, cast, col};

use super::sources::{arrow_type, table_schema};
use crate::error::{Error, Problem, Result, first_line_of_datafusion};
use crate::pipeline::model::{AggregateSpec, FeatureSpec, Literal};
use crate::pipeline::sql::{ident, string_literal};
use crate::pipeline::{Pipeline, available_help};

/// Column name of the join key inside aggregate subqueries.
const JOIN_KEY: &str = "__segflow_key";

/// The planned assignments query.
pub struct Plan {
    /// Key, `segment`, then every feature in declaration order; one row per customer, by key.
    pub assignments: DataFrame,
}

/// Plan `pipeline` as of `as_of` against the sources registered in `ctx`.
pub async fn build(ctx: &SessionContext, pipeline: &Pipeline, as_of: NaiveDate) -> Result<Plan> {
    let mut planner = Planner {
        ctx,
        pipeline,
        as_of,
        problems: Vec::new(),
    };
    let result = planner.build().await;
    let problems = std::mem::take(&mut planner.problems);
    pipeline.origin.fail_if_any(problems)?;
    result?.ok_or_else(|| Error::Internal("planning failed without a problem".into()))
}

struct Planner<'a> {
    ctx: &'a SessionContext,
    pipeline: &'a Pipeline,
    as_of: NaiveDate,
    problems: Vec<Problem>,
}

impl Planner<'_> {
    fn problem(&mut self, code: &'static str, path: &str, message: String, help: Option<String>) {
        let problem = self
            .pipeline
            .origin
            .at(code, path, message)
            .maybe_help(help);
        self.problems.push(problem);
    }

    fn problem_at_word(
        &mut self,
        word: &str,
        code: &'static str,
        path: &str,
        message: String,
        help: Option<String>,
    ) {
        let problem = self
            .pipeline
            .origin
            .at_word(code, path, word, message)
            .maybe_help(help);
        self.problems.push(problem);
    }

    async fn build(&mut self) -> Result<Option<Plan>> {
        let spec = &self.pipeline.spec;
        let entity = table_schema(self.ctx, &spec.entity.source).await?;
        let key = spec.entity.key.as_str();
        if entity.field_with_name(key).is_err() {
            self.problem(
                "unknown-column",
                "entity.key",
                format!("source `{}` has no key column `{key}`", spec.entity.source),
                Some(available_help(key, "column", names(&entity))),
            );
            return Ok(None);
        }

        let aggregate_columns = self.plan_aggregates(key).await?;
        let Some(mut step) = self.register_base(&entity, key, &aggregate_columns).await? else {
            return Ok(None);
        };
        let mut failed: HashSet<&str> = HashSet::new();
        for &i in &self.pipeline.feature_order {
            let feature = &spec.features[i];
            let Some(expr) = expression_of(feature, key) else {
                continue;
            };
            let references = &self.pipeline.feature_references[i];
            if references.iter().any(|r| failed.contains(r.as_str())) {
                failed.insert(&feature.name);
                continue;
            }
            let columns = table_schema(self.ctx, &step).await?;
            match self.plan_expression(i, &expr, &columns, &step).await? {
                Some(next) => step = next,
                None => {
                    failed.insert(&feature.name);
                }
            }
        }
        if !self.problems.is_empty() {
            return Ok(None);
        }
        self.plan_segments(&step, key).await
    }

    /// Plan every aggregate feature: returns, per (source, window, filter) group, its SQL and
    /// the features it yields with their defaults.
    async fn plan_aggregates(&mut self, key: &str) -> Result<Vec<AggregateGroup>> {
        let spec = &self.pipeline.spec;
        let mut groups: BTreeMap<(String, Option<u32>, Option<String>), AggregateGroup> =
            BTreeMap::new();
        for (i, feature) in spec.features.iter().enumerate() {
            let Some(aggregate) = &feature.aggregate else {
                continue;
            };
            let Some(from) = self.aggregate_source_sql(i, aggregate, key).await? else {
                continue;
            };
            let single = format!(
                "SELECT {} AS {}, ({}) AS {} {from}",
                ident(&from_key(self.pipeline, &aggregate.source, key)),
                ident(JOIN_KEY),
                aggregate.expr,
                ident(&feature.name)
            );
            if let Err(e) = self.ctx.sql(&single).await {
                self.problem(
                    "sql-plan",
                    &format!("features[{i}].aggregate.expr"),
                    format!(
                        "feature `{}` does not plan: {}",
                        feature.name,
                        first_line_of_datafusion(&e)
                    ),
                    None,
                );
                continue;
            }
            let group_key = (
                aggregate.source.clone(),
                aggregate.window_days,
                aggregate.filter.clone(),
            );
            let group = groups.entry(group_key).or_insert_with(|| AggregateGroup {
                source_key: from_key(self.pipeline, &aggregate.source, key),
                from,
                features: Vec::new(),
            });
            group.features.push((
                feature.name.clone(),
                aggregate.expr.clone(),
                aggregate.default.clone(),
            ));
        }
        Ok(groups.into_values().collect())
    }

    /// `FROM source WHERE <time window and filter> GROUP BY key` for one aggregate feature, after
    /// checking the columns it uses exist.
    async fn aggregate_source_sql(
        &mut self,
        i: usize,
        aggregate: &AggregateSpec,
        key: &str,
    ) -> Result<Option<String>> {
        let feature = &self.pipeline.spec.features[i];
        let source_spec = &self.pipeline.spec.sources[&aggregate.source];
        let schema = table_schema(self.ctx, &aggregate.source).await?;
        let join_key = from_key(self.pipeline, &aggregate.source, key);
        let mut ok = true;
        if schema.field_with_name(&join_key).is_err() {
            let at = if source_spec.key.is_some() {
                format!("sources.{}.key", aggregate.source)
            } else {
                format!("features[{i}].aggregate.source")
            };
            self.problem(
                "unknown-column",
                &at,
                format!(
                    "source `{}` has no column `{join_key}` to join on the customers' key",
                    aggregate.source
                ),
                Some(format!(
                    "declare the joining column with `key:` on source `{}`; {}",
                    aggregate.source,
                    available_help(&join_key, "column", names(&schema))
                )),
            );
            ok = false;
        }
        for name in &self.pipeline.feature_references[i] {
            if schema.field_with_name(name).is_err() {
                self.problem_at_word(
                    name,
                    "unknown-column",
                    &format!("features[{i}].aggregate.expr"),
                    format!(
                        "feature `{}` uses column `{name}`, which source `{}` does not have",
                        feature.name, aggregate.source
                    ),
                    Some(available_help(name, "column", names(&schema))),
                );
                ok = false;
            }
        }
        let mut conditions = Vec::new();
        if let Some(time_column) = &source_spec.time_column {
            match schema
                .field_with_name(time_column)
                .map(|f| f.data_type().clone())
            {
                Ok(data_type) if is_temporal(&data_type) => {
                    let literal = |date: NaiveDate| temporal_literal(&data_type, date);
                    conditions.push(format!("{} < {}", ident(time_column), literal(self.as_of)));
                    if let Some(days) = aggregate.window_days {
                        let start = self
                            .as_of
                            .checked_sub_days(Days::new(u64::from(days)))
                            .unwrap_or(NaiveDate::MIN);
                        conditions.push(format!("{} >= {}", ident(time_column), literal(start)));
                    }
                }
                Ok(data_type) => {
                    self.problem(
                        "time-column-type",
                        &format!("sources.{}.time_column", aggregate.source),
                        format!("time column `{time_column}` of source `{}` holds {data_type}, not dates or timestamps", aggregate.source),
                        Some(format!("declare its type under `columns:`, e.g. `{time_column}: timestamp` or `{time_column}: date`")),
                    );
                    ok = false;
                }
                Err(_) => {
                    self.problem(
                        "unknown-column",
                        &format!("sources.{}.time_column", aggregate.source),
                        format!(
                            "source `{}` has no time column `{time_column}`",
                            aggregate.source
                        ),
                        Some(available_help(time_column, "column", names(&schema))),
                    );
                    ok = false;
                }
            }
        }
        if let Some(filter) = &aggregate.filter {
            conditions.push(format!("({filter})"));
        }
        if !ok {
            return Ok(None);
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        Ok(Some(format!(
            "FROM {}{filter} GROUP BY {}",
            ident(&aggregate.source),
            ident(&join_key)
        )))
    }

    /// Join every aggregate group onto the customers, with defaults for customers without rows.
    async fn register_base(
        &mut self,
        entity: &Schema,
        key: &str,
        groups: &[AggregateGroup],
    ) -> Result<Option<String>> {
        let spec = &self.pipeline.spec;
        let aggregate_names: BTreeSet<&str> = groups
            .iter()
            .flat_map(|g| g.features.iter().map(|(name, ..)| name.as_str()))
            .collect();
        let mut select: Vec<String> = entity
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|name| !aggregate_names.contains(name))
            .map(|name| format!("e.{}", ident(name)))
            .collect();
        let mut joins = String::new();
        for (g, group) in groups.iter().enumerate() {
            let alias = format!("a{g}");
            let columns: Vec<String> = group
                .features
                .iter()
                .map(|(name, expr, _)| format!("({expr}) AS {}", ident(name)))
                .collect();
            joins.push_str(&format!(
                " LEFT JOIN (SELECT {} AS {}, {} {}) AS {alias} ON e.{} = {alias}.{}",
                ident(&group.source_key),
                ident(JOIN_KEY),
                columns.join(", "),
                group.from,
                ident(key),
                ident(JOIN_KEY),
            ));
            for (name, _, default) in &group.features {
                let column = format!("{alias}.{}", ident(name));
                select.push(match default {
                    Some(value) => format!(
                        "COALESCE({column}, {}) AS {}",
                        sql_literal(value),
                        ident(name)
                    ),
                    None => format!("{column} AS {}", ident(name)),
                });
            }
        }
        let sql = format!(
            "SELECT {} FROM {} AS e{joins}",
            select.join(", "),
            ident(&spec.entity.source)
        );
        let frame = match self.ctx.sql(&sql).await {
            Ok(frame) => frame,
            Err(e) => {
                self.problem(
                    "sql-plan",
                    "features",
                    format!(
                        "the aggregate features do not plan together: {}",
                        first_line_of_datafusion(&e)
                    ),
                    None,
                );
                return Ok(None);
            }
        };
        let frame = self.apply_declared_types(frame, &aggregate_names)?;
        Ok(Some(self.register_step(0, frame)?))
    }

    /// Cast features with a declared `type`.
    fn apply_declared_types(
        &self,
        mut frame: DataFrame,
        features: &BTreeSet<&str>,
    ) -> Result<DataFrame> {
        for feature in &self.pipeline.spec.features {
            if let (true, Some(column_type)) = (
                features.contains(feature.name.as_str()),
                feature.column_type,
            ) {
                frame = frame.with_column(
                    &feature.name,
                    cast(col(ident(&feature.name)), arrow_type(column_type)),
                )?;
            }
        }
        Ok(frame)
    }

    fn register_step(&self, n: usize, frame: DataFrame) -> Result<String> {
        let name = format!("__segflow_step_{n}");
        self.ctx.register_table(name.as_str(), frame.into_view())?;
        Ok(name)
    }

    /// Add expression feature `i` on top of step `from`, returning the new step.
    async fn plan_expression(
        &mut self,
        i: usize,
        expr: &str,
        columns: &Schema,
        from: &str,
    ) -> Result<Option<String>> {
        let feature = &self.pipeline.spec.features[i];
        let available = names(columns);
        let mut ok = true;
        for name in &self.pipeline.feature_references[i] {
            if columns.field_with_name(name).is_err() {
                self.problem_at_word(
                    name,
                    "unknown-column",
                    &format!("features[{i}].expr"),
                    format!("feature `{}` uses `{name}`, which is neither a column of `{}` nor a feature", feature.name, self.pipeline.spec.entity.source),
                    Some(available_help(name, "column", available.clone())),
                );
                ok = false;
            }
        }
        if !ok {
            return Ok(None);
        }
        let mut select: Vec<String> = available
            .filter(|name| *name != feature.name)
            .map(ident)
            .collect();
        select.push(format!("({expr}) AS {}", ident(&feature.name)));
        let sql = format!("SELECT {} FROM {}", select.join(", "), ident(from));
        match self.ctx.sql(&sql).await {
            Ok(frame) => {
                let frame =
                    self.apply_declared_types(frame, &BTreeSet::from([feature.name.as_str()]))?;
                let step = from
                    .rsplit('_')
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                Ok(Some(self.register_step(step + 1, frame)?))
            }
            Err(e) => {
                self.problem(
                    "sql-plan",
                    &format!("features[{i}].expr"),
                    format!(
                        "feature `{}` does not plan: {}",
                        feature.name,
                        first_line_of_datafusion(&e)
                    ),
                    None,
                );
                Ok(None)
            }
        }
    }

    /// Check that `condition` plans over step `from`, is true/false, and compares no text
    /// column with a number (DataFusion would cast the text and fail, or compare as text).
    async fn check_condition(&mut self, from: &str, path: &str, condition: &str, what: &str) {
        let probe = format!("SELECT ({condition}) AS matched FROM {}", ident(from));
        if let Ok(columns) = table_schema(self.ctx, from).await {
            for (column, data_type, literal) in mixed_comparisons(condition, &columns) {
                let problem = self
                    .pipeline
                    .origin
                    .at_word("rule-type", path, &column, format!("{what} compares `{column}` ({data_type}) with {literal}"))
                    .help("compare text with text ('pro') and numbers with numbers (5), or convert one side with CAST");
                self.problems.push(problem);
            }
        }
        match self.ctx.sql(&probe).await {
            Ok(frame) => {
                let data_type = frame.schema().field(0).data_type().clone();
                if !matches!(data_type, DataType::Boolean | DataType::Null) {
                    self.problem(
                        "rule-type",
                        path,
                        format!("{what} is {data_type}, not true/false"),
                        Some("write a comparison, e.g. `active_days_90 >= 10`".into()),
                    );
                }
            }
            Err(e) => self.problem(
                "sql-plan",
                path,
                format!("{what} does not plan: {}", first_line_of_datafusion(&e)),
                None,
            ),
        }
    }

    /// The final query: key, first matching segment, features; sorted by key.
    async fn plan_segments(&mut self, from: &str, key: &str) -> Result<Option<Plan>> {
        let spec = &self.pipeline.spec;
        let mut branches = Vec::new();
        let mut otherwise = "NULL".to_string();
        for (i, segment) in spec.segments.iter().enumerate() {
            let Some(when) = &segment.when else {
                otherwise = string_literal(&segment.id);
                continue;
            };
            self.check_condition(
                from,
                &format!("segments[{i}].when"),
                when,
                &format!("the condition of segment `{}`", segment.id),
            )
            .await;
            branches.push(format!(
                "WHEN ({when}) THEN {}",
                string_literal(&segment.id)
            ));
        }
        if let Some(accessible) = spec.criteria.as_ref().and_then(|c| c.accessible.as_ref()) {
            self.check_condition(
                from,
                "criteria.accessible.reachable",
                &accessible.reachable,
                "the accessible criterion's `reachable` condition",
            )
            .await;
        }
        if !self.problems.is_empty() {
            return Ok(None);
        }
        let segment = if branches.is_empty() {
            otherwise
        } else {
            format!("CASE {} ELSE {otherwise} END", branches.join(" "))
        };
        let mut select = vec![
            ident(key),
            format!("CAST({segment} AS VARCHAR) AS \"segment\""),
        ];
        select.extend(spec.features.iter().map(|f| ident(&f.name)));
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            select.join(", "),
            ident(from),
            ident(key)
        );
        let assignments = self.ctx.sql(&sql).await?;
        Ok(Some(Plan { assignments }))
    }
}

struct AggregateGroup {
    source_key: String,
    from: String,
    features: Vec<(String, String, Option<Literal>)>,
}

/// Comparisons in `condition` of a text column with a number, or of a numeric column with a text
/// literal: (column, its type, the literal in words).
fn mixed_comparisons(condition: &str, columns: &Schema) -> Vec<(String, DataType, String)> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value, visit_expressions};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use std::ops::ControlFlow;

    let Ok(expr) = Parser::new(&GenericDialect {})
        .try_with_sql(condition)
        .and_then(|mut p| p.parse_expr())
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let _ = visit_expressions(&expr, |e: &Expr| {
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            )
        {
            for (side, other) in [(left, right), (right, left)] {
                let (Expr::Identifier(name), Expr::Value(value)) = (side.as_ref(), other.as_ref())
                else {
                    continue;
                };
                let column = if name.quote_style.is_some() {
                    name.value.clone()
                } else {
                    name.value.to_lowercase()
                };
                let Ok(field) = columns.field_with_name(&column) else {
                    continue;
                };
                let data_type = field.data_type().clone();
                let text = matches!(
                    data_type,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
                match &value.value {
                    Value::Number(n, _) if text => {
                        found.push((column, data_type, format!("the number {n}")))
                    }
                    Value::SingleQuotedString(s) if data_type.is_numeric() => {
                        found.push((column, data_type, format!("the text '{s}'")))
                    }
                    _ => {}
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The SQL of an expression or quantile feature (`None` for aggregates).
fn expression_of(feature: &FeatureSpec, key: &str) -> Option<String> {
    if let Some(expr) = &feature.expr {
        return Some(expr.clone());
    }
    let quantile = feature.quantile.as_ref()?;
    let of = ident(&quantile.of);
    let bucket = match (&quantile.buckets, &quantile.cuts) {
        (Some(buckets), _) => {
            let order = if quantile.descending { "DESC" } else { "ASC" };
            // Customers without a value get no bucket and do not take a share of the buckets.
            format!(
                "ntile({buckets}) OVER (PARTITION BY {of} IS NULL ORDER BY {of} {order}, {})",
                ident(key)
            )
        }
        (None, Some(cuts)) => {
            let top = cuts.len() + 1;
            let branches: Vec<String> = cuts
                .iter()
                .enumerate()
                .map(|(i, cut)| {
                    let bucket = if quantile.descending { top - i } else { i + 1 };
                    format!("WHEN {of} < {cut:?} THEN {bucket}")
                })
                .collect();
            let last = if quantile.descending { 1 } else { top };
            format!("CASE {} ELSE {last} END", branches.join(" "))
        }
        (None, None) => return None,
    };
    Some(format!(
        "CAST(CASE WHEN {of} IS NULL THEN NULL ELSE {bucket} END AS BIGINT)"
    ))
}

fn from_key(pipeline: &Pipeline, source: &str, entity_key: &str) -> String {
    pipeline.spec.sources[source]
        .key
        .clone()
        .unwrap_or_else(|| entity_key.to_string())
}

fn names(schema: &Schema) -> impl Iterator<Item = &str> + Clone {
    schema.fields().iter().map(|f| f.name().as_str())
}

fn is_temporal(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

fn temporal_literal(data_type: &DataType, date: NaiveDate) -> String {
    match data_type {
        DataType::Timestamp(..) => format!("TIMESTAMP '{date} 00:00:00'"),
        _ => format!("DATE '{date}'"),
    }
}

fn sql_literal(value: &Literal) -> String {
    match value {
        Literal::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => format!("{f:?}"),
        Literal::Text(t) => string_literal(t),
    }
}
