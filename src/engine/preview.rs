//! `segflow preview PIPELINE --segment ID`: what one segment is made of before it goes live: the
//! customers left after each top-level `AND` condition of its rule (a funnel), those an earlier
//! rule claimed (shadowing), a deterministic sample of members with their features, the overlap
//! with every other segment's condition ignoring order, and a breakdown by a column.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::Serialize;

use super::stats::query_rows;
use super::{RunOptions, compile, session, sources};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::sql::{ident, string_literal};

/// Name of the assignments table the preview queries.
const ASSIGNED: &str = "__segflow_preview";

/// What `segflow preview` shows of one segment.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Segment id.
    pub segment: String,
    /// Display name.
    pub name: String,
    /// Its rule; `None` for the catch-all.
    pub rule: Option<String>,
    /// Customers in the run.
    pub customers: u64,
    /// Customers the segment gets (first match wins).
    pub members: u64,
    /// Customers left after each top-level `AND` condition, in rule order.
    pub funnel: Vec<FunnelStep>,
    /// Customers the rule matches, whatever the order.
    pub matching: u64,
    /// Of those, the customers an earlier rule claimed, by that segment.
    pub shadowed_by: Vec<Count>,
    /// Customers matching both this rule and each other segment's rule, ignoring order.
    pub overlaps: Vec<Count>,
    /// Up to `--sample` members with their features, chosen by the SHA-256 of the key.
    pub sample: Vec<BTreeMap<String, serde_json::Value>>,
    /// Members by the value of `--by`.
    pub by: Option<Breakdown>,
}

/// One condition of the funnel.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelStep {
    /// The condition as written (normalised).
    pub condition: String,
    /// Customers matching it and every condition before it.
    pub customers: u64,
}

/// A number of customers, for a segment.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    /// Segment id.
    pub segment: String,
    /// Customers.
    pub customers: u64,
}

/// Members by a column's value.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// The column.
    pub column: String,
    /// (value, members), largest first.
    pub values: Vec<(serde_json::Value, u64)>,
}

/// The top-level `AND` conditions of `rule`, as SQL text.
pub fn conditions(rule: &str) -> Vec<String> {
    fn flatten(expr: Expr, into: &mut Vec<String>) {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                flatten(*left, into);
                flatten(*right, into);
            }
            other => into.push(other.to_string()),
        }
    }
    match Parser::new(&GenericDialect {})
        .try_with_sql(rule)
        .and_then(|mut parser| parser.parse_expr())
    {
        Ok(expr) => {
            let mut parts = Vec::new();
            flatten(expr, &mut parts);
            parts
        }
        // The pipeline check planned the rule already; a rule sqlparser reads otherwise is one
        // condition.
        Err(_) => vec![rule.to_string()],
    }
}

fn count(row: &[serde_json::Value], i: usize) -> u64 {
    row.get(i).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// Preview segment `id` of `pipeline`: its features computed into `work` as in a run.
pub async fn preview(
    pipeline: &Pipeline,
    options: &RunOptions,
    id: &str,
    by: Option<&str>,
    sample: usize,
    work: &Path,
) -> Result<Preview> {
    let Some(position) = pipeline.spec.segments.iter().position(|s| s.id == id) else {
        return Err(Error::Usage {
            message: format!("the pipeline has no segment `{id}`"),
            help: Some(crate::diagnostic::available_help(
                id,
                "segment",
                pipeline.spec.segments.iter().map(|s| s.id.as_str()),
            )),
        });
    };
    let segment = &pipeline.spec.segments[position];
    let ctx = session::for_pipeline(options.as_of, &options.resources)?;
    let snapshot =
        crate::postgres::read::read(pipeline, options.as_of, crate::postgres::read::Rows::All)
            .await?;
    let resolved = sources::resolve(pipeline, &snapshot)?;
    sources::register(&ctx, pipeline, &resolved).await?;
    let compiled = compile::compile(&ctx, pipeline, options.as_of).await?;
    let path = work.join("assignments.parquet");
    super::write_parquet(&ctx, compiled.assignments, &path, &options.progress).await?;
    ctx.register_parquet(
        ASSIGNED,
        &super::location::literal(&path)?,
        datafusion::prelude::ParquetReadOptions::default(),
    )
    .await?;
    let table = ident(ASSIGNED);
    let this = string_literal(id);
    let rule = segment.when.clone();
    let matches = rule
        .as_deref()
        .map_or("TRUE".to_string(), |r| format!("({r})"));

    // One pass: the funnel, the members, the matching and each overlap.
    let steps = rule.as_deref().map(conditions).unwrap_or_default();
    let others: Vec<&crate::pipeline::model::SegmentSpec> = pipeline
        .spec
        .segments
        .iter()
        .filter(|s| s.id != id && s.when.is_some())
        .collect();
    let mut columns = vec![
        "count(*)".to_string(),
        format!("count(*) FILTER (WHERE segment = {this})"),
        format!("count(*) FILTER (WHERE {matches})"),
    ];
    let mut so_far = Vec::new();
    for step in &steps {
        so_far.push(format!("({step})"));
        columns.push(format!("count(*) FILTER (WHERE {})", so_far.join(" AND ")));
    }
    for other in &others {
        let when = other.when.as_deref().unwrap_or("TRUE");
        columns.push(format!("count(*) FILTER (WHERE {matches} AND ({when}))"));
    }
    let aliased: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} AS c{i}"))
        .collect();
    let row = query_rows(&ctx, &format!("SELECT {} FROM {table}", aliased.join(", ")))
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let funnel = steps
        .iter()
        .enumerate()
        .map(|(i, condition)| FunnelStep {
            condition: condition.clone(),
            customers: count(&row, 3 + i),
        })
        .collect();
    let overlaps = others
        .iter()
        .enumerate()
        .map(|(i, other)| Count {
            segment: other.id.clone(),
            customers: count(&row, 3 + steps.len() + i),
        })
        .collect();
    let shadowed_by = query_rows(
        &ctx,
        &format!(
            "SELECT segment, count(*) FROM {table} WHERE {matches} AND segment IS DISTINCT FROM {this} \
             GROUP BY segment ORDER BY count(*) DESC, segment"
        ),
    )
    .await?
    .into_iter()
    .map(|r| Count {
        segment: r[0].as_str().unwrap_or("(unassigned)").to_string(),
        customers: count(&r, 1),
    })
    .collect();

    let key = ident(&pipeline.entity.key);
    let sample = if sample == 0 {
        Vec::new()
    } else {
        use sha2::{Digest, Sha256};
        let mut keys: Vec<([u8; 32], String)> = query_rows(
            &ctx,
            &format!("SELECT CAST({key} AS VARCHAR) FROM {table} WHERE segment = {this}"),
        )
        .await?
        .into_iter()
        .filter_map(|r| r[0].as_str().map(str::to_string))
        .map(|k| (Sha256::digest(k.as_bytes()).into(), k))
        .collect();
        keys.sort_unstable();
        keys.truncate(sample);
        let chosen: Vec<String> = keys.iter().map(|(_, k)| string_literal(k)).collect();
        let names: Vec<String> = std::iter::once(pipeline.entity.key.clone())
            .chain(std::iter::once("segment".to_string()))
            .chain(pipeline.features.iter().map(|f| f.name.clone()))
            .collect();
        let order: BTreeMap<&String, usize> =
            keys.iter().enumerate().map(|(i, (_, k))| (k, i)).collect();
        let mut rows: Vec<(usize, BTreeMap<String, serde_json::Value>)> = if chosen.is_empty() {
            Vec::new()
        } else {
            query_rows(
                &ctx,
                &format!(
                    "SELECT * FROM {table} WHERE CAST({key} AS VARCHAR) IN ({})",
                    chosen.join(", ")
                ),
            )
            .await?
            .into_iter()
            .map(|r| {
                let row: BTreeMap<String, serde_json::Value> =
                    names.iter().cloned().zip(r).collect();
                let text = match &row[&pipeline.entity.key] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (order.get(&text).copied().unwrap_or(usize::MAX), row)
            })
            .collect()
        };
        rows.sort_by_key(|(i, _)| *i);
        rows.into_iter().map(|(_, row)| row).collect()
    };

    let by = match by {
        None => None,
        Some(column) => Some(breakdown(&ctx, pipeline, &compiled.customers, column, &this).await?),
    };
    Ok(Preview {
        segment: id.to_string(),
        name: segment.name.clone(),
        rule,
        customers: count(&row, 0),
        members: count(&row, 1),
        funnel,
        matching: count(&row, 2),
        shadowed_by,
        overlaps,
        sample,
        by,
    })
}

/// Members of `this` segment by `column`: a feature, or a column of the customers' table.
async fn breakdown(
    ctx: &datafusion::prelude::SessionContext,
    pipeline: &Pipeline,
    customers: &str,
    column: &str,
    this: &str,
) -> Result<Breakdown> {
    let key = ident(&pipeline.entity.key);
    let table = ident(ASSIGNED);
    let is_feature = pipeline.features.iter().any(|f| f.name == column);
    let entity_columns: Vec<String> = ctx
        .table(customers)
        .await
        .map(|t| {
            t.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let sql = if is_feature {
        format!(
            "SELECT {c}, count(*) FROM {table} WHERE segment = {this} GROUP BY {c} ORDER BY count(*) DESC, {c}",
            c = ident(column)
        )
    } else if entity_columns.iter().any(|c| c == column) {
        format!(
            "SELECT e.{c}, count(*) FROM {table} a JOIN {customers} e ON a.{key} = e.{key} \
             WHERE a.segment = {this} GROUP BY e.{c} ORDER BY count(*) DESC, e.{c}",
            c = ident(column),
            customers = ident(customers),
        )
    } else {
        let mut known: Vec<&str> = pipeline.features.iter().map(|f| f.name.as_str()).collect();
        known.extend(entity_columns.iter().map(String::as_str));
        return Err(Error::Usage {
            message: format!("--by `{column}` is neither a feature nor a column of the customers"),
            help: Some(crate::diagnostic::available_help(column, "column", known)),
        });
    };
    let values = query_rows(ctx, &sql)
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), count(&r, 1)))
        .collect();
    Ok(Breakdown {
        column: column.to_string(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_and_conditions_are_split_and_nested_ones_kept() {
        assert_eq!(
            conditions("a >= 1 AND (b < 2 OR c) AND d = 'x AND y'"),
            vec!["a >= 1", "(b < 2 OR c)", "d = 'x AND y'"]
        );
        assert_eq!(conditions("a > 1"), vec!["a > 1"]);
    }
}
