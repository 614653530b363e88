-- pipelines/saas_quarterly.yaml's features and segments, written by hand for DuckDB.
--
-- The tables customers, events, invoices and tickets are views over the benchmark's Parquet
-- files (made by duckdb_ref.py). Semantics, as segflow's and tests/cli/example.rs's:
--   as_of = 2026-10-01; a window of N days is ts >= as_of - N days AND ts < as_of;
--   events on or after as_of count for nothing, not even last_event_date;
--   counts and sums default to 0 / 0.0 for customers without rows; last_event_date stays NULL;
--   customers who signed up on or after as_of are left out (entity.since), a null date kept;
--   segments: first match wins in declared order, dormant catches the rest.
WITH
params AS (
    SELECT
        DATE '2026-10-01' AS as_of,
        CAST(DATE '2026-10-01' - INTERVAL 90 DAY AS DATE) AS start_90,
        CAST(DATE '2026-10-01' - INTERVAL 365 DAY AS DATE) AS start_365
),
event_features AS (
    SELECT
        e.customer_id,
        count(DISTINCT CAST(e.ts AS DATE)) FILTER (WHERE e.ts >= p.start_90) AS active_days_90,
        count(*) FILTER (WHERE e.ts >= p.start_90) AS events_90,
        count(DISTINCT e.feature) FILTER (WHERE e.ts >= p.start_90) AS features_used_90,
        max(CAST(e.ts AS DATE)) AS last_event_date
    FROM events e, params p
    WHERE e.ts < p.as_of
    GROUP BY e.customer_id
),
invoice_features AS (
    SELECT i.customer_id, sum(i.amount) AS revenue_12m
    FROM invoices i, params p
    WHERE i.invoice_date >= p.start_365 AND i.invoice_date < p.as_of
    GROUP BY i.customer_id
),
ticket_features AS (
    SELECT t.customer_id, count(*) AS tickets_90
    FROM tickets t, params p
    WHERE t.created_at >= p.start_90 AND t.created_at < p.as_of
    GROUP BY t.customer_id
),
features AS (
    SELECT
        c.customer_id,
        coalesce(e.active_days_90, 0) AS active_days_90,
        coalesce(e.events_90, 0) AS events_90,
        coalesce(e.features_used_90, 0) AS features_used_90,
        e.last_event_date,
        p.as_of - e.last_event_date AS days_since_last_event,
        p.as_of - c.signup_date AS tenure_days,
        coalesce(i.revenue_12m, 0.0) AS revenue_12m,
        coalesce(t.tickets_90, 0) AS tickets_90,
        c.email_opt_in AND c.email IS NOT NULL AS email_reachable
    FROM customers c
    CROSS JOIN params p
    LEFT JOIN event_features e ON e.customer_id = c.customer_id
    LEFT JOIN invoice_features i ON i.customer_id = c.customer_id
    LEFT JOIN ticket_features t ON t.customer_id = c.customer_id
    -- entity.since: signup_date: customers who joined on or after as_of are not yet customers.
    WHERE c.signup_date IS NULL OR c.signup_date < p.as_of
)
SELECT
    customer_id,
    CASE
        WHEN active_days_90 >= 40 AND features_used_90 >= 10 THEN 'power_users'
        WHEN tenure_days <= 120 AND active_days_90 < 4 AND tickets_90 >= 1 THEN 'struggling'
        WHEN active_days_90 >= 10 THEN 'task_completers'
        WHEN active_days_90 >= 1 THEN 'occasional'
        ELSE 'dormant'
    END AS segment
FROM features
