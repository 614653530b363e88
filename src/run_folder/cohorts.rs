//! `cohorts.json`: the cohort tables of all customers and of every segment, and lifetime value
//! by segment with its assumptions. The same type writes the document and reads it back, so
//! `segflow report` renders what `run` rendered.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::analysis::lifetime_value::{self, LifetimeValue};
use crate::engine::cohorts::Cohorts;
use crate::pipeline::Pipeline;

/// The file name.
pub const COHORTS: &str = "cohorts.json";

/// `cohorts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortsDocument {
    /// segflow's version that wrote it.
    pub segflow_version: String,
    /// The as-of date: period ends after it are not observed (null cells).
    pub as_of: NaiveDate,
    /// The cohort tables and how they were formed.
    #[serde(flatten)]
    pub cohorts: Cohorts,
    /// Lifetime value by segment, when `lifetime_value` is declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_value: Option<LifetimeValue>,
}

impl CohortsDocument {
    /// The document of cohorts just measured, with lifetime value estimated from them.
    pub fn new(pipeline: &Pipeline, as_of: NaiveDate, cohorts: &Cohorts) -> Self {
        CohortsDocument {
            segflow_version: env!("CARGO_PKG_VERSION").into(),
            as_of,
            lifetime_value: pipeline
                .spec
                .lifetime_value
                .as_ref()
                .map(|spec| lifetime_value::estimate(spec, cohorts)),
            cohorts: cohorts.clone(),
        }
    }
}
