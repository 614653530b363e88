"""An independent computation of segflow's cohort tables with DuckDB, for tests/cli/cohorts.rs.

    python cohorts.py ASSIGNMENTS.parquet EVENTS AS_OF PERIODS WINDOW_DAYS

It reads a run's assignments (key `customer_id`, `segment`, `signup_date`) and the event file
(`customer_id`, `ts`; Parquet or CSV), and prints one JSON object: for all customers (`"*"`) and
for each segment, each monthly cohort's label, customers and the customers active at the end of
each later month (null when that end is after AS_OF). Active at an end E means at least one event
with ts in [E - WINDOW_DAYS days, E), which is what `active_days_90 > 0` says. It uses none of
segflow's SQL: the months come from DuckDB's date_trunc and intervals, the activity from a
correlated EXISTS per (customer, end).
"""

import datetime
import json
import sys

import duckdb


def months_before(day, n):
    """The first day of the month n months before day's month."""
    index = day.year * 12 + day.month - 1 - n
    return datetime.date(index // 12, index % 12 + 1, 1)


def main():
    assignments, events, as_of, periods, window = sys.argv[1:]
    as_of = datetime.date.fromisoformat(as_of)
    periods, window = int(periods), int(window)
    last_day = as_of - datetime.timedelta(days=1)
    cohorts = [months_before(last_day, periods - 1 - i) for i in range(periods)]
    con = duckdb.connect()
    reader = "read_parquet" if events.endswith(".parquet") else "read_csv_auto"
    con.execute(f"CREATE VIEW events AS SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts FROM {reader}('{events}')")
    con.execute(
        f"""CREATE VIEW cohort AS
        SELECT customer_id, segment, CAST(date_trunc('month', signup_date) AS DATE) AS cohort
        FROM read_parquet('{assignments}')
        WHERE signup_date >= DATE '{cohorts[0]}' AND signup_date < DATE '{as_of}'"""
    )
    tables = {}
    for cohort in cohorts:
        ends = [months_before(cohort, -(k + 1)) for k in range(1, periods + 1)]
        rows = con.execute(
            "SELECT coalesce(segment, '(unassigned)'), customer_id FROM cohort WHERE cohort = ?",
            [cohort],
        ).fetchall()
        for end_index, end in enumerate(ends):
            if end > as_of:
                continue
            active = con.execute(
                f"""SELECT coalesce(segment, '(unassigned)'), count(*) FROM cohort c
                WHERE c.cohort = ? AND EXISTS (
                    SELECT 1 FROM events e WHERE e.customer_id = c.customer_id
                    AND e.ts < CAST(? AS TIMESTAMP)
                    AND e.ts >= CAST(? AS TIMESTAMP) - INTERVAL {window} DAY)
                GROUP BY 1""",
                [cohort, end, end],
            ).fetchall()
            for segment, n in active:
                for name in ("*", segment):
                    cell = cell_of(tables, name, cohort, periods)
                    cell["active"][end_index] = (cell["active"][end_index] or 0) + n
        for segment, _ in rows:
            for name in ("*", segment):
                cell_of(tables, name, cohort, periods)["customers"] += 1
        # Observed ends with nobody active are 0, not null.
        for table in tables.values():
            cell = table.get(cohort.strftime("%Y-%m"))
            if cell is None:
                continue
            for end_index, end in enumerate(ends):
                if end <= as_of and cell["active"][end_index] is None:
                    cell["active"][end_index] = 0
    print(json.dumps(tables, sort_keys=True))


def cell_of(tables, name, cohort, periods):
    table = tables.setdefault(name, {})
    return table.setdefault(
        cohort.strftime("%Y-%m"), {"customers": 0, "active": [None] * periods}
    )


if __name__ == "__main__":
    main()
