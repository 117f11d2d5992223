//! List calls as Sage answers them: declared parameters only, `items_per_page` (default 20, max 200), `page`
//! (past the end: the last page), `attributes` projection, `updated_or_created_since` (inclusive),
//! `deleted_since` (exclusive, the deleted feed), `sort` and the endpoint's filters; the
//! `$total/$page/$next/$back/$itemsPerPage/$items` envelope with `$next`/`$back` as relative paths.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::sage_error::ApiError;
use crate::store::{Collection, RecordState, RefKeys};
use crate::swagger::Endpoint;
use crate::timefmt;

/// Default `items_per_page`.
pub(crate) const DEFAULT_ITEMS_PER_PAGE: usize = 20;
/// Largest `items_per_page` Sage accepts.
pub(crate) const MAX_ITEMS_PER_PAGE: usize = 200;

/// The decoded query string, in order (a repeated name: the last one wins).
pub(crate) fn parse_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Rejects the first parameter the endpoint does not declare (see `docs/simulator.md`).
pub(crate) fn check_declared(
    pairs: &[(String, String)],
    declares: impl Fn(&str) -> bool,
    method: &str,
    path: &str,
) -> Result<(), ApiError> {
    match pairs.iter().find(|(k, _)| !declares(k)) {
        Some((k, _)) => Err(ApiError::unexpected_parameter(k, method, path)),
        None => Ok(()),
    }
}

/// Which attributes a response shows besides `id`, `displayed_as` and `$path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attributes {
    /// Only the base attributes.
    Base,
    /// Every attribute.
    All,
    /// The base attributes and these.
    Some(Vec<String>),
}

impl Attributes {
    pub(crate) fn parse(value: Option<&str>) -> Attributes {
        let Some(v) = value else { return Attributes::Base };
        let names: Vec<String> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if names.iter().any(|n| n == "all") {
            Attributes::All
        } else if names.is_empty() {
            Attributes::Base
        } else {
            Attributes::Some(names)
        }
    }
}

const BASE: [&str; 3] = ["id", "displayed_as", "$path"];

/// Writes the record as JSON with the chosen attributes (the base ones first).
pub(crate) fn write_projected(out: &mut Vec<u8>, fields: &Map<String, Value>, attributes: &Attributes) {
    out.push(b'{');
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, k: &str, v: &Value| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_json(out, &Value::String(k.to_owned()));
        out.push(b':');
        write_json(out, v);
    };
    for k in BASE {
        if let Some(v) = fields.get(k) {
            put(out, k, v);
        }
    }
    match attributes {
        Attributes::Base => {}
        Attributes::All => {
            for (k, v) in fields {
                if !BASE.contains(&k.as_str()) {
                    put(out, k, v);
                }
            }
        }
        Attributes::Some(names) => {
            for (i, k) in names.iter().enumerate() {
                if BASE.contains(&k.as_str()) || names[..i].contains(k) {
                    continue;
                }
                if let Some(v) = fields.get(k) {
                    put(out, k, v);
                }
            }
        }
    }
    out.push(b'}');
}

fn write_json(out: &mut Vec<u8>, v: &Value) {
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// One filter of a list call, from a declared parameter.
#[derive(Debug, Clone)]
enum Filter {
    /// `x_id`: the nested `x.id` (or one of the array `xs`) equals the value.
    Ref { field: String, many: bool, id: String, key: u64 },
    /// `search`: a case-insensitive substring of one of the fields.
    Search { fields: &'static [&'static str], needle: String },
    /// A field equals a boolean.
    Bool { field: String, value: bool },
    /// `email`: the contact's or its main contact person's email.
    Email(String),
    /// `from_date`/`to_date` on the record's `date`.
    DateRange { from: Option<String>, to: Option<String> },
    /// Nothing matches (`has_attachments=true`: the simulator holds no attachments).
    Nothing,
}

/// What `search` looks at, per resource (Sage's parameter descriptions).
fn search_fields(resource: &str) -> &'static [&'static str] {
    match resource {
        "contacts" => &["name", "reference", "displayed_as"],
        "products" | "services" | "stock_items" => &["item_code", "description"],
        "ledger_accounts" => &["name", "display_name", "displayed_as"],
        r if r.starts_with("sales_") || r.starts_with("purchase_") => {
            &["reference", "contact_name", "displayed_as", "vendor_reference"]
        }
        _ => &["displayed_as"],
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(name, format!("{name} must be true or false"))),
    }
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    timefmt::parse_query(value)
        .ok_or_else(|| ApiError::invalid(name, format!("{name} is not a valid date or date-time: {value:?}")))
}

/// A parsed list call.
#[derive(Debug, Clone)]
pub(crate) struct ListRequest {
    pub(crate) items_per_page: usize,
    pub(crate) page: usize,
    pub(crate) attributes: Attributes,
    since: Option<DateTime<Utc>>,
    deleted_since: Option<DateTime<Utc>>,
    sort: Option<(String, bool)>,
    filters: Vec<Filter>,
    pairs: Vec<(String, String)>,
}

/// Parses `items_per_page` and `page`, the parameters every list call has.
fn paging(pairs: &[(String, String)]) -> Result<(usize, usize), ApiError> {
    let items_per_page = match last(pairs, "items_per_page") {
        None => DEFAULT_ITEMS_PER_PAGE,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_ITEMS_PER_PAGE as i64).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::invalid(
                    "items_per_page",
                    format!("items_per_page must be an integer between 1 and {MAX_ITEMS_PER_PAGE}"),
                ));
            }
        },
    };
    let page = match last(pairs, "page") {
        None => 1,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) => n.max(1) as usize,
            Err(_) => return Err(ApiError::invalid("page", "page must be an integer")),
        },
    };
    Ok((items_per_page, page))
}

impl ListRequest {
    /// A list call of a fixed collection that declares only `items_per_page`, `page` and `attributes`
    /// (`/businesses`).
    pub(crate) fn simple(pairs: Vec<(String, String)>, path: &str) -> Result<Self, ApiError> {
        check_declared(&pairs, |k| matches!(k, "items_per_page" | "page" | "attributes"), "GET", path)?;
        let (items_per_page, page) = paging(&pairs)?;
        Ok(ListRequest {
            items_per_page,
            page,
            attributes: Attributes::parse(last(&pairs, "attributes")),
            since: None,
            deleted_since: None,
            sort: None,
            filters: vec![],
            pairs,
        })
    }

    /// Parses a list call of `endpoint`, refusing parameters it does not declare.
    pub(crate) fn parse(endpoint: &Endpoint, pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        check_declared(&pairs, |k| endpoint.list_declares(k), "GET", &format!("/{}", endpoint.name))?;
        let (items_per_page, page) = paging(&pairs)?;
        let mut request = ListRequest {
            items_per_page,
            page,
            attributes: Attributes::parse(last(&pairs, "attributes")),
            since: None,
            deleted_since: None,
            sort: None,
            filters: vec![],
            pairs: vec![],
        };
        let mut from = None;
        let mut to = None;
        let mut seen: Vec<&str> = vec![];
        for (name, value) in pairs.iter().rev() {
            if seen.contains(&name.as_str()) {
                continue;
            }
            seen.push(name);
            match name.as_str() {
                "items_per_page" | "page" | "attributes" => {}
                "updated_or_created_since" => request.since = Some(parse_time(name, value)?),
                "deleted_since" => request.deleted_since = Some(parse_time(name, value)?),
                "sort" => {
                    let (attr, dir) = value.split_once(':').unwrap_or((value.as_str(), "asc"));
                    if !endpoint.sort_attributes().any(|a| a == attr) {
                        let allowed = endpoint.sort_attributes().collect::<Vec<_>>().join(", ");
                        return Err(ApiError::invalid("sort", format!("sort must be one of {allowed}")));
                    }
                    let desc = match dir {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(ApiError::invalid("sort", "the sort direction must be asc or desc")),
                    };
                    request.sort = Some((attr.to_owned(), desc));
                }
                "search" => request
                    .filters
                    .push(Filter::Search { fields: search_fields(endpoint.name), needle: value.to_lowercase() }),
                "email" => request.filters.push(Filter::Email(value.to_lowercase())),
                "from_date" | "to_date" if endpoint.has_property("date") => {
                    let day = timefmt::format_date(parse_time(name, value)?);
                    if name == "from_date" { from = Some(day) } else { to = Some(day) }
                }
                "active" => {
                    request.filters.push(Filter::Bool { field: "active".into(), value: parse_bool(name, value)? })
                }
                "filter_inactive_contacts" | "filter_inactive_bank_accounts" => {
                    if parse_bool(name, value)? {
                        request.filters.push(Filter::Bool { field: "is_active".into(), value: true });
                    }
                }
                "exclude_system" => {
                    if parse_bool(name, value)? {
                        request.filters.push(Filter::Bool { field: "system".into(), value: false });
                    }
                }
                "has_attachments" => {
                    if parse_bool(name, value)? {
                        request.filters.push(Filter::Nothing);
                    }
                }
                "visible_in" | "not_visible_in" => {
                    let field = format!("visible_in_{value}");
                    if !endpoint.has_property(&field) {
                        return Err(ApiError::invalid(name, format!("{name} has no area {value:?}")));
                    }
                    request.filters.push(Filter::Bool { field, value: name == "visible_in" });
                }
                other => {
                    if let Some(field) = other.strip_suffix("_id") {
                        let plural = format!("{field}s");
                        if endpoint.has_property(field) {
                            let key = RefKeys::key(field, value);
                            request.filters.push(Filter::Ref {
                                field: field.to_owned(),
                                many: false,
                                id: value.clone(),
                                key,
                            });
                        } else if endpoint.has_property(&plural) {
                            let key = RefKeys::key(&plural, value);
                            request.filters.push(Filter::Ref { field: plural, many: true, id: value.clone(), key });
                        }
                    }
                    // Other declared parameters change what Sage computes or shows (balances, nested
                    // attributes, tax contexts); they are accepted and change nothing here.
                }
            }
        }
        if from.is_some() || to.is_some() {
            request.filters.push(Filter::DateRange { from, to });
        }
        request.pairs = pairs;
        Ok(request)
    }

    fn matches(&self, state: &RecordState) -> bool {
        match self.deleted_since {
            Some(since) => match state.deleted_at {
                Some(d) if d > since => {}
                _ => return false,
            },
            None if state.deleted_at.is_some() => return false,
            None => {}
        }
        if let Some(since) = self.since
            && state.stamp() < since
            && state.created_at < since
        {
            return false;
        }
        let f = &state.fields;
        self.filters.iter().all(|filter| match filter {
            Filter::Ref { key, .. } if !state.refs.overflow => state.refs.contains(*key),
            Filter::Ref { field, many: false, id, .. } => {
                f.get(field).and_then(|v| v.get("id")).and_then(Value::as_str) == Some(id)
            }
            Filter::Ref { field, many: true, id, .. } => f
                .get(field)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.get("id").and_then(Value::as_str) == Some(id))),
            Filter::Search { fields, needle } => fields
                .iter()
                .any(|k| f.get(*k).and_then(Value::as_str).is_some_and(|s| s.to_lowercase().contains(needle.as_str()))),
            Filter::Bool { field, value } => f.get(field).and_then(Value::as_bool).unwrap_or(false) == *value,
            Filter::Email(email) => {
                let direct = f.get("email").and_then(Value::as_str);
                let person = f.get("main_contact_person").and_then(|p| p.get("email")).and_then(Value::as_str);
                [direct, person].into_iter().flatten().any(|e| e.to_lowercase() == *email)
            }
            Filter::DateRange { from, to } => {
                let Some(date) = f.get("date").and_then(Value::as_str) else { return false };
                from.as_deref().is_none_or(|d| date >= d) && to.as_deref().is_none_or(|d| date <= d)
            }
            Filter::Nothing => false,
        })
    }

    /// Runs the call over a collection as seen at `now` (changes visible `delay` after they happen).
    pub(crate) fn run(
        &self,
        resource: &str,
        collection: Option<&Collection>,
        now: DateTime<Utc>,
        delay: chrono::Duration,
    ) -> ListPage {
        let mut items: Vec<&Map<String, Value>> = collection
            .map(|c| {
                c.records()
                    .iter()
                    .filter_map(|r| r.visible(now, delay))
                    .filter(|s| self.matches(s))
                    .map(|s| &s.fields)
                    .collect()
            })
            .unwrap_or_default();
        if let Some((attr, desc)) = &self.sort {
            items.sort_by(|a, b| {
                let o = cmp_values(a.get(attr), b.get(attr));
                if *desc { o.reverse() } else { o }
            });
        }
        self.render(resource, &items)
    }

    /// Pages and renders items already filtered and ordered.
    pub(crate) fn render(&self, resource: &str, items: &[&Map<String, Value>]) -> ListPage {
        let total = items.len();
        let per = self.items_per_page;
        let last_page = total.div_ceil(per).max(1);
        let page = self.page.min(last_page);
        let slice = &items[(page - 1) * per..(page * per).min(total)];
        let mut body = Vec::with_capacity(64 + slice.len() * 160);
        body.extend_from_slice(b"{\"$total\":");
        body.extend_from_slice(total.to_string().as_bytes());
        body.extend_from_slice(b",\"$page\":");
        body.extend_from_slice(page.to_string().as_bytes());
        body.extend_from_slice(b",\"$next\":");
        let link = |p: usize| Value::String(self.path_for_page(resource, p));
        write_json(&mut body, &if page < last_page { link(page + 1) } else { Value::Null });
        body.extend_from_slice(b",\"$back\":");
        write_json(&mut body, &if page > 1 { link(page - 1) } else { Value::Null });
        body.extend_from_slice(b",\"$itemsPerPage\":");
        body.extend_from_slice(per.to_string().as_bytes());
        body.extend_from_slice(b",\"$items\":[");
        let mut ids = Vec::with_capacity(slice.len());
        for (i, fields) in slice.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            write_projected(&mut body, fields, &self.attributes);
            ids.push(fields.get("id").and_then(Value::as_str).unwrap_or("").to_owned());
        }
        body.extend_from_slice(b"]}");
        ListPage { body, page, ids }
    }

    /// `/resource?...&page=N`: the call's own parameters in their order, `page` replaced.
    fn path_for_page(&self, resource: &str, page: usize) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let mut placed = false;
        for (k, v) in &self.pairs {
            if k == "page" {
                if !placed {
                    query.append_pair("page", &page.to_string());
                    placed = true;
                }
            } else {
                query.append_pair(k, v);
            }
        }
        if !placed {
            query.append_pair("page", &page.to_string());
        }
        format!("/{resource}?{}", query.finish())
    }
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::Null) | None, Some(Value::Null) | None) => Ordering::Equal,
        (Some(Value::Null) | None, _) => Ordering::Less,
        (_, Some(Value::Null) | None) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// One rendered page and the ids it holds (for page hooks).
#[derive(Debug)]
pub(crate) struct ListPage {
    pub(crate) body: Vec<u8>,
    pub(crate) page: usize,
    pub(crate) ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swagger::endpoint;

    fn pairs(q: &str) -> Vec<(String, String)> {
        parse_pairs(Some(q))
    }

    fn check_parse(resource: &str, query: &str, expected: Result<(), (u16, &str)>) {
        let e = endpoint(resource).expect("endpoint");
        match (ListRequest::parse(e, pairs(query)), expected) {
            (Ok(_), Ok(())) => {}
            (Err(err), Err((status, source))) => {
                assert_eq!((err.status.as_u16(), err.source.as_str()), (status, source), "{resource}?{query}")
            }
            (got, want) => panic!("{resource}?{query}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn only_declared_parameters_with_valid_values_pass() {
        check_parse("contacts", "contact_type_id=CUSTOMER&search=a&email=x&attributes=all", Ok(()));
        check_parse("contacts", "sort=updated_at", Err((400, "sort")));
        check_parse("contacts", "status_id=X", Err((400, "status_id")));
        check_parse("contacts", "unknown=1", Err((400, "unknown")));
        check_parse("sales_quotes", "deleted_since=2024-01-01", Err((400, "deleted_since")));
        check_parse("sales_invoices", "sort=updated_at:desc&deleted_since=2024-01-01T00:00:00Z", Ok(()));
        check_parse("sales_invoices", "sort=name", Err((422, "sort")));
        check_parse("sales_invoices", "sort=date:sideways", Err((422, "sort")));
        check_parse("contacts", "items_per_page=200", Ok(()));
        check_parse("contacts", "items_per_page=201", Err((422, "items_per_page")));
        check_parse("contacts", "items_per_page=0", Err((422, "items_per_page")));
        check_parse("contacts", "items_per_page=ten", Err((422, "items_per_page")));
        check_parse("contacts", "page=x", Err((422, "page")));
        check_parse("contacts", "updated_or_created_since=soon", Err((422, "updated_or_created_since")));
        check_parse("products", "active=maybe", Err((422, "active")));
        check_parse("ledger_accounts", "visible_in=sales", Ok(()));
        check_parse("ledger_accounts", "visible_in=moon", Err((422, "visible_in")));
    }

    #[test]
    fn attributes_parse() {
        assert_eq!(Attributes::parse(None), Attributes::Base);
        assert_eq!(Attributes::parse(Some("")), Attributes::Base);
        assert_eq!(Attributes::parse(Some("a, all")), Attributes::All);
        assert_eq!(
            Attributes::parse(Some("created_at,updated_at")),
            Attributes::Some(vec!["created_at".into(), "updated_at".into()])
        );
    }

    #[test]
    fn next_and_back_keep_the_other_parameters() {
        let e = endpoint("contacts").expect("contacts");
        let r =
            ListRequest::parse(e, pairs("attributes=created_at%2Cupdated_at&page=2&items_per_page=1")).expect("parse");
        assert_eq!(
            r.path_for_page("contacts", 3),
            "/contacts?attributes=created_at%2Cupdated_at&page=3&items_per_page=1"
        );
        let r = ListRequest::parse(e, pairs("contact_type_id=CUSTOMER")).expect("parse");
        assert_eq!(r.path_for_page("contacts", 2), "/contacts?contact_type_id=CUSTOMER&page=2");
    }

    #[test]
    fn projection_writes_base_attributes_first() {
        let fields: Map<String, Value> = serde_json::from_str(
            r#"{"name":"n","id":"1","displayed_as":"d","$path":"/x/1","created_at":"c","updated_at":"u"}"#,
        )
        .expect("json");
        let render = |a: Attributes| {
            let mut out = vec![];
            write_projected(&mut out, &fields, &a);
            String::from_utf8(out).expect("utf8")
        };
        assert_eq!(render(Attributes::Base), r#"{"id":"1","displayed_as":"d","$path":"/x/1"}"#);
        assert_eq!(
            render(Attributes::Some(vec!["updated_at".into(), "id".into(), "nope".into(), "updated_at".into()])),
            r#"{"id":"1","displayed_as":"d","$path":"/x/1","updated_at":"u"}"#
        );
        assert_eq!(
            render(Attributes::All),
            r#"{"id":"1","displayed_as":"d","$path":"/x/1","name":"n","created_at":"c","updated_at":"u"}"#
        );
    }
}
