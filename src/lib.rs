//! segflow: customer segmentation pipelines on Apache DataFusion.
//!
//! Data flows one way:
//! [`pipeline`] (YAML → checked, typed plan) → [`engine`] (plan → SQL stages on DataFusion →
//! measured results) → [`analysis`] (criteria, scoring, comparison: pure functions) and
//! [`lint`] (warnings about the segmentation) → [`report`] (files for machines and people).
//! [`postgres`] is the one database layer (connections, type mapping) sources, exports and
//! engines share. [`diagnostic`] is the problem type, code registry and rendering every stage reports through;
//! [`error`] the error type and exit codes; [`secrets`] masks interpolated values in every text
//! written; [`init`] writes a starter pipeline from data files; [`app`] wires the commands together.

pub mod analysis;
pub mod app;
pub mod cli;
#[cfg(feature = "ballista")]
pub mod cluster;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod impact;
pub mod init;
pub mod lint;
pub mod pipeline;
pub mod postgres;
pub mod progress;
pub mod report;
pub mod run_folder;
pub mod secrets;
