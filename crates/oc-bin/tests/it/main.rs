//! One test binary: the HTTP API seen from outside the crate: casing of every answer, the OpenAPI document.

mod api_casing;
mod openapi;
