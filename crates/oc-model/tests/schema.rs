//! The committed JSON Schema of the instance request body must match the types.
//! Run with `UPDATE_EXPECT=1` to rewrite it.

use std::path::PathBuf;

#[test]
fn instance_request_schema_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas/instance-request.schema.json");
    let fresh = oc_model::instance::instance_request_schema();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/schemas/instance-request.schema.json is stale: run `UPDATE_EXPECT=1 cargo test -p oc-model --test schema`"
    );
}

#[test]
fn schema_accepts_the_seed_shape() {
    let schema: serde_json::Value = serde_json::from_str(&oc_model::instance::instance_request_schema()).unwrap();
    let props = &schema["properties"];
    for key in ["element", "providerData", "configuration", "tags", "name"] {
        assert!(props.get(key).is_some(), "schema lacks {key}");
    }
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(required.contains(&"element") && required.contains(&"name"), "{required:?}");
}
