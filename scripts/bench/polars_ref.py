"""Reference implementation of pipelines/saas_quarterly.yaml as one Polars lazy query.

Run by scripts/bench/run as a process of its own:

    python polars_ref.py --data DIR --out segments.parquet

DIR holds customers.parquet, events.parquet, invoices.parquet and tickets.parquet (as made by
`segflow-datagen --format parquet`). Writes customer_id and segment to --out. Exit code 3 means
Polars ran out of memory; the last line on stdout is a JSON object with the query's seconds.
Threads: Polars' default (POLARS_MAX_THREADS, else one per core).

Semantics, as segflow's and tests/cli/example.rs's: as_of = 2026-10-01; a window of N days is
ts >= as_of - N days AND ts < as_of; events on or after as_of count for nothing, not even
last_event_date; counts and sums default to 0 / 0.0 for customers without rows;
last_event_date stays null; segments: first match wins in declared order, dormant the rest.
"""

import argparse
import json
import os
import sys
import time
from datetime import date, datetime, timedelta

import polars as pl

AS_OF = date(2026, 10, 1)
OUT_OF_MEMORY = 3


def query(data: str) -> pl.LazyFrame:
    as_of = datetime.combine(AS_OF, datetime.min.time())
    start_90 = as_of - timedelta(days=90)
    start_365 = AS_OF - timedelta(days=365)

    def scan(table: str) -> pl.LazyFrame:
        return pl.scan_parquet(os.path.join(data, f"{table}.parquet"))

    in_90 = pl.col("ts") >= start_90
    events = (
        scan("events")
        .filter(pl.col("ts") < as_of)
        .group_by("customer_id")
        .agg(
            pl.col("ts").filter(in_90).dt.date().n_unique().alias("active_days_90"),
            in_90.sum().alias("events_90"),
            pl.col("feature").filter(in_90).n_unique().alias("features_used_90"),
            pl.col("ts").max().dt.date().alias("last_event_date"),
        )
    )
    invoices = (
        scan("invoices")
        .filter((pl.col("invoice_date") >= start_365) & (pl.col("invoice_date") < AS_OF))
        .group_by("customer_id")
        .agg(pl.col("amount").sum().alias("revenue_12m"))
    )
    tickets = (
        scan("tickets")
        .filter((pl.col("created_at") >= start_90) & (pl.col("created_at") < as_of))
        .group_by("customer_id")
        .agg(pl.len().alias("tickets_90"))
    )
    features = (
        scan("customers")
        # entity.since: signup_date (a null date is kept).
        .filter(pl.col("signup_date").is_null() | (pl.col("signup_date") < AS_OF))
        .join(events, on="customer_id", how="left")
        .join(invoices, on="customer_id", how="left")
        .join(tickets, on="customer_id", how="left")
        .with_columns(
            pl.col("active_days_90", "events_90", "features_used_90", "tickets_90")
            .fill_null(0)
            .cast(pl.Int64),
            pl.col("revenue_12m").fill_null(0.0),
            (pl.lit(AS_OF) - pl.col("last_event_date")).dt.total_days().alias("days_since_last_event"),
            (pl.lit(AS_OF) - pl.col("signup_date")).dt.total_days().alias("tenure_days"),
            (pl.col("email_opt_in") & pl.col("email").is_not_null()).alias("email_reachable"),
        )
    )
    active = pl.col("active_days_90")
    segment = (
        pl.when((active >= 40) & (pl.col("features_used_90") >= 10))
        .then(pl.lit("power_users"))
        .when((pl.col("tenure_days") <= 120) & (active < 4) & (pl.col("tickets_90") >= 1))
        .then(pl.lit("struggling"))
        .when(active >= 10)
        .then(pl.lit("task_completers"))
        .when(active >= 1)
        .then(pl.lit("occasional"))
        .otherwise(pl.lit("dormant"))
        .alias("segment")
    )
    return features.select("customer_id", segment)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        query(os.path.abspath(args.data)).sink_parquet(os.path.abspath(args.out))
    except MemoryError as e:
        print(f"out of memory: {e!r}", file=sys.stderr)
        return OUT_OF_MEMORY
    except pl.exceptions.ComputeError as e:
        if "memory" in str(e).lower() and "alloc" in str(e).lower():
            print(f"out of memory: {e}", file=sys.stderr)
            return OUT_OF_MEMORY
        raise
    seconds = time.perf_counter() - started
    print(json.dumps({"engine": "polars", "version": pl.__version__, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
