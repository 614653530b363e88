//! Reading Postgres sources: each source's rows, read with binary COPY in streaming batches into
//! Arrow and written to a Parquet file in a temporary folder, which the engine then reads like any
//! file source (so windows, features and everything after are the same for files and tables).
//!
//! All sources with the same connection URL are read on one connection inside one `REPEATABLE
//! READ READ ONLY` transaction, so they come from one consistent snapshot of that database. The
//! session's time zone is UTC. Rows at or after the day after the as-of date, and (when every
//! aggregate over the source has a window) rows older than the widest window plus a day, are
//! left in the database; the engine applies the exact bounds as it does for files. Of a source
//! other than the customers' table, only the columns the run uses are read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::compute::can_cast_types;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::{Days, NaiveDate};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::connection::{Target, describe};
use super::types::ColumnReader;
use crate::diagnostic::available_help;
use crate::error::{Error, Result};
use crate::pipeline::model::ColumnType;
use crate::pipeline::validated::EntityOrigin;
use crate::pipeline::{FeatureDefinition, Pipeline, Relation, Source, SourceOrigin};

/// Rows per Arrow batch written to the Parquet file.
const BATCH_ROWS: usize = 65_536;

/// How much of each source to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row (in the pushed-down window): a run.
    All,
    /// None, only the columns and their types: validation and plans.
    None,
}

/// The Postgres sources of a run, read into Parquet files that live as long as this value.
#[derive(Default)]
pub struct Snapshot {
    _folder: Option<tempfile::TempDir>,
    /// Each source read, by name.
    pub sources: BTreeMap<String, Read>,
    /// Servers that could not be reached when only column types were wanted (`validate`).
    pub unreachable: Vec<Unreachable>,
}

/// A server `validate` could not reach, so its sources' columns were not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The sources it holds.
    pub sources: Vec<String>,
    /// The server, `user@host:port/database`.
    pub target: String,
    /// Why it could not be reached.
    pub message: String,
}

/// One Postgres source as read.
#[derive(Debug, Clone)]
pub struct Read {
    /// The Parquet file holding its rows.
    pub file: PathBuf,
    /// How messages and the manifest name it: `table analytics.events in user@host:port/db`.
    pub shown: String,
    /// What the manifest records.
    pub fingerprint: Fingerprint,
}

/// What identifies the rows a Postgres source read, for the manifest: where from (never the
/// password), which snapshot, and a checksum of the rows as the server sent them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Fingerprint {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// The table read, for a table source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// SHA-256 of the query's text, for a query source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_sha256: Option<String>,
    /// The snapshot read from (`pg_current_snapshot()`: xmin:xmax:xip-list).
    pub snapshot: String,
    /// SHA-256 of the binary COPY stream: the same rows in the same order give the same sum.
    pub sha256: String,
}

/// Read the Postgres sources of `pipeline` (`rows` says whether rows or only column types).
pub async fn read(pipeline: &Pipeline, as_of: NaiveDate, rows: Rows) -> Result<Snapshot> {
    let mut by_url: BTreeMap<String, Vec<(&Source, &Relation)>> = BTreeMap::new();
    for source in pipeline.sources.values() {
        if let SourceOrigin::Postgres { relation, .. } = &source.origin {
            let url = pipeline.source_url(&source.name)?;
            by_url.entry(url).or_default().push((source, relation));
        }
    }
    if by_url.is_empty() {
        return Ok(Snapshot::default());
    }
    let folder = tempfile::Builder::new()
        .prefix("segflow-postgres-")
        .tempdir()
        .map_err(|e| Error::Internal(format!("cannot make a temporary folder: {e}")))?;
    let mut sources = BTreeMap::new();
    let mut unreachable = Vec::new();
    for (url, group) in by_url {
        let first = group[0].0.name.as_str();
        let (_, target) = Target::of(&url).map_err(|message| Error::Database {
            source_name: first.to_string(),
            target: "the database".into(),
            message,
            help: Some("check the environment variable holding the URL".into()),
        })?;
        let fail = |name: &str, message: String, help: Option<String>| Error::Database {
            source_name: name.to_string(),
            target: target.to_string(),
            message,
            help,
        };
        let client = match super::try_connect(&url).await {
            Ok((client, _)) => client,
            Err(refusal) if !refusal.answered && rows == Rows::None => {
                let names = group
                    .iter()
                    .map(|(source, _)| source.name.clone())
                    .collect();
                unreachable.push(Unreachable {
                    sources: names,
                    target: target.to_string(),
                    message: refusal.message,
                });
                continue;
            }
            Err(refusal) => {
                return Err(fail(
                    first,
                    refusal.message,
                    Some("check that the server runs and the URL's user and password".into()),
                ));
            }
        };
        let snapshot = super::connection::begin_snapshot(&client)
            .await
            .map_err(|e| fail(first, describe(&e), None))?;
        for (source, relation) in group {
            let file = folder.path().join(format!("{}.parquet", source.name));
            let request = Request {
                source,
                relation,
                target: &target,
                file: file.clone(),
                bounds: bounds(pipeline, source, as_of),
                columns: (rows == Rows::All)
                    .then(|| needed_columns(pipeline, source))
                    .flatten(),
                rows,
            };
            let sha256 = request.read(&client).await?;
            let (table, query_sha256) = match relation {
                Relation::Table(table) => (Some(table.clone()), None),
                Relation::Query(query) => {
                    (None, Some(crate::pipeline::hex(&Sha256::digest(query))))
                }
            };
            sources.insert(
                source.name.clone(),
                Read {
                    file,
                    shown: format!("{} in {target}", relation.describe()),
                    fingerprint: Fingerprint {
                        host: target.host.clone(),
                        port: target.port,
                        database: target.database.clone(),
                        table,
                        query_sha256,
                        snapshot: snapshot.clone(),
                        sha256,
                    },
                },
            );
        }
        // Read only: ending the transaction changes nothing.
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| fail(first, describe(&e), None))?;
    }
    Ok(Snapshot {
        _folder: Some(folder),
        sources,
        unreachable,
    })
}

/// The time bounds pushed down for `source`: rows before the day after `as_of` (aggregates and
/// entity keys ignore rows at or after it), and from a day before the widest window when every
/// aggregate over the source has one and the source does not list the customers.
fn bounds(
    pipeline: &Pipeline,
    source: &Source,
    as_of: NaiveDate,
) -> Option<(Option<NaiveDate>, NaiveDate)> {
    source.time_column.as_ref()?;
    if source.validity.is_some() || pipeline.entity.table() == Some(source.name.as_str()) {
        return None;
    }
    let end = as_of.checked_add_days(Days::new(1))?;
    let lists_customers =
        matches!(&pipeline.entity.origin, EntityOrigin::Keys(keys) if keys.contains(&source.name));
    let windows: Option<Vec<u32>> = pipeline
        .features
        .iter()
        .filter_map(|feature| match &feature.definition {
            FeatureDefinition::Aggregate(aggregate) if aggregate.source == source.name => {
                Some(aggregate.window_days)
            }
            _ => None,
        })
        .collect();
    let start = windows
        .filter(|windows| !windows.is_empty() && !lists_customers)
        .and_then(|windows| windows.into_iter().max())
        .and_then(|days| as_of.checked_sub_days(Days::new(u64::from(days) + 1)));
    Some((start, end))
}

/// The columns a run uses of `source`, or `None` for all of them: the customers' table keeps
/// every column (expression features and reports use them); another source needs its key, its
/// time column, its declared columns and the names its aggregates' SQL refers to. A name missed
/// here would make planning fail (unknown column), never change a result.
fn needed_columns(pipeline: &Pipeline, source: &Source) -> Option<BTreeSet<String>> {
    if pipeline.entity.table() == Some(source.name.as_str()) || source.validity.is_some() {
        return None;
    }
    let mut needed: BTreeSet<String> = source.columns.keys().cloned().collect();
    needed.insert(source.join_key.clone());
    needed.extend(source.time_column.clone());
    for feature in &pipeline.features {
        if let FeatureDefinition::Aggregate(aggregate) = &feature.definition
            && aggregate.source == source.name
        {
            needed.extend(feature.references.iter().cloned());
        }
    }
    Some(needed)
}

/// One source to read.
struct Request<'a> {
    source: &'a Source,
    relation: &'a Relation,
    target: &'a Target,
    file: PathBuf,
    bounds: Option<(Option<NaiveDate>, NaiveDate)>,
    /// The columns read, when not all are.
    columns: Option<BTreeSet<String>>,
    rows: Rows,
}

impl Request<'_> {
    fn fail(&self, message: String, help: Option<String>) -> Error {
        Error::Database {
            source_name: self.source.name.clone(),
            target: self.target.to_string(),
            message,
            help,
        }
    }

    /// The relation as SQL after `FROM`: a quoted table name, or the query as a subquery.
    fn from(&self) -> String {
        match self.relation {
            Relation::Table(table) => table.split('.').map(quote).collect::<Vec<_>>().join("."),
            // On lines of its own, so that a trailing `--` comment ends with its line.
            Relation::Query(query) => format!("(\n{query}\n) AS segflow_query"),
        }
    }

    /// Read the rows into the Parquet file, returning the SHA-256 of the COPY stream.
    async fn read(&self, client: &Client) -> Result<String> {
        let relation = self.relation;
        let statement = client.prepare(&format!("SELECT * FROM {}", self.from())).await.map_err(|e| {
            self.fail(
                format!("{}: {}", relation.describe(), describe(&e)),
                Some(match relation {
                    Relation::Table(_) => "check the table's name and schema (`schema.table`, as written in the database) and that the user may read it".into(),
                    Relation::Query(_) => "check the query: run it in psql against the same database".into(),
                }),
            )
        })?;
        let chosen: Vec<&tokio_postgres::Column> = statement
            .columns()
            .iter()
            .filter(|column| {
                self.columns
                    .as_ref()
                    .is_none_or(|needed| needed.contains(column.name()))
            })
            .collect();
        let names: Vec<String> = chosen.iter().map(|column| quote(column.name())).collect();
        let select = if names.is_empty() || self.columns.is_none() {
            format!("SELECT * FROM {}", self.from())
        } else {
            format!("SELECT {} FROM {}", names.join(", "), self.from())
        };
        let mut readers = Vec::new();
        let mut types: Vec<&Type> = Vec::new();
        let mut fields = Vec::new();
        for column in chosen {
            let reader = ColumnReader::new(column.type_(), column.type_modifier()).ok_or_else(|| {
                self.fail(
                    format!(
                        "{}, column `{}`: type {} is not supported",
                        relation.describe(),
                        column.name(),
                        column.type_()
                    ),
                    Some("cast it in a `query:` (to text, bigint, numeric(p,s), double precision, date or timestamp), or leave the column out".into()),
                )
            })?;
            fields.push(Field::new(column.name(), reader.data_type().clone(), true));
            types.push(column.type_());
            readers.push(reader);
        }
        let schema = Arc::new(Schema::new(fields));
        self.check_declared(relation, &schema, &types)?;
        let output = std::fs::File::create(&self.file)
            .map_err(|e| Error::Internal(format!("cannot write a temporary file: {e}")))?;
        let mut writer = ArrowWriter::try_new(output, schema.clone(), None)
            .map_err(|e| Error::Internal(format!("cannot write a temporary file: {e}")))?;
        let mut hasher = Sha256::new();
        if self.rows == Rows::All {
            let time = self.source.time_column.as_deref().and_then(|time| {
                let at = schema.index_of(time).ok()?;
                matches!(*types[at], Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ)
                    .then_some(time)
            });
            let filter = match (time, self.bounds) {
                (Some(time), Some((start, end))) => {
                    let column = quote(time);
                    let mut conditions = vec![format!("{column} < DATE '{end}'")];
                    if let Some(start) = start {
                        conditions.push(format!("{column} >= DATE '{start}'"));
                    }
                    format!(" WHERE {}", conditions.join(" AND "))
                }
                _ => String::new(),
            };
            let copy = format!("COPY ({select}{filter}) TO STDOUT (FORMAT binary)");
            let what = relation.describe();
            let fail = |message: String, help: Option<String>| self.fail(message, help);
            (hasher, _) = copy_rows(
                client,
                &copy,
                &schema,
                &mut readers,
                &mut writer,
                &what,
                &fail,
            )
            .await?;
        }
        writer
            .close()
            .map_err(|e| Error::Internal(format!("cannot write a temporary file: {e}")))?;
        Ok(crate::pipeline::hex(&hasher.finalize()))
    }

    /// Every declared column is in the table, and its type can be cast to the declared one.
    fn check_declared(&self, relation: &Relation, schema: &Schema, types: &[&Type]) -> Result<()> {
        for (name, declared) in &self.source.columns {
            let Ok(field) = schema.field_with_name(name) else {
                let names = schema.fields().iter().map(|f| f.name().as_str());
                return Err(self.fail(
                    format!("declared column `{name}` is not in {}", relation.describe()),
                    Some(available_help(name, "column", names)),
                ));
            };
            let wanted = declared.arrow_type();
            let numbers_as_times = matches!(declared, ColumnType::Date | ColumnType::Timestamp)
                && field.data_type().is_numeric();
            if numbers_as_times || !can_cast_types(field.data_type(), &wanted) {
                return Err(self.fail(
                    format!(
                        "{}, column `{name}`: is {}, which cannot be read as the declared `{}`",
                        relation.describe(),
                        schema
                            .index_of(name)
                            .ok()
                            .and_then(|at| types.get(at))
                            .map_or_else(|| field.data_type().to_string(), |t| t.to_string()),
                        declared_name(*declared)
                    ),
                    Some(
                        "declare the column's type as the table has it, or cast it in a `query:`"
                            .into(),
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Stream `copy` (a `COPY (...) TO STDOUT (FORMAT binary)`) into `writer`, decoding each column
/// with `readers` into batches of `schema`. Returns the hasher fed with the stream's bytes (what
/// a source's fingerprint is) and the rows written; `what` names the rows in messages and `fail`
/// makes the caller's error.
pub(super) async fn copy_rows(
    client: &Client,
    copy: &str,
    schema: &Arc<Schema>,
    readers: &mut [ColumnReader],
    writer: &mut ArrowWriter<std::fs::File>,
    what: &str,
    fail: &dyn Fn(String, Option<String>) -> Error,
) -> Result<(Sha256, u64)> {
    let mut hasher = Sha256::new();
    let mut rows = 0;
    let stream = client
        .copy_out(copy)
        .await
        .map_err(|e| fail(format!("{what}: {}", describe(&e)), None))?;
    let mut parser = CopyParser {
        names: schema.fields().iter().map(|f| f.name().clone()).collect(),
        ..CopyParser::default()
    };
    let mut stream = std::pin::pin!(stream);
    let mut pending = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            fail(
                format!(
                    "the connection failed while reading {what}: {}",
                    describe(&e)
                ),
                Some("nothing was written; run again when the server is available".into()),
            )
        })?;
        hasher.update(&chunk);
        parser.buffer.extend_from_slice(&chunk);
        loop {
            let row = parser.next_row(readers).map_err(|message| {
                fail(
                    format!("{what}, {message}"),
                    Some(
                        "cast the column in a `query:` to a type that holds it, or fix the value"
                            .into(),
                    ),
                )
            })?;
            if !row {
                break;
            }
            pending += 1;
            rows += 1;
            if pending == BATCH_ROWS {
                write_batch(writer, schema, readers)?;
                pending = 0;
            }
        }
        parser.compact();
    }
    if !parser.ended {
        return Err(fail(
            format!("the stream of {what} ended before its last row"),
            Some("nothing was written; run again when the server is available".into()),
        ));
    }
    if pending > 0 {
        write_batch(writer, schema, readers)?;
    }
    Ok((hasher, rows))
}

fn write_batch(
    writer: &mut ArrowWriter<std::fs::File>,
    schema: &Arc<Schema>,
    readers: &mut [ColumnReader],
) -> Result<()> {
    let columns = readers.iter_mut().map(ColumnReader::finish).collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Internal(format!("building a batch: {e}")))?;
    writer
        .write(&batch)
        .map_err(|e| Error::Internal(format!("cannot write a temporary file: {e}")))
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A declared column type as the pipeline writes it (`date`, `int64`).
fn declared_name(declared: ColumnType) -> String {
    serde_json::to_value(declared)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{declared:?}"))
}

/// The binary COPY format, parsed as it arrives: a signature, flags and header extension, then
/// rows (a field count, each field's length or -1 for NULL, and its bytes), then a -1 trailer.
#[derive(Default)]
struct CopyParser {
    buffer: Vec<u8>,
    at: usize,
    header: bool,
    ended: bool,
    rows: u64,
    /// The columns' names, for messages.
    names: Vec<String>,
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl CopyParser {
    /// Decode the next whole row in the buffer into `readers`: `Ok(false)` when the buffer holds
    /// no whole row (or the trailer was read).
    fn next_row(&mut self, readers: &mut [ColumnReader]) -> std::result::Result<bool, String> {
        let data = &self.buffer[self.at..];
        let mut at = 0;
        if !self.header {
            let fixed = SIGNATURE.len() + 8;
            if data.len() < fixed {
                return Ok(false);
            }
            if &data[..SIGNATURE.len()] != SIGNATURE {
                return Err("the server sent no binary COPY header".into());
            }
            let extension = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
            if data.len() < fixed + extension {
                return Ok(false);
            }
            at = fixed + extension;
            self.header = true;
            self.at += at;
            return self.next_row(readers);
        }
        if self.ended || data.len() < 2 {
            return Ok(false);
        }
        let count = i16::from_be_bytes([data[0], data[1]]);
        if count == -1 {
            self.ended = true;
            self.at += 2;
            return Ok(false);
        }
        at += 2;
        // Find the whole row before decoding any of it.
        let mut spans = Vec::with_capacity(readers.len());
        for _ in 0..count {
            let Some(length) = data.get(at..at + 4) else {
                return Ok(false);
            };
            let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
            at += 4;
            if length < 0 {
                spans.push(None);
            } else {
                let end = at + length as usize;
                if data.len() < end {
                    return Ok(false);
                }
                spans.push(Some((at, end)));
                at = end;
            }
        }
        if spans.len() != readers.len() {
            return Err(format!(
                "the server sent {} columns, expected {}",
                spans.len(),
                readers.len()
            ));
        }
        self.rows += 1;
        for (index, (reader, span)) in readers.iter_mut().zip(spans).enumerate() {
            reader
                .append(span.map(|(start, end)| &data[start..end]))
                .map_err(|message| {
                    let name = self.names.get(index).map_or("?", String::as_str);
                    format!("row {}, column `{name}`: {message}", self.rows)
                })?;
        }
        self.at += at;
        Ok(true)
    }

    /// Drop the bytes already decoded.
    fn compact(&mut self) {
        self.buffer.drain(..self.at);
        self.at = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int32Array, StringArray};

    /// A binary COPY stream of `rows` of (integer, text), `None` for NULL.
    fn stream(rows: &[(Option<i32>, Option<&str>)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(0u32.to_be_bytes()); // flags
        out.extend(4u32.to_be_bytes()); // header extension length
        out.extend([9, 9, 9, 9]); // ... and its content, skipped
        for (number, text) in rows {
            out.extend(2i16.to_be_bytes());
            match number {
                Some(n) => {
                    out.extend(4i32.to_be_bytes());
                    out.extend(n.to_be_bytes());
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
            match text {
                Some(t) => {
                    out.extend((t.len() as i32).to_be_bytes());
                    out.extend(t.as_bytes());
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
        }
        out.extend((-1i16).to_be_bytes());
        out
    }

    #[test]
    fn rows_split_anywhere_across_chunks_decode_whole() {
        let bytes = stream(&[(Some(7), Some("héllo")), (None, None), (Some(-1), Some(""))]);
        for chunk in [1, 3, 7, bytes.len()] {
            let mut readers = vec![
                ColumnReader::new(&Type::INT4, -1).unwrap(),
                ColumnReader::new(&Type::TEXT, -1).unwrap(),
            ];
            let mut parser = CopyParser::default();
            let mut rows = 0;
            for piece in bytes.chunks(chunk) {
                parser.buffer.extend_from_slice(piece);
                while parser.next_row(&mut readers).unwrap() {
                    rows += 1;
                }
                parser.compact();
            }
            assert!(parser.ended, "chunks of {chunk}");
            assert_eq!(rows, 3);
            let numbers = readers[0].finish();
            let numbers = numbers.as_any().downcast_ref::<Int32Array>().unwrap();
            assert_eq!(
                numbers.iter().collect::<Vec<_>>(),
                [Some(7), None, Some(-1)]
            );
            let texts = readers[1].finish();
            let texts = texts.as_any().downcast_ref::<StringArray>().unwrap();
            assert_eq!(
                texts.iter().collect::<Vec<_>>(),
                [Some("héllo"), None, Some("")]
            );
        }
    }

    #[test]
    fn a_stream_that_is_not_binary_copy_is_refused() {
        let mut parser = CopyParser::default();
        parser
            .buffer
            .extend_from_slice(b"customer_id,plan\n1,pro\n");
        assert!(parser.next_row(&mut []).is_err());
    }
}
