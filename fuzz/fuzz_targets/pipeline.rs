//! Fuzz loading and checking pipeline files: parsing, location indexing, semantic checks,
//! static lints, and rendering every resulting diagnostic must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miette::{GraphicalReportHandler, GraphicalTheme};
use segflow::lint;
use segflow::pipeline::Pipeline;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor());
    let mut rendered = String::new();
    match Pipeline::from_text("fuzz.yaml", text.to_string(), std::path::PathBuf::from(".")) {
        Ok(pipeline) => {
            let as_of = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
            for problem in lint::static_lints(&pipeline, as_of) {
                let _ = problem.line_column();
                let _ = handler.render_report(&mut rendered, &problem);
            }
        }
        Err(error) => {
            let _ = handler.render_report(&mut rendered, &error);
        }
    }
});
