//! segflow: customer segmentation pipelines on Apache DataFusion.
//!
//! Data flows one way: [`pipeline`] (YAML → checked model) → [`engine`] (DataFusion plans →
//! results) → [`report`] (files for machines and people). [`app`] wires the commands together.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod engine;
pub mod error;
pub mod pipeline;
pub mod report;
