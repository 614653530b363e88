"""Run SQL in DuckDB and print the last statement's rows as JSON lines.

Used by the tests of `segflow compile --dialect duckdb` (tests/cli/compile.rs), with a Python
that has the `duckdb` package (.ci/run makes a venv for it):

    python duckdb_query.py SETUP.sql QUERY.sql

SETUP.sql holds statements run first (views over the test's files); QUERY.sql one statement.
A value JSON cannot hold (a date, a decimal) is printed as text.
"""

import json
import sys

import duckdb


def main():
    setup_file, query_file = sys.argv[1:]
    con = duckdb.connect()
    with open(setup_file, encoding="utf-8") as f:
        con.execute(f.read())
    with open(query_file, encoding="utf-8") as f:
        sql = f.read().strip().rstrip(";")
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description]
    for row in cursor.fetchall():
        print(json.dumps(dict(zip(columns, row)), default=str))


if __name__ == "__main__":
    main()
