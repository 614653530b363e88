//! `segflow run --engine postgres`: the pipeline compiled to one Postgres statement and run
//! inside the database its sources are in. Only the assignments travel (by binary COPY, into
//! the run folder's `assignments.parquet`); statistics, criteria and reports are then the
//! embedded run's, over that file.

use std::collections::BTreeMap;
use std::path::Path;

use super::portable::{self, Dialect, Tables};
use super::{Computed, RunOptions, RunResults, SourceSummary, Timings, compile, entity};
use crate::error::{Error, Result};
use crate::pipeline::sql::ident;
use crate::pipeline::{Pipeline, Relation, SourceOrigin};
use crate::postgres::warehouse::Warehouse;

/// The database every source of `pipeline` is in, as its (expanded) URL; a file source, or
/// sources on two servers, cannot run there.
fn database_url(pipeline: &Pipeline) -> Result<String> {
    let mut url: Option<(String, String)> = None;
    for source in pipeline.sources.values() {
        if !matches!(source.origin, SourceOrigin::Postgres { .. }) {
            return Err(Error::Usage {
                message: format!(
                    "--engine postgres runs the pipeline inside the database its sources are in, and source `{}` is files",
                    source.name
                ),
                help: Some("declare every source as `postgres: { url: ..., table: ... }` (load the files into the database first), or run with the embedded engine".into()),
            });
        }
        let this = pipeline.source_url(&source.name)?;
        match &url {
            None => url = Some((source.name.clone(), this)),
            Some((first, other)) if *other != this => {
                return Err(Error::Usage {
                    message: format!(
                        "--engine postgres runs the pipeline inside one database, and sources `{first}` and `{}` have different URLs",
                        source.name
                    ),
                    help: Some(
                        "use one database for every source, or run with the embedded engine".into(),
                    ),
                });
            }
            Some(_) => {}
        }
    }
    url.map(|(_, url)| url).ok_or_else(|| Error::Usage {
        message: "--engine postgres needs at least one Postgres source".into(),
        help: None,
    })
}

/// Each Postgres source's table (as the target spells it) and each query source's query.
pub(super) fn relations(pipeline: &Pipeline) -> Result<(Tables, BTreeMap<String, String>)> {
    let mut tables = Tables::new();
    let mut queries = BTreeMap::new();
    for source in pipeline.sources.values() {
        match &source.origin {
            SourceOrigin::Postgres {
                relation: Relation::Table(table),
                ..
            } => {
                let name = portable::parse_table(table).map_err(|message| Error::Usage {
                    message,
                    help: None,
                })?;
                tables.insert(source.name.clone(), name);
            }
            SourceOrigin::Postgres {
                relation: Relation::Query(query),
                ..
            } => {
                queries.insert(source.name.clone(), query.clone());
            }
            SourceOrigin::Files { .. } => {}
        }
    }
    Ok((tables, queries))
}

/// The Postgres type that reads back as `data_type`, so that the assignments have the types an
/// embedded run gives them.
fn postgres_type(data_type: &datafusion::arrow::datatypes::DataType) -> Option<&'static str> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    Some(match data_type {
        DataType::Int64 => "bigint",
        DataType::Int32 => "integer",
        DataType::Float64 => "double precision",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Boolean => "boolean",
        DataType::Date32 => "date",
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp",
        _ => return None,
    })
}

/// Run `pipeline` inside its database, writing `assignments.parquet` into `out_dir`.
pub(super) async fn run(
    pipeline: &Pipeline,
    options: &RunOptions,
    out_dir: &Path,
) -> Result<RunResults> {
    let url = database_url(pipeline)?;
    let mut timings = Timings::new();
    let progress = &options.progress;
    progress.stage("plan");
    let (ctx, resolved) =
        super::planning_session(pipeline, options, "run --engine postgres").await?;
    let compiled =
        compile::compile_with(&ctx, pipeline, options.as_of, compile::Shapes::Portable).await?;
    let (tables, queries) = relations(pipeline)?;
    let statement = portable::statement(
        &ctx,
        &compiled.stages,
        options.as_of,
        Dialect::Postgres,
        &tables,
        &queries,
    )
    .await?;
    let columns: Vec<String> = compiled
        .assignments
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let name = ident(field.name());
            postgres_type(field.data_type())
                .map(|t| format!("CAST(t.{name} AS {t}) AS {name}"))
                .ok_or_else(|| Error::Dialect {
                    dialect: "postgres".into(),
                    message: format!(
                        "column `{}` is {}, which segflow does not read back from Postgres",
                        field.name(),
                        field.data_type()
                    ),
                    help: Some("declare the feature's type (`type: int64`, `float64`, `string`, `bool`, `date` or `timestamp`)".into()),
                })
        })
        .collect::<Result<_>>()?;
    let key = ident(&pipeline.entity.key);
    let select = format!(
        "SELECT {} FROM (\n{statement}\n) AS t ORDER BY t.{key}",
        columns.join(", ")
    );
    let mut exclusion_queries = Vec::new();
    for query in &compiled.exclusions {
        let sql = portable::query(
            &ctx,
            &query.detail,
            &query.sql,
            options.as_of,
            Dialect::Postgres,
            &tables,
            &queries,
        )
        .await?;
        exclusion_queries.push((query, sql));
    }
    timings.lap("plan");

    progress.stage("features and segments (in Postgres)");
    let warehouse = Warehouse::open(&url).await?;
    let assignments_path = out_dir.join("assignments.parquet");
    let (schema, _) = warehouse
        .rows_into_parquet(&select, &assignments_path)
        .await?;
    let mut exclusions = Vec::new();
    for (query, sql) in exclusion_queries {
        exclusions.push(entity::Exclusion {
            reason: query.reason,
            detail: query.detail.clone(),
            customers: warehouse.count(&sql, &query.detail).await?,
        });
    }
    let mut sources = Vec::new();
    for source in &resolved {
        let from = match (tables.get(&source.name), queries.get(&source.name)) {
            (Some(table), _) => table.to_string(),
            (None, Some(query)) => format!("(\n{query}\n) AS q"),
            (None, None) => continue,
        };
        let rows = warehouse
            .count(
                &format!("SELECT count(*) FROM {from}"),
                &format!("the rows of source `{}`", source.name),
            )
            .await?;
        sources.push(SourceSummary {
            name: source.name.clone(),
            location: format!("{} (snapshot {})", source.location, warehouse.snapshot()),
            format: "postgres".into(),
            files: 0,
            rows,
            // The rows never left the database: there is no stream to hash.
            sha256: String::new(),
            database: None,
        });
    }
    warehouse.close().await?;
    timings.lap("features and segments (in Postgres)");

    // Cohorts recompute a feature as of every period end: embedded, over the sources' rows.
    let for_cohorts = super::session_for_cohorts(pipeline, options, &mut timings).await?;
    let sources_registered = for_cohorts.is_some();
    let (ctx, _snapshot) = match for_cohorts {
        Some((local, snapshot)) => (local, Some(snapshot)),
        None => (ctx, None),
    };
    let computed = |customers| Computed {
        customers,
        exclusions,
        schema,
        sources,
        profile: None,
        engine: "postgres".into(),
        features_measured: None,
        sources_registered,
    };
    super::finish_fetched(
        &ctx,
        pipeline,
        options,
        &assignments_path,
        computed,
        timings,
    )
    .await
}
