//! The one place that makes DataFusion sessions: every query segflow runs (a pipeline's stages,
//! statistics, comparisons of runs) goes through a session made here, so that `--memory-limit`
//! and `--threads` hold for all of them.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::Resources;
use super::functions;
use crate::error::Result;

/// Skip partial aggregation when groups exceed this share of rows (see [`embedded`]).
const SKIP_PARTIAL_AGGREGATION_RATIO: f64 = 0.5;

/// Share of `--memory-limit` given to DataFusion's memory pool. The rest is headroom for what the
/// pool does not account for (Parquet read buffers, batches in flight, the output writer), so
/// that the process stays near the limit the user asked for.
const POOL_SHARE: f64 = 0.8;

/// A session for running `as_of`'s pipeline: [`embedded`] with segflow's functions (`as_of()`,
/// the day bitmaps' `bit_count`, and string functions bounded in the size they make).
pub(crate) fn for_pipeline(as_of: NaiveDate, resources: &Resources) -> Result<SessionContext> {
    let ctx = embedded(resources)?;
    ctx.register_udf(functions::as_of(as_of));
    ctx.register_udf(functions::bit_count());
    for function in functions::bounded(&ctx) {
        ctx.register_udf(function);
    }
    Ok(ctx)
}

/// A session whose queries run on the Ballista cluster that `scheduler` (`df://HOST:PORT`)
/// leads, with segflow's settings. Its only function of segflow's is `as_of()`, which is
/// immutable and so folded into a literal before a plan leaves this process: stock executors
/// run the plans, and the day bitmaps' `bit_count` is not used (plan with portable shapes).
/// `resources.threads` sets the partitions each shuffle is split into; executors bring their
/// own memory limits.
#[cfg(feature = "ballista")]
pub(crate) async fn ballista(
    scheduler: &str,
    as_of: NaiveDate,
    resources: &Resources,
) -> Result<SessionContext> {
    use ballista::prelude::SessionContextExt;
    use datafusion::execution::SessionStateBuilder;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(settings(resources))
        .build();
    let ctx = SessionContext::remote_with_state(scheduler, state).await?;
    ctx.register_udf(functions::as_of(as_of));
    Ok(ctx)
}

/// An embedded DataFusion session within `resources`, with segflow's settings and no functions
/// of its own.
pub(crate) fn embedded(resources: &Resources) -> Result<SessionContext> {
    let mut config = settings(resources);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = resources.memory_limit {
        // A fair pool shares the limit among the operators that can spill (aggregations, joins,
        // sorts) instead of letting the first one take it all. Spill files go to the OS
        // temporary folder ($TMPDIR) and are removed when the run ends.
        let pool = (limit as f64 * POOL_SHARE) as usize;
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(pool)));
        // A sort keeps this much back to merge its spill files (10 MiB by default); under a
        // small limit that reservation alone would fail the run.
        let merge_reserve = (pool / 32).min(10 << 20);
        config = config.set_usize(
            "datafusion.execution.sort_spill_reservation_bytes",
            merge_reserve,
        );
    }
    Ok(SessionContext::new_with_config_rt(
        config,
        runtime.build_arc()?,
    ))
}

/// segflow's settings for every session, whatever runs its queries.
fn settings(resources: &Resources) -> SessionConfig {
    // Plain Utf8 strings in outputs, readable by every Parquet consumer.
    let mut config = SessionConfig::new()
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        );
    // Per-customer groups are nearly as many as the rows (a customer's events rarely share a
    // day), so a partial aggregation before the shuffle only costs time. DataFusion skips it when
    // a probe finds more groups than this share of the rows (default 0.8, just above the 0.79
    // measured on the example's (customer, day) groups at 1M customers).
    config
        .options_mut()
        .execution
        .skip_partial_aggregation_probe_ratio_threshold = SKIP_PARTIAL_AGGREGATION_RATIO;
    if let Some(threads) = resources.threads {
        config = config.with_target_partitions(threads.max(1));
    }
    config
}
