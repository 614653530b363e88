//! Reading two finished run folders and measuring what changed between them with DataFusion:
//! who moved between segments (joining the assignments on the customer key) and how each
//! feature's distribution moved (bin counts for the population stability index).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::Deserialize;

use super::stats::{FeatureStats, query_rows};
use crate::error::{Error, Result};
use crate::pipeline::sql::ident;

/// The parts of a run's `segments.json` a comparison needs.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    /// Pipeline name and key.
    pub pipeline: PipelineRef,
    /// As-of date.
    pub as_of: String,
    /// Customers.
    pub customers: u64,
    /// Unassigned customers.
    pub unassigned: u64,
    /// Segments in rule order.
    pub segments: Vec<SegmentSummary>,
    /// Features with their types.
    pub features: Vec<FeatureRef>,
}

/// Pipeline identity in a run.
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineRef {
    /// Machine name.
    pub name: String,
    /// Entity key column.
    pub key: String,
}

/// A segment in a run.
#[derive(Debug, Clone, Deserialize)]
pub struct SegmentSummary {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Customers.
    pub customers: u64,
    /// Share of customers.
    pub share: f64,
    /// Feature statistics.
    pub features: Vec<FeatureStats>,
}

/// A feature in a run.
#[derive(Debug, Clone, Deserialize)]
pub struct FeatureRef {
    /// Name.
    pub name: String,
    /// Arrow type.
    pub data_type: String,
}

/// One run folder, read.
#[derive(Debug, Clone)]
pub struct RunFolder {
    /// Where it is.
    pub path: PathBuf,
    /// Its segments.json.
    pub summary: RunSummary,
    /// Its criteria.json, when present.
    pub criteria: Option<serde_json::Value>,
}

/// Customers counted by (old segment, new segment); `None` means unassigned, and `present`
/// says whether the customer was in the old and the new run.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationCell {
    /// Segment in the old run.
    pub old: Option<String>,
    /// Segment in the new run.
    pub new: Option<String>,
    /// In the old run.
    pub in_old: bool,
    /// In the new run.
    pub in_new: bool,
    /// Customers.
    pub customers: u64,
}

/// Counts of a feature's values per bin, per segment, in both runs.
#[derive(Debug, Clone)]
pub struct FeatureBins {
    /// The feature.
    pub feature: String,
    /// Bin edges: the old run's deciles over all customers (deduplicated).
    pub edges: Vec<f64>,
    /// Old run: segment → counts per bin.
    pub old: BTreeMap<String, Vec<u64>>,
    /// New run: segment → counts per bin.
    pub new: BTreeMap<String, Vec<u64>>,
}

/// What DataFusion measured about two runs.
#[derive(Debug, Clone)]
pub struct RunPair {
    /// The earlier run.
    pub old: RunFolder,
    /// The later run.
    pub new: RunFolder,
    /// The migration matrix cells.
    pub migration: Vec<MigrationCell>,
    /// Bin counts of every numeric feature both runs have.
    pub bins: Vec<FeatureBins>,
}

/// Read a run folder's summary files.
pub fn read_run(path: &Path) -> Result<RunFolder> {
    let read = |name: &str| -> Result<String> {
        let file = path.join(name);
        std::fs::read_to_string(&file).map_err(|source| Error::ReadFile { path: file, source })
    };
    let summary: RunSummary = serde_json::from_str(&read("segments.json")?).map_err(|e| {
        Error::data(
            format!(
                "{} is not a segflow run folder: segments.json: {e}",
                path.display()
            ),
            Some("pass a folder written by `segflow run`".into()),
        )
    })?;
    let criteria = read("criteria.json")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    Ok(RunFolder {
        path: path.to_path_buf(),
        summary,
        criteria,
    })
}

fn is_numeric(data_type: &str) -> bool {
    ["Int", "UInt", "Float", "Decimal"]
        .iter()
        .any(|p| data_type.starts_with(p))
}

/// Number of quantile edges used to bin features for the PSI (deciles).
const PSI_BINS: usize = 10;

/// Measure two finished runs.
pub async fn measure(old: RunFolder, new: RunFolder) -> Result<RunPair> {
    let ctx = SessionContext::new();
    for (name, run) in [("old", &old), ("new", &new)] {
        let file = run.path.join("assignments.parquet");
        if !file.is_file() {
            return Err(Error::ReadFile {
                path: file,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no assignments.parquet"),
            });
        }
        ctx.register_parquet(
            name,
            file.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
    }
    let (old_key, new_key) = (
        ident(&old.summary.pipeline.key),
        ident(&new.summary.pipeline.key),
    );
    let sql = format!(
        "SELECT o.segment, n.segment, o.k IS NOT NULL, n.k IS NOT NULL, count(*) \
         FROM (SELECT CAST({old_key} AS VARCHAR) AS k, segment FROM old) o \
         FULL OUTER JOIN (SELECT CAST({new_key} AS VARCHAR) AS k, segment FROM new) n ON o.k = n.k \
         GROUP BY 1, 2, 3, 4"
    );
    let migration = query_rows(&ctx, &sql)
        .await?
        .into_iter()
        .map(|row| MigrationCell {
            old: row[0].as_str().map(str::to_string),
            new: row[1].as_str().map(str::to_string),
            in_old: row[2].as_bool().unwrap_or(false),
            in_new: row[3].as_bool().unwrap_or(false),
            customers: row[4].as_u64().unwrap_or(0),
        })
        .collect();

    let mut bins = Vec::new();
    for feature in &new.summary.features {
        let in_old = old
            .summary
            .features
            .iter()
            .any(|f| f.name == feature.name && is_numeric(&f.data_type));
        if !in_old || !is_numeric(&feature.data_type) {
            continue;
        }
        let column = format!("CAST({} AS DOUBLE)", ident(&feature.name));
        let quantiles: Vec<String> = (1..PSI_BINS)
            .map(|i| {
                format!(
                    "percentile_cont({}) WITHIN GROUP (ORDER BY {column})",
                    i as f64 / PSI_BINS as f64
                )
            })
            .collect();
        let edges_row =
            query_rows(&ctx, &format!("SELECT {} FROM old", quantiles.join(", "))).await?;
        let mut edges: Vec<f64> = edges_row
            .first()
            .map(|row| row.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        edges.dedup();
        let bin = if edges.is_empty() {
            "0".to_string()
        } else {
            let branches: Vec<String> = edges
                .iter()
                .enumerate()
                .map(|(i, e)| format!("WHEN {column} < {e:?} THEN {i}"))
                .collect();
            format!("CASE {} ELSE {} END", branches.join(" "), edges.len())
        };
        let counts = |table_rows: Vec<Vec<serde_json::Value>>| {
            let mut by_segment: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for row in table_rows {
                let Some(segment) = row[0].as_str() else {
                    continue;
                };
                let slot = row[1].as_u64().unwrap_or(0) as usize;
                let counts = by_segment
                    .entry(segment.to_string())
                    .or_insert_with(|| vec![0; edges.len() + 1]);
                if let Some(c) = counts.get_mut(slot) {
                    *c += row[2].as_u64().unwrap_or(0);
                }
            }
            by_segment
        };
        let query = |table: &str| {
            format!(
                "SELECT segment, {bin} AS bin, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY 1, 2"
            )
        };
        let old_counts = counts(query_rows(&ctx, &query("old")).await?);
        let new_counts = counts(query_rows(&ctx, &query("new")).await?);
        bins.push(FeatureBins {
            feature: feature.name.clone(),
            edges,
            old: old_counts,
            new: new_counts,
        });
    }
    Ok(RunPair {
        old,
        new,
        migration,
        bins,
    })
}
