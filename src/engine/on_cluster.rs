//! `segflow run --engine ballista://HOST:PORT`: the pipeline's stages, planned here with
//! portable shapes, run on an Apache Ballista cluster. The executors read the sources' files
//! themselves; only the assignments travel back (into the run folder's `assignments.parquet`),
//! and statistics, criteria and reports are then the embedded run's, over that file.
//!
//! Ballista splits each aggregation by a hash of its group keys. Every feature groups by the
//! customer key, so each executor aggregates whole customers and the partial results never
//! need merging across executors; the final sort by key is the only step that meets on one
//! executor.

use std::path::Path;

use datafusion::prelude::SessionContext;

use super::scheduler::Scheduler;
use super::{
    Computed, RunOptions, RunResults, SourceSummary, Timings, compile, entity, session, sources,
};
use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, SourceOrigin};

/// How long a one-row query may wait for an executor before the cluster is called unusable: a
/// scheduler without executors queues jobs forever.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Run a one-row query on the cluster, so that a scheduler out of reach or without executors
/// is said before any work (a job would otherwise wait in its queue forever).
async fn probe(cluster: &SessionContext, scheduler: &Scheduler) -> Result<()> {
    let unusable = |message: String| Error::Cluster {
        scheduler: scheduler.to_string(),
        message,
        help: Some(HELP.into()),
    };
    let answered = tokio::time::timeout(PROBE_TIMEOUT, async {
        cluster.sql("SELECT 1 AS probe").await?.collect().await
    })
    .await;
    match answered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(unusable(plain(&error.to_string()))),
        Err(_) => Err(unusable(format!(
            "no executor ran a one-row query within {} s: the scheduler has no executor, or none that can reach it",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}

/// What to do about a cluster that fails.
const HELP: &str = "check that the scheduler runs at that address and has executors (`segflow ballista scheduler`, `segflow ballista executor`); their logs tell more";

/// A transport error as a sentence: gRPC's debug text names the cause inside nested types.
fn plain(message: &str) -> String {
    if message.contains("Connection refused") {
        "nothing listens at that address (connection refused)".into()
    } else if message.contains("dns error") {
        "the host name does not resolve".into()
    } else {
        message.to_string()
    }
}

/// Every source is files, which the executors read by path: a Postgres source would be read
/// into this machine's temporary folder, out of the executors' reach.
fn check_sources(pipeline: &Pipeline, scheduler: &Scheduler) -> Result<()> {
    for source in pipeline.sources.values() {
        if matches!(source.origin, SourceOrigin::Postgres { .. }) {
            return Err(Error::Usage {
                message: format!(
                    "--engine ballista has the executors read every source, and source `{}` is a Postgres table they cannot read",
                    source.name
                ),
                help: Some(format!(
                    "export the table to Parquet on a path every executor sees, or run with the embedded engine (the cluster was {scheduler})"
                )),
            });
        }
    }
    Ok(())
}

/// Say which local paths the executors must see, when they may be on other machines.
fn note_local_paths(
    resolved: &[sources::ResolvedSource],
    options: &RunOptions,
    scheduler: &Scheduler,
) {
    if scheduler.is_loopback() {
        return;
    }
    for source in resolved {
        let Some(first) = source.files.first() else {
            continue;
        };
        let shown = std::path::absolute(first).unwrap_or_else(|_| first.clone());
        let more = match source.files.len() {
            1 => String::new(),
            n => format!(" and {} more file(s) beside it", n - 1),
        };
        options.progress.note(&format!(
            "note: source `{}` is read from the local path {}{more}; every executor of {scheduler} reads it at that same path, so it must be in a folder they all share",
            source.name,
            shown.display()
        ));
    }
}

/// A failure of the cluster, as the user can act on it: a bad source file is found by reading
/// the sources here and named; anything else is the cluster's message, naming the scheduler.
async fn cluster_failure(
    error: Error,
    pipeline: &Pipeline,
    options: &RunOptions,
    resolved: &[sources::ResolvedSource],
    scheduler: &Scheduler,
) -> Error {
    let message = match error {
        Error::Data { message, .. } | Error::Internal(message) => message,
        Error::OutOfMemory { message, .. } => message,
        other => return other,
    };
    if let Ok(local) = session::for_pipeline(options.as_of, &options.resources)
        && sources::register(&local, pipeline, resolved).await.is_ok()
        && let Some(bad) = sources::find_bad_file(&local, pipeline, resolved).await
    {
        return bad;
    }
    Error::Cluster {
        scheduler: scheduler.to_string(),
        message: plain(&message),
        help: Some(HELP.into()),
    }
}

/// Run `pipeline` on the cluster `scheduler` leads, writing `assignments.parquet` into
/// `out_dir`.
pub(super) async fn run(
    pipeline: &Pipeline,
    options: &RunOptions,
    out_dir: &Path,
    scheduler: &Scheduler,
) -> Result<RunResults> {
    check_sources(pipeline, scheduler)?;
    let mut timings = Timings::new();
    let progress = &options.progress;
    progress.stage("plan");
    let resolved = sources::resolve(pipeline, &Default::default())?;
    note_local_paths(&resolved, options, scheduler);
    let hashing = tokio::task::spawn_blocking({
        let resolved = resolved.clone();
        move || {
            resolved
                .iter()
                .map(|s| super::hash_files(&s.files))
                .collect::<Result<Vec<_>>>()
        }
    });
    let url = format!("df://{}:{}", scheduler.host, scheduler.port);
    let cluster = session::ballista(&url, options.as_of, &options.resources).await?;
    probe(&cluster, scheduler).await?;
    sources::register(&cluster, pipeline, &resolved).await?;
    let compiled =
        compile::compile_with(&cluster, pipeline, options.as_of, compile::Shapes::Portable).await?;
    timings.lap("plan");

    progress.stage("features and segments (on Ballista)");
    let assignments_path = out_dir.join("assignments.parquet");
    let computed = async {
        let exclusions = entity::count_exclusions(&cluster, &compiled.exclusions).await?;
        let (schema, _) = super::write_parquet(
            &cluster,
            compiled.assignments.clone(),
            &assignments_path,
            progress,
        )
        .await?;
        let mut rows = Vec::with_capacity(resolved.len());
        for source in &resolved {
            rows.push(super::count_rows(&cluster, &source.name).await?);
        }
        Ok((exclusions, schema, rows))
    }
    .await;
    let (exclusions, schema, rows) = match computed {
        Ok(computed) => computed,
        Err(error) => {
            return Err(cluster_failure(error, pipeline, options, &resolved, scheduler).await);
        }
    };
    timings.lap("features and segments (on Ballista)");

    let hashes = hashing
        .await
        .map_err(|e| Error::Internal(format!("hashing sources: {e}")))??;
    let sources = resolved
        .iter()
        .zip(hashes)
        .zip(rows)
        .map(|((source, sha256), rows)| SourceSummary {
            name: source.name.clone(),
            location: source.location.clone(),
            format: source.format.name().into(),
            files: source.files.len(),
            rows,
            sha256,
            database: None,
        })
        .collect();

    let local = session::for_pipeline(options.as_of, &options.resources)?;
    // Cohorts recompute a feature as of every period end: embedded, over the same files.
    let sources_registered = pipeline.spec.cohorts.is_some();
    if sources_registered {
        sources::register(&local, pipeline, &resolved).await?;
    }
    let computed = |customers| Computed {
        customers,
        exclusions,
        schema,
        sources,
        profile: None,
        engine: "ballista".into(),
        features_measured: None,
        sources_registered,
    };
    super::finish_fetched(
        &local,
        pipeline,
        options,
        &assignments_path,
        computed,
        timings,
    )
    .await
}
