//! Reading the user's data files for `segflow init`: which files there are (folders expanded),
//! each file's columns with the types a pipeline would declare, and the few measurements the
//! guesses need (rows, nulls, distinct values of key-like columns, the latest date of
//! date-like columns, including dates written as text).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

use crate::engine;
use crate::error::{Error, Result};
use crate::pipeline::model::{ColumnType, SourceFormat, format_from_path};
use crate::pipeline::sql::ident;

/// One data file, read.
#[derive(Debug, Clone)]
pub struct Table {
    /// The source name the pipeline will give it (from the file name).
    pub name: String,
    /// The file, absolute; for a subfolder of files, the `*.ext` pattern in it.
    pub path: PathBuf,
    /// The file as the user named it (or as found in a named folder), for messages.
    pub shown: String,
    /// Its format.
    pub format: SourceFormat,
    /// Its rows.
    pub rows: u64,
    /// Its columns, in file order.
    pub columns: Vec<Column>,
}

/// One column of a [`Table`].
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// The type to declare in the pipeline, when the format has one for it.
    pub declared: Option<ColumnType>,
    /// The type as read (before any declaration), for comments.
    pub found: String,
    /// Whether the values are text holding dates or timestamps (an NDJSON `created_at`).
    pub times_as_text: bool,
    /// Non-null values.
    pub non_null: u64,
    /// Distinct non-null values (measured for key-like columns only).
    pub distinct: Option<u64>,
    /// The latest day of a date or timestamp column.
    pub latest: Option<NaiveDate>,
}

impl Column {
    /// Whether the column holds dates or timestamps.
    pub fn is_temporal(&self) -> bool {
        matches!(
            self.declared,
            Some(ColumnType::Date | ColumnType::Timestamp)
        )
    }

    /// Whether the column holds numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.declared,
            Some(ColumnType::Int32 | ColumnType::Int64 | ColumnType::Float64)
        )
    }
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A file init did not read, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file as found.
    pub file: String,
    /// Why it was left out.
    pub reason: String,
}

/// Everything init read.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// The data files, in the order given (a folder's files sorted by name).
    pub tables: Vec<Table>,
    /// Files found in folders that are not data files.
    pub skipped: Vec<Skipped>,
}

/// Whether a column's name makes it a candidate key: `id` or `*_id`.
pub fn is_key_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "id" || lower.ends_with("_id")
}

/// One table to read: its files (one, or a subfolder's), its format, the path the pipeline
/// names it by (the file, or a `*.ext` pattern in the subfolder), as the user would write it.
struct Found {
    files: Vec<PathBuf>,
    format: SourceFormat,
    location: PathBuf,
}

/// Read every file of `inputs`: files, or folders whose data files are read, each file a table
/// and each subfolder of files of one format one table (a partitioned export).
pub async fn inspect(inputs: &[PathBuf], resources: &engine::Resources) -> Result<Inspection> {
    let mut found = Inspection::default();
    let mut tables = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| unreadable(input, &e.to_string()))?;
        if meta.is_dir() {
            for entry in entries(input)? {
                if is_link_to_folder(&entry) {
                    found.skipped.push(Skipped {
                        file: entry.display().to_string(),
                        reason: "a link to a folder: not followed (pass the folder itself)".into(),
                    });
                    continue;
                }
                if entry.is_dir() {
                    match partitioned(&entry)? {
                        Ok(found) => tables.extend(found),
                        Err(reason) => found.skipped.push(Skipped {
                            file: entry.display().to_string(),
                            reason,
                        }),
                    }
                    continue;
                }
                match data_format(&entry) {
                    Some(format) => tables.push(Found {
                        files: vec![entry.clone()],
                        format,
                        location: entry,
                    }),
                    None => found.skipped.push(Skipped {
                        file: entry.display().to_string(),
                        reason: "not a CSV, Parquet or NDJSON file".into(),
                    }),
                }
            }
        } else {
            let format = data_format(input).ok_or_else(|| {
                Error::data(
                    format!(
                        "{} is not a CSV, Parquet or NDJSON file (by its extension)",
                        input.display()
                    ),
                    Some(
                        "name files .csv, .parquet or .ndjson (.jsonl, .json), or pass their folder"
                            .into(),
                    ),
                )
            })?;
            tables.push(Found {
                files: vec![input.clone()],
                format,
                location: input.clone(),
            });
        }
    }
    let mut names = BTreeSet::new();
    let mut named = Vec::new();
    for table in without_repeats(tables, &mut found.skipped)? {
        let mut files = Vec::new();
        for file in &table.files {
            if table.format == SourceFormat::Csv {
                check_header(file)?;
            }
            files.push(std::path::absolute(file).map_err(|e| unreadable(file, &e.to_string()))?);
        }
        let location = &table.location;
        let name = unique_name(&source_name(location), &mut names);
        let absolute =
            std::path::absolute(location).map_err(|e| unreadable(location, &e.to_string()))?;
        named.push((
            name,
            files,
            table.format,
            location.display().to_string(),
            absolute,
        ));
    }
    let sessions: Vec<(String, Vec<PathBuf>, SourceFormat, String)> = named
        .iter()
        .map(|(name, files, format, shown, _)| {
            (name.clone(), files.clone(), *format, shown.clone())
        })
        .collect();
    let ctx = engine::inspection_session(&sessions, resources).await?;
    for (name, _, format, shown, path) in named {
        found
            .tables
            .push(measure(&ctx, name, path, format, shown).await?);
    }
    Ok(found)
}

/// `tables` without those whose files were all found before (`--from retail retail/`, or one
/// file by two spellings): read twice, a file would be two sources of the same rows. The first
/// stays; each repeat is named in the notes.
fn without_repeats(tables: Vec<Found>, skipped: &mut Vec<Skipped>) -> Result<Vec<Found>> {
    let mut seen: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut kept = Vec::new();
    for table in tables {
        let mut canonical = Vec::new();
        for file in &table.files {
            canonical
                .push(std::fs::canonicalize(file).map_err(|e| unreadable(file, &e.to_string()))?);
        }
        let shown = table.location.display().to_string();
        let earlier: Option<Vec<&String>> = canonical.iter().map(|c| seen.get(c)).collect();
        if let Some(first) = earlier.and_then(|names| names.first().copied().cloned()) {
            let reason = if first == shown {
                "given twice: read once".to_string()
            } else {
                format!("the same file as {first}: read once")
            };
            skipped.push(Skipped {
                file: shown,
                reason,
            });
            continue;
        }
        for file in canonical {
            seen.entry(file).or_insert_with(|| shown.clone());
        }
        kept.push(table);
    }
    Ok(kept)
}

/// Whether `path` is a symbolic link to a folder: walking into it could loop (`l1/loop ->
/// ../l1`) or read a folder twice, so folders are walked without following such links.
fn is_link_to_folder(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) && path.is_dir()
}

/// The visible entries of `folder`, sorted.
fn entries(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| unreadable(folder, &e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
}

/// A subfolder as one table: its files, all of one format, extension and columns, named by the
/// pattern `folder/*.ext`; or each file its own table when their columns differ (a pattern
/// would read customers and transactions as one table); or why it is left out.
fn partitioned(folder: &Path) -> Result<std::result::Result<Vec<Found>, String>> {
    if folder.to_string_lossy().contains(['*', '?', '[', ']']) {
        return Ok(Err(
            "a folder whose path holds glob characters (`*?[]`); pass its files instead".into(),
        ));
    }
    let inside = entries(folder)?;
    let files: Vec<PathBuf> = inside.iter().filter(|p| p.is_file()).cloned().collect();
    let extension = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .and_then(|n| n.find('.').map(|i| n[i..].to_string()))
    };
    let Some((format, ext)) = files
        .iter()
        .find_map(|f| Some((data_format(f)?, extension(f)?)))
    else {
        return Ok(Err(without_data_files(&inside)));
    };
    if files
        .iter()
        .any(|f| data_format(f) != Some(format) || extension(f).as_ref() != Some(&ext))
    {
        return Ok(Err(
            "a folder whose files are not all of one format; pass them one by one".into(),
        ));
    }
    if !same_columns(&files, format)? {
        return Ok(Ok(files
            .into_iter()
            .map(|file| Found {
                files: vec![file.clone()],
                format,
                location: file,
            })
            .collect()));
    }
    Ok(Ok(vec![Found {
        files,
        format,
        location: folder.join(format!("*{ext}")),
    }]))
}

/// Why a subfolder without a data file of its own is left out: its folders are not walked.
fn without_data_files(inside: &[PathBuf]) -> String {
    if inside.iter().any(|p| p.is_dir()) {
        "it holds folders, nested more than one level: not read (pass them)".into()
    } else {
        "a folder without data files".into()
    }
}

/// Whether every file of `files` has the columns of the first, by name and in order.
fn same_columns(files: &[PathBuf], format: SourceFormat) -> Result<bool> {
    let mut first: Option<Vec<String>> = None;
    for file in files {
        let columns = column_names(file, format)?;
        match &first {
            Some(expected) if *expected != columns => return Ok(false),
            Some(_) => {}
            None => first = Some(columns),
        }
    }
    Ok(true)
}

/// The column names of a data file, read cheaply: a CSV file's header row, a Parquet file's
/// schema, an NDJSON file's first object's keys.
fn column_names(file: &Path, format: SourceFormat) -> Result<Vec<String>> {
    let handle = std::fs::File::open(file).map_err(|e| unreadable(file, &e.to_string()))?;
    let fail = |e: &dyn std::fmt::Display| unreadable(file, &e.to_string());
    match format {
        SourceFormat::Csv => {
            let mut reader = csv::Reader::from_reader(handle);
            let header = reader.headers().map_err(|e| fail(&e))?;
            Ok(header
                .iter()
                .map(|name| name.trim_start_matches('\u{feff}').to_string())
                .collect())
        }
        SourceFormat::Parquet => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(handle)
                    .map_err(|e| fail(&e))?;
            Ok(builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect())
        }
        SourceFormat::Ndjson => {
            let mut line = String::new();
            for read in BufReader::new(handle).lines() {
                line = read.map_err(|e| fail(&e))?;
                if !line.trim().is_empty() {
                    break;
                }
            }
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&line).unwrap_or_default();
            Ok(object.keys().cloned().collect())
        }
    }
}

fn unreadable(path: &Path, reason: &str) -> Error {
    Error::data(
        format!("cannot read {}: {reason}", path.display()),
        Some("pass data files (CSV, Parquet, NDJSON) or folders of them".into()),
    )
}

fn data_format(path: &Path) -> Option<SourceFormat> {
    format_from_path(&path.file_name()?.to_string_lossy())
}

/// A source name from a file name: `Invoices 2026.csv` → `invoices_2026`; for a subfolder's
/// pattern `events/*.parquet`, from the folder: `events`.
fn source_name(path: &Path) -> String {
    let pattern = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('*'));
    let path = if pattern {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.split('.').next().unwrap_or_default();
    let mut name = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_').to_string();
    match name.chars().next() {
        Some(c) if c.is_ascii_lowercase() => name,
        Some(_) => format!("t_{name}"),
        None => "table".into(),
    }
}

fn unique_name(base: &str, taken: &mut BTreeSet<String>) -> String {
    let mut name = base.chars().take(56).collect::<String>();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// A CSV file's first line must name its columns: one whose fields look like values (numbers,
/// dates, empty fields) is a file without a header row, which would read its first row as names.
fn check_header(file: &Path) -> Result<()> {
    let handle = std::fs::File::open(file).map_err(|e| unreadable(file, &e.to_string()))?;
    let mut line = Vec::new();
    BufReader::new(handle)
        .take(1 << 20)
        .read_until(b'\n', &mut line)
        .map_err(|e| unreadable(file, &e.to_string()))?;
    let text = String::from_utf8_lossy(&line);
    let text = text.trim_start_matches('\u{feff}').trim_end();
    let no_header = |why: String| {
        Error::data(
            format!("{} has no header row: {why}", file.display()),
            Some("segflow reads CSV files whose first line names the columns (customer_id,date,amount); add one".into()),
        )
    };
    if text.is_empty() {
        return Err(no_header("the file is empty".into()));
    }
    let fields: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .next()
        .and_then(|record| record.ok())
        .map(|record| record.iter().map(|f| f.trim().to_string()).collect())
        .unwrap_or_default();
    let looks_like_value = |field: &str| {
        field.is_empty()
            || field.parse::<f64>().is_ok()
            || NaiveDate::parse_from_str(field.get(..10).unwrap_or(field), "%Y-%m-%d").is_ok()
    };
    if let Some(value) = fields.iter().find(|f| looks_like_value(f)) {
        return Err(no_header(format!(
            "its first line ({text}) holds `{value}`, a value rather than a column name"
        )));
    }
    Ok(())
}

/// The declared type for a column DataFusion read as `data_type`, if the format has one.
fn declared_type(data_type: &DataType) -> Option<ColumnType> {
    Some(match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            ColumnType::Int32
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ColumnType::Int64,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => ColumnType::Float64,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::String,
        DataType::Boolean => ColumnType::Bool,
        DataType::Date32 | DataType::Date64 => ColumnType::Date,
        DataType::Timestamp(..) => ColumnType::Timestamp,
        _ => return None,
    })
}

/// One pass over a table: rows, and per column non-null values; distinct values of key-like
/// columns; for text, whether every value reads as a date or timestamp; the latest day of
/// temporal columns.
async fn measure(
    ctx: &SessionContext,
    name: String,
    path: PathBuf,
    format: SourceFormat,
    shown: String,
) -> Result<Table> {
    let frame = ctx.table(name.as_str()).await?;
    let fields: Vec<(String, DataType)> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    if fields.is_empty() {
        return Err(Error::data(
            format!("{shown} has no columns: is it empty?"),
            Some("check that the export finished".into()),
        ));
    }
    let mut select = vec!["count(*)".to_string()];
    for (column, data_type) in &fields {
        let quoted = ident(column);
        let declared = declared_type(data_type);
        select.push(format!("count({quoted})"));
        if is_key_like(column) {
            select.push(format!("count(DISTINCT {quoted})"));
        } else {
            select.push("NULL".into());
        }
        match declared {
            Some(ColumnType::Date | ColumnType::Timestamp) => {
                select.push("NULL".into());
                select.push("NULL".into());
                select.push(format!("CAST(max(CAST({quoted} AS DATE)) AS VARCHAR)"));
            }
            Some(ColumnType::String) => {
                let parsed = format!("try_cast({quoted} AS TIMESTAMP)");
                select.push(format!("sum(CASE WHEN {parsed} IS NULL THEN 0 ELSE 1 END)"));
                select.push(format!("max(character_length({quoted}))"));
                select.push(format!("CAST(max(CAST({parsed} AS DATE)) AS VARCHAR)"));
            }
            _ => {
                select.push("NULL".into());
                select.push("NULL".into());
                select.push("NULL".into());
            }
        }
    }
    let select: Vec<String> = select
        .iter()
        .enumerate()
        .map(|(i, item)| format!("{item} AS m{i}"))
        .collect();
    let sql = format!("SELECT {} FROM {}", select.join(", "), ident(&name));
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| table_error(&shown, &e))?
        .collect()
        .await
        .map_err(|e| table_error(&shown, &e))?;
    let batch = batches
        .first()
        .ok_or_else(|| Error::Internal(format!("no result measuring {shown}")))?;
    let cell = |index: usize| engine::stats::scalar(batch.column(index).as_ref(), 0);
    let count = |index: usize| -> Result<Option<u64>> { Ok(cell(index)?.as_u64()) };
    let rows = count(0)?.unwrap_or(0);
    let mut columns = Vec::new();
    for (i, (column, data_type)) in fields.iter().enumerate() {
        let at = 1 + i * 5;
        let non_null = count(at)?.unwrap_or(0);
        let distinct = count(at + 1)?;
        let parsed = count(at + 2)?;
        let longest = count(at + 3)?;
        let latest = cell(at + 4)?
            .as_str()
            .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok());
        let mut declared = declared_type(data_type);
        let mut times_as_text = false;
        if declared == Some(ColumnType::String) && non_null > 0 && parsed == Some(non_null) {
            times_as_text = true;
            declared = Some(if longest.unwrap_or(0) <= 10 {
                ColumnType::Date
            } else {
                ColumnType::Timestamp
            });
        }
        columns.push(Column {
            name: column.clone(),
            declared,
            found: data_type.to_string(),
            times_as_text,
            non_null,
            distinct,
            latest: latest.filter(|_| declared.is_some_and(is_temporal_type)),
        });
    }
    Ok(Table {
        name,
        path,
        shown,
        format,
        rows,
        columns,
    })
}

fn is_temporal_type(column_type: ColumnType) -> bool {
    matches!(column_type, ColumnType::Date | ColumnType::Timestamp)
}

fn table_error(shown: &str, error: &datafusion::error::DataFusionError) -> Error {
    Error::data(
        format!(
            "cannot read {shown}: {}",
            crate::error::first_line_of_datafusion(error)
        ),
        Some("fix or re-export the file".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_come_from_file_names() {
        assert_eq!(
            source_name(Path::new("a/Invoices 2026.csv")),
            "invoices_2026"
        );
        assert_eq!(
            source_name(Path::new("2026-events.parquet")),
            "t_2026_events"
        );
        assert_eq!(source_name(Path::new("tickets.ndjson")), "tickets");
        assert_eq!(source_name(Path::new("x/events/*.parquet")), "events");
        let mut taken = BTreeSet::new();
        assert_eq!(unique_name("events", &mut taken), "events");
        assert_eq!(unique_name("events", &mut taken), "events_2");
    }

    #[test]
    fn key_like_columns() {
        assert!(is_key_like("customer_id"));
        assert!(is_key_like("ID"));
        assert!(!is_key_like("paid"));
    }

    #[test]
    fn a_first_line_of_values_is_no_header() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("t.csv");
        std::fs::write(&file, "1,2026-01-02,12.5\n2,2026-01-03,4\n").expect("write");
        let error = check_header(&file).expect_err("no header");
        assert!(error.to_string().contains("has no header row"), "{error}");
        std::fs::write(&file, "customer_id,date,amount\n1,2026-01-02,12.5\n").expect("write");
        assert!(check_header(&file).is_ok());
    }
}
