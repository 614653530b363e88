"""Independent figures for tests/cli/profiles.rs, computed by DuckDB and plain Python from a
run's assignments.parquet of pipelines/saas_quarterly.yaml:

    python profiles_oracle.py ASSIGNMENTS.parquet

Prints one JSON object: customers per (category feature, segment, value); per concentration
feature the Gini coefficient as the mean absolute difference over twice the mean, and the Lorenz
curve at every twentieth of customers; chi-square and Cramer's V of every pair of segments on
`plan`; the ideal customer profile's customers and revenue.
"""

import json
import math
import sys

import duckdb

CATEGORIES = ["email_reachable", "plan", "industry"]
CONCENTRATION = ["revenue_12m", "tickets_90"]
ICP = "active_days_90 >= 30 AND revenue_12m >= 1000"


def main():
    path = sys.argv[1]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW a AS SELECT * FROM read_parquet('{path}')")
    counts = {}
    for feature in CATEGORIES:
        rows = con.execute(
            f"SELECT coalesce(segment, '(unassigned)'), coalesce(CAST({feature} AS VARCHAR), '(null)'), count(*) "
            f"FROM a GROUP BY ALL"
        ).fetchall()
        table = counts.setdefault(feature, {})
        for segment, value, n in rows:
            table.setdefault(segment, {})[value] = n

    concentration = {}
    for feature in CONCENTRATION:
        (mad, mean, n) = con.execute(
            f"SELECT avg(abs(x.v - y.v)), (SELECT avg({feature}) FROM a WHERE {feature} IS NOT NULL), "
            f"(SELECT count({feature}) FROM a) "
            f"FROM (SELECT {feature} AS v FROM a WHERE {feature} IS NOT NULL) x, "
            f"(SELECT {feature} AS v FROM a WHERE {feature} IS NOT NULL) y"
        ).fetchone()
        values = sorted(
            float(v) for (v,) in con.execute(f"SELECT {feature} FROM a WHERE {feature} IS NOT NULL").fetchall()
        )
        total = sum(values)
        lorenz = [0.0]
        for k in range(1, 21):
            upto = math.floor(k * n / 20 + 1e-9)
            lorenz.append(sum(values[:upto]) / total)
        concentration[feature] = {"gini": mad / (2 * mean), "lorenz": lorenz}

    plan = counts["plan"]
    values = sorted({v for segment in plan.values() for v in segment})
    segments = [s for s in plan if s != "(unassigned)"]
    pairs = {}
    for a in segments:
        for b in segments:
            if a == b:
                continue
            table = [[plan[s].get(v, 0) for v in values] for s in (a, b)]
            keep = [j for j in range(len(values)) if table[0][j] + table[1][j] > 0]
            table = [[row[j] for j in keep] for row in table]
            n = sum(map(sum, table))
            rows = [sum(r) for r in table]
            cols = [table[0][j] + table[1][j] for j in range(len(keep))]
            chi = sum(
                (table[r][j] - rows[r] * cols[j] / n) ** 2 / (rows[r] * cols[j] / n)
                for r in range(2)
                for j in range(len(keep))
            )
            pairs[f"{a}~{b}"] = {"chi_square": chi, "cramers_v": math.sqrt(chi / n)}

    (customers, revenue) = con.execute(f"SELECT count(*), sum(revenue_12m) FROM a WHERE {ICP}").fetchone()
    print(
        json.dumps(
            {
                "counts": counts,
                "concentration": concentration,
                "pairs": pairs,
                "icp": {"customers": customers, "revenue_12m": float(revenue)},
            }
        )
    )


if __name__ == "__main__":
    main()
