//! DataFusion: registering sources, planning features and segments, executing, and collecting
//! the numbers later stages render. Nothing here formats output for people.

mod aggregate;
pub mod cohorts;
pub mod compare;
pub mod compile;
mod entity;
pub mod fixtures;
mod functions;
mod in_database;
pub mod location;
pub mod measures;
#[cfg(feature = "ballista")]
mod on_cluster;
pub mod portable;
pub mod preview;
pub mod profiles;
mod scheduler;
mod session;
mod source_files;
mod sources;
pub mod stats;
mod temporal;
mod wide_select;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::logical_expr::Expr;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::{ParquetReadOptions, SessionContext, lit};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use entity::{Exclusion, ExclusionReason};
pub use portable::Dialect;
pub use sources::ResolvedSource;

use crate::postgres;
use crate::postgres::read::Rows;
pub use stats::FeatureStats;

use crate::error::{Error, Result};
use crate::pipeline::model::{FeatureKind, SourceFormat};
use crate::pipeline::sql::ident;
use crate::pipeline::{Pipeline, hex};
use crate::progress::Progress;

/// Name under which the written assignments are read back for statistics.
const ASSIGNMENTS: &str = "__segflow_assignments";

/// What a run needs besides the pipeline.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The as-of date in force.
    pub as_of: NaiveDate,
    /// Memory and threads the engine may use.
    pub resources: Resources,
    /// Keep the physical plans with their per-operator metrics (`--profile`).
    pub profile: bool,
    /// Where to show progress.
    pub progress: Progress,
    /// Where the assignments are computed.
    pub engine: Engine,
}

pub use scheduler::Scheduler;

/// Where a run computes the assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion inside segflow.
    #[default]
    Embedded,
    /// Inside the PostgreSQL database the sources are in, as compiled SQL.
    Postgres,
    /// On the Apache Ballista cluster this scheduler leads.
    Ballista(Scheduler),
}

impl Engine {
    /// Whether this build of segflow can run on this engine (Ballista is a cargo feature).
    pub fn available(&self) -> bool {
        !matches!(self, Engine::Ballista(_)) || cfg!(feature = "ballista")
    }
}

impl RunOptions {
    /// Options for `as_of` with default resources, no profile and no progress shown.
    pub fn new(as_of: NaiveDate) -> Self {
        RunOptions {
            as_of,
            resources: Resources::default(),
            profile: false,
            progress: Progress::hidden(),
            engine: Engine::Embedded,
        }
    }
}

/// Memory and threads a run may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes the engine's memory pool may hand out before operators spill to disk; `None` for no
    /// limit.
    pub memory_limit: Option<u64>,
    /// Worker threads and partitions; `None` for one per core.
    pub threads: Option<usize>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunResults {
    /// The as-of date in force.
    pub as_of: NaiveDate,
    /// Customers as of the as-of date.
    pub customers: u64,
    /// Customers the sources know of that the as-of date leaves out, by reason (with `since`,
    /// validity columns, or customers taken from event keys).
    pub exclusions: Vec<Exclusion>,
    /// Customers no segment rule matched (only possible without a catch-all).
    pub unassigned: u64,
    /// Share of customers that are unassigned.
    pub unassigned_share: f64,
    /// Every declared segment, in rule order, including empty ones.
    pub segments: Vec<SegmentResult>,
    /// Feature statistics over all customers.
    pub overall: Vec<FeatureStats>,
    /// The features, in declaration order, with their computed types.
    pub features: Vec<FeatureInfo>,
    /// The sources as read.
    pub sources: Vec<SourceSummary>,
    /// Reachable customers of unassigned customers, when the accessible criterion is declared.
    pub unassigned_reachable: Option<u64>,
    /// Cut points used by quantile features.
    pub quantiles: Vec<measures::QuantileCuts>,
    /// The 2x2 value x engagement matrix, when declared.
    pub matrix: Option<measures::Matrix>,
    /// Per segment, how many of its customers each later rule would also have matched.
    pub rule_overlap: Vec<measures::RuleOverlap>,
    /// Per category feature, customers per value over all and per segment.
    pub categories: Vec<profiles::CategoryMix>,
    /// Per declared value or cost feature, its concentration over customers.
    pub concentration: Vec<profiles::Concentration>,
    /// The ideal customer profile's customers beside everyone else, when declared.
    pub icp: Option<IcpMeasured>,
    /// Cohorts and retention (and the value figures of lifetime value), when declared and the
    /// event sources were read: `None` for a reassignment over an earlier run's features.
    pub cohorts: Option<cohorts::Cohorts>,
    /// Seconds spent per stage, in order. Run metadata: kept out of the reproducible outputs and
    /// written to the manifest only.
    #[serde(skip)]
    pub timings: Vec<(String, f64)>,
    /// With `--profile`: the executed physical plans with their metrics (rows, time, spills).
    /// Run metadata, written to `profile.txt` only.
    #[serde(skip)]
    pub profile: Option<String>,
    /// The engine that computed the assignments: `embedded` or `postgres`.
    pub engine: String,
}

/// The ideal customer profile measured against everyone else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcpMeasured {
    /// Customers in the profile.
    pub customers: u64,
    /// Feature statistics of the profile's customers (no medians: the comparison uses means).
    pub features: Vec<FeatureStats>,
    /// Feature statistics of everyone else (no medians).
    pub rest: Vec<FeatureStats>,
    /// Category mixes of the two groups: `icp`, then everyone else (`rest`).
    pub categories: Vec<profiles::CategoryMix>,
    /// With `cohorts:`, the cohort tables of the two groups: `icp`, then `rest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retention: Vec<cohorts::CohortTable>,
}

/// One segment's measured size and profile. Declarations (name, owner, rule, actions) stay in
/// the pipeline; reports join the two by id.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentResult {
    /// Segment id.
    pub id: String,
    /// Customers assigned.
    pub customers: u64,
    /// Share of all customers.
    pub share: f64,
    /// Per-feature statistics within the segment.
    pub features: Vec<FeatureStats>,
    /// Customers reachable through the accessible criterion's condition, when declared.
    pub reachable: Option<u64>,
}

impl RunResults {
    /// The measured segment `id`.
    pub fn segment(&self, id: &str) -> Option<&SegmentResult> {
        self.segments.iter().find(|s| s.id == id)
    }
}

/// A feature as computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureInfo {
    /// Name.
    pub name: String,
    /// Segmentation kind.
    pub kind: FeatureKind,
    /// Description.
    pub description: String,
    /// Arrow type of the column in `assignments.parquet`.
    pub data_type: String,
    /// The pipeline's `unit`: an ISO 4217 currency code (money) or a plain unit such as `days`.
    /// Absent in run folders written before units existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A source as read by the run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceSummary {
    /// Name in the pipeline.
    pub name: String,
    /// Path as declared or overridden; for a Postgres source, the table (or `the query`) and
    /// the server (`user@host:port/database`, never the password).
    pub location: String,
    /// How it was read: `csv`, `parquet`, `ndjson` or `postgres`.
    pub format: String,
    /// Number of files (0 for a Postgres source).
    pub files: usize,
    /// Rows in the table (for a Postgres source, the rows read: within the pushed-down window).
    pub rows: u64,
    /// SHA-256 over the files' bytes, in path order; for a Postgres source, over the binary COPY
    /// stream of the rows read.
    pub sha256: String,
    /// For a Postgres source: the server, the table or the query's SHA-256, and the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<crate::postgres::read::Fingerprint>,
}

/// What `validate` checked.
#[derive(Debug)]
pub struct Validated {
    /// Database servers that could not be reached: their sources' columns, and the pipeline's
    /// SQL (which needs every source's columns), were not checked.
    pub unreachable: Vec<postgres::read::Unreachable>,
}

/// Check everything that needs the sources' schemas but no scan: columns, SQL, types. A
/// Postgres server that cannot be reached leaves its sources and the SQL unchecked (said in
/// [`Validated::unreachable`]); one that refuses (a wrong password) is an error.
pub async fn validate(pipeline: &Pipeline, options: &RunOptions) -> Result<Validated> {
    let ctx = session::for_pipeline(options.as_of, &options.resources)?;
    let snapshot = postgres::read::read(pipeline, options.as_of, Rows::None).await?;
    let unchecked: Vec<&String> = snapshot
        .unreachable
        .iter()
        .flat_map(|u| &u.sources)
        .collect();
    let mut resolved = Vec::new();
    for source in pipeline.sources.values() {
        if !unchecked.contains(&&source.name) {
            resolved.push(sources::resolve_one(pipeline, source, &snapshot)?);
        }
    }
    sources::register(&ctx, pipeline, &resolved).await?;
    if unchecked.is_empty() {
        compile::compile(&ctx, pipeline, options.as_of).await?;
    }
    Ok(Validated {
        unreachable: snapshot.unreachable,
    })
}

/// Read every row of source `name` with its declared types, returning the row count: what a run
/// does to a source, without the rest of the pipeline (for the data-reader fuzz target and
/// checks of a single export).
pub async fn read_source(pipeline: &Pipeline, name: &str, as_of: NaiveDate) -> Result<u64> {
    let ctx = session::for_pipeline(as_of, &Resources::default())?;
    let snapshot = postgres::read::read(pipeline, as_of, Rows::All).await?;
    let resolved: Vec<ResolvedSource> = sources::resolve(pipeline, &snapshot)?
        .into_iter()
        .filter(|source| source.name == name)
        .collect();
    sources::register(&ctx, pipeline, &resolved).await?;
    let scan = async {
        let mut stream = ctx.table(name).await?.execute_stream().await?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows() as u64;
        }
        Ok::<u64, datafusion::error::DataFusionError>(rows)
    };
    match std::panic::AssertUnwindSafe(scan).catch_unwind().await {
        Ok(Ok(rows)) => Ok(rows),
        // A failure or a reader's panic: find the file and say what is wrong with it.
        Ok(Err(_)) | Err(_) => Err(sources::find_bad_file(&ctx, pipeline, &resolved)
            .await
            .unwrap_or_else(|| Error::data(format!("source `{name}` could not be read"), None))),
    }
}

/// A session holding each of `tables` (a table name, its files, their format, and the location
/// as messages show it) as a table with the column types DataFusion infers, read and checked as
/// a run reads a source: for `segflow init` to inspect data no pipeline describes yet, within
/// `resources`.
pub async fn inspection_session(
    tables: &[(String, Vec<PathBuf>, SourceFormat, String)],
    resources: &Resources,
) -> Result<SessionContext> {
    let ctx = session::embedded(resources)?;
    for (name, files, format, shown) in tables {
        let source = ResolvedSource {
            name: name.clone(),
            location: shown.clone(),
            files: files.clone(),
            format: *format,
            database: None,
        };
        sources::register_one(&ctx, &source, &BTreeMap::new()).await?;
    }
    Ok(ctx)
}

/// Every file the pipeline's file sources read (globs expanded).
pub fn source_files(pipeline: &Pipeline) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for source in pipeline.sources.values() {
        if matches!(source.origin, crate::pipeline::SourceOrigin::Files { .. }) {
            files.extend(sources::resolve_files(pipeline, source)?.files);
        }
    }
    Ok(files)
}

/// A session with every source registered by its columns, no rows read, for `segflow
/// {command}`.
async fn planning_session(
    pipeline: &Pipeline,
    options: &RunOptions,
    command: &str,
) -> Result<(SessionContext, Vec<ResolvedSource>)> {
    let ctx = session::for_pipeline(options.as_of, &options.resources)?;
    let snapshot = postgres::read::read(pipeline, options.as_of, Rows::None).await?;
    // A plan needs every source's columns: a server out of reach is an error here, as in a run.
    if let Some(server) = snapshot.unreachable.first() {
        return Err(Error::Database {
            source_name: server.sources.join("`, `"),
            target: server.target.clone(),
            message: server.message.clone(),
            help: Some(format!(
                "`segflow {command}` reads the columns of every source: run it when the server is reachable"
            )),
        });
    }
    let resolved = sources::resolve(pipeline, &snapshot)?;
    sources::register(&ctx, pipeline, &resolved).await?;
    // The sources were read for their columns only: planning needs no file of the snapshot.
    Ok((ctx, resolved))
}

/// The pipeline as one SQL statement in `dialect` that computes the assignments (key,
/// `segment`, every feature in declaration order) inside that engine (`segflow compile`).
/// Each source is read from the table `tables` names for it; by default a Postgres source's own
/// table, and any other source a table named after it.
pub async fn compile_sql(
    pipeline: &Pipeline,
    options: &RunOptions,
    dialect: Dialect,
    tables: &portable::Tables,
) -> Result<String> {
    if let Some(unknown) = tables
        .keys()
        .find(|name| !pipeline.sources.contains_key(*name))
    {
        return Err(Error::Usage {
            message: format!("--table names `{unknown}`, which is not a source of the pipeline"),
            help: Some(crate::diagnostic::available_help(
                unknown,
                "source",
                pipeline.sources.keys().map(String::as_str),
            )),
        });
    }
    let (mut read_from, queries) = in_database::relations(pipeline)?;
    read_from.extend(tables.iter().map(|(k, v)| (k.clone(), v.clone())));
    // A query source's SQL is Postgres SQL: other dialects read a table named after the source.
    let queries: BTreeMap<String, String> = queries
        .into_iter()
        .filter(|(name, _)| dialect == Dialect::Postgres && !tables.contains_key(name))
        .collect();
    let (ctx, _) = planning_session(pipeline, options, "compile").await?;
    let compiled =
        compile::compile_with(&ctx, pipeline, options.as_of, compile::Shapes::Portable).await?;
    let sql = portable::statement(
        &ctx,
        &compiled.stages,
        options.as_of,
        dialect,
        &read_from,
        &queries,
    )
    .await?;
    let mut sources: Vec<String> = pipeline
        .sources
        .keys()
        .map(
            |name| match (read_from.get(name), queries.contains_key(name)) {
                (Some(table), _) => format!("{name} as {table}"),
                (None, true) => format!("{name} from its query"),
                (None, false) => name.clone(),
            },
        )
        .collect();
    sources.sort();
    Ok(format!(
        "-- segflow compile of `{}` as of {} for {dialect}{}\n\
         -- reads {}; one row per customer: key, segment, then every feature\n{sql};\n",
        pipeline.spec.name,
        options.as_of,
        if dialect.verified() {
            ""
        } else {
            " (unverified: not run by segflow's tests)"
        },
        sources.join(", ")
    ))
}

/// What `segflow plan` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanView {
    /// The SQL of every stage.
    Sql,
    /// DataFusion's optimised logical plan.
    Logical,
    /// DataFusion's physical plan.
    Physical,
}

/// What a run would execute, without reading any rows: the SQL of every stage or DataFusion's
/// plan of the assignments query.
pub async fn explain(pipeline: &Pipeline, options: &RunOptions, view: PlanView) -> Result<String> {
    let (ctx, _) = planning_session(pipeline, options, "plan").await?;
    let compiled = compile::compile(&ctx, pipeline, options.as_of).await?;
    Ok(match view {
        PlanView::Sql => {
            let mut text = format!(
                "-- segflow plan of `{}` as of {}: {} stages\n",
                pipeline.spec.name,
                options.as_of,
                compiled.stages.len()
            );
            let last = compiled.stages.len().saturating_sub(1);
            for (i, stage) in compiled.stages.iter().enumerate() {
                text.push_str(&format!("\n-- stage {}: {}\n", i + 1, stage.title));
                if i == last {
                    text.push_str(&format!("{};\n", stage.sql));
                } else {
                    text.push_str(&format!(
                        "CREATE VIEW {} AS\n{};\n",
                        ident(&stage.view),
                        stage.sql
                    ));
                }
            }
            text
        }
        PlanView::Logical => format!(
            "{}\n",
            compiled.assignments.into_optimized_plan()?.display_indent()
        ),
        PlanView::Physical => {
            let plan = compiled.assignments.create_physical_plan().await?;
            format!("{}", displayable(plan.as_ref()).indent(true))
        }
    })
}

/// A data error as the user can act on it: naming the source file it comes from, or else the
/// feature or segment whose SQL raised it. Other errors are returned as they are.
async fn name_the_cause(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    resolved: &[sources::ResolvedSource],
    stages: &[compile::Stage],
    error: Error,
) -> Error {
    if let Error::OutOfMemory {
        stage,
        limit,
        message,
    } = &error
        && message.contains(functions::TOO_LONG)
    {
        // A function asked to make too long a value: say which feature's SQL did.
        return match compile::find_failing_stage(ctx, pipeline, stages).await {
            Some(Error::Data { message, .. }) => Error::OutOfMemory {
                stage,
                limit: *limit,
                message,
            },
            _ => error,
        };
    }
    if !matches!(error, Error::Data { .. }) {
        return error;
    }
    let found = match sources::find_bad_file(ctx, pipeline, resolved).await {
        Some(bad) => Some(bad),
        None => compile::find_failing_stage(ctx, pipeline, stages).await,
    };
    found.unwrap_or(error)
}

/// Run the pipeline, writing `assignments.parquet` into `out_dir`, and measure the segments.
pub async fn run(pipeline: &Pipeline, options: &RunOptions, out_dir: &Path) -> Result<RunResults> {
    match &options.engine {
        Engine::Embedded => {}
        Engine::Postgres => return in_database::run(pipeline, options, out_dir).await,
        #[cfg(feature = "ballista")]
        Engine::Ballista(scheduler) => {
            return on_cluster::run(pipeline, options, out_dir, scheduler).await;
        }
        #[cfg(not(feature = "ballista"))]
        Engine::Ballista(_) => return Err(without_ballista()),
    }
    let mut timings = Timings::new();
    let ctx = session::for_pipeline(options.as_of, &options.resources)?;
    let (_snapshot, resolved) = resolve(pipeline, options, &mut timings).await?;
    let hashing = tokio::task::spawn_blocking({
        let resolved = resolved.clone();
        move || {
            resolved
                .iter()
                .map(|s| match &s.database {
                    Some(read) => Ok(read.sha256.clone()),
                    None => hash_files(&s.files),
                })
                .collect::<Result<Vec<_>>>()
        }
    });
    let assignments_path = out_dir.join("assignments.parquet");
    let Assigned {
        customers,
        exclusions,
        schema,
        executed,
    } = assign(
        &ctx,
        pipeline,
        options,
        &resolved,
        &assignments_path,
        &mut timings,
    )
    .await?;
    let profile = options.profile.then(|| {
        format!(
            "-- features and segments: the physical plan with each operator's metrics\n{}",
            datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                executed.as_ref()
            )
            .indent(true)
        )
    });
    let hashes = hashing
        .await
        .map_err(|e| Error::Internal(format!("hashing sources: {e}")))??;
    let mut sources = Vec::with_capacity(resolved.len());
    for (source, sha256) in resolved.iter().zip(hashes) {
        let rows = count_rows(&ctx, &source.name).await?;
        sources.push(SourceSummary {
            name: source.name.clone(),
            location: source.location.clone(),
            format: match source.database {
                Some(_) => "postgres".into(),
                None => source.format.name().into(),
            },
            files: if source.database.is_some() {
                0
            } else {
                source.files.len()
            },
            rows,
            sha256,
            database: source.database.clone(),
        });
    }
    timings.lap("source summaries");
    let computed = Computed {
        customers,
        exclusions,
        schema,
        sources,
        profile,
        engine: "embedded".into(),
        features_measured: None,
        sources_registered: true,
    };
    register_assignments(&ctx, &assignments_path).await?;
    finish(&ctx, pipeline, options, computed, timings).await
}

/// Read the pipeline's database sources and resolve every source to what the engine reads. The
/// snapshot holds the files the database sources were read into: keep it while they are read.
async fn resolve(
    pipeline: &Pipeline,
    options: &RunOptions,
    timings: &mut Timings,
) -> Result<(postgres::read::Snapshot, Vec<ResolvedSource>)> {
    let snapshot = postgres::read::read(pipeline, options.as_of, Rows::All).await?;
    if !snapshot.sources.is_empty() {
        timings.lap("read Postgres sources");
    }
    let resolved = sources::resolve(pipeline, &snapshot)?;
    Ok((snapshot, resolved))
}

/// What the embedded engine computed and wrote as the assignments.
struct Assigned {
    customers: u64,
    exclusions: Vec<Exclusion>,
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// The executed physical plan, with its operators' metrics.
    executed: Arc<dyn ExecutionPlan>,
}

/// Register the `resolved` sources in `ctx`, check the customers, and compute the features and
/// segments into `path`. A data error is traced to its source and file.
async fn assign(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    options: &RunOptions,
    resolved: &[ResolvedSource],
    path: &Path,
    timings: &mut Timings,
) -> Result<Assigned> {
    let progress = &options.progress;
    let in_stage = |stage: &'static str| {
        progress.stage(stage);
        move |error: Error| error.in_stage(stage, options.resources.memory_limit)
    };
    sources::register(ctx, pipeline, resolved).await?;
    let compiled = compile::compile(ctx, pipeline, options.as_of).await?;
    timings.lap("plan");

    // Reading the customers can be the first time a typed column is parsed (a join date or a
    // validity column), so a data error here is traced to its file as in the features stage.
    let checked = async {
        let customers = entity::check_unique(ctx, pipeline, &compiled.customers).await?;
        let exclusions = entity::count_exclusions(ctx, &compiled.exclusions).await?;
        Ok((customers, exclusions))
    }
    .await
    .map_err(in_stage("check entity"));
    let (customers, exclusions) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            return Err(name_the_cause(ctx, pipeline, resolved, &compiled.stages, error).await);
        }
    };
    timings.lap("check entity");

    let compile::Compiled {
        stages,
        assignments,
        ..
    } = compiled;
    // A reader can panic on a corrupt file while the plan runs; that is bad data, and the search
    // below names the file.
    let written = std::panic::AssertUnwindSafe(write_parquet(ctx, assignments, path, progress))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::data("a source file stopped the engine", None)))
        .map_err(in_stage("features and segments"));
    let (schema, executed) = match written {
        Ok(written) => written,
        Err(error) => return Err(name_the_cause(ctx, pipeline, resolved, &stages, error).await),
    };
    timings.lap("features and segments");
    Ok(Assigned {
        customers,
        exclusions,
        schema,
        executed,
    })
}

/// Compute `pipeline`'s features and segments into the Parquet file `path` with the embedded
/// engine, as a run does, without measuring them.
pub async fn compute_features(
    pipeline: &Pipeline,
    options: &RunOptions,
    path: &Path,
) -> Result<()> {
    let mut timings = Timings::new();
    let ctx = session::for_pipeline(options.as_of, &options.resources)?;
    let (_snapshot, resolved) = resolve(pipeline, options, &mut timings).await?;
    assign(&ctx, pipeline, options, &resolved, path, &mut timings).await?;
    Ok(())
}

/// For another engine's run of a pipeline with `cohorts:`: a local session with the sources
/// read and registered as an embedded run reads them (a Postgres source's rows copied out), so
/// the cohorts are measured embedded from the same sources. The snapshot holds the files the
/// database sources were read into: keep it while they are read. `None` without cohorts.
async fn session_for_cohorts(
    pipeline: &Pipeline,
    options: &RunOptions,
    timings: &mut Timings,
) -> Result<Option<(SessionContext, postgres::read::Snapshot)>> {
    if pipeline.spec.cohorts.is_none() {
        return Ok(None);
    }
    let local = session::for_pipeline(options.as_of, &options.resources)?;
    let (snapshot, resolved) = resolve(pipeline, options, timings).await?;
    sources::register(&local, pipeline, &resolved).await?;
    Ok(Some((local, snapshot)))
}

/// The refusal of `--engine ballista://` by a build without the `ballista` feature.
pub fn without_ballista() -> Error {
    Error::Usage {
        message: "this segflow was built without Ballista, so it cannot run on a cluster".into(),
        help: Some("build it with the feature: `cargo install --path . --features ballista` (or `cargo run --release --features ballista -- run ...`)".into()),
    }
}

/// Table name of the features `reassign` reads.
const COMPUTED_FEATURES: &str = "__segflow_computed_features";

/// Table names of the earlier run's features and the recomputed ones, when some changed.
const EARLIER_FEATURES: &str = "__segflow_earlier_features";
const RECOMPUTED_FEATURES: &str = "__segflow_recomputed_features";

/// The earlier run's features with the `recomputed` ones in place of its columns of those
/// names, joined on the key `key` (the same customers: the sources and entity are the same).
async fn join_recomputed(
    ctx: &SessionContext,
    key: &str,
    recomputed: &[String],
) -> Result<datafusion::prelude::DataFrame> {
    let replaced: std::collections::HashSet<&str> = recomputed.iter().map(String::as_str).collect();
    let earlier = ctx.table(EARLIER_FEATURES).await?;
    let mut columns: Vec<String> = earlier
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| !replaced.contains(name))
        .map(|name| format!("e.{}", ident(name)))
        .collect();
    columns.extend(recomputed.iter().map(|name| format!("r.{}", ident(name))));
    let key = ident(key);
    let sql = format!(
        "SELECT {} FROM {EARLIER_FEATURES} e JOIN {RECOMPUTED_FEATURES} r ON e.{key} = r.{key}",
        columns.join(", ")
    );
    Ok(ctx.sql(&sql).await?)
}

/// Register the Parquet file at `path` as table `name`.
async fn register_file(ctx: &SessionContext, name: &str, path: &Path) -> Result<()> {
    // As a URL: a run folder's name may hold `[`, which a plain path would make a glob.
    ctx.register_parquet(
        name,
        &self::location::literal(path)?,
        ParquetReadOptions::default(),
    )
    .await?;
    Ok(())
}

/// The assignments of the segments whose statistics are not known already.
const UNKNOWN_SEGMENTS: &str = "__segflow_unknown_segments";

/// Column of the reassigned view holding the segment the features table's own run gave.
const EARLIER_SEGMENT: &str = "__segflow_earlier_segment";

/// A version's results over another version's features, and who moved between the two.
#[derive(Debug)]
pub struct Reassigned {
    /// The version's results, as a run would give them.
    pub results: RunResults,
    /// Customers by (this version's segment, the earlier run's segment).
    pub migration: Vec<compare::MigrationCell>,
    /// Sample keys of each changed cell.
    pub samples: std::collections::BTreeMap<compare::Cell, Vec<String>>,
}

/// Features that a version recomputed apart because its definitions of them differ from the
/// earlier run's: the file (key, then the features) and the names.
#[derive(Debug, Clone, Copy)]
pub struct Recomputed<'a> {
    /// The Parquet file [`compute_features`] wrote.
    pub path: &'a Path,
    /// The features it holds, which replace the earlier run's columns of those names.
    pub features: &'a [String],
}

/// `pipeline`'s segment rules evaluated over the features another run of the same sources
/// computed (`earlier`, whose assignments file is `features`), with the features whose
/// definitions differ taken from `recomputed`; measured in the same pass with the migration
/// from these segments to the earlier run's (up to `per_cell` sample keys per changed cell). A
/// change of rules is reviewed without computing the features again, and nothing is written.
/// `None` when the rules do not plan over those columns (they name something that is not a
/// feature), so the caller runs the pipeline instead.
pub async fn reassign(
    pipeline: &Pipeline,
    options: &RunOptions,
    earlier: &RunResults,
    features: &Path,
    recomputed: Option<Recomputed<'_>>,
    per_cell: usize,
) -> Result<Option<Reassigned>> {
    let mut timings = Timings::new();
    let ctx = session::for_pipeline(options.as_of, &options.resources)?;
    match recomputed {
        None => register_file(&ctx, COMPUTED_FEATURES, features).await?,
        Some(recomputed) => {
            register_file(&ctx, EARLIER_FEATURES, features).await?;
            register_file(&ctx, RECOMPUTED_FEATURES, recomputed.path).await?;
            let joined = join_recomputed(&ctx, &pipeline.entity.key, recomputed.features).await?;
            ctx.register_table(COMPUTED_FEATURES, joined.into_view())?;
        }
    }
    let planned =
        compile::plan_reassignment(&ctx, pipeline, COMPUTED_FEATURES, EARLIER_SEGMENT).await;
    let Ok(frame) = planned else {
        return Ok(None);
    };
    options.progress.stage("segments");
    let schema = Arc::new(frame.schema().as_arrow().clone());
    ctx.register_table(ASSIGNMENTS, frame.into_view())?;
    let (migration, samples) = compare::moves_between_columns(
        &ctx,
        ASSIGNMENTS,
        &pipeline.entity.key,
        ["segment", EARLIER_SEGMENT],
        per_cell,
    )
    .await?;
    timings.lap("segments");
    let computed = Computed {
        customers: earlier.customers,
        exclusions: earlier.exclusions.clone(),
        schema,
        sources: earlier.sources.clone(),
        profile: None,
        engine: earlier.engine.clone(),
        // Measures of the features alone are the earlier run's when no feature changed, and so
        // are the statistics of a segment whose members did not change either.
        features_measured: recomputed.is_none().then(|| FeaturesMeasured {
            overall: earlier.overall.clone(),
            quantiles: earlier.quantiles.clone(),
            segments: same_members(&migration)
                .into_iter()
                .filter_map(|id| earlier.segment(&id))
                .map(|segment| stats::GroupStats {
                    segment: Some(segment.id.clone()),
                    customers: segment.customers,
                    features: segment.features.clone(),
                })
                .collect(),
        }),
        sources_registered: false,
    };
    let results = finish(&ctx, pipeline, options, computed, timings).await?;
    Ok(Some(Reassigned {
        results,
        migration,
        samples,
    }))
}

/// What a run computed before its statistics, whatever the engine.
struct Computed {
    customers: u64,
    exclusions: Vec<Exclusion>,
    /// The assignments' schema.
    schema: datafusion::arrow::datatypes::SchemaRef,
    sources: Vec<SourceSummary>,
    profile: Option<String>,
    /// The engine that computed the assignments, as the manifest names it.
    engine: String,
    /// The measures of the features alone, when a run over the same features table has them.
    features_measured: Option<FeaturesMeasured>,
    /// Whether the pipeline's sources are registered in the session, so that cohorts can be
    /// measured against the event source.
    sources_registered: bool,
}

/// What an earlier run over the same features table measured that holds here too.
struct FeaturesMeasured {
    /// The features over all customers.
    overall: Vec<FeatureStats>,
    quantiles: Vec<measures::QuantileCuts>,
    /// The statistics of segments with the same members in both.
    segments: Vec<stats::GroupStats>,
}

/// The segments whose members are the same on both sides of `migration`: nobody left or
/// joined them.
fn same_members(migration: &[compare::MigrationCell]) -> Vec<String> {
    let changed: std::collections::HashSet<&str> = migration
        .iter()
        .filter(|cell| cell.old != cell.new)
        .flat_map(|cell| [cell.old.as_deref(), cell.new.as_deref()])
        .flatten()
        .collect();
    let mut same: Vec<String> = migration
        .iter()
        .filter(|cell| cell.old == cell.new)
        .filter_map(|cell| cell.old.clone())
        .filter(|id| !changed.contains(id.as_str()))
        .collect();
    same.dedup();
    same
}

/// Register the assignments written at `path` as the table the statistics read.
async fn register_assignments(ctx: &SessionContext, path: &Path) -> Result<()> {
    register_file(ctx, ASSIGNMENTS, path).await
}

/// Read back assignments another engine computed and wrote at `path`, count their customers
/// (keys repeated or null in the customers' table show there as they would in the customers'
/// stage of an embedded run) and measure them into the run's results.
async fn finish_fetched(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    options: &RunOptions,
    path: &Path,
    computed: impl FnOnce(u64) -> Computed,
    mut timings: Timings,
) -> Result<RunResults> {
    register_assignments(ctx, path).await?;
    let customers = entity::check_unique(ctx, pipeline, ASSIGNMENTS).await?;
    timings.lap("check entity");
    finish(ctx, pipeline, options, computed(customers), timings).await
}

/// Measure the assignments registered as [`ASSIGNMENTS`] and gather the run's results.
async fn finish(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    options: &RunOptions,
    computed: Computed,
    mut timings: Timings,
) -> Result<RunResults> {
    let Computed {
        customers,
        exclusions,
        schema,
        sources,
        profile,
        engine,
        features_measured,
        sources_registered,
    } = computed;
    let progress = &options.progress;
    progress.stage("statistics");
    let measured = measure(ctx, pipeline, &schema, customers, features_measured)
        .await
        .map_err(|error| error.in_stage("statistics", options.resources.memory_limit))?;
    timings.lap("statistics");
    let (cohorts, icp_retention) = if sources_registered {
        let in_stage = |error: Error| error.in_stage("cohorts", options.resources.memory_limit);
        let measured = cohorts::measure(ctx, pipeline, ASSIGNMENTS, options.as_of)
            .await
            .map_err(in_stage)?;
        // The ICP's retention beside everyone else's, from the view that labels its customers.
        let icp_retention = if measured.is_some() && pipeline.spec.icp.is_some() {
            cohorts::tables_of(
                ctx,
                pipeline,
                ICP_VIEW,
                options.as_of,
                &[profiles::ICP, profiles::REST],
            )
            .await
            .map_err(in_stage)?
        } else {
            Vec::new()
        };
        if measured.is_some() {
            timings.lap("cohorts");
        }
        (measured, icp_retention)
    } else {
        (None, Vec::new())
    };
    let Measured {
        grouped,
        overall,
        reachable,
        quantiles,
        matrix,
        rule_overlap,
        profiled,
    } = measured;
    let feature_names: Vec<String> = pipeline.features.iter().map(|f| f.name.clone()).collect();
    let reachable_in = |segment: Option<&str>| {
        reachable.as_ref().map(|counts| {
            counts
                .iter()
                .find(|(s, _)| s.as_deref() == segment)
                .map_or(0, |(_, n)| *n)
        })
    };

    let share = |n: u64| {
        if customers == 0 {
            0.0
        } else {
            n as f64 / customers as f64
        }
    };
    let segments = pipeline
        .segments
        .iter()
        .map(|segment| {
            let group = grouped
                .iter()
                .find(|g| g.segment.as_deref() == Some(segment.id.as_str()));
            let count = group.map_or(0, |g| g.customers);
            SegmentResult {
                id: segment.id.clone(),
                customers: count,
                share: share(count),
                features: group.map_or_else(|| empty_stats(&feature_names), |g| g.features.clone()),
                reachable: reachable_in(Some(&segment.id)),
            }
        })
        .collect();
    let unassigned = grouped
        .iter()
        .find(|g| g.segment.is_none())
        .map_or(0, |g| g.customers);

    let features = pipeline
        .spec
        .features
        .iter()
        .map(|f| FeatureInfo {
            name: f.name.clone(),
            kind: f.kind,
            description: f.description.clone(),
            data_type: schema
                .field_with_name(&f.name)
                .map(|field| field.data_type().to_string())
                .unwrap_or_default(),
            unit: f.unit.clone(),
        })
        .collect();
    Ok(RunResults {
        as_of: options.as_of,
        customers,
        exclusions,
        unassigned,
        unassigned_share: share(unassigned),
        segments,
        overall,
        features,
        sources,
        engine,
        unassigned_reachable: reachable_in(None),
        quantiles,
        matrix,
        rule_overlap,
        categories: profiled.categories,
        concentration: profiled.concentration,
        icp: profiled.icp.map(|icp| IcpMeasured {
            retention: icp_retention,
            ..icp
        }),
        cohorts,
        timings: timings.into_inner(),
        profile,
    })
}

/// What the statistics stage measures over the written assignments.
struct Measured {
    grouped: Vec<stats::GroupStats>,
    overall: Vec<FeatureStats>,
    reachable: Option<Vec<(Option<String>, u64)>>,
    quantiles: Vec<measures::QuantileCuts>,
    matrix: Option<measures::Matrix>,
    rule_overlap: Vec<measures::RuleOverlap>,
    profiled: Profiled,
}

/// Category mixes, concentration and the ideal customer profile of the written assignments.
struct Profiled {
    categories: Vec<profiles::CategoryMix>,
    concentration: Vec<profiles::Concentration>,
    icp: Option<IcpMeasured>,
}

/// The view of the assignments whose `segment` says whether a customer is in the ICP.
const ICP_VIEW: &str = "segflow_icp";

/// Measure the profiles of the assignments registered as [`ASSIGNMENTS`].
async fn profile(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<Profiled> {
    let categorical = profiles::category_features(pipeline, schema);
    let groups: Vec<Option<String>> = pipeline
        .segments
        .iter()
        .map(|s| Some(s.id.clone()))
        .chain([None])
        .collect();
    let categories =
        profiles::category_mixes(ctx, ASSIGNMENTS, schema, &categorical, &groups).await?;
    let concentration =
        profiles::concentrations(ctx, ASSIGNMENTS, &pipeline.spec.concentration).await?;
    let icp = if profiles::register_icp_view(ctx, ASSIGNMENTS, ICP_VIEW, pipeline).await? {
        let names: Vec<String> = pipeline.features.iter().map(|f| f.name.clone()).collect();
        let grouped = stats::compute(ctx, ICP_VIEW, schema, &names, true, false).await?;
        let group = |id: &str| {
            grouped
                .iter()
                .find(|g| g.segment.as_deref() == Some(id))
                .map_or_else(
                    || (0, empty_stats(&names)),
                    |g| (g.customers, g.features.clone()),
                )
        };
        let (customers, features) = group(profiles::ICP);
        let (_, rest) = group(profiles::REST);
        let two = [
            Some(profiles::ICP.to_string()),
            Some(profiles::REST.to_string()),
        ];
        let categories =
            profiles::category_mixes(ctx, ICP_VIEW, schema, &categorical, &two).await?;
        Some(IcpMeasured {
            customers,
            features,
            rest,
            categories,
            retention: Vec::new(),
        })
    } else {
        None
    };
    Ok(Profiled {
        categories,
        concentration,
        icp,
    })
}

/// Per-segment statistics and the method's measures of the assignments registered as
/// [`ASSIGNMENTS`], taking those of the features alone from `features_measured` when given.
async fn measure(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    schema: &datafusion::arrow::datatypes::Schema,
    customers: u64,
    features_measured: Option<FeaturesMeasured>,
) -> Result<Measured> {
    let feature_names: Vec<String> = pipeline.features.iter().map(|f| f.name.clone()).collect();
    let known = features_measured
        .as_ref()
        .map_or(&[][..], |measured| &measured.segments[..]);
    let mut grouped = if known.is_empty() {
        stats::compute(ctx, ASSIGNMENTS, schema, &feature_names, true, true).await?
    } else {
        let ids: Vec<Expr> = known
            .iter()
            .filter_map(|g| g.segment.as_deref())
            .map(lit)
            .collect();
        let segment = datafusion::prelude::col("segment");
        let rest = ctx
            .table(ASSIGNMENTS)
            .await?
            .filter(segment.clone().is_null().or(segment.in_list(ids, true)))?;
        ctx.register_table(UNKNOWN_SEGMENTS, rest.into_view())?;
        stats::compute(ctx, UNKNOWN_SEGMENTS, schema, &feature_names, true, true).await?
    };
    grouped.extend_from_slice(known);
    let FeaturesMeasured {
        overall, quantiles, ..
    } = match features_measured {
        Some(measured) => measured,
        None => FeaturesMeasured {
            overall: stats::compute(ctx, ASSIGNMENTS, schema, &feature_names, false, true)
                .await?
                .pop()
                .map(|g| g.features)
                .unwrap_or_default(),
            quantiles: measures::quantile_cuts(ctx, ASSIGNMENTS, pipeline).await?,
            segments: Vec::new(),
        },
    };
    let reachable = match pipeline
        .spec
        .criteria
        .as_ref()
        .and_then(|c| c.accessible.as_ref())
    {
        Some(accessible) => {
            Some(measures::reachable(ctx, ASSIGNMENTS, &accessible.reachable).await?)
        }
        None => None,
    };
    Ok(Measured {
        grouped,
        overall,
        reachable,
        quantiles,
        matrix: measures::matrix(ctx, ASSIGNMENTS, pipeline, customers).await?,
        rule_overlap: measures::rule_overlap(ctx, ASSIGNMENTS, pipeline).await?,
        profiled: profile(ctx, pipeline, schema).await?,
    })
}

/// Statistics of an empty group: no values for any feature.
fn empty_stats(features: &[String]) -> Vec<FeatureStats> {
    features
        .iter()
        .map(|feature| FeatureStats {
            feature: feature.clone(),
            non_null: 0,
            mean: None,
            median: None,
            std_dev: None,
            sum: None,
            min: None,
            max: None,
        })
        .collect()
}

async fn count_rows(ctx: &SessionContext, table: &str) -> Result<u64> {
    let batches = ctx
        .sql(&format!("SELECT count(*) FROM {}", ident(table)))
        .await?
        .collect()
        .await?;
    batches
        .first()
        .and_then(|b| stats::scalar(b.column(0).as_ref(), 0).ok())
        .and_then(|v| v.as_u64())
        .ok_or_else(|| Error::Internal(format!("no row count for {table}")))
}

/// Stream the plan's batches into a Parquet file, returning its schema and the executed
/// physical plan (which holds the per-operator metrics).
async fn write_parquet(
    ctx: &SessionContext,
    frame: datafusion::prelude::DataFrame,
    path: &Path,
    progress: &Progress,
) -> Result<(
    datafusion::arrow::datatypes::SchemaRef,
    Arc<dyn ExecutionPlan>,
)> {
    let plan = frame.create_physical_plan().await?;
    let mut stream = datafusion::physical_plan::execute_stream(plan.clone(), ctx.task_ctx())?;
    let schema = stream.schema();
    let file = File::create(path).map_err(|e| Error::output(path, e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
        .map_err(|e| Error::output(path, e))?;
    let mut written = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        written += batch.num_rows() as u64;
        writer.write(&batch).map_err(|e| Error::output(path, e))?;
        progress.customers(written);
    }
    writer.close().map_err(|e| Error::output(path, e))?;
    Ok((schema, plan))
}

/// SHA-256 over the bytes of `files` in order.
fn hash_files(files: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for path in files {
        let mut file = File::open(path).map_err(|reason| Error::ReadFile {
            path: path.clone(),
            reason,
        })?;
        std::io::copy(&mut file, &mut hasher).map_err(|reason| Error::ReadFile {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(hex(&hasher.finalize()))
}

struct Timings {
    last: Instant,
    laps: Vec<(String, f64)>,
}

impl Timings {
    fn new() -> Self {
        Timings {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        self.laps
            .push((stage.to_string(), (now - self.last).as_secs_f64()));
        self.last = now;
    }

    fn into_inner(self) -> Vec<(String, f64)> {
        self.laps
    }
}

#[cfg(test)]
mod tests {
    use super::compare::MigrationCell;

    fn cell(old: Option<&str>, new: Option<&str>, customers: u64) -> MigrationCell {
        MigrationCell {
            old: old.map(str::to_string),
            new: new.map(str::to_string),
            in_old: true,
            in_new: true,
            customers,
        }
    }

    #[test]
    fn same_members_are_the_segments_nobody_left_or_joined() {
        let migration = [
            cell(Some("a"), Some("a"), 10),
            cell(Some("b"), Some("b"), 5),
            cell(Some("b"), Some("c"), 2),
            cell(Some("c"), Some("c"), 7),
            cell(Some("d"), Some("d"), 3),
            cell(None, Some("d"), 1),
            cell(Some("e"), Some("e"), 4),
            cell(None, None, 6),
        ];
        assert_eq!(super::same_members(&migration), ["a", "e"]);
    }

    use super::FeatureInfo;

    #[test]
    fn feature_info_reads_run_folders_without_units_and_writes_none() {
        let old = r#"{"name":"tenure_days","kind":"firmographic","description":"Days.","data_type":"Int64"}"#;
        let info: FeatureInfo = serde_json::from_str(old).expect("an old feature reads");
        assert_eq!(info.unit, None);
        assert_eq!(serde_json::to_string(&info).expect("serializes"), old);
        let with_unit = FeatureInfo {
            unit: Some("days".into()),
            ..info
        };
        assert!(
            serde_json::to_string(&with_unit)
                .expect("serializes")
                .ends_with(r#","unit":"days"}"#)
        );
    }
}
