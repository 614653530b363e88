//! End-to-end tests: the real `segflow` binary on real files.

#[cfg(feature = "ballista")]
mod ballista;
mod browser;
mod cohorts;
mod compile;
mod corpus;
mod data_reading;
mod diagnostics;
mod engine_limits;
mod errors;
mod example;
mod exports;
mod golden;
mod hand_worked;
mod hardening;
mod history;
mod impact;
mod init;
mod lints;
mod markdown;
mod method;
mod needs_survey;
mod pipeline_input;
mod postgres;
mod preview;
mod profiles;
mod replace;
mod reports;
mod resources;
mod review;
mod schema;
mod support;
mod templates_safety;
mod tiers;
mod time;
