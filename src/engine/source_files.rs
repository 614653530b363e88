//! Checking a source's files one by one, so that a problem is reported with the file (and the
//! column and editor's line number where known) instead of as DataFusion's message about the
//! whole set. Cheap checks (Parquet footers and types, CSV encodings and headers) run before every
//! read; a full scan of each file runs only after DataFusion failed, to find where.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Schema};

use crate::error::{Error, Result};
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
    /// How the files are read (Parquet for a Postgres source, read to a temporary file).
    pub format: SourceFormat,
    /// For a Postgres source, what identifies the rows read.
    pub database: Option<crate::postgres::read::Fingerprint>,
}

/// Check what can be checked without reading rows: every Parquet file's footer and column types,
/// every CSV file's encoding and header.
pub(super) fn check(
    source: &ResolvedSource,
    declared: &BTreeMap<String, ColumnType>,
) -> Result<()> {
    match source.format {
        SourceFormat::Parquet => check_parquet(source, declared),
        SourceFormat::Csv => source
            .files
            .iter()
            .try_for_each(|file| check_csv_header(source, file)),
        SourceFormat::Ndjson => Ok(()),
    }
}

/// After DataFusion failed to read `source`, the first problem found by scanning its files one by
/// one, or `None` when every file looks sound.
pub(super) fn diagnose(
    source: &ResolvedSource,
    declared: &BTreeMap<String, ColumnType>,
) -> Option<Error> {
    let scan = |file: &Path| match source.format {
        SourceFormat::Csv => scan_csv(source, file),
        SourceFormat::Ndjson => scan_ndjson(source, file, declared),
        SourceFormat::Parquet => Ok(()),
    };
    source.files.iter().find_map(|file| scan(file).err())
}

/// A data problem in `file` of `source`; `at` is what follows the file name (`, line 3`).
pub(super) fn file_error(source: &ResolvedSource, file: &Path, at: &str, message: &str) -> Error {
    Error::Source {
        source_name: source.name.clone(),
        message: format!("{}{at}: {message}", shown(source, file)),
        help: Some(
            "fix or re-export the file; declared `columns` types must fit every value".into(),
        ),
    }
}

/// The name a message gives `file`: the location as written for a one-file source, else the path.
pub(super) fn shown(source: &ResolvedSource, file: &Path) -> String {
    if source.files.len() == 1 {
        source.location.clone()
    } else {
        file.display().to_string()
    }
}

fn is_temporal(column_type: ColumnType) -> bool {
    matches!(column_type, ColumnType::Date | ColumnType::Timestamp)
}

fn type_name(column_type: ColumnType) -> &'static str {
    if column_type == ColumnType::Date {
        "date"
    } else {
        "timestamp"
    }
}

/// A number where a date belongs, refused (Arrow would read it as days or microseconds since 1970).
pub(super) fn numbers_refused(
    source: &ResolvedSource,
    file: &str,
    at: &str,
    found: &str,
    column_type: ColumnType,
) -> Error {
    Error::Source {
        source_name: source.name.clone(),
        message: format!(
            "{file}{at}: holds numbers ({found}), but is declared {}; segflow does not read numbers as dates",
            type_name(column_type),
        ),
        help: Some(
            "export the column as ISO 8601 text (2026-01-31 or 2026-01-31T12:00:00), or as a Parquet date or timestamp".into(),
        ),
    }
}

fn check_parquet(source: &ResolvedSource, declared: &BTreeMap<String, ColumnType>) -> Result<()> {
    let mut first: Option<(&Path, Schema)> = None;
    for file in &source.files {
        let schema =
            parquet_schema(file).map_err(|reason| file_error(source, file, "", &reason))?;
        for (name, column_type) in declared {
            let Ok(field) = schema.field_with_name(name) else {
                continue;
            };
            if is_temporal(*column_type) && field.data_type().is_numeric() {
                let at = format!(", column `{name}`");
                let found = field.data_type().to_string();
                return Err(numbers_refused(
                    source,
                    &shown(source, file),
                    &at,
                    &found,
                    *column_type,
                ));
            }
        }
        match &first {
            None => first = Some((file, schema)),
            Some((first_file, first_schema)) => {
                clash(source, (first_file, first_schema), (file, &schema))?;
            }
        }
    }
    Ok(())
}

/// Two files of one source giving a column different types.
fn clash(source: &ResolvedSource, a: (&Path, &Schema), b: (&Path, &Schema)) -> Result<()> {
    for field in b.1.fields() {
        let Ok(other) = a.1.field_with_name(field.name()) else {
            continue;
        };
        if !same_kind(field.data_type(), other.data_type()) {
            return Err(file_error(
                source,
                b.0,
                &format!(", column `{}`", field.name()),
                &format!(
                    "is {} here but {} in {}; every file of a source needs the same column types",
                    field.data_type(),
                    other.data_type(),
                    a.0.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Types DataFusion can merge (strings of either width, any timestamp unit or zone).
fn same_kind(a: &DataType, b: &DataType) -> bool {
    let string =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    match (a, b) {
        (DataType::Timestamp(..), DataType::Timestamp(..)) => true,
        _ => a == b || (string(a) && string(b)),
    }
}

/// The Arrow schema in a Parquet file's footer; the reader can panic on a corrupt one.
fn parquet_schema(file: &Path) -> std::result::Result<Schema, String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let handle = File::open(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let read = std::panic::catch_unwind(move || {
        ParquetRecordBatchReaderBuilder::try_new(handle).map(|b| b.schema().as_ref().clone())
    });
    match read {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(e)) => Err(format!("not a readable Parquet file: {e}")),
        Err(_) => Err("the file is corrupt (its Parquet footer cannot be read)".into()),
    }
}

/// The first line of a CSV file: UTF-8, not UTF-16, and no column named twice.
fn check_csv_header(source: &ResolvedSource, file: &Path) -> Result<()> {
    let mut reader = BufReader::new(
        File::open(file).map_err(|e| file_error(source, file, "", &format!("cannot read: {e}")))?,
    );
    let mut header = Vec::new();
    reader
        .by_ref()
        .take(1 << 20)
        .read_until(b'\n', &mut header)
        .map_err(|e| file_error(source, file, "", &format!("cannot read: {e}")))?;
    if header.starts_with(&[0xFF, 0xFE]) || header.starts_with(&[0xFE, 0xFF]) {
        return Err(file_error(
            source,
            file,
            "",
            "is UTF-16 text (it starts with a UTF-16 byte order mark); segflow reads UTF-8: re-export the file as UTF-8",
        ));
    }
    let text = std::str::from_utf8(header.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&header))
        .map_err(|_| {
            file_error(
                source,
                file,
                ", line 1",
                "is not UTF-8 text; re-export the file as UTF-8",
            )
        })?;
    let mut seen = HashSet::new();
    for name in csv_fields(text) {
        if !seen.insert(name.clone()) {
            return Err(Error::Source {
                source_name: source.name.clone(),
                message: format!(
                    "column `{name}` appears twice in the header of {}",
                    shown(source, file)
                ),
                help: Some("rename one of the two columns in the export".into()),
            });
        }
    }
    Ok(())
}

/// The fields of one CSV line.
fn csv_fields(line: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    reader
        .records()
        .next()
        .and_then(|record| record.ok())
        .map(|record| record.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Every record of a CSV file: UTF-8, and as many fields as the header. Lines are an editor's
/// (the header is line 1).
fn scan_csv(source: &ResolvedSource, file: &Path) -> Result<()> {
    let handle =
        File::open(file).map_err(|e| file_error(source, file, "", &format!("cannot read: {e}")))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(handle));
    let mut record = csv::ByteRecord::new();
    let mut width = None;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(file_error(source, file, "", &e.to_string())),
        }
        let line = record.position().map_or(0, |p| p.line());
        let at = format!(", line {line}");
        if std::str::from_utf8(record.as_slice()).is_err() {
            return Err(file_error(
                source,
                file,
                &at,
                "is not UTF-8 text; re-export the file as UTF-8",
            ));
        }
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            let message = format!("has {} fields, but the header has {expected}", record.len());
            return Err(file_error(source, file, &at, &message));
        }
    }
}

/// Every line of an NDJSON file: a JSON object, with text (or null) in declared date and
/// timestamp columns. Line numbers are an editor's (the first line is line 1).
fn scan_ndjson(
    source: &ResolvedSource,
    file: &Path,
    declared: &BTreeMap<String, ColumnType>,
) -> Result<()> {
    let handle =
        File::open(file).map_err(|e| file_error(source, file, "", &format!("cannot read: {e}")))?;
    for (index, line) in BufReader::new(handle).split(b'\n').enumerate() {
        let at = format!(", line {}", index + 1);
        let line = line.map_err(|e| file_error(source, file, "", &format!("cannot read: {e}")))?;
        let Ok(text) = std::str::from_utf8(&line) else {
            return Err(file_error(source, file, &at, "is not UTF-8 text"));
        };
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| file_error(source, file, &at, &json_problem(&e)))?;
        let Some(object) = value.as_object() else {
            return Err(file_error(source, file, &at, "is not a JSON object"));
        };
        for (name, column_type) in declared.iter().filter(|(_, t)| is_temporal(**t)) {
            let at = format!("{at}, column `{name}`");
            match object.get(name) {
                Some(found @ serde_json::Value::Number(_)) => {
                    let file = shown(source, file);
                    let found = found.to_string();
                    return Err(numbers_refused(source, &file, &at, &found, *column_type));
                }
                Some(serde_json::Value::String(text)) => {
                    parse_time(text, *column_type)
                        .map_err(|reason| file_error(source, file, &at, &reason))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// serde_json's message without its "at line 1 column N" (the line is one of many), with the
/// column in front.
fn json_problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let reason = text.split(" at line ").next().unwrap_or(&text);
    format!("is not valid JSON (column {}): {reason}", error.column())
}

/// `text` read as the declared date or timestamp, the way the cast after reading does.
fn parse_time(text: &str, column_type: ColumnType) -> std::result::Result<(), String> {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::compute::{CastOptions, cast_with_options};
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let array = StringArray::from(vec![text]);
    cast_with_options(&array, &column_type.arrow_type(), &options)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
