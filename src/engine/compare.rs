//! Measuring what changed between two runs' assignments with DataFusion: who moved between
//! segments (joining the assignments on the customer key) and how each feature's distribution
//! moved (bin counts for the population stability index).

use std::collections::BTreeMap;
use std::path::PathBuf;

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use super::Resources;
use super::stats::query_rows;
use crate::error::Result;
use crate::pipeline::sql::ident;

/// A run's assignments file and the column holding the customer key.
#[derive(Debug, Clone)]
pub struct Assignments {
    /// The `assignments.parquet` file.
    pub path: PathBuf,
    /// The key column.
    pub key: String,
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

/// How a feature's values are binned for the population stability index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binning {
    /// Numbers: at the old run's deciles over all customers.
    Deciles,
    /// True/false and text: one bin per value seen in either run.
    Values,
}

impl Binning {
    /// How a feature of Arrow type `data_type` (as written in segments.json) is binned, if at
    /// all.
    pub fn of(data_type: &str) -> Option<Binning> {
        if is_numeric(data_type) {
            Some(Binning::Deciles)
        } else if data_type == "Boolean" || data_type.contains("Utf8") {
            Some(Binning::Values)
        } else {
            None
        }
    }
}

/// Most distinct values a true/false or text feature may have for a PSI per value; beyond it
/// (e-mail addresses, ids) shares per value say nothing about drift.
pub const MAX_PSI_VALUES: usize = 50;

/// Counts of a feature's values per bin, per segment, in both runs.
#[derive(Debug, Clone)]
pub struct FeatureBins {
    /// The feature.
    pub feature: String,
    /// Bin edges: the old run's deciles over all customers (deduplicated); empty for values.
    pub edges: Vec<f64>,
    /// Bin labels when binned by value, in order; empty for numbers.
    pub values: Vec<String>,
    /// Old run: segment → counts per bin.
    pub old: BTreeMap<String, Vec<u64>>,
    /// New run: segment → counts per bin.
    pub new: BTreeMap<String, Vec<u64>>,
}

/// What DataFusion measured about two runs.
#[derive(Debug, Clone)]
pub struct RunMeasures {
    /// The migration matrix cells.
    pub migration: Vec<MigrationCell>,
    /// Bin counts of every feature both runs have that can be binned.
    pub bins: Vec<FeatureBins>,
    /// Features left without a PSI, with the reason.
    pub unbinned: Vec<String>,
}

/// Whether a feature of Arrow type `data_type` (as written in segments.json) is binned for the
/// PSI.
pub fn is_numeric(data_type: &str) -> bool {
    ["Int", "UInt", "Float", "Decimal"]
        .iter()
        .any(|p| data_type.starts_with(p))
}

/// Number of quantile edges used to bin features for the PSI (deciles).
const PSI_BINS: usize = 10;

/// Measure what changed between the assignments of two runs: the migration between segments,
/// and the bin counts of each of `features` (both runs have them, binned as given), within
/// `resources`.
pub async fn measure(
    old: &Assignments,
    new: &Assignments,
    features: &[(String, Binning)],
    resources: &Resources,
) -> Result<RunMeasures> {
    let ctx = both_runs(old, new, resources).await?;
    let (old_key, new_key) = (ident(&old.key), ident(&new.key));
    let sql = format!(
        "SELECT o.segment, n.segment, o.k IS NOT NULL, n.k IS NOT NULL, count(*) \
         FROM (SELECT CAST({old_key} AS VARCHAR) AS k, segment FROM old) o \
         FULL OUTER JOIN (SELECT CAST({new_key} AS VARCHAR) AS k, segment FROM new) n ON o.k = n.k \
         GROUP BY 1, 2, 3, 4"
    );
    let migration = migration_cells(query_rows(&ctx, &sql).await?);

    let mut bins = Vec::new();
    let mut unbinned = Vec::new();
    for (feature, binning) in features {
        if *binning == Binning::Values {
            match value_bins(&ctx, feature).await? {
                Ok(feature_bins) => bins.push(feature_bins),
                Err(reason) => unbinned.push(reason),
            }
            continue;
        }
        let column = format!("CAST({} AS DOUBLE)", ident(feature));
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
            feature: feature.clone(),
            edges,
            values: Vec::new(),
            old: old_counts,
            new: new_counts,
        });
    }
    Ok(RunMeasures {
        migration,
        bins,
        unbinned,
    })
}

/// A session holding two runs' assignments as tables `old` and `new`, within `resources`.
async fn both_runs(
    old: &Assignments,
    new: &Assignments,
    resources: &Resources,
) -> Result<SessionContext> {
    let ctx = super::session::embedded(resources)?;
    for (name, run) in [("old", old), ("new", new)] {
        // As a URL: a run folder's name may hold `[`, which a plain path would make a glob.
        ctx.register_parquet(
            name,
            &super::location::literal(&run.path)?,
            ParquetReadOptions::default(),
        )
        .await?;
    }
    Ok(ctx)
}

/// Migration cells from rows of (old segment, new segment, in old, in new, customers).
fn migration_cells(rows: Vec<Vec<serde_json::Value>>) -> Vec<MigrationCell> {
    rows.into_iter()
        .map(|row| MigrationCell {
            old: row[0].as_str().map(str::to_string),
            new: row[1].as_str().map(str::to_string),
            in_old: row[2].as_bool().unwrap_or(false),
            in_new: row[3].as_bool().unwrap_or(false),
            customers: row[4].as_u64().unwrap_or(0),
        })
        .collect()
}

/// Counts per segment of each value of true/false or text `feature` in tables `old` and `new`,
/// or why it has no PSI (too many values).
async fn value_bins(
    ctx: &SessionContext,
    feature: &str,
) -> Result<std::result::Result<FeatureBins, String>> {
    let query = |table: &str| {
        format!(
            "SELECT segment, CAST({0} AS VARCHAR), count(*) FROM {table} WHERE {0} IS NOT NULL \
             GROUP BY 1, 2",
            ident(feature)
        )
    };
    let (old_rows, new_rows) = (
        query_rows(ctx, &query("old")).await?,
        query_rows(ctx, &query("new")).await?,
    );
    let values: Vec<String> = old_rows
        .iter()
        .chain(&new_rows)
        .filter_map(|row| row[1].as_str().map(str::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if values.len() > MAX_PSI_VALUES {
        return Ok(Err(format!(
            "feature `{feature}` has {} distinct values, more than the {MAX_PSI_VALUES} a PSI per value is measured for",
            values.len()
        )));
    }
    let counts = |rows: Vec<Vec<serde_json::Value>>| {
        let mut by_segment: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for row in rows {
            let (Some(segment), Some(value)) = (row[0].as_str(), row[1].as_str()) else {
                continue;
            };
            let Ok(slot) = values.binary_search_by(|v| v.as_str().cmp(value)) else {
                continue;
            };
            by_segment
                .entry(segment.to_string())
                .or_insert_with(|| vec![0; values.len()])[slot] += row[2].as_u64().unwrap_or(0);
        }
        by_segment
    };
    let (old, new) = (counts(old_rows), counts(new_rows));
    Ok(Ok(FeatureBins {
        feature: feature.to_string(),
        edges: Vec::new(),
        values,
        old,
        new,
    }))
}

/// A cell of the migration matrix: (old segment, new segment), `None` for unassigned.
pub type Cell = (Option<String>, Option<String>);

/// Up to `per_cell` keys of the customers in both runs of each (old segment, new segment) cell
/// whose segment changed (`None`: unassigned). The keys are chosen by the SHA-256 of their text,
/// lowest first: the same change gives the same sample, and it does not favour low keys.
pub async fn moved_samples(
    old: &Assignments,
    new: &Assignments,
    per_cell: usize,
    resources: &Resources,
) -> Result<BTreeMap<Cell, Vec<String>>> {
    if per_cell == 0 {
        return Ok(BTreeMap::new());
    }
    let ctx = both_runs(old, new, resources).await?;
    let (old_key, new_key) = (ident(&old.key), ident(&new.key));
    let sql = format!(
        "SELECT o.segment, n.segment, o.k \
         FROM (SELECT CAST({old_key} AS VARCHAR) AS k, segment FROM old) o \
         JOIN (SELECT CAST({new_key} AS VARCHAR) AS k, segment FROM new) n ON o.k = n.k \
         WHERE o.segment IS DISTINCT FROM n.segment"
    );
    Ok(sample_moved(query_rows(&ctx, &sql).await?, per_cell))
}

/// Who moved between two versions' segments of the same customers, held side by side in
/// columns `old` and `new` of `table` with the key `key`: the migration matrix, and up to
/// `per_cell` keys of each changed cell chosen as by [`moved_samples`]. No join: one row is one
/// customer in both versions.
pub async fn moves_between_columns(
    ctx: &SessionContext,
    table: &str,
    key: &str,
    [old, new]: [&str; 2],
    per_cell: usize,
) -> Result<(Vec<MigrationCell>, BTreeMap<Cell, Vec<String>>)> {
    let (table, key, old, new) = (ident(table), ident(key), ident(old), ident(new));
    let counted = format!(
        "SELECT {old}, {new}, true AS in_old, true AS in_new, count(*) FROM {table} GROUP BY 1, 2 ORDER BY 1, 2"
    );
    let migration = migration_cells(query_rows(ctx, &counted).await?);
    if per_cell == 0 || migration.iter().all(|c| c.old == c.new) {
        return Ok((migration, BTreeMap::new()));
    }
    let moved = format!(
        "SELECT {old}, {new}, CAST({key} AS VARCHAR) FROM {table} \
         WHERE {old} IS DISTINCT FROM {new}"
    );
    let samples = sample_moved(query_rows(ctx, &moved).await?, per_cell);
    Ok((migration, samples))
}

/// Up to `per_cell` keys of each cell from rows of (old segment, new segment, key), lowest
/// SHA-256 of the key first.
fn sample_moved(rows: Vec<Vec<serde_json::Value>>, per_cell: usize) -> BTreeMap<Cell, Vec<String>> {
    use sha2::{Digest, Sha256};
    let mut cells: BTreeMap<Cell, Vec<([u8; 32], String)>> = BTreeMap::new();
    for row in rows {
        let key = row[2].as_str().unwrap_or_default().to_string();
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let cell = cells
            .entry((
                row[0].as_str().map(str::to_string),
                row[1].as_str().map(str::to_string),
            ))
            .or_default();
        cell.push((digest, key));
        // Keep the memory to a few samples per cell however many customers moved.
        if cell.len() >= per_cell * 64 {
            cell.sort_unstable();
            cell.truncate(per_cell);
        }
    }
    cells
        .into_iter()
        .map(|(cell, mut keys)| {
            keys.sort_unstable();
            keys.truncate(per_cell);
            (cell, keys.into_iter().map(|(_, key)| key).collect())
        })
        .collect()
}
