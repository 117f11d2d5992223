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
        "docs/openapi.json is stale: run `UPDATE_EXPECT=1 cargo test -p oc-bin --test it openapi`"
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
        "docs/schemas/instance-request.schema.json is stale: run `UPDATE_EXPECT=1 cargo test -p oc-bin --test it openapi`"
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

/// `{id}`, `{config_id}`, `{configId}` → `{}`: the router and the document name path parameters differently.
fn normalized(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') && seg.ends_with('}') { "{}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// The (method, path) pairs `src/api/mod.rs` routes: every `.route("PATH", get(..).post(..))`, under the base
/// path when it is routed before the `.nest(BASE, ...)`.
fn routed() -> std::collections::BTreeSet<(String, String)> {
    let source = include_str!("../../src/api/mod.rs");
    let nest = source.find(".nest(BASE").expect("the API is nested under BASE");
    let mut out = std::collections::BTreeSet::new();
    let mut rest = 0;
    while let Some(found) = source[rest..].find(".route(") {
        let start = rest + found + ".route(".len();
        // the call's text: up to its closing parenthesis
        let mut depth = 1;
        let mut end = start;
        for (i, c) in source[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = start + i;
                break;
            }
        }
        let call = &source[start..end];
        let path = call.trim_start().strip_prefix('"').and_then(|p| p.split('"').next()).unwrap_or_default();
        let full = if start < nest { format!("{}{path}", oc_bin::api::BASE) } else { path.to_string() };
        for method in ["get", "post", "put", "patch", "delete"] {
            let routed_here = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                let before = call[..i].chars().next_back();
                before.is_some_and(|c| c == '.' || c == ' ' || c == ',' || c == '(')
            });
            if routed_here {
                out.insert((method.to_string(), normalized(&full)));
            }
        }
        rest = end;
    }
    out
}

/// Every route of the router is in the OpenAPI document, and every operation of the document is routed.
#[test]
fn the_operation_table_matches_the_router() {
    let doc = oc_bin::api::openapi::document();
    let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(|m| (m.clone(), normalized(path))))
        .collect();
    let routed = routed();
    assert!(routed.len() >= 20, "the route reader found only {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty() && unrouted.is_empty(), "undocumented: {undocumented:?}\nunrouted: {unrouted:?}");
}
