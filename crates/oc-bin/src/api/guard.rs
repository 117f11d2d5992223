//! Refuses a request whose path or query holds the NUL character (U+0000, `%00`) with a 400 naming where: no store
//! can compare or keep it alike (PostgreSQL refuses it in text), so it is refused before any handler reads it, on
//! every backend the same. Bodies are checked by the instance validation (`oc_model::limits`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oc_model::Problem;

use super::error::ApiError;

const NUL: &str = "contains the NUL character (U+0000), which is not allowed";

/// The middleware.
pub(crate) async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let mut problems = Vec::new();
    let path = uri.path();
    if path.contains("%00") || path.contains('\0') {
        problems.push(Problem::new("path", format!("the path {NUL}")));
    }
    if let Some(query) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k.contains('\0') || v.contains('\0') {
                let name: String = k.chars().filter(|c| *c != '\0').collect();
                problems.push(Problem::new(name, format!("the query parameter {NUL}")));
            }
        }
    }
    if problems.is_empty() {
        next.run(request).await
    } else {
        ApiError::Invalid { message: "bad request".into(), problems }.into_response()
    }
}
