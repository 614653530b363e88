//! The pipeline's exports: the assignments as written in the staging run folder, sent to
//! Postgres tables and files. Every export is prepared before any is committed, so a failure
//! anywhere changes nothing anywhere (exit 12); then the Postgres transactions commit, and the
//! caller commits the run folder last.

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::model::ExportSpec;
use crate::postgres::write::{Prepared, TableExport, prepare};
use crate::run_folder::ExportRecord;

/// Exports written and waiting for their commit.
pub struct PreparedExports {
    tables: Vec<(String, Prepared)>,
    /// What the manifest records.
    pub records: Vec<ExportRecord>,
}

/// The run id written into exported rows: the run's start (UTC, milliseconds) and the first 12
/// hex digits of the pipeline file's SHA-256, e.g. `2026-10-01T08:00:00.123Z-3f2a9c0d1e4b`.
pub fn run_id(started_at: chrono::DateTime<chrono::Utc>, pipeline_sha256: &str) -> String {
    format!(
        "{}-{}",
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        &pipeline_sha256[..pipeline_sha256.len().min(12)]
    )
}

/// Prepare every export of `pipeline` from `assignments` (the staged `assignments.parquet`).
pub async fn prepare_all(
    pipeline: &Pipeline,
    assignments: &Path,
    run_id: &str,
    as_of: chrono::NaiveDate,
) -> Result<PreparedExports> {
    let mut prepared = PreparedExports {
        tables: Vec::new(),
        records: Vec::new(),
    };
    if pipeline.spec.exports.is_empty() {
        return Ok(prepared);
    }
    let (schema, batches) = read(assignments)?;
    for export in &pipeline.spec.exports {
        let fail = |message: String| Error::Export {
            export: export.name.clone(),
            message: crate::secrets::redact(&message).into_owned(),
            help: None,
        };
        let (schema, batches) = project(&schema, &batches, pipeline, export).map_err(fail)?;
        if let Some(postgres) = &export.postgres {
            let url = pipeline.export_url(&postgres.url).map_err(|variable| {
                fail(format!("environment variable `{variable}` is not set"))
            })?;
            let table = TableExport {
                url: &url,
                table: &postgres.table,
                history_table: postgres.history_table.as_deref(),
                key: &pipeline.spec.entity.key,
                run_id,
                as_of,
            };
            let written = prepare(&table, &schema, &batches)
                .await
                .map_err(|message| Error::Export {
                    export: export.name.clone(),
                    message: crate::secrets::redact(&message).into_owned(),
                    help: Some(
                        "nothing was exported and no run folder was written; the tables are as \
                         they were"
                            .into(),
                    ),
                })?;
            prepared.records.push(ExportRecord {
                name: export.name.clone(),
                kind: "postgres".into(),
                target: format!("{} {}", written.target, postgres.table),
                rows: written.rows,
                run_id: run_id.to_string(),
                status: "committed".into(),
            });
            prepared.tables.push((export.name.clone(), written));
        }
    }
    Ok(prepared)
}

impl PreparedExports {
    /// Commit the Postgres transactions, in declaration order.
    pub async fn commit(self) -> Result<()> {
        for (name, table) in self.tables {
            table.commit().await.map_err(|message| Error::Export {
                export: name,
                message: crate::secrets::redact(&message).into_owned(),
                help: Some(
                    "the exports before this one in the pipeline were committed; no run folder \
                     was written. Run again to export everything"
                        .into(),
                ),
            })?;
        }
        Ok(())
    }
}

/// Every batch of `path`.
fn read(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::Internal(format!("cannot read back {}: {e}", path.display()))
    };
    let file = std::fs::File::open(path).map_err(|e| failed(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| failed(&e))?;
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .map_err(|e| failed(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| failed(&e))?;
    Ok((schema, batches))
}

/// The columns `export` writes: key, segment, then its features.
fn project(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    pipeline: &Pipeline,
    export: &ExportSpec,
) -> std::result::Result<(SchemaRef, Vec<RecordBatch>), String> {
    let names = [pipeline.spec.entity.key.as_str(), "segment"]
        .into_iter()
        .chain(export.features.iter().map(String::as_str));
    let indices = names
        .map(|name| {
            schema
                .index_of(name)
                .map_err(|_| format!("the assignments have no column `{name}`"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let projected = schema.project(&indices).map_err(|e| e.to_string())?;
    let batches = batches
        .iter()
        .map(|b| b.project(&indices))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((std::sync::Arc::new(projected), batches))
}
