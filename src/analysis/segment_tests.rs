//! Checking a segment test's expectations against the assignments of its fixture customers.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::engine::fixtures::Row;
use crate::pipeline::model::{SegmentSpec, SegmentTest, UNASSIGNED};

/// What one test found: a line per failed expectation.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// Expectations checked.
    pub checked: usize,
    /// Each failure, saying the customer, what was expected and what came out.
    pub failures: Vec<String>,
}

fn same(expected: &Value, actual: &Value) -> bool {
    match (expected.as_f64(), actual.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        _ => expected == actual,
    }
}

/// Compare a test's expectations with the rows its fixtures produced.
pub fn evaluate(
    test: &SegmentTest,
    segments: &[SegmentSpec],
    rows: &BTreeMap<String, Row>,
) -> TestOutcome {
    let mut failures = Vec::new();
    for expectation in &test.expect {
        let customer = expectation.customer.to_string();
        let Some(row) = rows.get(&customer) else {
            failures.push(format!(
                "customer {customer} is not a customer of the test as of the as-of date: not among its entity rows, or left out (joined later, no row valid then, or only seen after it)"
            ));
            continue;
        };
        let actual = row.get("segment").and_then(Value::as_str);
        let expected = Some(expectation.segment.as_str()).filter(|s| *s != UNASSIGNED);
        if actual != expected {
            let got = match actual {
                None => "no segment (no rule matched)".to_string(),
                Some(id) => match segments
                    .iter()
                    .find(|s| s.id == id)
                    .and_then(|s| s.when.as_deref())
                {
                    Some(rule) => format!("`{id}` (matched rule `{rule}`)"),
                    None => format!("`{id}` (the catch-all)"),
                },
            };
            failures.push(format!(
                "customer {customer}: expected `{}`, got {got}",
                expectation.segment
            ));
        }
        for (feature, want) in &expectation.features {
            match row.get(feature) {
                None => failures.push(format!(
                    "customer {customer}: there is no feature `{feature}`"
                )),
                Some(got) if !same(want, got) => failures.push(format!(
                    "customer {customer}: feature `{feature}` expected {want}, got {got}"
                )),
                Some(_) => {}
            }
        }
    }
    TestOutcome {
        name: test.name.clone(),
        checked: test.expect.len(),
        failures,
    }
}
