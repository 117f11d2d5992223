//! The JSON Schema of the instance request body (the committed one, with Sage's keys, is checked by oc-bin's
//! `openapi` test).

#[test]
fn schema_accepts_the_seed_shape() {
    let schema: serde_json::Value = serde_json::from_str(&oc_model::instance::instance_request_schema(&[])).unwrap();
    let props = &schema["properties"];
    for key in ["element", "providerData", "configuration", "tags", "name"] {
        assert!(props.get(key).is_some(), "schema lacks {key}");
    }
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(required.contains(&"element") && required.contains(&"name"), "{required:?}");
}
