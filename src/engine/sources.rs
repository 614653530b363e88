//! Finding each source's files and registering them as DataFusion tables, with declared column
//! types applied, so that the rest of the engine sees typed tables by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SessionContext, cast, col,
};

use crate::diagnostic::available_help;
use crate::error::{Error, Result, first_line_of_datafusion};
use crate::pipeline::Pipeline;
use crate::pipeline::model::{ColumnType, SourceFormat};

/// A source as this run reads it.
#[derive(Debug, Clone)]
pub struct ResolvedSource {
    /// Its name in the pipeline.
    pub name: String,
    /// The location as declared or given with `--source`, for reports and the manifest.
    pub location: String,
    /// The files that make up the table, sorted.
    pub files: Vec<PathBuf>,
    /// How the files are read.
    pub format: SourceFormat,
}

/// The Arrow type of a declared column type.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// Find the files of every source of the plan.
pub fn resolve(pipeline: &Pipeline) -> Result<Vec<ResolvedSource>> {
    pipeline
        .sources
        .values()
        .map(|source| {
            let pattern = pipeline.source_path(&source.name)?;
            let files = find_files(&source.name, &source.location, &pattern)?;
            Ok(ResolvedSource {
                name: source.name.clone(),
                location: source.location.clone(),
                files,
                format: source.format,
            })
        })
        .collect()
}

/// The files of source `name`; messages show `location` (as written, variables not expanded).
fn find_files(name: &str, location: &str, pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let not_found = |message: String| Error::Source {
        source_name: name.to_string(),
        message,
        help: Some(format!(
            "check the source's `path` in the pipeline, or pass `--source {name}=PATH`"
        )),
    };
    if !text.contains(['*', '?', '[']) {
        return match std::fs::metadata(pattern) {
            Ok(meta) if meta.is_file() => Ok(vec![pattern.to_path_buf()]),
            Ok(_) => Err(not_found(format!("{location} is not a file"))),
            Err(e) => Err(not_found(format!("cannot read {location}: {e}"))),
        };
    }
    let paths = glob::glob(&text).map_err(|e| not_found(format!("bad glob `{location}`: {e}")))?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(|entry| entry.ok())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(not_found(format!("no files match `{location}`")));
    }
    Ok(files)
}

/// Register every source in `ctx` under its name.
pub async fn register(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    sources: &[ResolvedSource],
) -> Result<()> {
    use futures::FutureExt;
    for source in sources {
        let declared = &pipeline.sources[&source.name].columns;
        // The Parquet reader can panic on a corrupt footer; that is a bad file, not a bug.
        let frame = std::panic::AssertUnwindSafe(read(ctx, source, declared))
            .catch_unwind()
            .await
            .map_err(|panic| {
                let file = source
                    .files
                    .first()
                    .map(PathBuf::as_path)
                    .unwrap_or(Path::new(""));
                bad_file(source, file, &corrupt(panic.as_ref()), &[])
            })??;
        ctx.register_table(source.name.as_str(), frame.into_view())
            .map_err(|e| source_error(&source.name, &e))?;
    }
    Ok(())
}

fn source_error(name: &str, error: &datafusion::error::DataFusionError) -> Error {
    Error::Source {
        source_name: name.to_string(),
        message: first_line_of_datafusion(error),
        help: None,
    }
}

/// Read one source with declared types: CSV and NDJSON are parsed with them, Parquet is cast.
async fn read(
    ctx: &SessionContext,
    source: &ResolvedSource,
    declared: &BTreeMap<String, ColumnType>,
) -> Result<DataFrame> {
    let paths: Vec<String> = source
        .files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let extension = extension_of(&source.files[0]);
    let fail = |e: datafusion::error::DataFusionError| source_error(&source.name, &e);
    let inferred = match source.format {
        SourceFormat::Csv => {
            let options = CsvReadOptions::new().file_extension(&extension);
            ctx.read_csv(paths.clone(), options).await.map_err(fail)?
        }
        SourceFormat::Ndjson => {
            let options = JsonReadOptions::default().file_extension(&extension);
            ctx.read_json(paths.clone(), options).await.map_err(fail)?
        }
        SourceFormat::Parquet => {
            let options = ParquetReadOptions::default().file_extension(&extension);
            ctx.read_parquet(paths.clone(), options)
                .await
                .map_err(fail)?
        }
    };
    let schema = inferred.schema().as_arrow().clone();
    // An NDJSON export with no rows is an empty file, which says nothing of its columns; the
    // declared columns do (a quarter without support tickets is still a quarter).
    if schema.fields().is_empty() && source.format == SourceFormat::Ndjson && !declared.is_empty() {
        let fields: Vec<Field> = declared
            .iter()
            .map(|(name, column_type)| Field::new(name, arrow_type(*column_type), true))
            .collect();
        let empty = RecordBatch::new_empty(Arc::new(Schema::new(fields)));
        return ctx.read_batch(empty).map_err(fail);
    }
    if schema.fields().is_empty() {
        return Err(Error::Source {
            source_name: source.name.clone(),
            message: format!("{} has no columns: is it empty?", source.location),
            help: Some("a CSV source needs a header row; check that the export finished".into()),
        });
    }
    for declared in declared.keys() {
        if schema.field_with_name(declared).is_err() {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::Source {
                source_name: source.name.clone(),
                message: format!("declared column `{declared}` is not in {}", source.location),
                help: Some(available_help(declared, "column", names.iter().copied())),
            });
        }
    }
    // Arrow would read a number as days or nanoseconds since 1970, silently; in an export a
    // number where a date belongs is a mistake (an Excel serial date, a Unix time in seconds).
    for (name, column_type) in declared {
        let Ok(found) = schema.field_with_name(name) else {
            continue;
        };
        if matches!(column_type, ColumnType::Date | ColumnType::Timestamp)
            && found.data_type().is_numeric()
        {
            return Err(Error::Source {
                source_name: source.name.clone(),
                message: format!(
                    "{}, column `{name}`: holds numbers ({}), but is declared {}; segflow does not read numbers as dates",
                    source.location,
                    found.data_type(),
                    if *column_type == ColumnType::Date { "date" } else { "timestamp" },
                ),
                help: Some(
                    "export the column as ISO 8601 text (2026-01-31 or 2026-01-31T12:00:00), or as a Parquet date or timestamp".into(),
                ),
            });
        }
    }
    if declared.is_empty() {
        return Ok(inferred);
    }
    let typed = declared_schema(&schema, declared);
    match source.format {
        SourceFormat::Csv => {
            let options = CsvReadOptions::new()
                .file_extension(&extension)
                .schema(&typed);
            ctx.read_csv(paths, options).await.map_err(fail)
        }
        SourceFormat::Ndjson => {
            let options = JsonReadOptions::default()
                .file_extension(&extension)
                .schema(&typed);
            ctx.read_json(paths, options).await.map_err(fail)
        }
        SourceFormat::Parquet => {
            let columns = typed
                .fields()
                .iter()
                .map(|field| {
                    let column = col(format!("\"{}\"", field.name()));
                    if declared.contains_key(field.name()) {
                        cast(column, field.data_type().clone()).alias(field.name())
                    } else {
                        column
                    }
                })
                .collect::<Vec<_>>();
            inferred.select(columns).map_err(fail)
        }
    }
}

fn extension_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.find('.').map(|i| n[i..].to_string()))
        .unwrap_or_default()
}

/// `found` with every declared column given its declared type (nullable), and declared columns
/// that `found` lacks appended.
pub fn declared_schema(found: &Schema, declared: &BTreeMap<String, ColumnType>) -> Schema {
    let mut fields: Vec<Field> = found
        .fields()
        .iter()
        .map(|field| match declared.get(field.name()) {
            Some(column_type) => Field::new(field.name(), arrow_type(*column_type), true),
            None => field.as_ref().clone(),
        })
        .collect();
    for (column, column_type) in declared {
        if found.field_with_name(column).is_err() {
            fields.push(Field::new(column, arrow_type(*column_type), true));
        }
    }
    Schema::new(fields)
}

/// Column names and types of a registered table.
pub async fn table_schema(ctx: &SessionContext, table: &str) -> Result<Arc<Schema>> {
    let frame = ctx.table(table).await?;
    Ok(Arc::new(frame.schema().as_arrow().clone()))
}

/// After a run failed on `error`, find the source file that raises it when read on its own, and
/// name the source, the file and the column. `None` when every file reads cleanly (the error came
/// from the pipeline's SQL, not from the data).
pub async fn find_bad_file(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    sources: &[ResolvedSource],
) -> Option<Error> {
    use futures::{FutureExt, StreamExt};
    for source in sources {
        for file in &source.files {
            let single = ResolvedSource {
                files: vec![file.clone()],
                ..source.clone()
            };
            let declared = &pipeline.sources[&source.name].columns;
            let scan = async {
                let frame = read(ctx, &single, declared).await?;
                let columns: Vec<String> = frame
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let fail = |e: &datafusion::error::DataFusionError| {
                    bad_file(source, file, &first_line_of_datafusion(e), &columns)
                };
                let mut stream = frame.execute_stream().await.map_err(|e| fail(&e))?;
                while let Some(batch) = stream.next().await {
                    batch.map_err(|e| fail(&e))?;
                }
                Ok::<(), Error>(())
            };
            // The Parquet reader can panic on a corrupt file; that is a bad file too.
            match std::panic::AssertUnwindSafe(scan).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Some(error),
                Err(panic) => return Some(bad_file(source, file, &corrupt(panic.as_ref()), &[])),
            }
        }
    }
    None
}

/// What a reader's panic says about the file it read.
fn corrupt(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the reader failed".into());
    format!("the file is corrupt (the reader stopped: {message})")
}

/// A data error in `file` of `source`, naming the column when the message gives its index.
fn bad_file(source: &ResolvedSource, file: &Path, message: &str, columns: &[String]) -> Error {
    let column = message
        .split("column ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| columns.get(index));
    let file_name = if source.files.len() == 1 {
        source.location.clone()
    } else {
        file.display().to_string()
    };
    Error::Source {
        source_name: source.name.clone(),
        message: match column {
            Some(column) => format!("{file_name}, column `{column}`: {message}"),
            None => format!("{file_name}: {message}"),
        },
        help: Some(
            "fix or re-export the file; declared `columns` types must fit every value".into(),
        ),
    }
}
