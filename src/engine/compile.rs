//! Compiling a validated pipeline into SQL stages over DataFusion views: per-customer aggregate
//! queries (shaped by [`super::aggregate`]) left-joined onto the customers, one projection per
//! expression or quantile feature in evaluation order, and a first-match-wins `CASE` for the
//! segments. Every stage is plain SQL (shown by `segflow plan`) and planned on its own, so a
//! failure is reported against the feature or segment that caused it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Days, NaiveDate};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{DataFrame, SessionContext};

use super::aggregate::{self, JOIN_KEY, Member};
use super::entity;
use super::sources::table_schema;
use super::temporal::{is_temporal, temporal_literal};
use super::wide_select;
use crate::diagnostic::{Problem, available_help, codes, codes::Code};
use crate::error::{Error, Result, first_line_of_datafusion};
use crate::pipeline::Pipeline;
use crate::pipeline::model::{ColumnType, Literal};
use crate::pipeline::sql::{ident, string_literal};
use crate::pipeline::validated::{
    Aggregate, Bucketing, EntityOrigin, Feature, FeatureDefinition, Quantile,
};

/// The earliest and latest dates Arrow's nanosecond timestamps (which SQL timestamp literals
/// become) can hold, with a day's margin.
const EARLIEST_TIMESTAMP_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1677, 9, 22) {
    Some(date) => date,
    None => NaiveDate::MIN,
};
const LATEST_TIMESTAMP_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2262, 4, 10) {
    Some(date) => date,
    None => NaiveDate::MAX,
};

/// One SQL stage of the compiled pipeline.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The view it is registered as (`assignments` for the last stage).
    pub view: String,
    /// What it computes, in words.
    pub title: String,
    /// The SELECT statement.
    pub sql: String,
    /// For a stage computing several features: each one's value alone, over the same input,
    /// so that a data error can be traced to the feature that raises it.
    pub parts: Vec<Part>,
}

/// One feature of a stage, computed alone.
#[derive(Debug, Clone)]
pub struct Part {
    /// The feature, in words.
    pub title: String,
    /// A SELECT of its value alone.
    pub sql: String,
}

/// The compiled pipeline.
pub struct Compiled {
    /// Every stage, in order.
    pub stages: Vec<Stage>,
    /// Key, `segment`, then every feature in declaration order; one row per customer, by key.
    pub assignments: DataFrame,
    /// The table (source or stage view) holding one row per customer as of the as-of date.
    pub customers: String,
    /// Queries counting the customers the as-of date leaves out, by reason.
    pub exclusions: Vec<entity::ExclusionQuery>,
}

/// Compile `pipeline` as of `as_of` against the sources registered in `ctx`.
pub async fn compile(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    as_of: NaiveDate,
) -> Result<Compiled> {
    compile_with(ctx, pipeline, as_of, Shapes::Embedded).await
}

/// Which query shapes the stages may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// The embedded engine's: distinct days counted with day bitmaps and `bit_count`.
    Embedded,
    /// Plain SQL that other engines can run: `count(DISTINCT CAST(ts AS DATE))` as written.
    Portable,
}

/// Compile `pipeline` as of `as_of` against the sources registered in `ctx`, with `shapes`.
pub async fn compile_with(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    as_of: NaiveDate,
    shapes: Shapes,
) -> Result<Compiled> {
    let mut compiler = Compiler {
        ctx,
        pipeline,
        as_of,
        shapes,
        problems: Vec::new(),
        stages: Vec::new(),
        customers: String::new(),
        exclusions: Vec::new(),
    };
    let result = compiler.compile().await;
    let problems = std::mem::take(&mut compiler.problems);
    Error::fail_if_any(&pipeline.file, problems)?;
    let assignments =
        result?.ok_or_else(|| Error::Internal("planning failed without a problem".into()))?;
    Ok(Compiled {
        stages: compiler.stages,
        assignments,
        customers: compiler.customers,
        exclusions: compiler.exclusions,
    })
}

/// The aggregate features sharing a source, window and filter.
struct Group {
    source: String,
    window_days: Option<u32>,
    window: Option<aggregate::DayWindow>,
    join_key: String,
    from_where: String,
    members: Vec<Member>,
    defaults: BTreeMap<String, Option<Literal>>,
}

struct Compiler<'a> {
    ctx: &'a SessionContext,
    pipeline: &'a Pipeline,
    as_of: NaiveDate,
    shapes: Shapes,
    problems: Vec<Problem>,
    stages: Vec<Stage>,
    customers: String,
    exclusions: Vec<entity::ExclusionQuery>,
}

impl<'a> Compiler<'a> {
    fn problem(&mut self, code: &'static Code, path: &str, message: String, help: Option<String>) {
        // One source's time column is checked once per aggregate over it: report it once.
        if self.problems.iter().any(|p| p.message() == message) {
            return;
        }
        let problem = self.pipeline.file.at(code, path, message).maybe_help(help);
        self.problems.push(problem);
    }

    fn problem_at_word(
        &mut self,
        word: &str,
        code: &'static Code,
        path: &str,
        message: String,
        help: Option<String>,
    ) {
        let problem = self
            .pipeline
            .file
            .at_word(code, path, word, message)
            .maybe_help(help);
        self.problems.push(problem);
    }

    async fn compile(&mut self) -> Result<Option<DataFrame>> {
        if !(EARLIEST_TIMESTAMP_DATE..=LATEST_TIMESTAMP_DATE).contains(&self.as_of) {
            self.problem(
                codes::INVALID_WINDOW,
                "as_of",
                format!(
                    "as-of date {} is outside {EARLIEST_TIMESTAMP_DATE} to {LATEST_TIMESTAMP_DATE}, the dates timestamps can hold",
                    self.as_of
                ),
                None,
            );
            return Ok(None);
        }
        let Some(customers) = self.customers().await? else {
            return Ok(None);
        };
        self.customers.clone_from(&customers);
        let entity_schema = table_schema(self.ctx, &customers).await?;
        let groups = self.aggregate_groups().await?;
        let Some(mut step) = self
            .join_aggregates(&customers, &entity_schema, &groups)
            .await?
        else {
            return Ok(None);
        };
        // Aggregates that failed to plan were reported; features using them are not reported
        // again.
        let planned: HashSet<&str> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.name.as_str()))
            .collect();
        let mut failed: HashSet<&str> = self
            .pipeline
            .features
            .iter()
            .filter(|f| matches!(f.definition, FeatureDefinition::Aggregate(_)))
            .map(|f| f.name.as_str())
            .filter(|name| !planned.contains(name))
            .collect();
        for level in self.levels() {
            step = self.compute_level(&level, &step, &mut failed).await?;
        }
        if !self.problems.is_empty() {
            return Ok(None);
        }
        let step = self.nan_as_null(&step).await?;
        self.segments(&step).await
    }

    /// The customers as of the as-of date, returning the table they are read from: the entity
    /// source itself, or a stage selecting its rows valid then, or the distinct keys of event
    /// sources before then.
    async fn customers(&mut self) -> Result<Option<String>> {
        let pipeline = self.pipeline;
        let entity = &pipeline.entity;
        let key = &entity.key;
        match &entity.origin {
            EntityOrigin::Table(source) => {
                let schema = table_schema(self.ctx, source).await?;
                if schema.field_with_name(key).is_err() {
                    self.problem(
                        codes::UNKNOWN_COLUMN,
                        "entity.key",
                        format!("source `{source}` has no key column `{key}`"),
                        Some(available_help(key, "column", names(&schema))),
                    );
                    return Ok(None);
                }
                let mut bounds = entity::TableBounds::default();
                let mut ok = true;
                if let Some(validity) = &pipeline.sources[source].validity {
                    let path = format!("sources.{source}.valid_from");
                    match self
                        .temporal_column(source, &validity.from, &path, "validity column")
                        .await?
                    {
                        Some(data_type) => {
                            bounds.valid_from = Some((validity.from.clone(), data_type))
                        }
                        None => ok = false,
                    }
                    if let Some(to) = &validity.to {
                        let path = format!("sources.{source}.valid_to");
                        match self
                            .temporal_column(source, to, &path, "validity column")
                            .await?
                        {
                            Some(data_type) => bounds.valid_to = Some((to.clone(), data_type)),
                            None => ok = false,
                        }
                    }
                }
                if let Some(since) = &entity.since {
                    match self
                        .temporal_column(source, since, "entity.since", "join-date column")
                        .await?
                    {
                        Some(data_type) => bounds.since = Some((since.clone(), data_type)),
                        None => ok = false,
                    }
                }
                if !ok {
                    return Ok(None);
                }
                let Some(sql) = entity::table_sql(source, &bounds, self.as_of) else {
                    return Ok(Some(source.clone()));
                };
                self.exclusions = entity::table_exclusions(source, key, &bounds, self.as_of);
                let title = format!(
                    "the customers as of {}: rows of {source} {}",
                    self.as_of,
                    bounds.describe()
                );
                self.customers_view(title, sql).await
            }
            EntityOrigin::Keys(sources) => {
                let mut parts = Vec::new();
                let mut key_types: Vec<(String, DataType)> = Vec::new();
                for (i, source) in sources.iter().enumerate() {
                    let path = if pipeline.spec.entity.distinct {
                        "entity.source".to_string()
                    } else {
                        format!("entity.from[{i}]")
                    };
                    let join_key = &pipeline.sources[source].join_key;
                    let schema = table_schema(self.ctx, source).await?;
                    if schema.field_with_name(join_key).is_err() {
                        self.problem(
                            codes::UNKNOWN_COLUMN,
                            &path,
                            format!("source `{source}` has no key column `{join_key}`"),
                            Some(format!(
                                "declare the column holding the customer key with `key:` on source `{source}`; {}",
                                available_help(join_key, "column", names(&schema))
                            )),
                        );
                        continue;
                    }
                    let time = match &pipeline.sources[source].time_column {
                        Some(column) => {
                            let path = format!("sources.{source}.time_column");
                            match self
                                .temporal_column(source, column, &path, "time column")
                                .await?
                            {
                                Some(data_type) => Some((column.clone(), data_type)),
                                None => continue,
                            }
                        }
                        None => None,
                    };
                    if let Ok(field) = schema.field_with_name(join_key) {
                        key_types.push((source.clone(), field.data_type().clone()));
                    }
                    parts.push(entity::KeySource {
                        source: source.clone(),
                        join_key: join_key.clone(),
                        time,
                    });
                }
                // DataFusion would coerce the keys of a union to one type and fail (or, worse,
                // match) mid-run; keys of different kinds are never the same customer.
                let kind = |t: &DataType| {
                    if t.is_integer() {
                        "whole numbers".to_string()
                    } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
                    {
                        "text".to_string()
                    } else {
                        t.to_string()
                    }
                };
                if let Some((first, first_type)) = key_types.first()
                    && let Some((other, other_type)) =
                        key_types.iter().find(|(_, t)| kind(t) != kind(first_type))
                {
                    self.problem(
                        codes::ENTITY,
                        "entity",
                        format!(
                            "the customer keys of `{first}` ({first_type}) and `{other}` ({other_type}) are of different kinds, so no key of one can be a customer of the other"
                        ),
                        Some("declare the key columns with one type under each source's `columns:`, e.g. `customer_id: int64` or `user: string`".into()),
                    );
                }
                if !self.problems.is_empty() {
                    return Ok(None);
                }
                let sql = entity::keys_sql(&parts, key, self.as_of);
                self.exclusions = entity::keys_exclusions(&parts, self.as_of);
                let title = format!(
                    "the customers as of {}: distinct keys of {}",
                    self.as_of,
                    sources.join(", ")
                );
                self.customers_view(title, sql).await
            }
        }
    }

    /// Register the customers' stage, or report why it does not plan.
    async fn customers_view(&mut self, title: String, sql: String) -> Result<Option<String>> {
        match self.ctx.sql(&sql).await {
            Ok(frame) => Ok(Some(self.register(title, sql, frame)?)),
            Err(e) => {
                self.problem(
                    codes::SQL_PLAN,
                    "entity",
                    format!(
                        "the customers do not plan: {}",
                        first_line_of_datafusion(&e)
                    ),
                    Some("the sources' key columns must have types that can be compared, e.g. all integers or all text".into()),
                );
                Ok(None)
            }
        }
    }

    /// Check that `column` of `source` (declared at `path` as its `role`) holds dates or
    /// timestamps, returning its type; `None` after reporting a problem.
    async fn temporal_column(
        &mut self,
        source: &str,
        column: &str,
        path: &str,
        role: &str,
    ) -> Result<Option<DataType>> {
        let schema = table_schema(self.ctx, source).await?;
        match schema
            .field_with_name(column)
            .map(|f| f.data_type().clone())
        {
            Ok(data_type) if is_temporal(&data_type) => Ok(Some(data_type)),
            Ok(data_type) => {
                self.problem(
                    codes::TIME_COLUMN_TYPE,
                    path,
                    format!("{role} `{column}` of source `{source}` holds {data_type}, not dates or timestamps"),
                    Some(format!("declare its type under `columns:`, e.g. `{column}: timestamp` or `{column}: date`")),
                );
                Ok(None)
            }
            Err(_) => {
                self.problem(
                    codes::UNKNOWN_COLUMN,
                    path,
                    format!("source `{source}` has no {role} `{column}`"),
                    Some(available_help(column, "column", names(&schema))),
                );
                Ok(None)
            }
        }
    }

    /// The SQL of an expression or quantile feature (`None` for aggregates).
    fn expression_of(&self, feature: &Feature, columns: &Schema) -> Option<String> {
        match &feature.definition {
            FeatureDefinition::Expr { sql } => Some(sql.clone()),
            FeatureDefinition::Aggregate(_) => None,
            FeatureDefinition::Quantile(quantile) => Some(quantile_sql(
                quantile,
                &quantile_value(&quantile.of, columns),
                &self.pipeline.entity.key,
            )),
        }
    }

    /// Group the aggregate features by (source, window, filter), after checking their columns.
    async fn aggregate_groups(&mut self) -> Result<Vec<Group>> {
        let mut groups: BTreeMap<(String, Option<u32>, Option<String>), Group> = BTreeMap::new();
        for feature in &self.pipeline.features {
            let FeatureDefinition::Aggregate(aggregate) = &feature.definition else {
                continue;
            };
            let Some(from_where) = self.window_and_filter(feature, aggregate).await? else {
                continue;
            };
            let join_key = self.pipeline.sources[&aggregate.source].join_key.clone();
            let single = format!(
                "SELECT {} AS {}, ({}) AS {} {from_where} GROUP BY {}",
                ident(&join_key),
                ident(JOIN_KEY),
                aggregate.expr,
                ident(&feature.name),
                ident(&join_key)
            );
            if let Err(e) = self.ctx.sql(&single).await {
                self.problem(
                    codes::SQL_PLAN,
                    &format!("features[{}].aggregate.expr", feature.index),
                    format!(
                        "feature `{}` does not plan: {}",
                        feature.name,
                        first_line_of_datafusion(&e)
                    ),
                    None,
                );
                continue;
            }
            let group = groups
                .entry((
                    aggregate.source.clone(),
                    aggregate.window_days,
                    aggregate.filter.clone(),
                ))
                .or_insert_with(|| Group {
                    source: aggregate.source.clone(),
                    window_days: aggregate.window_days,
                    window: self.day_window(aggregate),
                    join_key,
                    from_where,
                    members: Vec::new(),
                    defaults: BTreeMap::new(),
                });
            group.members.push(Member {
                name: feature.name.clone(),
                expr: aggregate.expr.clone(),
            });
            group
                .defaults
                .insert(feature.name.clone(), aggregate.default.clone());
        }
        Ok(groups.into_values().collect())
    }

    /// The aggregate's time window in days, when it has one that timestamps can hold.
    fn day_window(&self, aggregate: &Aggregate) -> Option<aggregate::DayWindow> {
        let days = aggregate.window_days?;
        let column = self.pipeline.sources[&aggregate.source]
            .time_column
            .clone()?;
        let start = self.as_of.checked_sub_days(Days::new(u64::from(days)))?;
        Some(aggregate::DayWindow {
            column,
            start,
            days,
        })
    }

    /// `FROM source WHERE <time window and filter>` for one aggregate feature, after checking
    /// the columns it uses exist.
    async fn window_and_filter(
        &mut self,
        feature: &Feature,
        aggregate: &Aggregate,
    ) -> Result<Option<String>> {
        let i = feature.index;
        let source = &self.pipeline.sources[&aggregate.source];
        let schema = table_schema(self.ctx, &aggregate.source).await?;
        let mut ok = true;
        if schema.field_with_name(&source.join_key).is_err() {
            let declared_key = self.pipeline.spec.sources[&aggregate.source].key.is_some();
            let at = if declared_key {
                format!("sources.{}.key", aggregate.source)
            } else {
                format!("features[{i}].aggregate.source")
            };
            self.problem(
                codes::UNKNOWN_COLUMN,
                &at,
                format!(
                    "source `{}` has no column `{}` to join on the customers' key",
                    aggregate.source, source.join_key
                ),
                Some(format!(
                    "declare the joining column with `key:` on source `{}`; {}",
                    aggregate.source,
                    available_help(&source.join_key, "column", names(&schema))
                )),
            );
            ok = false;
        }
        for name in &feature.references {
            if schema.field_with_name(name).is_err() {
                self.problem_at_word(
                    name,
                    codes::UNKNOWN_COLUMN,
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
        if let Some(time_column) = &source.time_column {
            let path = format!("sources.{}.time_column", aggregate.source);
            match self
                .temporal_column(&aggregate.source, time_column, &path, "time column")
                .await?
            {
                Some(data_type) => {
                    let literal = |date: NaiveDate| temporal_literal(&data_type, date);
                    conditions.push(format!("{} < {}", ident(time_column), literal(self.as_of)));
                    if let Some(days) = aggregate.window_days {
                        let start = self
                            .as_of
                            .checked_sub_days(Days::new(u64::from(days)))
                            .filter(|start| *start >= EARLIEST_TIMESTAMP_DATE);
                        match start {
                            Some(start) => conditions.push(format!(
                                "{} >= {}",
                                ident(time_column),
                                literal(start)
                            )),
                            None => {
                                self.problem(
                                    codes::INVALID_WINDOW,
                                    &format!("features[{i}].aggregate.window_days"),
                                    format!(
                                        "a {days}-day window before {} starts before {EARLIEST_TIMESTAMP_DATE}, the earliest date a timestamp can hold",
                                        self.as_of
                                    ),
                                    Some("use a window of at most a few centuries".into()),
                                );
                                ok = false;
                            }
                        }
                    }
                }
                None => ok = false,
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
        Ok(Some(format!("FROM {}{filter}", ident(&aggregate.source))))
    }

    /// Join every aggregate query onto the customers, with defaults for customers without rows.
    async fn join_aggregates(
        &mut self,
        customers: &str,
        entity: &Schema,
        groups: &[Group],
    ) -> Result<Option<String>> {
        let (sql, title) = self
            .aggregates_sql(customers, entity, groups, false)
            .await?;
        let error = match self.ctx.sql(&sql).await {
            Ok(frame) => return Ok(Some(self.register(title, sql, frame)?)),
            Err(e) => e,
        };
        // Aggregates that plan alone may clash by name in one GROUP BY: each in its own.
        let (sql, title) = self.aggregates_sql(customers, entity, groups, true).await?;
        if let Ok(frame) = self.ctx.sql(&sql).await {
            return Ok(Some(self.register(title, sql, frame)?));
        }
        self.problem(
            codes::SQL_PLAN,
            "features",
            format!(
                "the aggregate features do not plan together: {}",
                first_line_of_datafusion(&error)
            ),
            None,
        );
        Ok(None)
    }

    /// The SQL joining the aggregate queries (each plain aggregate in a query of its own when
    /// `apart`) onto the customers, and its title.
    async fn aggregates_sql(
        &self,
        customers: &str,
        entity: &Schema,
        groups: &[Group],
        apart: bool,
    ) -> Result<(String, String)> {
        let key = &self.pipeline.entity.key;
        let aggregated: HashSet<&str> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.name.as_str()))
            .collect();
        let mut select: Vec<String> = names(entity)
            .filter(|name| !aggregated.contains(name))
            .map(|name| format!("e.{}", ident(name)))
            .collect();
        let mut joins = String::new();
        let mut titles = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let temporal: Vec<String> = table_schema(self.ctx, &group.source)
                .await?
                .fields()
                .iter()
                .filter(|f| is_temporal(f.data_type()))
                .map(|f| f.name().clone())
                .collect();
            let queries = aggregate::group_queries(
                &group.join_key,
                &group.from_where,
                &group.members,
                &temporal,
                group
                    .window
                    .as_ref()
                    .filter(|_| self.shapes == Shapes::Embedded),
                apart,
            );
            let mut column_of: BTreeMap<&str, String> = BTreeMap::new();
            for (q, query) in queries.iter().enumerate() {
                let alias = format!("a{g}_{q}");
                joins.push_str(&format!(
                    "\n  LEFT JOIN ({}) AS {alias} ON e.{} = {alias}.{}",
                    query.sql,
                    ident(key),
                    ident(JOIN_KEY),
                ));
                for feature in &query.features {
                    column_of.insert(feature, format!("{alias}.{}", ident(feature)));
                }
                titles.push(format!(
                    "{} of {}{} ({})",
                    if query.two_level {
                        "two-level GROUP BY"
                    } else {
                        "GROUP BY"
                    },
                    group.source,
                    group
                        .window_days
                        .map_or(String::new(), |d| format!(", last {d} days")),
                    query.features.join(", "),
                ));
            }
            for member in &group.members {
                let Some(column) = column_of.get(member.name.as_str()) else {
                    continue;
                };
                let value = match &group.defaults[&member.name] {
                    Some(default) => format!("COALESCE({column}, {})", sql_literal(default)),
                    None => column.clone(),
                };
                select.push(format!(
                    "{} AS {}",
                    self.cast_to_declared(&member.name, value),
                    ident(&member.name)
                ));
            }
        }
        let sql = format!(
            "SELECT {}\nFROM {} AS e{joins}",
            select.join(", "),
            ident(customers)
        );
        let title = if titles.is_empty() {
            "the customers".to_string()
        } else {
            format!("the customers, left-joined with: {}", titles.join("; "))
        };
        Ok((sql, title))
    }

    /// `value` cast to the declared type of feature `name`, when it declares one.
    fn cast_to_declared(&self, name: &str, value: String) -> String {
        let declared = self
            .pipeline
            .features
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.column_type);
        cast_to(declared, value)
    }

    fn register(&mut self, title: String, sql: String, frame: DataFrame) -> Result<String> {
        let view = format!("__segflow_step_{}", self.stages.len());
        self.ctx.register_table(view.as_str(), frame.into_view())?;
        self.stages.push(Stage {
            view: view.clone(),
            title,
            sql,
            parts: Vec::new(),
        });
        Ok(view)
    }

    /// For a quantile keeping ties together: a stage adding each customer's minimum rank,
    /// position and the count of values of the bucketed feature to view `from`, and the FROM
    /// clause adding the bucket edges to it (see [`tied_quantile_sql`]).
    async fn ranks(
        &mut self,
        feature: &Feature,
        quantile: &Quantile,
        columns: &Schema,
        from: &str,
    ) -> Result<Option<String>> {
        let Bucketing::TiesTogether(buckets) = quantile.bucketing else {
            return Ok(Some(ident(from)));
        };
        let of = quantile_value(&quantile.of, columns);
        let order = if quantile.descending { "DESC" } else { "ASC" };
        let window = format!("OVER (PARTITION BY {of} IS NULL ORDER BY {of} {order})");
        let mut select: Vec<String> = names(columns).map(ident).collect();
        select.push(format!(
            "CAST(rank() {window} AS BIGINT) AS {}",
            ident(RANK)
        ));
        select.push(format!(
            "CAST(row_number() {window} AS BIGINT) AS {}",
            ident(POSITION)
        ));
        select.push(format!("count({of}) OVER () AS {}", ident(VALUES)));
        let sql = format!("SELECT {} FROM {}", select.join(", "), ident(from));
        let ranked = match self.ctx.sql(&sql).await {
            Ok(frame) => self.register(
                format!("ranks of `{}` for feature `{}`", quantile.of, feature.name),
                sql,
                frame,
            )?,
            Err(e) => {
                self.problem(
                    codes::SQL_PLAN,
                    &format!("features[{}].quantile", feature.index),
                    format!(
                        "feature `{}` does not plan: {}",
                        feature.name,
                        first_line_of_datafusion(&e)
                    ),
                    None,
                );
                return Ok(None);
            }
        };
        let (position, rank, values) = (ident(POSITION), ident(RANK), ident(VALUES));
        let q = i64::from(buckets);
        // Edge j of pandas' qcut is the linear interpolation of the sorted ranks at (n-1)·j/q:
        // ranks[lo] + k/q · (ranks[lo+1] − ranks[lo]) with lo = (n-1)·j div q, k = (n-1)·j mod q.
        // Scaled by q it is a whole number, so edges are compared exactly.
        // Window aggregates over all customers rather than a join with an aggregate of the
        // ranks: each stage reads the one before it once, so that plans grow linearly with the
        // number of such features (a join reading the ranks twice doubled the plan each time).
        let edges: Vec<String> = (0..=q)
            .map(|j| {
                let at = |offset: i64| {
                    format!(
                        "max(CASE WHEN {of} IS NOT NULL AND {position} = ({values} - 1) * {j} / {q} + {offset} THEN {rank} END) OVER ()"
                    )
                };
                let (low, high) = (at(1), at(2));
                format!(
                    "{q} * {low} + (({values} - 1) * {j} % {q}) * (COALESCE({high}, {low}) - {low}) AS {}",
                    ident(&format!("{EDGE}{j}"))
                )
            })
            .collect();
        Ok(Some(format!(
            "(SELECT *, {} FROM {}) AS r",
            edges.join(", "),
            ident(&ranked)
        )))
    }

    /// The expression and quantile features by dependency level, in evaluation order within
    /// each: a level's features use only columns, aggregates and earlier levels, so one
    /// projection computes them all. (One nested view per feature made planning time grow with
    /// the cube of the number of features.)
    fn levels(&self) -> Vec<Vec<&'a Feature>> {
        let features = &self.pipeline.features;
        let index: HashMap<&str, usize> = features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let mut level_of: Vec<Option<usize>> = vec![None; features.len()];
        let mut levels: Vec<Vec<&'a Feature>> = Vec::new();
        for &i in &self.pipeline.evaluation_order {
            let feature = &features[i];
            if matches!(feature.definition, FeatureDefinition::Aggregate(_)) {
                continue;
            }
            // A feature naming itself reads the column it replaces, not itself.
            let level = feature
                .references
                .iter()
                .filter(|r| **r != feature.name)
                .filter_map(|r| level_of[*index.get(r.as_str())?])
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level_of[i] = Some(level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(feature);
        }
        levels
    }

    /// Add the features of one dependency level to view `from`, returning the new view (`from`
    /// itself when none of them plans). Features that do not plan, or use one that did not, are
    /// added to `failed`.
    async fn compute_level(
        &mut self,
        level: &[&'a Feature],
        from: &str,
        failed: &mut HashSet<&'a str>,
    ) -> Result<String> {
        let columns = table_schema(self.ctx, from).await?;
        let known: HashSet<&str> = names(&columns).collect();
        let mut together = Vec::new();
        let mut tied = Vec::new();
        for &feature in level {
            if feature
                .references
                .iter()
                .any(|r| failed.contains(r.as_str()))
                || !self.references_exist(feature, &columns, &known)
            {
                failed.insert(&feature.name);
                continue;
            }
            match &feature.definition {
                FeatureDefinition::Quantile(
                    quantile @ Quantile {
                        bucketing: Bucketing::TiesTogether(_),
                        ..
                    },
                ) => tied.push((feature, quantile)),
                _ => {
                    if let Some(expr) = self.expression_of(feature, &columns) {
                        together.push((feature, expr));
                    }
                }
            }
        }
        let mut step = from.to_string();
        if !together.is_empty() {
            step = self
                .project(together, &columns, &step, &ident(&step), failed)
                .await?;
        }
        // Each quantile keeping ties together needs a stage of ranks of its own.
        for (feature, quantile) in tied {
            let columns = table_schema(self.ctx, &step).await?;
            let Some(expr) = self.expression_of(feature, &columns) else {
                continue;
            };
            match self.ranks(feature, quantile, &columns, &step).await? {
                Some(ranked) => {
                    step = self
                        .project(vec![(feature, expr)], &columns, &step, &ranked, failed)
                        .await?;
                }
                None => {
                    failed.insert(&feature.name);
                }
            }
        }
        Ok(step)
    }

    /// Whether every name `feature` uses is a column of `columns`, reporting those that are not.
    fn references_exist(
        &mut self,
        feature: &Feature,
        columns: &Schema,
        known: &HashSet<&str>,
    ) -> bool {
        let mut ok = true;
        for name in &feature.references {
            if known.contains(name.as_str()) {
                continue;
            }
            if *name == feature.name {
                // Using its own name is using the entity column it replaces; without one, the
                // feature would be defined by itself.
                self.problem_at_word(
                    name,
                    codes::FEATURE_CYCLE,
                    &format!("features[{}].expr", feature.index),
                    format!(
                        "feature `{name}` uses itself (a cycle: {name} -> {name}), and `{}` has no column `{name}` it could replace",
                        self.pipeline.entity.describe()
                    ),
                    Some("a feature may use its own name only to replace an entity column of that name; use another feature or column".into()),
                );
                ok = false;
            } else {
                // Features of this level and later ones are not columns yet, but can be used.
                let pipeline = self.pipeline;
                let later = pipeline
                    .features
                    .iter()
                    .map(|f| f.name.as_str())
                    .filter(|n| *n != feature.name && columns.field_with_name(n).is_err());
                let candidates: Vec<&str> = names(columns).chain(later).collect();
                self.problem_at_word(
                    name,
                    codes::UNKNOWN_COLUMN,
                    &format!("features[{}].expr", feature.index),
                    format!(
                        "feature `{}` uses `{name}`, which is neither a column of `{}` nor a feature",
                        feature.name, self.pipeline.entity.describe()
                    ),
                    Some(available_help(name, "column", candidates.iter().copied())),
                );
                ok = false;
            }
        }
        ok
    }

    /// Add `features` (each with its SQL) to the columns of view `view` in one stage reading
    /// `from`, returning the new view (`view` itself when none plans). A feature that does not
    /// plan is reported, added to `failed` and left out.
    async fn project(
        &mut self,
        features: Vec<(&'a Feature, String)>,
        columns: &Schema,
        view: &str,
        from: &str,
        failed: &mut HashSet<&'a str>,
    ) -> Result<String> {
        let mut values: Vec<(&'a Feature, String)> = features
            .into_iter()
            .map(|(feature, expr)| {
                let value = cast_to(feature.column_type, format!("({expr})"));
                (feature, value)
            })
            .collect();
        loop {
            if values.is_empty() {
                return Ok(view.to_string());
            }
            match self.plan_projection(columns, &values, view, from).await {
                Ok(frame) => {
                    return self
                        .register_projection(values, columns, view, from, frame)
                        .await;
                }
                Err(e) => {
                    let before = values.len();
                    values = self.without_unplanned(values, from, failed).await;
                    if values.len() == before {
                        // Each plans alone but not together: report them as one.
                        return Err(Error::Internal(format!(
                            "features that plan alone do not plan together: {}",
                            first_line_of_datafusion(&e)
                        )));
                    }
                }
            }
        }
    }

    /// The columns of view `view` with `values` added or replacing columns of their name, read
    /// from `from` (`view` itself, or a clause adding columns to it).
    async fn plan_projection(
        &self,
        columns: &Schema,
        values: &[(&Feature, String)],
        view: &str,
        from: &str,
    ) -> datafusion::error::Result<DataFrame> {
        if from == ident(view) {
            let items = projection_items(columns, values);
            if let Some(frame) = wide_select::select(self.ctx, view, &items, None).await {
                return Ok(frame);
            }
        }
        self.ctx.sql(&projection_sql(columns, values, from)).await
    }

    /// `values` without the features that do not plan on their own over `from`; those are
    /// reported and added to `failed`.
    async fn without_unplanned(
        &mut self,
        values: Vec<(&'a Feature, String)>,
        from: &str,
        failed: &mut HashSet<&'a str>,
    ) -> Vec<(&'a Feature, String)> {
        let mut kept = Vec::with_capacity(values.len());
        for (feature, value) in values {
            let probe = format!("SELECT {value} AS {} FROM {from}", ident(&feature.name));
            match self.ctx.sql(&probe).await {
                Ok(_) => kept.push((feature, value)),
                Err(e) => {
                    let path = match feature.definition {
                        FeatureDefinition::Quantile(_) => {
                            format!("features[{}].quantile", feature.index)
                        }
                        _ => format!("features[{}].expr", feature.index),
                    };
                    self.problem(
                        codes::SQL_PLAN,
                        &path,
                        format!(
                            "feature `{}` does not plan: {}",
                            feature.name,
                            first_line_of_datafusion(&e)
                        ),
                        None,
                    );
                    failed.insert(&feature.name);
                }
            }
        }
        kept
    }

    /// Register the planned projection `frame` of `values` over `from` as a stage, first giving
    /// unsigned whole numbers (ntile, rank, row_number) the type BIGINT every other whole-number
    /// feature has, so that `ntile` in an `expr` and a `quantile` give the same type.
    async fn register_projection(
        &mut self,
        mut values: Vec<(&'a Feature, String)>,
        columns: &Schema,
        view: &str,
        from: &str,
        mut frame: DataFrame,
    ) -> Result<String> {
        let mut recast = false;
        for (feature, value) in &mut values {
            let unsigned = frame
                .schema()
                .field_with_unqualified_name(&feature.name)
                .is_ok_and(|field| field.data_type().is_unsigned_integer());
            if feature.column_type.is_none() && unsigned {
                *value = format!("CAST({value} AS BIGINT)");
                recast = true;
            }
        }
        if recast {
            frame = self.plan_projection(columns, &values, view, from).await?;
        }
        let sql = projection_sql(columns, &values, from);
        let parts = values
            .iter()
            .map(|(feature, value)| Part {
                title: format!("feature `{}`", feature.name),
                sql: format!("SELECT {value} AS {} FROM {from}", ident(&feature.name)),
            })
            .collect();
        let title = match values.as_slice() {
            [(feature, _)] => format!("feature `{}`", feature.name),
            _ => format!(
                "features {}",
                values
                    .iter()
                    .map(|(f, _)| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let view = self.register(title, sql, frame)?;
        if let Some(stage) = self.stages.last_mut() {
            stage.parts = parts;
        }
        Ok(view)
    }

    /// A stage making NaN no value (null) in every floating-point column of view `from`, so
    /// that a rule treats it as unknown (`amount > 10` is not true for it, as for a null) and
    /// statistics skip it like a null. `from` itself when it has no such column.
    async fn nan_as_null(&mut self, from: &str) -> Result<String> {
        let columns = table_schema(self.ctx, from).await?;
        let floating = |t: &DataType| t.is_floating();
        if !columns.fields().iter().any(|f| floating(f.data_type())) {
            return Ok(from.to_string());
        }
        let values: Vec<Option<String>> = columns
            .fields()
            .iter()
            .map(|field| {
                let column = ident(field.name());
                floating(field.data_type())
                    .then(|| format!("CASE WHEN isnan({column}) THEN NULL ELSE {column} END"))
            })
            .collect();
        let items: Vec<wide_select::Item> = names(&columns)
            .zip(&values)
            .map(|(name, value)| match value {
                Some(sql) => wide_select::Item::Value { sql, alias: name },
                None => wide_select::Item::Column(name),
            })
            .collect();
        let sql = select_sql(&items, &ident(from));
        let frame = match wide_select::select(self.ctx, from, &items, None).await {
            Some(frame) => frame,
            None => self.ctx.sql(&sql).await?,
        };
        self.register(
            "NaN is no value: null in every floating-point column".into(),
            sql,
            frame,
        )
    }

    /// Check that `condition` plans over view `from`, is true/false, and compares no text
    /// column with a number (DataFusion would cast the text and fail, or compare as text).
    async fn check_condition(&mut self, from: &str, path: &str, condition: &str, what: &str) {
        let probe = format!("SELECT ({condition}) AS matched FROM {}", ident(from));
        if let Ok(columns) = table_schema(self.ctx, from).await {
            for (column, data_type, literal) in mixed_comparisons(condition, &columns) {
                let problem = self
                    .pipeline
                    .file
                    .at_word(codes::RULE_TYPE, path, &column, format!("{what} compares `{column}` ({data_type}) with {literal}"))
                    .help("compare text with text ('pro') and numbers with numbers (5), or convert one side with CAST");
                self.problems.push(problem);
            }
        }
        match self.ctx.sql(&probe).await {
            Ok(frame) => {
                let data_type = frame.schema().field(0).data_type().clone();
                if !matches!(data_type, DataType::Boolean | DataType::Null) {
                    self.problem(
                        codes::RULE_TYPE,
                        path,
                        format!("{what} is {data_type}, not true/false"),
                        Some("write a comparison, e.g. `active_days_90 >= 10`".into()),
                    );
                }
            }
            Err(e) => self.problem(
                codes::SQL_PLAN,
                path,
                format!("{what} does not plan: {}", first_line_of_datafusion(&e)),
                None,
            ),
        }
    }

    /// The 2x2 matrix splits its axes by number, and concentration sums values: those features
    /// must be numeric or true/false.
    async fn check_numeric_types(&mut self, from: &str) {
        let Ok(columns) = table_schema(self.ctx, from).await else {
            return;
        };
        let spec = &self.pipeline.spec;
        let mut numeric: Vec<(&'static Code, String, &str, String)> = Vec::new();
        if let Some(matrix) = &spec.matrix {
            for (axis, axis_spec) in [("value", &matrix.value), ("engagement", &matrix.engagement)]
            {
                numeric.push((
                    codes::MATRIX_TYPE,
                    format!("matrix.{axis}.feature"),
                    &axis_spec.feature,
                    format!("the matrix's {axis} axis needs a number"),
                ));
            }
        }
        for (i, feature) in spec.concentration.iter().enumerate() {
            numeric.push((
                codes::CONCENTRATION_TYPE,
                format!("concentration[{i}]"),
                feature,
                "concentration sums values and needs a number".into(),
            ));
        }
        for (code, path, feature, need) in numeric {
            let Ok(field) = columns.field_with_name(feature) else {
                continue;
            };
            let data_type = field.data_type();
            if !(data_type.is_numeric() || matches!(data_type, DataType::Boolean)) {
                self.problem(
                    code,
                    &path,
                    format!("{need}, and feature `{feature}` holds {data_type}"),
                    Some("choose a numeric feature, or make one, e.g. `expr: as_of() - last_event_date` for days".into()),
                );
            }
        }
    }

    /// Cohorts group customers by the calendar period of a date, and lifetime value averages a
    /// number: `by` must be a date or timestamp, `value` numeric.
    async fn check_cohort_types(&mut self, from: &str) {
        let Ok(columns) = table_schema(self.ctx, from).await else {
            return;
        };
        let spec = &self.pipeline.spec;
        if let Some(cohorts) = &spec.cohorts
            && let Ok(field) = columns.field_with_name(&cohorts.by)
            && !super::temporal::is_temporal(field.data_type())
        {
            let data_type = field.data_type().clone();
            self.problem(
                codes::COHORTS,
                "cohorts.by",
                format!(
                    "cohorts group customers by the period of a date, and feature `{}` holds {data_type}",
                    cohorts.by
                ),
                Some("name a date or timestamp feature, e.g. `expr: signup_date`, or cast one with `type: date`".into()),
            );
        }
        if let Some(ltv) = &spec.lifetime_value
            && let Ok(field) = columns.field_with_name(&ltv.value)
            && !field.data_type().is_numeric()
        {
            let data_type = field.data_type().clone();
            self.problem(
                codes::COHORTS,
                "lifetime_value.value",
                format!(
                    "lifetime value needs a number, and feature `{}` holds {data_type}",
                    ltv.value
                ),
                Some(
                    "name a numeric feature of value to date, e.g. `sum(amount)` over all invoices"
                        .into(),
                ),
            );
        }
    }

    /// The final query: key, first matching segment, features; sorted by key.
    async fn segments(&mut self, from: &str) -> Result<Option<DataFrame>> {
        let pipeline = self.pipeline;
        for (i, segment) in pipeline.segments.iter().enumerate() {
            let Some(rule) = &segment.rule else {
                continue;
            };
            self.check_condition(
                from,
                &format!("segments[{i}].when"),
                rule,
                &format!("the condition of segment `{}`", segment.id),
            )
            .await;
        }
        if let Some(accessible) = pipeline
            .spec
            .criteria
            .as_ref()
            .and_then(|c| c.accessible.as_ref())
        {
            self.check_condition(
                from,
                "criteria.accessible.reachable",
                &accessible.reachable,
                "the accessible criterion's `reachable` condition",
            )
            .await;
        }
        if let Some(when) = pipeline.spec.icp.as_ref().and_then(|icp| icp.when.as_ref()) {
            // The line break ends a `--` comment the condition may close with.
            let when = &format!("{when}\n");
            self.check_condition(
                from,
                "icp.when",
                when,
                "the ideal customer profile's condition",
            )
            .await;
        }
        self.check_numeric_types(from).await;
        self.check_cohort_types(from).await;
        if !self.problems.is_empty() {
            return Ok(None);
        }
        let sql = segments_sql(pipeline, from);
        let frame = plan_segments(self.ctx, pipeline, from).await?;
        self.stages.push(Stage {
            view: "assignments".into(),
            title: "segments: the first rule that matches, in order".into(),
            sql,
            parts: Vec::new(),
        });
        Ok(Some(frame))
    }
}

/// The assignments query over table `from` holding the key and every feature: key, the first
/// segment whose rule matches (in order; the catch-all otherwise), features; sorted by key.
pub fn segments_sql(pipeline: &Pipeline, from: &str) -> String {
    let segment = segment_sql(pipeline);
    let items = segments_items(pipeline, &segment);
    let key = ident(&pipeline.entity.key);
    format!(
        "SELECT {}\nFROM {}\nORDER BY {key}",
        select_list(&items),
        ident(from)
    )
}

/// The plan of [`segments_sql`] over view `from`.
pub(crate) async fn plan_segments(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    from: &str,
) -> datafusion::error::Result<DataFrame> {
    let segment = segment_sql(pipeline);
    let items = segments_items(pipeline, &segment);
    match wide_select::select(ctx, from, &items, Some(&pipeline.entity.key)).await {
        Some(frame) => Ok(frame),
        None => ctx.sql(&segments_sql(pipeline, from)).await,
    }
}

/// The plan of [`segments_sql`] over view `from` without the order, keeping also column
/// `segment` of `from` (the segment another version gave over the same features) as `earlier`.
pub(crate) async fn plan_reassignment(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    from: &str,
    earlier: &str,
) -> datafusion::error::Result<DataFrame> {
    let segment = segment_sql(pipeline);
    let mut items = segments_items(pipeline, &segment);
    items.insert(
        2,
        wide_select::Item::Value {
            sql: "segment",
            alias: earlier,
        },
    );
    match wide_select::select(ctx, from, &items, None).await {
        Some(frame) => Ok(frame),
        None => {
            ctx.sql(&format!(
                "SELECT {}\nFROM {}",
                select_list(&items),
                ident(from)
            ))
            .await
        }
    }
}

/// The segment of a customer: the first rule that matches, as text.
fn segment_sql(pipeline: &Pipeline) -> String {
    let mut branches = Vec::new();
    let mut otherwise = "NULL".to_string();
    for segment in &pipeline.segments {
        match &segment.rule {
            Some(rule) => branches.push(format!(
                "WHEN ({rule}) THEN {}",
                string_literal(&segment.id)
            )),
            None => otherwise = string_literal(&segment.id),
        }
    }
    let segment = if branches.is_empty() {
        otherwise
    } else {
        format!(
            "CASE\n    {}\n    ELSE {otherwise}\n  END",
            branches.join("\n    ")
        )
    };
    format!("CAST({segment} AS VARCHAR)")
}

/// The key, the segment and every feature.
fn segments_items<'p>(pipeline: &'p Pipeline, segment: &'p str) -> Vec<wide_select::Item<'p>> {
    let mut items = vec![
        wide_select::Item::Column(&pipeline.entity.key),
        wide_select::Item::Value {
            sql: segment,
            alias: "segment",
        },
    ];
    items.extend(
        pipeline
            .features
            .iter()
            .map(|f| wide_select::Item::Column(&f.name)),
    );
    items
}

/// After a run failed on `error`, find the first stage (or segment rule) that raises it on its
/// own, and say which feature or segment's SQL that is. `None` when no stage fails alone.
pub async fn find_failing_stage(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    stages: &[Stage],
) -> Option<Error> {
    use futures::StreamExt;
    async fn fails(ctx: &SessionContext, sql: &str) -> Option<String> {
        let frame = match ctx.sql(sql).await {
            Ok(frame) => frame,
            Err(e) => return Some(first_line_of_datafusion(&e)),
        };
        let mut stream = match frame.execute_stream().await {
            Ok(stream) => stream,
            Err(e) => return Some(first_line_of_datafusion(&e)),
        };
        while let Some(batch) = stream.next().await {
            if let Err(e) = batch {
                return Some(first_line_of_datafusion(&e));
            }
        }
        None
    }
    // The last stage only orders and projects what the views and rules give.
    let (_, views) = stages.split_last()?;
    for stage in views {
        let Some(mut message) = fails(ctx, &format!("SELECT * FROM {}", ident(&stage.view))).await
        else {
            continue;
        };
        let mut title = &stage.title;
        for part in &stage.parts {
            if let Some(alone) = fails(ctx, &part.sql).await {
                (title, message) = (&part.title, alone);
                break;
            }
        }
        return Some(Error::data(
            format!("{title}: {message}"),
            Some("the data makes this SQL fail; guard it (e.g. NULLIF(x, 0) for a divisor) or fix the data".into()),
        ));
    }
    let from = views.last().map(|stage| ident(&stage.view))?;
    for segment in &pipeline.segments {
        let Some(rule) = &segment.rule else { continue };
        if let Some(message) = fails(ctx, &format!("SELECT ({rule}) FROM {from}")).await {
            return Some(Error::data(
                format!("the rule of segment `{}`: {message}", segment.id),
                Some("the data makes this rule fail; guard it or fix the data".into()),
            ));
        }
    }
    None
}

/// Columns of the ranks stage of a quantile keeping ties together.
const RANK: &str = "__segflow_rank";
const POSITION: &str = "__segflow_position";
const VALUES: &str = "__segflow_values";

/// Prefix of the edge columns (edge j scaled by the number of buckets) of a quantile keeping
/// ties together.
const EDGE: &str = "__segflow_edge_";

/// The bucket of a quantile keeping ties together, over the ranks and edges (scaled by the
/// number of buckets `q`) of [`Compiler::ranks`]: one plus the number of distinct edges above
/// the first that lie below the customer's rank, as `pd.cut` does with the edges `qcut` found,
/// duplicates dropped. When every edge is the same (all values equal, or one customer) no bin
/// is left and, as with pandas, no customer gets a bucket.
fn tied_quantile_sql(buckets: u32) -> String {
    let rank = ident(RANK);
    let edge = |j: u32| ident(&format!("{EDGE}{j}"));
    let counted: Vec<String> = (1..buckets)
        .map(|j| {
            format!(
                "CASE WHEN {0} > {1} AND {0} < {buckets} * {rank} THEN 1 ELSE 0 END",
                edge(j),
                edge(j - 1)
            )
        })
        .collect();
    format!(
        "CASE WHEN {} > {} THEN 1 + {} END",
        edge(buckets),
        edge(0),
        counted.join(" + ")
    )
}

/// The value a quantile feature buckets, as SQL. For floating point, NaN is no value (like
/// null) and -0.0 is 0.0: equal numbers share a rank, as in pandas. (Arrow orders floats by
/// IEEE total order, which puts -0.0 before 0.0 and NaN above every number.)
fn quantile_value(of: &str, columns: &Schema) -> String {
    let column = ident(of);
    match columns.field_with_name(of) {
        Ok(field) if field.data_type().is_floating() => format!(
            "(CASE WHEN isnan({column}) THEN NULL WHEN abs({column}) = 0 THEN 0 ELSE {column} END)"
        ),
        _ => column,
    }
}

/// The bucket SQL of a quantile feature bucketing `of` (see [`quantile_value`]).
fn quantile_sql(quantile: &Quantile, of: &str, key: &str) -> String {
    let bucket = match &quantile.bucketing {
        Bucketing::TiesTogether(buckets) => tied_quantile_sql(*buckets),
        Bucketing::Equal(buckets) => {
            let order = if quantile.descending { "DESC" } else { "ASC" };
            // Customers without a value get no bucket and do not take a share of the buckets.
            format!(
                "ntile({buckets}) OVER (PARTITION BY {of} IS NULL ORDER BY {of} {order}, {})",
                ident(key)
            )
        }
        Bucketing::Cuts(cuts) => {
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
    };
    let number = format!("CAST(CASE WHEN {of} IS NULL THEN NULL ELSE {bucket} END AS BIGINT)");
    match &quantile.labels {
        None => number,
        Some(labels) => {
            let named: Vec<String> = labels
                .iter()
                .enumerate()
                .map(|(i, label)| format!("WHEN {} THEN {}", i + 1, string_literal(label)))
                .collect();
            format!("CASE {number} {} END", named.join(" "))
        }
    }
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
                let column = crate::pipeline::sql::resolved_name(name);
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

/// `value` cast to `declared`, when a type is declared.
fn cast_to(declared: Option<ColumnType>, value: String) -> String {
    match declared {
        Some(column_type) => format!("arrow_cast({value}, '{}')", column_type.arrow_type()),
        None => value,
    }
}

/// `SELECT` every column of `columns` except those `values` replace, then each value as its
/// feature, `FROM from`.
fn projection_sql(columns: &Schema, values: &[(&Feature, String)], from: &str) -> String {
    select_sql(&projection_items(columns, values), from)
}

/// `SELECT items FROM from` as SQL text.
fn select_sql(items: &[wide_select::Item], from: &str) -> String {
    format!("SELECT {} FROM {from}", select_list(items))
}

fn select_list(items: &[wide_select::Item]) -> String {
    let select: Vec<String> = items
        .iter()
        .map(|item| match item {
            wide_select::Item::Column(name) => ident(name),
            wide_select::Item::Value { sql, alias } => format!("{sql} AS {}", ident(alias)),
        })
        .collect();
    select.join(", ")
}

/// [`projection_sql`]'s select list.
fn projection_items<'v>(
    columns: &'v Schema,
    values: &'v [(&Feature, String)],
) -> Vec<wide_select::Item<'v>> {
    let replaced: HashSet<&str> = values.iter().map(|(f, _)| f.name.as_str()).collect();
    let mut items: Vec<wide_select::Item> = names(columns)
        .filter(|name| !replaced.contains(name))
        .map(wide_select::Item::Column)
        .collect();
    items.extend(
        values
            .iter()
            .map(|(feature, value)| wide_select::Item::Value {
                sql: value,
                alias: &feature.name,
            }),
    );
    items
}

fn names(schema: &Schema) -> impl Iterator<Item = &str> + Clone {
    schema.fields().iter().map(|f| f.name().as_str())
}

fn sql_literal(value: &Literal) -> String {
    match value {
        Literal::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => format!("{f:?}"),
        Literal::Text(t) => string_literal(t),
    }
}
