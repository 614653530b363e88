//! The JSON Schema users' editors read: generated, committed, and complete.

use serde_json::Value;

use crate::support::{repo_path, segflow, stdout};

#[test]
fn committed_schema_matches_segflow_schema_output() {
    let output = segflow().arg("schema").output().unwrap();
    assert!(output.status.success());
    let committed = std::fs::read_to_string(repo_path("schemas/pipeline.schema.json")).unwrap();
    assert_eq!(
        stdout(&output),
        committed,
        "schemas/pipeline.schema.json is stale: run `cargo run -- schema > schemas/pipeline.schema.json`"
    );
}

fn undocumented(schema: &Value, path: &str, found: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if property.get("description").is_none() {
                found.push(format!("{path}.{name}"));
            }
        }
    }
    if let Some(definitions) = schema.get("$defs").and_then(Value::as_object) {
        for (name, definition) in definitions {
            undocumented(definition, name, found);
        }
    }
    for variants in ["oneOf", "anyOf"] {
        for variant in schema
            .get(variants)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if variant.get("description").is_none() {
                found.push(format!("{path} variant {variant}"));
            }
        }
    }
}

#[test]
fn every_schema_field_has_a_description() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("schemas/pipeline.schema.json")).unwrap(),
    )
    .unwrap();
    let mut found = Vec::new();
    undocumented(&schema, "pipeline", &mut found);
    assert!(found.is_empty(), "fields without a description: {found:?}");
}

#[test]
fn example_pipelines_point_editors_at_the_schema() {
    for entry in std::fs::read_dir(repo_path("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema=../schemas/pipeline.schema.json"),
                "{} lacks the schema line",
                path.display()
            );
        }
    }
}
