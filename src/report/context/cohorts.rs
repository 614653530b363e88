//! The template context of `cohorts.json`: cohort tables as heatmap rows and lifetime value by
//! segment, with small cohorts and masked segments left out.

use schemars::JsonSchema;
use serde::Serialize;

/// Cohorts and retention, and lifetime value, when `cohorts` is declared.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CohortsCard {
    /// The date feature cohorts are formed by.
    pub by: String,
    /// `month` or `quarter`.
    pub period: String,
    /// The aggregate feature that says who is active.
    pub active: String,
    /// Retention steps: 1, 2, ... `periods`.
    pub steps: Vec<u32>,
    /// All customers first, then every segment in rule order.
    pub tables: Vec<CohortTableCard>,
    /// Lifetime value by segment, when declared.
    pub lifetime_value: Option<LifetimeValueCard>,
}

/// One segment's cohort table (or all customers').
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CohortTableCard {
    /// Segment id; `null` for all customers.
    pub segment: Option<String>,
    /// Name for people.
    pub name: String,
    /// Whether the segment's size is masked: the table is left out.
    pub masked: bool,
    /// Customers in its cohorts (`null` when masked).
    pub customers: Option<u64>,
    /// The cohorts, oldest first (empty when masked).
    pub rows: Vec<CohortRowCard>,
}

/// One cohort.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CohortRowCard {
    /// Label: `2026-01` or `2026-Q1`.
    pub cohort: String,
    /// Customers (`null` when masked).
    pub customers: Option<u64>,
    /// Whether the cohort is a small cell: its size and shares are masked.
    pub masked: bool,
    /// Share active after 1, 2, ... periods; `null` when not observed yet, empty or masked.
    pub retention: Vec<Option<f64>>,
}

/// Lifetime value by segment with its assumptions.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LifetimeValueCard {
    /// The value-to-date feature.
    pub value: String,
    /// Its unit (a currency code makes it money).
    pub unit: Option<String>,
    /// Share of value kept as margin.
    pub margin: f64,
    /// `month` or `quarter`.
    pub period: String,
    /// Cap on the expected lifetime, in periods.
    pub max_periods: u32,
    /// All customers first, then every segment.
    pub rows: Vec<LifetimeValueRow>,
}

/// Lifetime value of one segment (or all customers).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LifetimeValueRow {
    /// Segment id; `null` for all customers.
    pub segment: Option<String>,
    /// Name for people.
    pub name: String,
    /// Whether the segment's size is masked: its figures are left out.
    pub masked: bool,
    /// Pooled period-over-period retention r.
    pub retention: Option<f64>,
    /// Expected lifetime in periods: min(1 / (1 − r), cap).
    pub expected_lifetime: Option<f64>,
    /// Whether the cap set the expected lifetime.
    pub capped: bool,
    /// Value to date: mean per customer.
    pub value_mean: Option<f64>,
    /// Value to date: median.
    pub value_median: Option<f64>,
    /// Value to date: total.
    pub value_total: Option<f64>,
    /// Predictive lifetime value: mean per customer.
    pub ltv_mean: Option<f64>,
    /// Predictive lifetime value: median.
    pub ltv_median: Option<f64>,
    /// Predictive lifetime value: total.
    pub ltv_total: Option<f64>,
}
