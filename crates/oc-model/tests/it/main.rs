//! Integration tests of oc-model, one binary: the JSON Schema of the instance request body and the JSON of the
//! store types the API shows.

mod schema;
mod store_json;
