-- segflow plan of `saas_quarterly` as of 2026-10-01: 6 stages

-- stage 1: the customers as of 2026-10-01: rows of customers joined before then
CREATE VIEW "__segflow_step_0" AS
SELECT * FROM "customers" WHERE ("signup_date" IS NULL OR "signup_date" < DATE '2026-10-01');

-- stage 2: the customers, left-joined with: GROUP BY of events (last_event_date); two-level GROUP BY of events, last 90 days (features_used_90, events_90); GROUP BY of events, last 90 days (active_days_90); GROUP BY of invoices (revenue_to_date); GROUP BY of invoices, last 365 days (revenue_12m); GROUP BY of tickets, last 90 days (tickets_90)
CREATE VIEW "__segflow_step_1" AS
SELECT e."customer_id", e."company_size", e."industry", e."country", e."plan", e."signup_date", e."email_opt_in", e."email", a0_0."last_event_date" AS "last_event_date", COALESCE(a1_1."active_days_90", 0) AS "active_days_90", COALESCE(a1_0."events_90", 0) AS "events_90", COALESCE(a1_0."features_used_90", 0) AS "features_used_90", COALESCE(a2_0."revenue_to_date", 0.0) AS "revenue_to_date", COALESCE(a3_0."revenue_12m", 0.0) AS "revenue_12m", COALESCE(a4_0."tickets_90", 0) AS "tickets_90"
FROM "__segflow_step_0" AS e
  LEFT JOIN (SELECT "customer_id" AS "__segflow_key", (CAST(max(ts) AS DATE)) AS "last_event_date" FROM "events" WHERE "ts" < TIMESTAMP '2026-10-01 00:00:00' GROUP BY "customer_id") AS a0_0 ON e."customer_id" = a0_0."__segflow_key"
  LEFT JOIN (SELECT k AS "__segflow_key", count(v) AS "features_used_90", sum(p0) AS "events_90" FROM (SELECT "customer_id" AS k, (feature) AS v, count(*) AS p0 FROM "events" WHERE "ts" < TIMESTAMP '2026-10-01 00:00:00' AND "ts" >= TIMESTAMP '2026-07-03 00:00:00' GROUP BY "customer_id", (feature)) GROUP BY k) AS a1_0 ON e."customer_id" = a1_0."__segflow_key"
  LEFT JOIN (SELECT "customer_id" AS "__segflow_key", (COALESCE(bit_count(bit_or(CASE WHEN (CAST(ts AS DATE) - DATE '2026-07-03') >= 0 AND (CAST(ts AS DATE) - DATE '2026-07-03') < 62 THEN CAST(1 AS BIGINT) << ((CAST(ts AS DATE) - DATE '2026-07-03') - 0) END)), 0) + COALESCE(bit_count(bit_or(CASE WHEN (CAST(ts AS DATE) - DATE '2026-07-03') >= 62 AND (CAST(ts AS DATE) - DATE '2026-07-03') < 124 THEN CAST(1 AS BIGINT) << ((CAST(ts AS DATE) - DATE '2026-07-03') - 62) END)), 0)) AS "active_days_90" FROM "events" WHERE "ts" < TIMESTAMP '2026-10-01 00:00:00' AND "ts" >= TIMESTAMP '2026-07-03 00:00:00' GROUP BY "customer_id") AS a1_1 ON e."customer_id" = a1_1."__segflow_key"
  LEFT JOIN (SELECT "customer_id" AS "__segflow_key", (sum(CAST(round(amount * 100) AS BIGINT)) / 100.0) AS "revenue_to_date" FROM "invoices" WHERE "invoice_date" < DATE '2026-10-01' GROUP BY "customer_id") AS a2_0 ON e."customer_id" = a2_0."__segflow_key"
  LEFT JOIN (SELECT "customer_id" AS "__segflow_key", (sum(amount)) AS "revenue_12m" FROM "invoices" WHERE "invoice_date" < DATE '2026-10-01' AND "invoice_date" >= DATE '2025-10-01' GROUP BY "customer_id") AS a3_0 ON e."customer_id" = a3_0."__segflow_key"
  LEFT JOIN (SELECT "customer_id" AS "__segflow_key", (count(*)) AS "tickets_90" FROM "tickets" WHERE "created_at" < TIMESTAMP '2026-10-01 00:00:00' AND "created_at" >= TIMESTAMP '2026-07-03 00:00:00' GROUP BY "customer_id") AS a4_0 ON e."customer_id" = a4_0."__segflow_key";

-- stage 3: features `days_since_last_event`, `signup_date`, `email_reachable`, `plan`, `industry`
CREATE VIEW "__segflow_step_2" AS
SELECT "customer_id", "company_size", "country", "email_opt_in", "email", "last_event_date", "active_days_90", "events_90", "features_used_90", "revenue_to_date", "revenue_12m", "tickets_90", (as_of() - last_event_date) AS "days_since_last_event", (signup_date) AS "signup_date", (email_opt_in AND email IS NOT NULL) AS "email_reachable", (plan) AS "plan", (industry) AS "industry" FROM "__segflow_step_1";

-- stage 4: feature `tenure_days`
CREATE VIEW "__segflow_step_3" AS
SELECT "customer_id", "company_size", "country", "email_opt_in", "email", "last_event_date", "active_days_90", "events_90", "features_used_90", "revenue_to_date", "revenue_12m", "tickets_90", "days_since_last_event", "signup_date", "email_reachable", "plan", "industry", (as_of() - signup_date) AS "tenure_days" FROM "__segflow_step_2";

-- stage 5: NaN is no value: null in every floating-point column
CREATE VIEW "__segflow_step_4" AS
SELECT "customer_id", "company_size", "country", "email_opt_in", "email", "last_event_date", "active_days_90", "events_90", "features_used_90", CASE WHEN isnan("revenue_to_date") THEN NULL ELSE "revenue_to_date" END AS "revenue_to_date", CASE WHEN isnan("revenue_12m") THEN NULL ELSE "revenue_12m" END AS "revenue_12m", "tickets_90", "days_since_last_event", "signup_date", "email_reachable", "plan", "industry", "tenure_days" FROM "__segflow_step_3";

-- stage 6: segments: the first rule that matches, in order
SELECT "customer_id", CAST(CASE
    WHEN (active_days_90 >= 40 AND features_used_90 >= 10) THEN 'power_users'
    WHEN (tenure_days <= 120 AND active_days_90 < 4 AND tickets_90 >= 1) THEN 'struggling'
    WHEN (active_days_90 >= 10) THEN 'task_completers'
    WHEN (active_days_90 >= 1) THEN 'occasional'
    ELSE 'dormant'
  END AS VARCHAR) AS "segment", "active_days_90", "events_90", "features_used_90", "last_event_date", "days_since_last_event", "tenure_days", "revenue_12m", "signup_date", "revenue_to_date", "tickets_90", "email_reachable", "plan", "industry"
FROM "__segflow_step_4"
ORDER BY "customer_id";
