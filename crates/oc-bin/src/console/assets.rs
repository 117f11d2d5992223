//! The console's stylesheet and script, embedded in the binary and served under `/ui/assets/` by names carrying
//! their content hash (`console.3f2a….css`), so that they are cached for a year and a new binary's never mixes
//! with an old one's. Both are written by hand (`crates/oc-bin/assets/console/`): no build step, no CDN.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../../assets/console/console.css");
const JS: &str = include_str!("../../assets/console/console.js");

/// One embedded file: its hashed name and its `ETag`.
struct Asset {
    name: String,
    etag: String,
    body: &'static str,
    content_type: &'static str,
}

fn asset(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = Sha256::digest(body.as_bytes());
    let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Asset { name: format!("{stem}.{short}.{ext}"), etag: format!("\"{short}\""), body, content_type }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset("console", "css", CSS, "text/css; charset=utf-8"),
        asset("console", "js", JS, "text/javascript; charset=utf-8"),
    ]
});

/// The path of the stylesheet.
pub(super) fn css_path() -> String {
    format!("/ui/assets/{}", ASSETS[0].name)
}

/// The path of the script.
pub(super) fn js_path() -> String {
    format!("/ui/assets/{}", ASSETS[1].name)
}

/// `GET /ui/assets/{file}`.
pub(super) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        (header::ETAG, HeaderValue::from_str(&a.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))),
    ];
    let matches = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == a.etag);
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type))], a.body).into_response()
}

/// The sizes of the embedded files in bytes (stylesheet, script), for the documentation's figures and a test.
#[cfg(test)]
pub(super) fn sizes() -> (usize, usize) {
    (CSS.len(), JS.len())
}
