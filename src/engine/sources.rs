//! Finding each source's files and registering them as DataFusion tables, with declared column
//! types applied, so that the rest of the engine sees typed tables by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SessionContext, cast,
};

use crate::diagnostic::available_help;
use crate::error::{Error, Result, first_line_of_datafusion};
use crate::pipeline::model::{ColumnType, SourceFormat};
use crate::pipeline::{Pipeline, Source, SourceOrigin};
use crate::postgres::read::Snapshot;

use super::location;
use super::source_files;
pub use super::source_files::ResolvedSource;

/// Find the files of every source of the plan: a file source's at its path, a Postgres source's
/// in `snapshot` (where it was read to).
pub fn resolve(pipeline: &Pipeline, snapshot: &Snapshot) -> Result<Vec<ResolvedSource>> {
    pipeline
        .sources
        .values()
        .map(|source| resolve_one(pipeline, source, snapshot))
        .collect()
}

/// [`resolve`] for one source.
pub fn resolve_one(
    pipeline: &Pipeline,
    source: &Source,
    snapshot: &Snapshot,
) -> Result<ResolvedSource> {
    match &source.origin {
        SourceOrigin::Files { .. } => resolve_files(pipeline, source),
        SourceOrigin::Postgres { .. } => {
            let read = snapshot
                .sources
                .get(&source.name)
                .ok_or_else(|| Error::Internal(format!("source `{}` was not read", source.name)))?;
            Ok(ResolvedSource {
                name: source.name.clone(),
                location: read.shown.clone(),
                files: vec![read.file.clone()],
                format: SourceFormat::Parquet,
                database: Some(read.fingerprint.clone()),
            })
        }
    }
}

/// The files of a file source.
pub fn resolve_files(pipeline: &Pipeline, source: &Source) -> Result<ResolvedSource> {
    let SourceOrigin::Files {
        location,
        overridden,
        format,
    } = &source.origin
    else {
        return Err(Error::Internal(format!(
            "source `{}` is not read from files",
            source.name
        )));
    };
    let path = pipeline.source_path(&source.name)?;
    let files = if *overridden {
        literal_file(&source.name, location, &path)?
    } else {
        find_files(
            &source.name,
            location,
            &path,
            pipeline.source_pattern(&source.name)?,
        )?
    };
    Ok(ResolvedSource {
        name: source.name.clone(),
        location: location.clone(),
        files,
        format: *format,
        database: None,
    })
}

fn not_found(name: &str, message: String) -> Error {
    Error::Source {
        source_name: name.to_string(),
        message,
        help: Some(format!(
            "check the source's `path` in the pipeline, or pass `--source {name}=PATH`"
        )),
    }
}

/// The one file at `path`, taken literally (`--source NAME=PATH`, or a `path:` naming a file).
fn literal_file(name: &str, location: &str, path: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(vec![path.to_path_buf()]),
        Ok(_) => Err(not_found(name, format!("{location} is not a file"))),
        Err(e) => Err(not_found(name, format!("cannot read {location}: {e}"))),
    }
}

/// The files of source `name` at the declared `path`: the file of that exact name if there is
/// one, else the files matching `pattern`. Messages show `location` (as written, variables not
/// expanded).
fn find_files(
    name: &str,
    location: &str,
    path: &Path,
    pattern: Option<String>,
) -> Result<Vec<PathBuf>> {
    let Some(pattern) = pattern.filter(|_| !path.is_file()) else {
        return literal_file(name, location, path);
    };
    let paths =
        glob::glob(&pattern).map_err(|e| not_found(name, format!("bad glob `{location}`: {e}")))?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(|entry| entry.ok())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(not_found(name, format!("no files match `{location}`")));
    }
    Ok(files)
}

/// Register every source in `ctx` under its name.
pub async fn register(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    sources: &[ResolvedSource],
) -> Result<()> {
    for source in sources {
        register_one(ctx, source, &pipeline.sources[&source.name].columns).await?;
    }
    Ok(())
}

/// Register `source` in `ctx` under its name, with the `declared` column types (none: the types
/// DataFusion infers).
pub async fn register_one(
    ctx: &SessionContext,
    source: &ResolvedSource,
    declared: &BTreeMap<String, ColumnType>,
) -> Result<()> {
    use futures::FutureExt;
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
    Ok(())
}

fn source_error(name: &str, error: &datafusion::error::DataFusionError) -> Error {
    Error::Source {
        source_name: name.to_string(),
        message: first_line_of_datafusion(error),
        help: None,
    }
}

/// Read one source with declared types: CSV is parsed with them; NDJSON and Parquet are cast,
/// NDJSON's date and timestamp columns from text so that a number there is refused, not read as
/// a time since 1970.
async fn read(
    ctx: &SessionContext,
    source: &ResolvedSource,
    declared: &BTreeMap<String, ColumnType>,
) -> Result<DataFrame> {
    source_files::check(source, declared)?;
    let paths = source
        .files
        .iter()
        .map(|p| location::literal(p))
        .collect::<Result<Vec<String>>>()?;
    let extension = extension_of(&source.files[0]);
    let fail = |e: datafusion::error::DataFusionError| {
        source_files::diagnose(source, declared).unwrap_or_else(|| source_error(&source.name, &e))
    };
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
            .map(|(name, column_type)| Field::new(name, column_type.arrow_type(), true))
            .collect();
        let empty = RecordBatch::new_empty(Arc::new(Schema::new(fields)));
        return ctx.read_batch(empty).map_err(fail);
    }
    check_declared(source, &schema, declared)?;
    let typed = declared_schema(&schema, declared);
    let frame = match source.format {
        SourceFormat::Csv if !declared.is_empty() => {
            let options = CsvReadOptions::new()
                .file_extension(&extension)
                .schema(&typed);
            ctx.read_csv(paths, options).await.map_err(fail)?
        }
        SourceFormat::Ndjson if !declared.is_empty() => {
            let as_text = text_for_times(&typed, declared);
            let options = JsonReadOptions::default()
                .file_extension(&extension)
                .schema(&as_text);
            ctx.read_json(paths, options).await.map_err(fail)?
        }
        _ => inferred,
    };
    let columns = cast_columns(&frame, &typed);
    frame.select(columns).map_err(fail)
}

/// The columns of `frame` cast to the types of `typed`, and every timestamp with a time zone made
/// the same instant in UTC without a zone: instants are compared in UTC, whatever the format.
fn cast_columns(frame: &DataFrame, typed: &Schema) -> Vec<datafusion::prelude::Expr> {
    frame
        .schema()
        .fields()
        .iter()
        .map(|field| {
            // The name as it is, never parsed: quotes and dots in it are part of it.
            let mut column = datafusion::prelude::ident(field.name());
            let mut found = field.data_type().clone();
            if let DataType::Timestamp(unit, Some(_)) = found {
                column = cast(column, DataType::Timestamp(unit, Some("UTC".into())));
                found = DataType::Timestamp(unit, None);
            }
            // A column `typed` leaves as found keeps the UTC form.
            let wanted = typed
                .field_with_name(field.name())
                .map(|f| f.data_type().clone())
                .ok()
                .filter(|wanted| wanted != field.data_type())
                .unwrap_or(found.clone());
            if wanted != found {
                column = cast(column, wanted);
            } else if found == *field.data_type() {
                return column;
            } else {
                column = cast(column, found);
            }
            column.alias(field.name())
        })
        .collect()
}

/// `typed` with declared date and timestamp columns as text, for the JSON reader.
fn text_for_times(typed: &Schema, declared: &BTreeMap<String, ColumnType>) -> Schema {
    let fields: Vec<Field> = typed
        .fields()
        .iter()
        .map(|field| match declared.get(field.name()) {
            Some(ColumnType::Date | ColumnType::Timestamp) => {
                Field::new(field.name(), DataType::Utf8, true)
            }
            _ => field.as_ref().clone(),
        })
        .collect();
    Schema::new(fields)
}

/// Every declared column is in `schema`, and none declared a date or timestamp holds numbers.
fn check_declared(
    source: &ResolvedSource,
    schema: &Schema,
    declared: &BTreeMap<String, ColumnType>,
) -> Result<()> {
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
    for (name, column_type) in declared {
        let Ok(found) = schema.field_with_name(name) else {
            continue;
        };
        if matches!(column_type, ColumnType::Date | ColumnType::Timestamp)
            && found.data_type().is_numeric()
        {
            return Err(source_files::numbers_refused(
                source,
                &source.location,
                &format!(", column `{name}`"),
                &found.data_type().to_string(),
                *column_type,
            ));
        }
    }
    Ok(())
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
            Some(column_type) => Field::new(field.name(), column_type.arrow_type(), true),
            None => field.as_ref().clone(),
        })
        .collect();
    for (column, column_type) in declared {
        if found.field_with_name(column).is_err() {
            fields.push(Field::new(column, column_type.arrow_type(), true));
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
    // Each file read whole, so that the CSV reader's line numbers count from its first line
    // (a split scan counts from the start of each byte range).
    let state = ctx.state_ref();
    state
        .write()
        .config_mut()
        .options_mut()
        .optimizer
        .repartition_file_scans = false;
    for source in sources {
        let declared = &pipeline.sources[&source.name].columns;
        if let Some(error) = source_files::diagnose(source, declared) {
            return Some(error);
        }
        for file in &source.files {
            let single = ResolvedSource {
                files: vec![file.clone()],
                ..source.clone()
            };
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

/// The CSV reader's "at line N" counts data rows; an editor counts the header too.
fn editor_line(message: &str) -> String {
    let Some((before, after)) = message.split_once(" at line ") else {
        return message.to_string();
    };
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<u64>() {
        Ok(line) => format!("{before} at line {}{}", line + 1, &after[digits.len()..]),
        Err(_) => message.to_string(),
    }
}

/// A data error in `file` of `source`, naming the column when the message gives its index.
fn bad_file(source: &ResolvedSource, file: &Path, message: &str, columns: &[String]) -> Error {
    let column = message
        .split("column ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| columns.get(index));
    let file_name = source_files::shown(source, file);
    let message = match source.format {
        SourceFormat::Csv => editor_line(message),
        _ => message.to_string(),
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
