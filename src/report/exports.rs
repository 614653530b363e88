//! The pipeline's exports: the assignments as written in the staging run folder, sent to
//! Postgres tables and files. Every export is prepared before any is committed, so a failure
//! anywhere changes nothing anywhere (exit 12); then the Postgres transactions commit, and the
//! caller commits the run folder last.

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::StagedFile;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::model::{ExportSpec, SourceFormat, export_format};
use crate::postgres::write::{Prepared, TableExport, prepare};
use crate::run_folder::ExportRecord;

/// The file exports' destinations, checked and locked when the run starts: a destination that
/// may not be written stops the run before any work is done.
pub struct Exports {
    files: Vec<(String, StagedFile)>,
}

/// Exports written and waiting for their commit.
pub struct PreparedExports {
    tables: Vec<(String, Prepared)>,
    files: Vec<(String, StagedFile)>,
    /// What the manifest records.
    pub records: Vec<ExportRecord>,
}

impl Exports {
    /// Check and lock the destinations of `pipeline`'s file exports (relative to its folder);
    /// `replace` lets a run replace files an earlier segflow run exported.
    pub fn begin(pipeline: &Pipeline, replace: bool) -> Result<Exports> {
        let mut files = Vec::new();
        for export in &pipeline.spec.exports {
            if let Some(file) = &export.file {
                let staged = StagedFile::begin(&pipeline.base_dir.join(file), replace)
                    .map_err(|e| of_export(&export.name, e))?;
                files.push((export.name.clone(), staged));
            }
        }
        Ok(Exports { files })
    }
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

/// Prepare every export of `pipeline` from `assignments` (the staged `assignments.parquet`):
/// files written beside their destinations, Postgres rows written in open transactions.
pub async fn prepare_all(
    mut exports: Exports,
    pipeline: &Pipeline,
    assignments: &Path,
    run_id: &str,
    as_of: chrono::NaiveDate,
) -> Result<PreparedExports> {
    let mut prepared = PreparedExports {
        tables: Vec::new(),
        files: std::mem::take(&mut exports.files),
        records: Vec::new(),
    };
    let mut next_file = 0;
    if pipeline.spec.exports.is_empty() {
        return Ok(prepared);
    }
    let (schema, batches) = read(assignments)?;
    // Two exports writing one table (spelled apart: `t` and `public.t`, two URLs of one server)
    // would wait for each other's open transaction forever.
    let mut written_tables: Vec<(String, String)> = Vec::new();
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
            if let Ok((_, target)) = crate::postgres::Target::of(&url) {
                let server = format!("{}:{}/{}", target.host, target.port, target.database);
                let tables = std::iter::once(postgres.table.as_str())
                    .chain(postgres.history_table.as_deref());
                for table in tables {
                    let place = format!("{server} {}", same_table(table));
                    if let Some((other, _)) = written_tables.iter().find(|(_, p)| *p == place) {
                        return Err(fail(format!(
                            "it writes table `{table}`, which export `{other}` writes too (the same server and table, spelled differently); two exports cannot write one table"
                        )));
                    }
                    written_tables.push((export.name.clone(), place));
                }
            }
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
        } else if let Some((name, staged)) = prepared.files.get(next_file) {
            next_file += 1;
            let csv = export.file.as_deref().and_then(export_format) == Some(SourceFormat::Csv);
            let rows = write_file(staged.path(), csv, &schema, &batches).map_err(fail)?;
            prepared.records.push(ExportRecord {
                name: name.clone(),
                kind: "file".into(),
                target: staged.destination().display().to_string(),
                rows,
                run_id: run_id.to_string(),
                status: "committed".into(),
            });
        }
    }
    Ok(prepared)
}

/// Write `batches` to `path` as Parquet or CSV (by the destination's extension, checked when the
/// pipeline loaded); the number of rows.
fn write_file(
    path: &Path,
    csv: bool,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::result::Result<u64, String> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    if csv {
        write_csv(file, schema, batches)?;
    } else {
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None)
            .map_err(|e| e.to_string())?;
        for batch in batches {
            writer.write(batch).map_err(|e| e.to_string())?;
        }
        writer.close().map_err(|e| e.to_string())?;
    }
    Ok(rows as u64)
}

/// CSV with a header; text cells neutralised against spreadsheet formulas like `segments.csv`.
fn write_csv(
    file: std::fs::File,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::result::Result<(), String> {
    use arrow::datatypes::DataType;
    use arrow::util::display::array_value_to_string;
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
    writer
        .write_record(schema.fields().iter().map(|f| f.name().as_str()))
        .map_err(|e| fail(&e))?;
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut record = Vec::with_capacity(batch.num_columns());
            for column in batch.columns() {
                if column.is_null(row) {
                    record.push(String::new());
                    continue;
                }
                let text = array_value_to_string(column, row).map_err(|e| fail(&e))?;
                let is_text = matches!(
                    column.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
                record.push(if is_text {
                    super::escape::csv_text(&text)
                } else {
                    text
                });
            }
            writer.write_record(&record).map_err(|e| fail(&e))?;
        }
    }
    writer.flush().map_err(|e| fail(&e))
}

impl PreparedExports {
    /// Check that every file may still be written, then commit the Postgres transactions (in
    /// declaration order) and move the files into place.
    pub async fn commit(mut self) -> Result<()> {
        for (name, file) in &self.files {
            file.recheck().map_err(|e| of_export(name, e))?;
        }
        for (name, table) in std::mem::take(&mut self.tables) {
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
        for (name, file) in std::mem::take(&mut self.files) {
            file.commit().map_err(|e| of_export(&name, e))?;
        }
        Ok(())
    }
}

/// Staged files share folders: the last one dropped removes a folder created for them, so they
/// are dropped in reverse order.
fn drop_in_reverse(files: &mut Vec<(String, StagedFile)>) {
    while let Some(file) = files.pop() {
        drop(file);
    }
}

impl Drop for Exports {
    fn drop(&mut self) {
        drop_in_reverse(&mut self.files);
    }
}

impl Drop for PreparedExports {
    fn drop(&mut self) {
        drop_in_reverse(&mut self.files);
    }
}

/// An output error of export `name`'s file as the export's error (exit 12).
fn of_export(name: &str, error: Error) -> Error {
    match error {
        Error::Output { message, help } => Error::Export {
            export: name.to_string(),
            message,
            help,
        },
        other => other,
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

/// A table name as Postgres resolves it on a default search path: unqualified names are in
/// `public`, and unquoted names are folded to lower case.
fn same_table(table: &str) -> String {
    let table = table.to_lowercase();
    if table.contains('.') {
        table
    } else {
        format!("public.{table}")
    }
}
