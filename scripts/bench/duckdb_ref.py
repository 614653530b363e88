"""Reference implementation of pipelines/saas_quarterly.yaml in DuckDB (SQL in saas_quarterly.sql).

Run by scripts/bench/run as a process of its own:

    python duckdb_ref.py --data DIR --out segments.parquet [--threads 2]

DIR holds customers.parquet, events.parquet, invoices.parquet and tickets.parquet (as made by
`segflow-datagen --format parquet`). Writes customer_id and segment to --out. Exit code 3 means
DuckDB ran out of memory; the last line on stdout is a JSON object with the query's seconds.
"""

import argparse
import json
import os
import sys
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = ("customers", "events", "invoices", "tickets")
OUT_OF_MEMORY = 3


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sql", default=os.path.join(HERE, "saas_quarterly.sql"))
    parser.add_argument("--memory-limit", help="DuckDB's memory_limit (default: DuckDB's own)")
    args = parser.parse_args()

    started = time.perf_counter()
    with open(args.sql, encoding="utf-8") as f:
        query = f.read().strip().rstrip(";")
    # An in-memory database: DuckDB's default memory limit (80% of RAM) is left as it is; it
    # spills to a .tmp folder in the working directory, which the harness sets to a scratch folder.
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute("SET enable_progress_bar = false")
    if args.memory_limit:
        con.execute(f"SET memory_limit = {quote(args.memory_limit)}")
    for table in TABLES:
        path = os.path.join(os.path.abspath(args.data), f"{table}.parquet")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({quote(path)})")
    try:
        con.execute(f"COPY ({query}) TO {quote(os.path.abspath(args.out))} (FORMAT parquet)")
    except duckdb.OutOfMemoryException as e:
        print(f"out of memory: {e}", file=sys.stderr)
        return OUT_OF_MEMORY
    except MemoryError as e:
        print(f"out of memory: {e!r}", file=sys.stderr)
        return OUT_OF_MEMORY
    seconds = time.perf_counter() - started
    print(json.dumps({"engine": "duckdb", "version": duckdb.__version__, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
