//! Checks the crate's data against Sage's own API description (`shared/data/sage-accounting-v3.1.swagger.json`):
//! the generated endpoint table is not stale, every hub resource maps to a list endpoint that exists, and every
//! query parameter the translator sends is declared by that endpoint.
//!
//! `OCPOLL_BLESS=1 cargo test -p oc-sageone --test it swagger` rewrites `src/endpoints/table.rs` from the swagger.
//! `OCPOLL_SAGE_SWAGGER=/path/to/file` points at another copy of the swagger file.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use oc_model::ports::{FieldNeeds, Provider};
use oc_sageone::endpoints::{endpoint, endpoints};
use oc_sageone::resources::HUB_RESOURCES;
use oc_sageone::{SageConfig, SageProvider};
use serde_json::Value;

fn swagger_path() -> PathBuf {
    match std::env::var_os("OCPOLL_SAGE_SWAGGER") {
        Some(p) => PathBuf::from(p),
        None => {
            // Sage's own description of v3.1, vendored from the project's shared data
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sage-accounting-v3.1.swagger.json")
        }
    }
}

fn swagger() -> Value {
    let path = swagger_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the swagger file {} ({e}); set OCPOLL_SAGE_SWAGGER", path.display()));
    serde_json::from_str(&text).expect("the swagger file is JSON")
}

fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

/// The keys listed after "Available attributes are:" in the description of `sort`.
fn sort_keys(description: &str) -> Vec<String> {
    let Some((_, rest)) = description.split_once("Available attributes are:") else { return Vec::new() };
    let list = rest.trim_start().split("\n\n").next().unwrap_or("");
    list.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect()
}

/// Renders the table module from the swagger: one entry per `GET` of a path without parameters whose 200
/// answer is an array (the list calls).
fn generate(swagger: &Value) -> String {
    let mut out = String::new();
    out.push_str(
        "//! GENERATED from Sage's `sage-accounting-v3.1.swagger.json` by `tests/it/swagger.rs`: do not edit.\n\
         //! Regenerate with `OCPOLL_BLESS=1 cargo test -p oc-sageone --test it swagger`.\n\n\
         use super::{B, Endpoint, I, N, S, p};\n\n\
         /// Every list endpoint, sorted by path.\n\
         pub(super) static ENDPOINTS: &[Endpoint] = &[\n",
    );
    let paths = swagger["paths"].as_object().expect("paths");
    let mut list: Vec<(&String, &Value)> = paths
        .iter()
        .filter(|(path, item)| {
            !path.contains('{') && item["get"]["responses"]["200"]["schema"]["type"].as_str() == Some("array")
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(b.0));
    for (path, item) in list {
        let get = &item["get"];
        let reference = get["responses"]["200"]["schema"]["items"]["$ref"].as_str().unwrap_or("");
        let record = reference.rsplit('/').next().unwrap_or("");
        let mut params = Vec::new();
        let mut sort = Vec::new();
        for param in get["parameters"].as_array().into_iter().flatten() {
            if param["in"].as_str() != Some("query") {
                continue;
            }
            let name = param["name"].as_str().expect("parameter name");
            let ty = match param["type"].as_str() {
                Some("boolean") => "B",
                Some("integer") => "I",
                Some("number") => "N",
                _ => "S",
            };
            params.push(format!("p({}, {ty})", rust_str(name)));
            if name == "sort" {
                sort = sort_keys(param["description"].as_str().unwrap_or(""));
            }
        }
        let fields: BTreeSet<&str> = swagger["definitions"][record]["properties"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let fields: Vec<String> = fields.into_iter().map(rust_str).collect();
        let sort: Vec<String> = sort.iter().map(|s| rust_str(s)).collect();
        writeln!(
            out,
            "    Endpoint {{ path: {}, record: {}, params: &[{}], fields: &[{}], sort_keys: &[{}] }},",
            rust_str(path),
            rust_str(record),
            params.join(", "),
            fields.join(", "),
            sort.join(", ")
        )
        .expect("write to a string");
    }
    out.push_str("];\n");
    out
}

#[test]
fn generated_endpoint_table_is_current() {
    let expected = generate(&swagger());
    let table = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/endpoints/table.rs");
    let actual = std::fs::read_to_string(&table).unwrap_or_default();
    if actual != expected {
        if std::env::var_os("OCPOLL_BLESS").is_some() {
            std::fs::write(&table, &expected).expect("write the table");
        } else {
            panic!(
                "{} is stale: regenerate it with `OCPOLL_BLESS=1 cargo test -p oc-sageone --test it swagger`",
                table.display()
            );
        }
    }
}

#[test]
fn table_matches_the_swagger_facts_the_spec_states() {
    let swagger = swagger();
    // Counted straight from the swagger, not from the table, so a generator bug cannot hide.
    let lists = swagger["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, i)| !p.contains('{') && i["get"]["responses"]["200"]["schema"]["type"] == "array")
        .count();
    assert_eq!(endpoints().len(), lists);
    for e in endpoints() {
        let declared: BTreeSet<&str> = swagger["paths"][e.path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let table: BTreeSet<&str> = e.params.iter().map(|p| p.name).collect();
        assert_eq!(declared, table, "{}", e.path);
    }
}

#[test]
fn every_hub_resource_maps_to_a_list_endpoint_with_its_fixed_parameters_declared() {
    let swagger = swagger();
    for r in HUB_RESOURCES {
        let e = endpoint(r.path).unwrap_or_else(|| panic!("{}: {} is not a list endpoint", r.name, r.path));
        assert!(swagger["paths"][r.path]["get"].is_object(), "{}: {} missing from the swagger", r.name, r.path);
        // fetch_page adds these to every request.
        assert!(e.declares("items_per_page") && e.declares("page"), "{}", r.path);
        for (name, _) in r.fixed {
            assert!(e.declares(name), "{}: fixed parameter {name} not declared by {}", r.name, r.path);
        }
        // The deleted feed column of sage-v3.1.md agrees with the swagger.
        assert_eq!(
            e.has_deleted_feed(),
            r.name != "sales-quotes" && r.name != "ledger-accounts" && r.name != "tax-rates"
        );
    }
}

/// Every pair sent for every hub resource, with a where clause that exercises each kind of push-down, is a
/// parameter declared for that endpoint in the swagger itself.
#[test]
fn the_translator_sends_only_declared_parameters() {
    let swagger = swagger();
    let provider = SageProvider::new(SageConfig::default()).unwrap();
    let needs = FieldNeeds { fields: vec!["id".into(), "updated_at".into(), "created_at".into()] };
    let mut checked = 0;
    for r in HUB_RESOURCES {
        let e = endpoint(r.path).unwrap();
        let declared: BTreeSet<&str> = swagger["paths"][r.path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let mut clauses = vec![
            "lastModifiedDate >= '2024-01-01T00:00:00Z' and attributes='name'".to_string(),
            "updated_at > '2024-01-01T00:00:00Z' and (a = 1 or b = 2)".to_string(),
        ];
        if e.has_deleted_feed() {
            clauses.push("deletedDate >= '2024-01-01T00:00:00Z'".into());
        }
        for p in ["search", "contact_id", "status_id", "email", "from_date", "to_date"] {
            if e.declares(p) {
                clauses.push(format!("{p} = '2024-01-01'"));
            }
        }
        for clause in clauses {
            let url = format!("/hubs/finance/{}?where={clause}&orderBy=updated_at", r.name);
            let url = if e.has_sort() { url } else { url.replace("&orderBy=updated_at", "") };
            let q = provider.compile(&url, &needs).unwrap_or_else(|err| panic!("{url}: {err}"));
            for (name, _) in &q.query {
                assert!(declared.contains(name.as_str()), "{url}: sends {name}, not declared by {}", r.path);
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} pairs checked");
}

#[test]
fn translating_a_parameter_the_endpoint_does_not_declare_is_an_error() {
    let err = oc_sageone::translate("products", "contact_type_id = 'CUSTOMER'").unwrap_err();
    assert!(err.to_string().starts_with("`contact_type_id` is not a query parameter of /products"), "{err}");
    let err = oc_sageone::translate("journals", "search = 'x'").unwrap_err();
    assert!(err.to_string().starts_with("`search` is not a query parameter of /journals"), "{err}");
    // Under OR, a parameter of the endpoint itself cannot be pushed down, and is not a record field.
    let err = oc_sageone::translate("customers", "search = 'x' or name = 'y'").unwrap_err();
    assert!(err.to_string().starts_with("`search` is a query parameter of /contacts, not a record field"), "{err}");
}

/// The vendored fixtures are the shared originals, byte for byte (checked where the shared data is present).
#[test]
fn vendored_fixtures_match_the_shared_data() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shared = root.join("../shared/data");
    if !shared.is_dir() {
        eprintln!("vendored_fixtures_match_the_shared_data: {} not found; nothing to compare", shared.display());
        return;
    }
    for name in
        ["sage-accounting-v3.1.swagger.json", "seed-instance-body-example.json", "seed-instance-body-template.json"]
    {
        let original = std::fs::read(shared.join(name)).expect("the shared original");
        let copy = std::fs::read(root.join("tests/fixtures").join(name)).expect("the vendored copy");
        assert!(original == copy, "tests/fixtures/{name} differs from ../shared/data/{name}: copy it again");
    }
}
