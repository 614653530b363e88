//! Planning a long SELECT list over one registered view.
//!
//! DataFusion's SQL planner spends time quadratic in the length of a select list (it rewrites
//! every item for UNNEST, deduplicating by display name, and walks the input plan for each
//! column), so a level of 1,000 features cost seconds. Here each item's SQL is parsed as an
//! expression and the projection is built with the DataFrame API. Anything that needs the SQL
//! planner's treatment (aggregates, subqueries, UNNEST) or does not parse goes back to the
//! caller, which plans the same SELECT as SQL text and so reports errors exactly as before.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Projection, SortExpr};
use datafusion::prelude::{DataFrame, SessionContext};

/// One item of a select list.
pub(crate) enum Item<'a> {
    /// A column of the view, kept under its name.
    Column(&'a str),
    /// SQL computing a value, named `alias`.
    Value { sql: &'a str, alias: &'a str },
}

/// `SELECT items FROM view [ORDER BY order_by]`, or `None` when the items need DataFusion's
/// SQL planner (the caller then plans the SQL text).
pub(crate) async fn select(
    ctx: &SessionContext,
    view: &str,
    items: &[Item<'_>],
    order_by: Option<&str>,
) -> Option<DataFrame> {
    let frame = ctx.table(view).await.ok()?;
    // Columns the planner would qualify by walking the whole input plan once for each of them.
    let qualifiers: HashMap<&str, Option<&TableReference>> = frame
        .schema()
        .iter()
        .map(|(qualifier, field)| (field.name().as_str(), qualifier))
        .collect();
    let column = |name: &str| -> Option<Expr> {
        let qualifier = qualifiers.get(name)?;
        Some(Expr::Column(Column::new(qualifier.cloned(), name)))
    };
    let mut exprs = Vec::with_capacity(items.len());
    for item in items {
        exprs.push(match item {
            Item::Column(name) => column(name)?,
            Item::Value { sql, alias } => {
                let expr = frame.parse_sql_expr(sql).ok()?;
                if needs_sql_planner(&expr) {
                    return None;
                }
                expr.alias(*alias)
            }
        });
    }
    let frame = project(frame, items, exprs)?;
    match order_by {
        None => Some(frame),
        Some(name) => {
            let key = Expr::Column(Column::new_unqualified(name));
            frame.sort(vec![SortExpr::new(key, true, false)]).ok()
        }
    }
}

/// `exprs` (one for each of `items`) over `frame`. Without window functions the output schema
/// is built here, from the input's fields by position: DataFusion would look each column up by
/// name in a linear scan of the input schema, which is quadratic in a wide projection.
fn project(frame: DataFrame, items: &[Item], exprs: Vec<Expr>) -> Option<DataFrame> {
    let windowed = exprs.iter().any(|e| {
        e.exists(|e| Ok(matches!(e, Expr::WindowFunction(_))))
            .unwrap_or(true)
    });
    if windowed {
        return frame.select(exprs).ok();
    }
    let (state, input) = frame.into_parts();
    let schema = input.schema();
    let position: HashMap<&str, usize> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| (field.name().as_str(), i))
        .collect();
    let mut names = HashSet::with_capacity(items.len());
    let mut fields = Vec::with_capacity(items.len());
    for (item, expr) in items.iter().zip(&exprs) {
        let field = match item {
            Item::Column(name) => {
                let (qualifier, field) = schema.qualified_field(*position.get(name)?);
                (qualifier.cloned(), Arc::clone(field))
            }
            Item::Value { .. } => expr.to_field(schema).ok()?,
        };
        if !names.insert(field.1.name().clone()) {
            return None;
        }
        fields.push(field);
    }
    let output = DFSchema::new_with_metadata(fields, schema.metadata().clone()).ok()?;
    let projection =
        Projection::try_new_with_schema(exprs, Arc::new(input), Arc::new(output)).ok()?;
    Some(DataFrame::new(state, LogicalPlan::Projection(projection)))
}

/// Whether `expr` holds something the SQL planner gives a plan node of its own.
fn needs_sql_planner(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::AggregateFunction(_)
                | Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Unnest(_)
                | Expr::GroupingSet(_)
                | Expr::Placeholder(_)
        ))
    })
    .unwrap_or(true)
}
