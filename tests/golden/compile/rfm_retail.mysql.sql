-- segflow compile of `rfm_retail` as of 2026-10-01 for mysql (unverified: not run by segflow's tests)
-- reads customers, transactions; one row per customer: key, segment, then every feature
WITH
-- the customers as of 2026-10-01: rows of customers joined before then
`__segflow_step_0` AS (
SELECT * FROM `customers` WHERE (`signup_date` IS NULL OR `signup_date` < DATE '2026-10-01')
),
-- the customers, left-joined with: GROUP BY of transactions (last_purchase); GROUP BY of transactions, last 365 days (frequency, monetary)
`__segflow_step_1` AS (
SELECT e.`customer_id`, e.`signup_date`, e.`country`, a0_0.`last_purchase` AS `last_purchase`, COALESCE(a1_0.`frequency`, 0) AS `frequency`, COALESCE(a1_0.`monetary`, CAST(0.0 AS DOUBLE)) AS `monetary` FROM `__segflow_step_0` AS e LEFT JOIN (SELECT `customer_id` AS `__segflow_key`, (max(date)) AS `last_purchase` FROM `transactions` WHERE `date` < DATE '2026-10-01' GROUP BY `customer_id`) AS a0_0 ON e.`customer_id` = a0_0.`__segflow_key` LEFT JOIN (SELECT `customer_id` AS `__segflow_key`, (count(*)) AS `frequency`, (sum(amount)) AS `monetary` FROM `transactions` WHERE `date` < DATE '2026-10-01' AND `date` >= DATE '2025-10-01' GROUP BY `customer_id`) AS a1_0 ON e.`customer_id` = a1_0.`__segflow_key`
),
-- features `recency_days`, `f_score`, `m_score`, `spend_band`
`__segflow_step_2` AS (
SELECT `customer_id`, `signup_date`, `country`, `last_purchase`, `frequency`, `monetary`, (DATEDIFF(DATE '2026-10-01', CAST(last_purchase AS DATE))) AS `recency_days`, (CAST(CASE WHEN `frequency` IS NULL THEN NULL ELSE ntile(5) OVER (PARTITION BY `frequency` IS NULL ORDER BY `frequency` IS NULL ASC, `frequency` ASC, `customer_id` IS NULL ASC, `customer_id`) END AS SIGNED)) AS `f_score`, (CAST(CASE WHEN (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) IS NULL THEN NULL ELSE ntile(5) OVER (PARTITION BY (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) IS NULL ORDER BY (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) IS NULL ASC, (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) ASC, `customer_id` IS NULL ASC, `customer_id`) END AS SIGNED)) AS `m_score`, (CAST(CASE WHEN (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) IS NULL THEN NULL ELSE CASE WHEN (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) < CAST(100.0 AS DOUBLE) THEN 1 WHEN (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) < CAST(500.0 AS DOUBLE) THEN 2 WHEN (CASE WHEN (`monetary` IS NULL AND false) THEN NULL WHEN abs(`monetary`) = 0 THEN 0 ELSE `monetary` END) < CAST(1500.0 AS DOUBLE) THEN 3 ELSE 4 END END AS SIGNED)) AS `spend_band` FROM `__segflow_step_1`
),
-- feature `r_score`
`__segflow_step_3` AS (
SELECT `customer_id`, `signup_date`, `country`, `last_purchase`, `frequency`, `monetary`, `recency_days`, `f_score`, `m_score`, `spend_band`, (CAST(CASE WHEN `recency_days` IS NULL THEN NULL ELSE ntile(5) OVER (PARTITION BY `recency_days` IS NULL ORDER BY `recency_days` IS NULL DESC, `recency_days` DESC, `customer_id` IS NULL ASC, `customer_id`) END AS SIGNED)) AS `r_score` FROM `__segflow_step_2`
),
-- NaN is no value: null in every floating-point column
`__segflow_step_4` AS (
SELECT `customer_id`, `signup_date`, `country`, `last_purchase`, `frequency`, CASE WHEN (`monetary` IS NULL AND false) THEN NULL ELSE `monetary` END AS `monetary`, `recency_days`, `f_score`, `m_score`, `spend_band`, `r_score` FROM `__segflow_step_3`
)
SELECT `customer_id`, CAST(CASE WHEN (r_score >= 4 AND f_score >= 4 AND m_score >= 4) THEN 'champions' WHEN (f_score >= 4 AND r_score >= 3) THEN 'loyal' WHEN (r_score >= 4 AND f_score <= 2) THEN 'new_customers' WHEN (r_score <= 2 AND f_score >= 3) THEN 'at_risk' WHEN (r_score <= 2) THEN 'hibernating' WHEN (r_score IS NULL) THEN 'never_bought' ELSE 'need_attention' END AS CHAR) AS `segment`, `last_purchase`, `recency_days`, `frequency`, `monetary`, `r_score`, `f_score`, `m_score`, `spend_band` FROM `__segflow_step_4` ORDER BY `customer_id`;
