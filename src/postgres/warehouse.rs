//! Running a compiled pipeline inside PostgreSQL (`segflow run --engine postgres`): one
//! connection and one `REPEATABLE READ READ ONLY` transaction, so that every count and the
//! assignments come from one snapshot; only the assignments travel, by binary COPY.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use tokio_postgres::Client;

use super::connection::{Target, describe};
use super::read::copy_rows;
use super::types::ColumnReader;
use crate::error::{Error, Result};

/// What messages call the work done in the database.
const WHAT: &str = "the pipeline's query";

/// A transaction on the database the pipeline runs in.
pub struct Warehouse {
    client: Client,
    target: Target,
    snapshot: String,
}

impl Warehouse {
    /// Connect to `url` and begin a read-only transaction on one snapshot.
    pub async fn open(url: &str) -> Result<Self> {
        let (_, target) = Target::of(url).map_err(|message| Error::Database {
            source_name: WHAT.into(),
            target: "the database".into(),
            message,
            help: Some("check the environment variable holding the URL".into()),
        })?;
        let (client, _) = super::try_connect(url)
            .await
            .map_err(|refusal| Error::Database {
                source_name: WHAT.into(),
                target: target.to_string(),
                message: refusal.message,
                help: Some("check that the server runs and the URL's user and password".into()),
            })?;
        let snapshot = super::connection::begin_snapshot(&client)
            .await
            .map_err(|e| Error::Database {
                source_name: WHAT.into(),
                target: target.to_string(),
                message: describe(&e),
                help: None,
            })?;
        Ok(Warehouse {
            client,
            target,
            snapshot,
        })
    }

    /// The server, `user@host:port/database` (never the password).
    pub fn target(&self) -> String {
        self.target.to_string()
    }

    /// The snapshot every query of this transaction sees.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    fn fail(&self, message: String, help: Option<String>) -> Error {
        Error::Database {
            source_name: WHAT.into(),
            target: self.target.to_string(),
            message,
            help,
        }
    }

    /// The one whole number `sql` returns (`what` says what it counts, for messages).
    pub async fn count(&self, sql: &str, what: &str) -> Result<u64> {
        let row = self
            .client
            .query_one(sql, &[])
            .await
            .map_err(|e| self.fail(format!("counting {what}: {}", describe(&e)), None))?;
        let count: i64 = row
            .try_get(0)
            .map_err(|e| self.fail(format!("counting {what}: {e}"), None))?;
        u64::try_from(count).map_err(|_| self.fail(format!("counting {what}: got {count}"), None))
    }

    /// Write the rows of `select` into the Parquet file `file`, each column as its Postgres type
    /// maps; returns the file's schema and its rows.
    pub async fn rows_into_parquet(&self, select: &str, file: &Path) -> Result<(SchemaRef, u64)> {
        let statement = self.client.prepare(select).await.map_err(|e| {
            self.fail(
                format!("{WHAT} does not run: {}", describe(&e)),
                Some("`segflow compile --dialect postgres` prints it: run it in psql to see where it fails".into()),
            )
        })?;
        let mut readers = Vec::new();
        let mut fields = Vec::new();
        for column in statement.columns() {
            let reader =
                ColumnReader::new(column.type_(), column.type_modifier()).ok_or_else(|| {
                    self.fail(
                        format!(
                            "column `{}` is of type {}, which segflow does not read",
                            column.name(),
                            column.type_()
                        ),
                        None,
                    )
                })?;
            fields.push(Field::new(column.name(), reader.data_type().clone(), true));
            readers.push(reader);
        }
        let schema = Arc::new(Schema::new(fields));
        let output = std::fs::File::create(file).map_err(|e| Error::Output {
            message: format!("cannot write {}: {e}", file.display()),
            help: None,
        })?;
        let mut writer = ArrowWriter::try_new(output, schema.clone(), None)
            .map_err(|e| Error::Internal(format!("cannot write the assignments: {e}")))?;
        let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
        let fail = |message: String, help: Option<String>| self.fail(message, help);
        let (_, rows) = copy_rows(
            &self.client,
            &copy,
            &schema,
            &mut readers,
            &mut writer,
            WHAT,
            &fail,
        )
        .await?;
        writer
            .close()
            .map_err(|e| Error::Internal(format!("cannot write the assignments: {e}")))?;
        Ok((schema, rows))
    }

    /// End the transaction (it only read).
    pub async fn close(self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| self.fail(describe(&e), None))
    }
}
