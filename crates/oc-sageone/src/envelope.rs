//! Sage's list envelope (`$items`, `$total`, `$page`, `$next`, `$itemsPerPage`), decoded straight from the body
//! bytes into a [`Page`]: the records stay `serde_json::Value`s and nothing is parsed twice.

use oc_model::ports::Page;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "$items", default)]
    items: Vec<Value>,
    #[serde(rename = "$total", default)]
    total: Option<u64>,
    #[serde(rename = "$page", default)]
    page: Option<u32>,
    #[serde(rename = "$next", default)]
    next: Option<String>,
    // Read so that both spellings are accepted; the page size asked for is what counts.
    #[serde(rename = "$itemsPerPage", alias = "$items_per_page", default)]
    #[allow(dead_code)]
    items_per_page: Option<u32>,
}

/// Decodes a list answer: Sage's envelope, or a bare JSON array (read as one last page). `provider_time` is left
/// `None` (it comes from the `Date` header).
///
/// ```
/// let page = oc_sageone::decode_page(br#"{"$total": 3, "$page": 1, "$next": "/contacts?page=2",
///     "$itemsPerPage": 2, "$items": [{"id": "a"}, {"id": "b"}]}"#).unwrap();
/// assert_eq!(page.records.len(), 2);
/// assert_eq!(page.next.as_deref(), Some("/contacts?page=2"));
/// assert_eq!(page.total, Some(3));
/// ```
pub fn decode_page(body: &[u8]) -> Result<Page, serde_json::Error> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let records: Vec<Value> = serde_json::from_slice(body)?;
        return Ok(Page { total: Some(records.len() as u64), records, page: None, next: None, provider_time: None });
    }
    let e: Envelope = serde_json::from_slice(body)?;
    Ok(Page {
        records: e.items,
        total: e.total,
        page: e.page,
        next: e.next.filter(|n| !n.is_empty()),
        provider_time: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records, total, page, next.
    type Summary<'a> = (usize, Option<u64>, Option<u32>, Option<&'a str>);

    fn check(body: &str, expected: Option<Summary<'_>>) {
        let got = decode_page(body.as_bytes()).ok().map(|p| (p.records.len(), p.total, p.page, p.next.clone()));
        assert_eq!(got, expected.map(|(n, t, p, x)| (n, t, p, x.map(String::from))), "{body}");
    }

    #[test]
    fn envelopes() {
        check(
            r#"{"$items":[{"id":"1"}],"$total":1,"$page":1,"$next":null,"$itemsPerPage":20}"#,
            Some((1, Some(1), Some(1), None)),
        );
        check(
            r#"{"$items":[],"$total":0,"$page":1,"$next":null,"$items_per_page":20,"$back":null}"#,
            Some((0, Some(0), Some(1), None)),
        );
        check(
            r#"{"$items":[{},{}],"$next":"/contacts?page=3","$page":2}"#,
            Some((2, None, Some(2), Some("/contacts?page=3"))),
        );
        check(r#"{"$items":[],"$next":""}"#, Some((0, None, None, None)));
        check(r#" [{"id":"x"}]"#, Some((1, Some(1), None, None)));
        check(r#"{"$items":{}}"#, None);
        check("<html>", None);
        check("", None);
    }
}
