//! One test binary: the HTTP API seen from outside the crate: casing of every answer, the OpenAPI document, the
//! console over HTTP against the demo's stack.

mod api_casing;
mod console;
mod openapi;
