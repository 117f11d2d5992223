//! Fuzz target `hub_url`: hub URL and query parsing, `/hubs/{hub}/{resource}?where=&pageSize=&page=&orderBy=&fields=`
//! (crate `oc-ceql`, `parse_hub_url`).
//!
//! Input: a URL (UTF-8). Checks:
//! - nothing panics on any input; every error and warning span lies inside the URL and renders;
//! - the hub is one the dialect serves and stands in the URL; the resource span lies inside the URL;
//!   `page` and `pageSize` are at least 1;
//! - a decoded value maps every range of its text to a range of the URL (start before end, inside the URL), and
//!   a CEQL error in the `where` value, moved into the URL that way, renders against the URL;
//! - round trip: the parts, each percent-encoded in full and put back together, parse to the same parts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oc_ceql::{Decoded, Dialect, HubUrl, parse, parse_hub_url};

const DIALECT: Dialect = Dialect {
    element: "acme",
    hubs: &["crm", "finance"],
    example_resource: "contacts",
    field_aliases: &[("lastModifiedDate", "modified_at")],
    always_returned: &["id"],
};

fn in_url(url: &str, span: &std::ops::Range<usize>) -> bool {
    span.start <= span.end && span.end <= url.len()
}

fn check_decoded(url: &str, d: &Decoded) {
    let text = d.text();
    let bounds: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
    let mut last = 0;
    for &i in bounds.iter().take(64) {
        let s = d.url_span(i..i);
        assert!(in_url(url, &s), "{i} -> {s:?}");
        assert!(s.start >= last, "the map goes back: {i} -> {s:?}");
        last = s.start;
    }
    let whole = d.url_span(0..text.len());
    assert!(in_url(url, &whole), "{whole:?}");
}

/// Percent-encodes every byte but the unreserved ones.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rebuilt(hub: &HubUrl) -> String {
    let mut url = format!("/hubs/{}/{}", hub.hub, encode(&hub.resource));
    let mut params = Vec::new();
    if let Some(w) = &hub.where_clause {
        params.push(format!("where={}", encode(w.text())));
    }
    if let Some(n) = hub.page_size {
        params.push(format!("pageSize={n}"));
    }
    if let Some(n) = hub.page {
        params.push(format!("page={n}"));
    }
    if let Some(o) = &hub.order_by {
        params.push(format!("orderBy={}", encode(o.text())));
    }
    if let Some(f) = &hub.fields {
        params.push(format!("fields={}", encode(f.text())));
    }
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    url
}

fn texts(h: &HubUrl) -> (String, String, Option<String>, Option<u32>, Option<u32>, Option<String>, Option<String>) {
    let t = |d: &Option<Decoded>| d.as_ref().map(|d| d.text().to_string());
    (h.hub.clone(), h.resource.clone(), t(&h.where_clause), h.page_size, h.page, t(&h.order_by), t(&h.fields))
}

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    let hub = match parse_hub_url(url, &DIALECT) {
        Ok(hub) => hub,
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                let span = e.span().cloned().unwrap_or(0..0);
                assert!(in_url(url, &span), "error span {span:?}");
                let _ = e.render(url);
            }
            return;
        }
    };
    assert!(DIALECT.serves(&hub.hub));
    assert!(url.contains(&format!("hubs/{}/", hub.hub)));
    assert!(in_url(url, &hub.resource_span), "resource span {:?}", hub.resource_span);
    assert!(!hub.resource.is_empty() || hub.resource_span.is_empty());
    assert!(hub.page.is_none_or(|n| n >= 1) && hub.page_size.is_none_or(|n| n >= 1));
    for w in &hub.warnings {
        assert!(w.span.as_ref().is_none_or(|s| in_url(url, s)), "warning span {:?}", w.span);
        let _ = w.render(url);
    }
    for d in [&hub.where_clause, &hub.order_by, &hub.fields].into_iter().flatten() {
        assert!(!d.text().trim().is_empty());
        check_decoded(url, d);
    }
    if let Some(w) = &hub.where_clause
        && let Err(e) = parse(w.text())
    {
        let e = e.map_span(|s| w.url_span(s));
        assert!(e.span().is_none_or(|s| in_url(url, s)), "moved span {:?}", e.span());
        let _ = e.render(url);
    }

    let again_url = rebuilt(&hub);
    match parse_hub_url(&again_url, &DIALECT) {
        Ok(again) => assert_eq!(texts(&again), texts(&hub), "{url:?} rebuilt as {again_url:?}"),
        Err(e) => panic!("{url:?} rebuilt as {again_url:?} does not parse: {e:?}"),
    }
});
