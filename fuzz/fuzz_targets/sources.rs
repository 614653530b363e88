//! Fuzz the data readers: arbitrary bytes as a Parquet, CSV or NDJSON source (the first byte picks
//! the format). Registering the source with its declared column types, reading every row and
//! rendering any error must not let a panic escape, and a failure must never be segflow's internal
//! error: a malformed file is a source or data error naming the source. (A whole pipeline run per
//! input was 8 s an execution in the debug build; reading the source is what varies with the
//! bytes.)
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use miette::{GraphicalReportHandler, GraphicalTheme};
use segflow::engine::{self, RunOptions};
use segflow::error::Error;
use segflow::pipeline::Pipeline;

const FORMATS: [&str; 3] = ["parquet", "csv", "ndjson"];

static QUIET: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // segflow turns the readers' panics into errors; only a panic that escapes is a finding.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let extension = FORMATS[usize::from(selector) % FORMATS.len()];
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("customers.csv"),
        "customer_id,plan\n1,a\n2,b\n3,c\n",
    )
    .expect("write customers");
    std::fs::write(dir.path().join(format!("events.{extension}")), bytes).expect("write events");
    let text = format!(
        "version: 1\nname: fuzz\nas_of: 2026-10-01\nsources:\n  customers: {{ path: customers.csv, columns: {{ customer_id: int64 }} }}\n  events: {{ path: events.{extension}, time_column: ts, columns: {{ customer_id: int64, ts: timestamp }} }}\nentity: {{ source: customers, key: customer_id }}\nfeatures:\n  - {{ name: n, kind: behavioral, description: d, aggregate: {{ source: events, expr: count(*), window_days: 30, default: 0 }} }}\n  - {{ name: days, kind: behavioral, description: d, aggregate: {{ source: events, expr: count(DISTINCT CAST(ts AS DATE)), window_days: 30, default: 0 }} }}\n  - {{ name: last, kind: behavioral, description: d, aggregate: {{ source: events, expr: max(ts) }} }}\nsegments:\n  - {{ id: busy, name: Busy, when: n >= 1 }}\n  - {{ id: rest, name: Rest }}\n"
    );
    let pipeline = Pipeline::from_text("fuzz.yaml", text, dir.path().to_path_buf())
        .expect("the fuzz pipeline is valid");
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("date");
    let options = RunOptions::new(as_of);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(engine::read_source(&pipeline, "events", options.as_of))
    }));
    match outcome {
        Err(_) => std::process::abort(),
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            if matches!(error, Error::Internal(_)) {
                std::process::abort();
            }
            let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor());
            let mut rendered = String::new();
            let _ = handler.render_report(&mut rendered, &error);
        }
    }
});
