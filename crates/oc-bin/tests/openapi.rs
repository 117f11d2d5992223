//! `docs/openapi.json` must be the document the server serves. `UPDATE_EXPECT=1` rewrites it.

use std::path::PathBuf;

#[test]
fn committed_openapi_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let fresh = oc_bin::api::openapi::document_text();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/openapi.json is stale: run `UPDATE_EXPECT=1 cargo test -p oc-bin --test openapi`"
    );
}

/// `docs/schemas/instance-request.schema.json`: the instance body with Open Connectors' and Sage's keys.
#[test]
fn committed_instance_request_schema_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas/instance-request.schema.json");
    let fresh = oc_model::instance::instance_request_schema(oc_sageone::KEYS);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/schemas/instance-request.schema.json is stale: run `UPDATE_EXPECT=1 cargo test -p oc-bin --test openapi`"
    );
}

#[test]
fn every_documented_operation_has_a_summary_and_errors() {
    let doc = oc_bin::api::openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}");
            assert!(op["responses"]["200"].is_object(), "{method} {path}");
        }
    }
}
