//! Running a pipeline on a segment test's fixture rows instead of its real sources: inline rows
//! become in-memory Arrow tables (typed by the sources' declared `columns`), fixture files are
//! read like sources, and everything else is planned and executed exactly as in a run.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::infer_json_schema_from_iterator;

use super::compile;
use super::sources::{self, ResolvedSource, declared_schema};
use super::stats::scalar;
use crate::diagnostic::codes;
use crate::error::{Error, Result};
use crate::pipeline::model::{ColumnType, FixtureRows, SegmentTest};
use crate::pipeline::{Pipeline, format_from_path};

/// One output row: column name → value.
pub type Row = BTreeMap<String, serde_json::Value>;

/// The assignments of a test's fixture customers, by the key's JSON text (`1`, `"abc"`).
pub async fn assign(
    pipeline: &Pipeline,
    as_of: NaiveDate,
    test: &SegmentTest,
) -> Result<BTreeMap<String, Row>> {
    let ctx = super::session::for_pipeline(as_of, &super::Resources::default())?;
    for (name, source) in &pipeline.sources {
        match test.sources.get(name) {
            Some(FixtureRows::File { path }) => {
                let format = pipeline.spec.sources[name]
                    .format
                    .or_else(|| format_from_path(path))
                    .ok_or_else(|| {
                        fixture_error(test, name, format!("cannot tell the format of `{path}`"))
                    })?;
                let source = ResolvedSource {
                    name: name.clone(),
                    location: path.clone(),
                    files: vec![pipeline.base_dir.join(path)],
                    format,
                    database: None,
                };
                sources::register(&ctx, pipeline, &[source]).await?;
            }
            Some(FixtureRows::Rows(rows)) => {
                let table = batch(test, name, &source.columns, rows).map_err(|error| {
                    locate_bad_value(pipeline, test, name, rows).unwrap_or(error)
                })?;
                ctx.register_batch(name.as_str(), table)?;
            }
            None => {
                ctx.register_batch(name.as_str(), batch(test, name, &source.columns, &[])?)?;
            }
        }
    }
    let compiled = compile::compile(&ctx, pipeline, as_of).await?;
    let key = &pipeline.entity.key;
    let mut assigned = BTreeMap::new();
    for batch in compiled.assignments.collect().await? {
        let schema = batch.schema();
        for r in 0..batch.num_rows() {
            let mut row = Row::new();
            for (c, field) in schema.fields().iter().enumerate() {
                row.insert(field.name().clone(), scalar(batch.column(c).as_ref(), r)?);
            }
            assigned.insert(row[key].to_string(), row);
        }
    }
    Ok(assigned)
}

fn fixture_error(test: &SegmentTest, source: &str, message: String) -> Error {
    Error::Source {
        source_name: source.to_string(),
        message: format!("in test `{}`: {message}", test.name),
        help: Some(
            "fixture rows are maps of column to value; declared `columns` set their types".into(),
        ),
    }
}

/// When inline rows do not fit the declared types: the first value that does not, as a problem
/// at its line and column in the pipeline file (found by converting row by row, then value by
/// value, so that the check is the conversion itself).
fn locate_bad_value(
    pipeline: &Pipeline,
    test: &SegmentTest,
    name: &str,
    rows: &[Row],
) -> Option<Error> {
    let declared = &pipeline.sources[name].columns;
    let test_index = pipeline
        .spec
        .tests
        .iter()
        .position(|t| t.name == test.name)?;
    for (r, row) in rows.iter().enumerate() {
        for (column, value) in row {
            let Some(column_type) = declared.get(column) else {
                continue;
            };
            let single = BTreeMap::from([(column.clone(), *column_type)]);
            let alone = Row::from([(column.clone(), value.clone())]);
            if let Err(error) = batch(test, name, &single, &[alone]) {
                let prefix = format!("in test `{}`: ", test.name);
                let reason = match error {
                    Error::Source { message, .. } => message
                        .strip_prefix(&prefix)
                        .map_or(message.clone(), str::to_string),
                    other => other.to_string(),
                };
                let path = format!("tests[{test_index}].sources.{name}[{r}].{column}");
                let problem = pipeline
                    .file
                    .at(
                        codes::FIXTURE_VALUE,
                        &path,
                        format!(
                            "test `{}`: {value} in column `{column}` of `{name}` is not a valid `{}` value",
                            test.name,
                            column_type.name()
                        ),
                    )
                    .help(format!("the source declares `{column}: {}`; {reason}", column_type.name()));
                return Some(Error::Pipeline {
                    file: pipeline.file.display_name().to_string(),
                    problems: vec![problem],
                });
            }
        }
    }
    None
}

/// Inline rows as an Arrow table: declared columns get their declared types, the others the
/// types their values suggest.
fn batch(
    test: &SegmentTest,
    name: &str,
    declared: &BTreeMap<String, ColumnType>,
    rows: &[Row],
) -> Result<RecordBatch> {
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| serde_json::Value::Object(row.clone().into_iter().collect()))
        .collect();
    let inferred = infer_json_schema_from_iterator(values.iter().map(|v| Ok(v.clone())))
        .map_err(|e| fixture_error(test, name, e.to_string()))?;
    let schema = Arc::new(declared_schema(&inferred, declared));
    if values.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    let reader = ReaderBuilder::new(schema.clone())
        .build(Cursor::new(text.into_bytes()))
        .map_err(|e| fixture_error(test, name, e.to_string()))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fixture_error(test, name, e.to_string()))?;
    datafusion::arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| fixture_error(test, name, e.to_string()))
}
