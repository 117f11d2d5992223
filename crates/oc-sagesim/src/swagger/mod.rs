//! Sage's swagger as data: which resources exist, which query parameters each call declares, how records are
//! shaped. The table in `table.rs` is generated from `sage-accounting-v3.1.swagger.json` by the test below and
//! committed, so the simulator never reads the swagger at run time.
//!
//! Regenerate after the swagger changes: `OC_SAGESIM_REGENERATE=1 cargo test -p oc-sagesim swagger_table`.

use std::collections::HashMap;
use std::sync::LazyLock;

#[rustfmt::skip]
mod table;

/// The JSON type of one property of a record definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
}

impl Kind {
    fn from_code(code: &str) -> Kind {
        match code {
            "n" => Kind::Number,
            "i" => Kind::Integer,
            "b" => Kind::Boolean,
            "a" => Kind::Array,
            "o" => Kind::Object,
            _ => Kind::String,
        }
    }
}

/// One simulated resource: a swagger collection path `/name` that also has `GET /name/{key}`.
///
/// Lists are comma-separated in the generated table (compact and easy to diff); the methods split them.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// Path segment, e.g. `contacts`.
    pub(crate) name: &'static str,
    /// The swagger definition of one record, e.g. `Contact`.
    pub(crate) definition: &'static str,
    /// Operations the swagger declares: `L` list, `G` get, `C` create, `U` update, `D` delete.
    pub(crate) ops: &'static str,
    /// Query parameters of `GET /name`.
    pub(crate) list: &'static str,
    /// Query parameters of `GET /name/{key}`.
    pub(crate) get: &'static str,
    /// Query parameters of `DELETE /name/{key}`.
    pub(crate) delete: &'static str,
    /// The attributes `sort=` accepts (from the parameter's description), empty when there is no `sort`.
    pub(crate) sort: &'static str,
    /// The key wrapping a record in a POST/PUT body, e.g. `contact`.
    pub(crate) body: &'static str,
    /// Fields a POST body must carry.
    pub(crate) required: &'static str,
    /// Whether `DELETE` voids the record (an update) instead of deleting it.
    pub(crate) voids: bool,
}

fn split(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.split(',').filter(|s| !s.is_empty())
}

impl Endpoint {
    /// Whether the swagger declares the operation (`L`, `G`, `C`, `U`, `D`).
    pub(crate) fn has(&self, op: char) -> bool {
        self.ops.contains(op)
    }

    /// Whether `GET /name` declares the query parameter.
    pub(crate) fn list_declares(&self, param: &str) -> bool {
        split(self.list).any(|p| p == param)
    }

    /// Whether `GET /name/{key}` declares the query parameter.
    pub(crate) fn get_declares(&self, param: &str) -> bool {
        split(self.get).any(|p| p == param)
    }

    /// Whether `DELETE /name/{key}` declares the query parameter.
    pub(crate) fn delete_declares(&self, param: &str) -> bool {
        split(self.delete).any(|p| p == param)
    }

    /// The `x_id` parameters of `GET /name` (reference filters).
    pub(crate) fn list_ref_params(&self) -> impl Iterator<Item = &'static str> {
        split(self.list).filter(|p| p.ends_with("_id"))
    }

    /// The attributes `sort=` accepts.
    pub(crate) fn sort_attributes(&self) -> impl Iterator<Item = &'static str> {
        split(self.sort)
    }

    /// Fields a POST body must carry.
    pub(crate) fn required_fields(&self) -> impl Iterator<Item = &'static str> {
        split(self.required)
    }

    /// The properties of one record, in the swagger's order.
    pub(crate) fn properties(&self) -> &'static [(&'static str, Kind)] {
        DEFINITIONS.get(self.definition).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether records of this resource carry the named property.
    pub(crate) fn has_property(&self, name: &str) -> bool {
        self.properties().iter().any(|(p, _)| *p == name)
    }
}

/// One record definition as generated: `name` and `properties` as `name:kind,...`.
#[derive(Debug)]
pub(crate) struct Definition {
    pub(crate) name: &'static str,
    pub(crate) properties: &'static str,
}

static ENDPOINTS: LazyLock<HashMap<&'static str, &'static Endpoint>> =
    LazyLock::new(|| table::ENDPOINTS.iter().map(|e| (e.name, e)).collect());

static DEFINITIONS: LazyLock<HashMap<&'static str, Vec<(&'static str, Kind)>>> = LazyLock::new(|| {
    table::DEFINITIONS
        .iter()
        .map(|d| {
            let props = split(d.properties)
                .map(|p| match p.split_once(':') {
                    Some((name, code)) => (name, Kind::from_code(code)),
                    None => (p, Kind::String),
                })
                .collect();
            (d.name, props)
        })
        .collect()
});

/// The simulated resource at path segment `name`, if the swagger has it.
pub(crate) fn endpoint(name: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.get(name).copied()
}

/// Every simulated resource, in the swagger's order.
#[cfg(test)]
pub(crate) fn endpoints() -> impl Iterator<Item = &'static Endpoint> {
    table::ENDPOINTS.iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::fmt::Write as _;
    use std::path::PathBuf;

    fn swagger_path() -> PathBuf {
        match std::env::var_os("OC_SAGE_SWAGGER") {
            Some(p) => PathBuf::from(p),
            None => {
                // Sage's own description of v3.1, vendored from the project's shared data
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sage-accounting-v3.1.swagger.json")
            }
        }
    }

    fn query_params(op: Option<&Value>) -> Vec<String> {
        let Some(params) = op.and_then(|o| o.get("parameters")).and_then(Value::as_array) else { return vec![] };
        params.iter().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str().map(str::to_owned)).collect()
    }

    fn sort_attributes(op: Option<&Value>) -> Vec<String> {
        let Some(params) = op.and_then(|o| o.get("parameters")).and_then(Value::as_array) else { return vec![] };
        let Some(sort) = params.iter().find(|p| p["in"] == "query" && p["name"] == "sort") else { return vec![] };
        let description = sort["description"].as_str().unwrap_or("");
        let Some((_, rest)) = description.split_once("Available attributes are:") else { return vec![] };
        let list = rest.split("Example").next().unwrap_or("");
        list.split(',').map(|s| s.trim().trim_end_matches('.').to_owned()).filter(|s| !s.is_empty()).collect()
    }

    fn kind_code(prop: &Value) -> &'static str {
        match prop.get("type").and_then(Value::as_str) {
            Some("number") => "n",
            Some("integer") => "i",
            Some("boolean") => "b",
            Some("array") => "a",
            Some("object") => "o",
            Some(_) => "s",
            None if prop.get("$ref").is_some() => "o",
            None => "s",
        }
    }

    fn ref_name(v: &Value) -> Option<String> {
        v.as_str().and_then(|r| r.strip_prefix("#/definitions/")).map(str::to_owned)
    }

    /// Renders the table from the swagger document.
    fn generate(swagger: &Value) -> String {
        let paths = swagger["paths"].as_object().expect("paths");
        let defs = swagger["definitions"].as_object().expect("definitions");
        let mut endpoints = String::new();
        let mut needed: Vec<String> = vec![];
        for (path, ops) in paths {
            let Some(name) = path.strip_prefix('/') else { continue };
            if name.contains('/') {
                continue;
            }
            let Some(keyed) = paths.get(&format!("{path}/{{key}}")) else { continue };
            let (Some(list), Some(get)) = (ops.get("get"), keyed.get("get")) else { continue };
            let Some(definition) = ref_name(&list["responses"]["200"]["schema"]["items"]["$ref"]) else { continue };
            let mut codes = String::from("LG");
            let post = ops.get("post");
            let put = keyed.get("put");
            let delete = keyed.get("delete");
            if post.is_some() {
                codes.push('C');
            }
            if put.is_some() {
                codes.push('U');
            }
            if delete.is_some() {
                codes.push('D');
            }
            let body_def = post
                .or(put)
                .and_then(|o| o["parameters"].as_array())
                .and_then(|ps| ps.iter().find(|p| p["in"] == "body"))
                .and_then(|p| ref_name(&p["schema"]["$ref"]))
                .and_then(|d| defs.get(&d));
            let (body, required) = match body_def.and_then(|d| d["properties"].as_object()) {
                Some(props) => match props.iter().next() {
                    Some((key, inner)) => {
                        let required = inner["required"]
                            .as_array()
                            .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                            .unwrap_or_default();
                        (key.clone(), if post.is_some() { required } else { String::new() })
                    }
                    None => (String::new(), String::new()),
                },
                None => (String::new(), String::new()),
            };
            let voids = delete.and_then(|d| d["summary"].as_str()).is_some_and(|s| s.starts_with("Voids"));
            writeln!(
                endpoints,
                "    Endpoint {{ name: {name:?}, definition: {definition:?}, ops: {codes:?}, list: {:?}, get: {:?}, delete: {:?}, sort: {:?}, body: {body:?}, required: {required:?}, voids: {voids} }},",
                query_params(Some(list)).join(","),
                query_params(Some(get)).join(","),
                query_params(delete).join(","),
                sort_attributes(Some(list)).join(","),
            )
            .expect("write");
            if !needed.contains(&definition) {
                needed.push(definition);
            }
        }
        let mut definitions = String::new();
        for name in &needed {
            let props = defs[name]["properties"]
                .as_object()
                .map(|p| p.iter().map(|(k, v)| format!("{k}:{}", kind_code(v))).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            writeln!(definitions, "    Definition {{ name: {name:?}, properties: {props:?} }},").expect("write");
        }
        format!(
            "//! Generated from Sage's `sage-accounting-v3.1.swagger.json` by `swagger::tests::swagger_table`: do not edit.\n\
             //! Regenerate with `OC_SAGESIM_REGENERATE=1 cargo test -p oc-sagesim swagger_table`.\n\n\
             use super::{{Definition, Endpoint}};\n\n\
             pub(super) static ENDPOINTS: &[Endpoint] = &[\n{endpoints}];\n\n\
             pub(super) static DEFINITIONS: &[Definition] = &[\n{definitions}];\n"
        )
    }

    #[test]
    fn swagger_table_matches_the_swagger() {
        let path = swagger_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the swagger at {} (set OC_SAGE_SWAGGER): {e}", path.display()));
        let swagger: Value = serde_json::from_str(&text).expect("swagger is JSON");
        let generated = generate(&swagger);
        let table = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/swagger/table.rs");
        if std::env::var_os("OC_SAGESIM_REGENERATE").is_some() {
            std::fs::write(&table, &generated).expect("write table.rs");
        }
        let committed = std::fs::read_to_string(&table).expect("read table.rs");
        assert!(
            committed == generated,
            "src/swagger/table.rs is out of date: run OC_SAGESIM_REGENERATE=1 cargo test -p oc-sagesim swagger_table"
        );
    }

    #[test]
    fn the_table_knows_the_resources_the_simulator_seeds() {
        for name in [
            "contacts",
            "sales_invoices",
            "sales_quotes",
            "products",
            "services",
            "ledger_accounts",
            "bank_accounts",
            "contact_payments",
        ] {
            let e = endpoint(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(e.has('L') && e.has('G'), "{name}");
            assert!(e.has_property("id") && e.has_property("updated_at"), "{name}");
        }
        let contacts = endpoint("contacts").expect("contacts");
        assert!(contacts.list_declares("contact_type_id"));
        assert!(!contacts.list_declares("sort"));
        assert!(contacts.has_property("deleted_at"));
        assert_eq!(contacts.body, "contact");
        assert_eq!(contacts.required_fields().collect::<Vec<_>>(), ["name", "contact_type_ids"]);
        let invoices = endpoint("sales_invoices").expect("sales_invoices");
        assert_eq!(invoices.sort_attributes().collect::<Vec<_>>(), ["created_at", "updated_at", "date", "due_date"]);
        assert!(invoices.voids && invoices.delete_declares("void_reason"));
        let quotes = endpoint("sales_quotes").expect("sales_quotes");
        assert!(!quotes.list_declares("deleted_since"));
        assert!(!endpoint("ledger_accounts").expect("ledger_accounts").has_property("deleted_at"));
        assert!(endpoint("business_settings").is_none());
        assert!(endpoints().count() > 50);
    }
}
