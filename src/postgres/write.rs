//! Writing an export table: the new content replaces the old in one transaction, so readers see
//! the old rows or the new, never a mix, and a failed export changes nothing.
//!
//! [`prepare`] opens a transaction, COPYs the rows (binary) into a temporary staging table, then
//! creates or truncates the export table, fills it from the staging table and appends the history
//! table. Nothing is visible to other connections until [`Prepared::commit`]; dropping a
//! [`Prepared`] (or the process dying) closes the connection and Postgres rolls it all back.
//!
//! segflow recognises its own tables by their comment ([`TABLE_MARKER`], [`HISTORY_MARKER`]) and
//! refuses to truncate, drop or append to any other table.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::pin_mut;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::connection::describe;
use super::types::{Cell, postgres_type_of};
use super::{Target, connect};

/// The comment on an export table segflow created: the proof that it may replace its content.
pub const TABLE_MARKER: &str =
    "segflow export: replaced by every run of the pipeline that exports it";
/// The comment on a history table segflow created: the proof that it may append to it.
pub const HISTORY_MARKER: &str =
    "segflow export history: every run appends its memberships (key, segment, run_id, as_of)";

/// Where and what to write.
pub struct TableExport<'a> {
    /// Connection URL (never shown).
    pub url: &'a str,
    /// `table` or `schema.table`, lowercase names.
    pub table: &'a str,
    /// The history table, if any.
    pub history_table: Option<&'a str>,
    /// The entity key's column name (first column of the batches).
    pub key: &'a str,
    /// This run's id, written into every row.
    pub run_id: &'a str,
    /// The as-of date, written into every row.
    pub as_of: chrono::NaiveDate,
}

/// An export written inside an open transaction, waiting for [`Prepared::commit`].
pub struct Prepared {
    client: Client,
    /// Where it goes.
    pub target: Target,
    /// Rows written.
    pub rows: u64,
}

impl Prepared {
    /// Make the new content visible.
    pub async fn commit(self) -> Result<(), String> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| describe(&e))
    }
}

/// Write `batches` (columns: key, segment, features, in the order of `schema`) with the run id
/// and as-of into the export table, inside a transaction left open.
pub async fn prepare(
    export: &TableExport<'_>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Prepared, String> {
    let (client, target) = connect(export.url).await?;
    let fail = |e: tokio_postgres::Error| describe(&e);
    client
        // A lock another session holds (a long report query on the table) fails the export after a
        // minute rather than leaving it waiting for ever.
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '60s'")
        .await
        .map_err(fail)?;
    let mut columns = Vec::new();
    for field in schema.fields() {
        let (sql, ty) = postgres_type_of(field.data_type()).ok_or_else(|| {
            format!(
                "column `{}` has type {}, which no Postgres column type holds here",
                field.name(),
                field.data_type()
            )
        })?;
        columns.push((field.name().clone(), sql, ty));
    }
    columns.push(("run_id".into(), "text".into(), Type::TEXT));
    columns.push(("as_of".into(), "date".into(), Type::DATE));
    let definition = columns
        .iter()
        .map(|(name, sql, _)| format!("{} {sql}", quote(name)))
        .collect::<Vec<_>>()
        .join(", ");

    // Staged in a temporary table first: the export table is locked only for the short swap.
    client
        .batch_execute(&format!(
            "CREATE TEMPORARY TABLE segflow_staging ({definition}) ON COMMIT DROP"
        ))
        .await
        .map_err(fail)?;
    let rows = copy_rows(&client, export, &columns, batches).await?;

    let table = qualified(export.table);
    // Truncating takes this lock anyway: readers wait for the commit, then see the new rows.
    match locked(&client, export.table, &table, "ACCESS EXCLUSIVE").await? {
        None => create(&client, &table, &definition, TABLE_MARKER).await?,
        Some(found) if found.comment.as_deref() != Some(TABLE_MARKER) => {
            return Err(not_ours(export.table, &found, "replace its content"));
        }
        Some(found) if found.columns == expected(&columns) => {
            client
                .batch_execute(&format!("TRUNCATE {table}"))
                .await
                .map_err(fail)?;
        }
        // segflow's own table with other columns (the exported features changed): recreated.
        Some(_) => {
            client
                .batch_execute(&format!("DROP TABLE {table}"))
                .await
                .map_err(fail)?;
            create(&client, &table, &definition, TABLE_MARKER).await?;
        }
    }
    client
        .batch_execute(&format!(
            "INSERT INTO {table} SELECT * FROM segflow_staging"
        ))
        .await
        .map_err(fail)?;

    if let Some(history) = export.history_table {
        append_history(&client, export, history, &columns[0].1).await?;
    }
    crate::progress::pause_for_tests("SEGFLOW_TEST_PAUSE_BEFORE_EXPORT_COMMIT");
    Ok(Prepared {
        client,
        target,
        rows,
    })
}

/// COPY the rows into the staging table in the binary format; the number of rows.
async fn copy_rows(
    client: &Client,
    export: &TableExport<'_>,
    columns: &[(String, String, Type)],
    batches: &[RecordBatch],
) -> Result<u64, String> {
    let fail = |e: tokio_postgres::Error| describe(&e);
    let sink = client
        .copy_in("COPY segflow_staging FROM STDIN (FORMAT binary)")
        .await
        .map_err(fail)?;
    let types: Vec<Type> = columns.iter().map(|(_, _, ty)| ty.clone()).collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let as_of = arrow::array::Date32Array::from(vec![
        i32::try_from((export.as_of - chrono::NaiveDate::default()).num_days())
            .map_err(|_| "the as-of date is out of range".to_string())?,
    ]);
    let run_id = arrow::array::StringArray::from(vec![export.run_id]);
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut written = 0usize;
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut cells: Vec<Cell<'_>> = batch
                .columns()
                .iter()
                .map(|array| Cell {
                    array: array.as_ref(),
                    row,
                })
                .collect();
            cells.push(Cell {
                array: &run_id,
                row: 0,
            });
            cells.push(Cell {
                array: &as_of,
                row: 0,
            });
            let values: Vec<&(dyn ToSql + Sync)> =
                cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            writer.as_mut().write(&values).await.map_err(fail)?;
            written += 1;
            if written == total / 2 {
                crate::progress::pause_for_tests("SEGFLOW_TEST_PAUSE_IN_EXPORT_COPY");
            }
        }
    }
    writer.finish().await.map_err(fail)
}

/// Append this run's memberships to the history table, creating it if missing.
async fn append_history(
    client: &Client,
    export: &TableExport<'_>,
    history: &str,
    key_type: &str,
) -> Result<(), String> {
    let fail = |e: tokio_postgres::Error| describe(&e);
    let key = quote(export.key);
    let definition = format!("{key} {key_type}, segment text, run_id text, as_of date");
    let columns = vec![
        (export.key.to_string(), key_type.to_string()),
        ("segment".into(), "text".into()),
        ("run_id".into(), "text".into()),
        ("as_of".into(), "date".into()),
    ];
    let table = qualified(history);
    // Readers of the history are not blocked; another run appending waits for this one.
    match locked(client, history, &table, "SHARE ROW EXCLUSIVE").await? {
        None => create(client, &table, &definition, HISTORY_MARKER).await?,
        Some(found) if found.comment.as_deref() != Some(HISTORY_MARKER) => {
            return Err(not_ours(history, &found, "append to it"));
        }
        Some(found) if found.columns != columns => {
            return Err(format!(
                "the history table {history} has other columns than ({}); segflow never \
                 changes a history table",
                definition
            ));
        }
        Some(_) => {}
    }
    client
        .batch_execute(&format!(
            "INSERT INTO {table} ({key}, segment, run_id, as_of) \
             SELECT {key}, segment, run_id, as_of FROM segflow_staging"
        ))
        .await
        .map_err(fail)
}

/// A table as found in the database.
struct Found {
    comment: Option<String>,
    /// Column names and types, in order.
    columns: Vec<(String, String)>,
}

/// The table `name`, if it exists (or anything else of that name: a view has columns too).
async fn existing(client: &Client, name: &str) -> Result<Option<Found>, String> {
    let fail = |e: tokio_postgres::Error| describe(&e);
    let relation = client
        .query_opt(
            "SELECT obj_description(to_regclass($1), 'pg_class'), \
             (SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)) \
             WHERE to_regclass($1) IS NOT NULL",
            &[&name],
        )
        .await
        .map_err(fail)?;
    let Some(relation) = relation else {
        return Ok(None);
    };
    let comment: Option<String> = relation.get(0);
    let kind: Option<String> = relation.get(1);
    let rows = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped \
             ORDER BY attnum",
            &[&name],
        )
        .await
        .map_err(fail)?;
    Ok(Some(Found {
        // Only an ordinary table can be segflow's.
        comment: comment.filter(|_| kind.as_deref() == Some("r")),
        columns: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
    }))
}

/// The table `name` (quoted: `table`) as found, locked in `mode` until the transaction ends if
/// it is segflow's, so that nobody changes it between the check and the write. A table that is
/// not segflow's is never locked: it is only refused.
async fn locked(
    client: &Client,
    name: &str,
    table: &str,
    mode: &str,
) -> Result<Option<Found>, String> {
    let found = existing(client, name).await?;
    if !found
        .as_ref()
        .is_some_and(|f| matches!(f.comment.as_deref(), Some(TABLE_MARKER | HISTORY_MARKER)))
    {
        return Ok(found);
    }
    client
        .batch_execute(&format!("LOCK TABLE {table} IN {mode} MODE"))
        .await
        .map_err(|e| describe(&e))?;
    existing(client, name).await
}

/// Create `table` with its marker comment.
async fn create(
    client: &Client,
    table: &str,
    definition: &str,
    marker: &str,
) -> Result<(), String> {
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} ({definition}); COMMENT ON TABLE {table} IS '{marker}'"
        ))
        .await
        .map_err(|e| describe(&e))
}

/// The refusal of a table segflow did not create.
fn not_ours(name: &str, found: &Found, action: &str) -> String {
    let why = match &found.comment {
        None => "it has no segflow comment".to_string(),
        Some(_) => "its comment is not segflow's".to_string(),
    };
    format!("{name} exists and segflow did not create it ({why}), so segflow will not {action}")
}

/// Column names and types as `format_type` shows them.
fn expected(columns: &[(String, String, Type)]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|(name, sql, _)| (name.clone(), sql.clone()))
        .collect()
}

/// An identifier in double quotes (names are checked lowercase names, so this only guards).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table` with each part quoted.
fn qualified(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}
