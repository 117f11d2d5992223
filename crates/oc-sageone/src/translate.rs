//! From a hub resource and a CEQL clause to a Sage request: the path, the query pairs in the order sent, and the
//! residual predicate Sage cannot evaluate, which is applied to the fetched records.
//!
//! The rules, term by term of the top-level `AND` (anything under an `OR` stays local as a whole, so a
//! disjunction over a pushed-down field fetches the wider set and is finished locally — never a wrong push-down):
//!
//! | term | sent to Sage | kept local |
//! |---|---|---|
//! | `lastModifiedDate >= 'X'` (or `updated_at`) | `updated_or_created_since=X` (inclusive) | — |
//! | `lastModifiedDate > 'X'` | `updated_or_created_since=X` | the term (Sage is inclusive) |
//! | `deletedDate > 'X'` (or `deleted_at`) | `deleted_since=X` (exclusive) | — |
//! | `deletedDate >= 'X'` | `deleted_since=X−1s` (Sage's timestamps are whole seconds) | — |
//! | `attributes = 'a,b'` | `attributes=a,b,` + the fields the poller and the local predicate need | — |
//! | `name = value`, `name` a query parameter the endpoint declares | `name=value` | — |
//! | anything else on record fields | — | the term |
//!
//! Dates sent are normalized to UTC whole seconds (`2024-01-31T12:00:00Z`); a date with a fraction of a second
//! is floored and the term is also kept local. Only the first date term of each kind is pushed down; later ones
//! stay local. A second `name = value` for the same parameter, a value contradicting the resource's fixed
//! parameter (`contact_type_id='VENDOR'` on `customers`), a Sage parameter used where only a record field can be
//! evaluated (under `OR`, with `!=`, ...), and a name that is a query parameter of another endpoint but neither a
//! parameter nor a field here, are errors: nothing is silently dropped. A name that is neither is evaluated
//! locally (Sage's API description may not list every field) with a warning.
//!
//! `attributes`: when the clause names none, exactly the fields the poller needs ([`FieldNeeds`]) and those the
//! local predicate reads are requested (Sage then returns only those plus `id`, `displayed_as`, `$path`);
//! `attributes='all'` is sent as it is. `sort=updated_at` is added where the endpoint declares `sort` (a stable
//! order while paging, `change-detection.md` step 3) unless the hub URL's `orderBy` asks for another order; it is
//! part of the compiled query so that `ocpoll ceql translate` shows exactly what is sent.

use std::fmt;
use std::sync::Arc;

use oc_ceql::{CmpOp, Expr, ExprKind, LocalFilter, Span, Value, Warning, parse_instant};
use oc_model::ports::{CompiledQuery, FieldNeeds, QueryError, RecordFilter};
use serde::Serialize;
use serde_json::Value as Json;

use crate::dates::{floor_second, format_sage};
use crate::dialect::DIALECT;
use crate::endpoints::{DELETED_SINCE, Endpoint, ParamType, UPDATED_OR_CREATED_SINCE, endpoints};
use crate::error::{CeqlError, CeqlErrorKind, query_error};
use crate::resources::{Lists, Resolved, known_names, resolve};

/// A translation, as `ocpoll ceql translate` prints it. Serializes (serde) to exactly
/// `{"path": "/contacts", "query": [["contact_type_id","CUSTOMER"], ...], "local": "<residual CEQL>" | null,
/// "warnings": ["..."]}`; its `Display` is the human rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translation {
    /// The Sage path.
    pub path: String,
    /// Query pairs, in the order sent.
    pub query: Vec<(String, String)>,
    /// The residual predicate applied locally, in CEQL; `None` when Sage evaluates everything.
    pub local: Option<String>,
    /// Things accepted but worth telling (one line each).
    pub warnings: Vec<String>,
    /// The Sage paths read after `path`, with the same query (a composite resource such as `items`: products,
    /// then services); empty for every other resource, and then not serialized.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<String>,
    /// Why each query pair is sent (same length as `query`).
    #[serde(skip)]
    pub origins: Vec<String>,
    /// The warnings with the clause and a caret under the place.
    #[serde(skip)]
    pub rendered_warnings: Vec<String>,
}

impl fmt::Display for Translation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if query.is_empty() {
            writeln!(f, "GET {}", self.path)?;
        } else {
            writeln!(f, "GET {}?{}", self.path, query.join("&"))?;
        }
        let width = query.iter().map(String::len).max().unwrap_or(0);
        for (pair, origin) in query.iter().zip(&self.origins) {
            writeln!(f, "  {pair:<width$}  <- {origin}")?;
        }
        for path in &self.then {
            writeln!(f, "then GET {path} with the same query, when {} is read to its end", self.path)?;
        }
        match &self.local {
            Some(local) => writeln!(f, "local: {local}")?,
            None => writeln!(f, "local: none (Sage evaluates the whole clause)")?,
        }
        for w in &self.rendered_warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Translates a `where` clause for a hub resource (`customers`, or a Sage name such as `sales_invoices`), with
/// no extra fields needed. This is `ocpoll ceql translate --resource NAME 'WHERE'`. An empty clause translates
/// to the resource's plain list call. Errors render with a caret under `where_clause`.
///
/// ```
/// let t = oc_sageone::translate("customers", "lastModifiedDate >= '2024-01-01T00:00:00Z' and name like 'A%'").unwrap();
/// assert_eq!(t.path, "/contacts");
/// assert_eq!(
///     serde_json::to_string(&t).unwrap(),
///     r#"{"path":"/contacts","query":[["contact_type_id","CUSTOMER"],["updated_or_created_since","2024-01-01T00:00:00Z"],["attributes","name"]],"local":"name LIKE 'A%'","warnings":[]}"#
/// );
/// let err = oc_sageone::translate("customers", "name = ").unwrap_err();
/// assert!(err.to_string().ends_with("name = \n         ^"));
/// ```
pub fn translate(resource: &str, where_clause: &str) -> Result<Translation, QueryError> {
    let Some(lists) = resolve(resource) else {
        let e = CeqlErrorKind::UnknownResource { name: resource.to_string(), known: known_names() };
        return Err(query_error(&[e.into()], where_clause));
    };
    let (expr, mut warnings) = if where_clause.trim().is_empty() {
        (None, Vec::new())
    } else {
        let parsed = oc_ceql::parse(where_clause).map_err(|e| query_error(&[e.into()], where_clause))?;
        (Some(parsed.expr), parsed.warnings)
    };
    let mut plan = plan_lists(&lists, expr.as_ref(), &[], &[]).map_err(|e| query_error(&e, where_clause))?;
    if let Some(sort) = default_sort(&lists) {
        plan.push(sort.0, sort.1, sort.2);
    }
    warnings.append(&mut plan.warnings);
    Ok(Translation {
        path: lists.first().endpoint.path.to_string(),
        query: plan.query,
        local: plan.local.as_ref().map(Expr::to_string),
        warnings: warnings.iter().map(|w| w.message.clone()).collect(),
        then: lists.all().skip(1).map(|l| l.endpoint.path.to_string()).collect(),
        origins: plan.origins,
        rendered_warnings: warnings.iter().map(|w| w.render(where_clause)).collect(),
    })
}

/// Compiles a rendered hub URL (`/hubs/finance/customers?where=...&pageSize=50`) into the Sage request, adding
/// the fields `needs` asks for to `attributes`. Pure. Errors and warnings point into the URL.
pub fn compile(hub_url: &str, needs: &FieldNeeds) -> Result<CompiledQuery, QueryError> {
    let url = oc_ceql::parse_hub_url(hub_url, &DIALECT)
        .map_err(|e| query_error(&e.into_iter().map(CeqlError::from).collect::<Vec<_>>(), hub_url))?;
    let Some(lists) = resolve(&url.resource) else {
        let e = CeqlErrorKind::UnknownResource { name: url.resource.clone(), known: known_names() };
        return Err(query_error(&[CeqlError::new(e, url.resource_span.clone())], hub_url));
    };
    let mut warnings: Vec<String> = url.warnings.iter().map(|w| w.message.clone()).collect();
    let expr = match &url.where_clause {
        None => None,
        Some(w) => {
            let parsed =
                oc_ceql::parse(w.text()).map_err(|e| query_error(&[e.map_span(|s| w.url_span(s)).into()], hub_url))?;
            warnings.extend(parsed.warnings.iter().map(|w| format!("where: {}", w.message)));
            Some(parsed.expr)
        }
    };
    let mut errors = Vec::new();
    let selected = match &url.fields {
        None => Vec::new(),
        Some(f) => selected_fields(f, &mut errors),
    };
    let heads: Vec<String> = selected.iter().map(|(head, _)| head.clone()).collect();
    let plan = match plan_lists(&lists, expr.as_ref(), &needs.fields, &heads) {
        Ok(plan) => Some(plan),
        Err(e) => {
            let w = url.where_clause.as_ref();
            errors.extend(e.into_iter().map(|e| e.map_span(|s| w.map_or(s.clone(), |w| w.url_span(s)))));
            None
        }
    };
    let sort = match &url.order_by {
        None => default_sort(&lists).map(Ok),
        Some(o) => Some(order_by(&lists, o.text()).map_err(|e| e.map_span(|s| o.url_span(s)))),
    };
    let sort = match sort {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let (Some(mut plan), true) = (plan, errors.is_empty()) else { return Err(query_error(&errors, hub_url)) };
    if let Some((k, v, origin)) = sort {
        plan.push(k, v, origin);
    }
    warnings.extend(plan.warnings.iter().map(|w| format!("where: {}", w.message)));
    for (head, name) in &selected {
        for list in lists.all() {
            let endpoint = list.endpoint;
            if head != "all" && !DIALECT.is_always_returned(head) && !endpoint.has_field(head) {
                warnings.push(format!(
                    "fields: `{name}` is not a field of {} records in Sage's API description",
                    endpoint.record
                ));
            }
        }
    }
    Ok(CompiledQuery {
        resource: url.resource,
        path: lists.first().endpoint.path.to_string(),
        query: plan.query,
        page_size: url.page_size,
        page: url.page,
        has_deleted_feed: lists.every(|l| l.endpoint.has_deleted_feed()),
        local: plan.local.as_ref().map(|e| Arc::new(SageFilter(LocalFilter::new(e, &DIALECT))) as _),
        warnings,
    })
}

/// The residual predicate of a compiled query, as the port's [`RecordFilter`]: CEQL's evaluation in Sage's
/// dialect.
struct SageFilter(LocalFilter);

impl fmt::Debug for SageFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl RecordFilter for SageFilter {
    fn matches(&self, record: &Json) -> bool {
        self.0.matches(record)
    }

    fn describe(&self) -> String {
        self.0.text().to_string()
    }
}

/// What a translation sends and keeps.
#[derive(Debug)]
struct Plan {
    query: Vec<(String, String)>,
    origins: Vec<String>,
    local: Option<Expr>,
    warnings: Vec<Warning>,
}

impl Plan {
    fn push(&mut self, key: impl Into<String>, value: impl Into<String>, origin: impl Into<String>) {
        self.query.push((key.into(), value.into()));
        self.origins.push(origin.into());
    }

    fn has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }
}

fn is_updated_field(name: &str) -> bool {
    matches!(name, "lastModifiedDate" | "updated_at")
}

fn is_deleted_field(name: &str) -> bool {
    matches!(name, "deletedDate" | "deleted_at")
}

/// `sort=updated_at` where every list has it.
fn default_sort(lists: &Lists) -> Option<(&'static str, String, &'static str)> {
    lists
        .every(|l| l.endpoint.has_sort() && l.endpoint.sort_keys.contains(&"updated_at"))
        .then(|| ("sort", "updated_at".to_string(), "a stable order while paging (change detection)"))
}

/// `orderBy=field [asc|desc]` → `sort=key[:desc]`, which every list must accept (a composite resource is
/// ordered list by list).
fn order_by(lists: &Lists, text: &str) -> Result<(&'static str, String, &'static str), CeqlError> {
    let mut sort = None;
    for list in lists.all() {
        sort = Some(order_by_one(list.endpoint, text)?);
    }
    sort.ok_or_else(|| not_one_field(text, 0..text.len()))
}

/// [`order_by`] for one endpoint.
fn order_by_one(endpoint: &Endpoint, text: &str) -> Result<(&'static str, String, &'static str), CeqlError> {
    let trimmed_start = text.len() - text.trim_start().len();
    let body = text.trim();
    let span = trimmed_start..trimmed_start + body.len();
    let mut words = body.split(|c: char| c.is_whitespace() || c == ':').filter(|w| !w.is_empty());
    let field = words.next().unwrap_or("");
    let direction = words.next();
    let desc = match direction.map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(not_one_field(body, span));
        }
    };
    if words.next().is_some() || field.contains(',') {
        return Err(not_one_field(body, span));
    }
    let key = DIALECT.record_path(field).join(".");
    if !endpoint.sort_keys.contains(&key.as_str()) {
        let kind = CeqlErrorKind::BadOrder {
            path: endpoint.path.to_string(),
            key: field.to_string(),
            keys: endpoint.sort_keys.join(", "),
        };
        return Err(CeqlError::new(kind, span));
    }
    let value = if desc { format!("{key}:desc") } else { key };
    Ok(("sort", value, "orderBy"))
}

/// `orderBy` that is not one field and a direction.
fn not_one_field(body: &str, span: Span) -> CeqlError {
    let expected = "one field and an optional `asc` or `desc`".into();
    CeqlError::new(CeqlErrorKind::Ceql(oc_ceql::ErrorKind::Expected { expected, found: format!("`{body}`") }), span)
}

/// The value to send for `value` as the declared parameter of type `ty`, when it fits.
fn param_text(ty: ParamType, value: &Value) -> Option<String> {
    match (ty, value) {
        (ParamType::Boolean, Value::Bool(b)) => Some(b.to_string()),
        (ParamType::Boolean, Value::String(s)) if s == "true" || s == "false" => Some(s.clone()),
        (ParamType::Integer, Value::Number(s) | Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Some(s.trim().to_string())
        }
        (ParamType::Number, Value::Number(s) | Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
            Some(s.trim().to_string())
        }
        (ParamType::String, v) => Some(v.as_text().to_string()),
        _ => None,
    }
}

/// The instant of a date term's value.
fn instant(value: &oc_ceql::Literal) -> Result<chrono::DateTime<chrono::Utc>, CeqlError> {
    match &value.value {
        Value::String(s) => parse_instant(s),
        _ => None,
    }
    .ok_or_else(|| {
        CeqlError::new(CeqlErrorKind::NotADate { value: value.value.as_text().to_string() }, value.span.clone())
    })
}

/// The record fields of a hub URL's `fields` (`name,email`, `main_address.city`): for each, the top-level
/// record field Sage's `attributes` takes (an Open Connectors name such as `lastModifiedDate` read as its Sage
/// field) and the name as given. Empty entries are skipped; a name that cannot be a field is an error at its
/// place in the URL.
fn selected_fields(fields: &oc_ceql::Decoded, errors: &mut Vec<CeqlError>) -> Vec<(String, String)> {
    let text = fields.text();
    let mut selected: Vec<(String, String)> = Vec::new();
    let mut start = 0;
    for part in text.split(',') {
        let name = part.trim();
        let at = start + (part.len() - part.trim_start().len());
        start += part.len() + 1;
        if name.is_empty() {
            continue;
        }
        let is_name = name.split('.').all(|segment| {
            !segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        });
        if !is_name {
            let kind = CeqlErrorKind::BadField { name: name.to_string() };
            errors.push(CeqlError::new(kind, fields.url_span(at..at + name.len())));
            continue;
        }
        let head = DIALECT.record_path(name).swap_remove(0);
        if !selected.iter().any(|(h, _)| *h == head) {
            selected.push((head, name.to_string()));
        }
    }
    selected
}

/// [`plan`] for every list of a resource: the query is the first list's (the others differ only in their fixed
/// parameters, which the provider swaps when it reads them); a problem found in several lists is said once.
fn plan_lists(
    lists: &Lists,
    expr: Option<&Expr>,
    needs: &[String],
    selected: &[String],
) -> Result<Plan, Vec<CeqlError>> {
    let mut first = None;
    let mut errors: Vec<CeqlError> = Vec::new();
    for list in lists.all() {
        match plan(list, expr, needs, selected) {
            Ok(p) if first.is_none() => first = Some(p),
            Ok(p) => {
                if let Some(f) = first.as_mut() {
                    for w in p.warnings {
                        if !f.warnings.contains(&w) {
                            f.warnings.push(w);
                        }
                    }
                }
            }
            Err(e) => {
                for e in e {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
            }
        }
    }
    match first {
        Some(plan) if errors.is_empty() => Ok(plan),
        _ => Err(errors),
    }
}

/// Splits `expr` into what Sage evaluates and what stays local (see the module doc); `selected` are the
/// top-level fields the hub URL's `fields` asks for, requested with the clause's `attributes`.
fn plan(
    resolved: Resolved,
    expr: Option<&Expr>,
    needs: &[String],
    selected: &[String],
) -> Result<Plan, Vec<CeqlError>> {
    let endpoint = resolved.endpoint;
    let mut plan = Plan { query: Vec::new(), origins: Vec::new(), local: None, warnings: Vec::new() };
    for (k, v) in resolved.fixed {
        plan.push(*k, *v, "the resource");
    }
    let mut errors = Vec::new();
    let mut local: Vec<Expr> = Vec::new();
    let mut user_attributes: Option<Vec<String>> = None;
    for term in expr.map(Expr::conjuncts).unwrap_or_default() {
        let ExprKind::Compare { field, op, value } = &term.kind else {
            local.push(term.clone());
            continue;
        };
        let name = field.name.as_str();
        let origin = term.to_string();
        if name == "attributes" {
            match (&value.value, op) {
                (Value::String(list), CmpOp::Eq) if user_attributes.is_none() => {
                    user_attributes =
                        Some(list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect());
                }
                (Value::String(_), CmpOp::Eq) => {
                    errors.push(CeqlError::new(CeqlErrorKind::Twice { name: name.into() }, term.span.clone()));
                }
                _ => errors.push(CeqlError::new(CeqlErrorKind::BadAttributes, term.span.clone())),
            }
            continue;
        }
        let is_after = matches!(op, CmpOp::Ge | CmpOp::Gt);
        if is_after
            && is_updated_field(name)
            && endpoint.declares(UPDATED_OR_CREATED_SINCE)
            && !plan.has(UPDATED_OR_CREATED_SINCE)
        {
            match instant(value) {
                Ok(t) => {
                    let floor = floor_second(t);
                    plan.push(UPDATED_OR_CREATED_SINCE, format_sage(floor), origin);
                    if *op == CmpOp::Gt || floor != t {
                        local.push(term.clone());
                    }
                }
                Err(e) => errors.push(e),
            }
            continue;
        }
        if is_after && is_deleted_field(name) && endpoint.declares(DELETED_SINCE) && !plan.has(DELETED_SINCE) {
            match instant(value) {
                Ok(t) => {
                    let floor = floor_second(t);
                    // Sage's bound is exclusive and its timestamps whole seconds: `>= X` is `> X − 1s`.
                    let (since, residual) = match op {
                        CmpOp::Ge if floor == t => (floor - chrono::Duration::seconds(1), false),
                        _ => (floor, floor != t),
                    };
                    plan.push(DELETED_SINCE, format_sage(since), origin);
                    if residual {
                        local.push(term.clone());
                    }
                }
                Err(e) => errors.push(e),
            }
            continue;
        }
        if *op == CmpOp::Eq
            && let Some(param) = endpoint.param(name)
        {
            let span = term.span.clone();
            match name {
                "items_per_page" | "page" => {
                    let hint = "use the hub URL's pageSize and page";
                    errors.push(CeqlError::new(CeqlErrorKind::Reserved { name: name.into(), hint }, span));
                    continue;
                }
                "sort" => {
                    let hint = "use the hub URL's orderBy";
                    errors.push(CeqlError::new(CeqlErrorKind::Reserved { name: name.into(), hint }, span));
                    continue;
                }
                _ => {}
            }
            let Some(mut text) = param_text(param.ty, &value.value) else {
                let kind = CeqlErrorKind::WrongType { name: name.into(), expected: param.ty.as_str() };
                errors.push(CeqlError::new(kind, span));
                continue;
            };
            if name == UPDATED_OR_CREATED_SINCE || name == DELETED_SINCE {
                match instant(value) {
                    Ok(t) => text = format_sage(floor_second(t)),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            }
            if let Some((_, fixed)) = resolved.fixed.iter().find(|(k, _)| *k == name) {
                if *fixed != text {
                    let kind = CeqlErrorKind::Conflict { name: name.into(), fixed: fixed.to_string() };
                    errors.push(CeqlError::new(kind, span));
                }
                continue;
            }
            if plan.has(name) {
                errors.push(CeqlError::new(CeqlErrorKind::Twice { name: name.into() }, span));
                continue;
            }
            plan.push(name, text, origin);
            continue;
        }
        local.push(term.clone());
    }

    // What stays local must be evaluable on records.
    let mut local_fields: Vec<String> = Vec::new();
    for term in &local {
        for field in term.fields() {
            let name = field.name.as_str();
            let head = DIALECT.record_path(name).swap_remove(0);
            let span = field.span.clone();
            if name == "attributes" {
                errors.push(CeqlError::new(CeqlErrorKind::BadAttributes, term.span.clone()));
            } else if endpoint.has_field(&head) {
                // A record field.
            } else if endpoint.declares(name) {
                let kind = CeqlErrorKind::NotAField { name: name.into(), path: endpoint.path.into() };
                errors.push(CeqlError::new(kind, span));
            } else if endpoints().iter().any(|e| e.declares(name)) {
                let kind = CeqlErrorKind::NotDeclared { name: name.into(), path: endpoint.path.into() };
                errors.push(CeqlError::new(kind, span));
            } else if !plan.warnings.iter().any(|w| w.span == Some(span.clone())) {
                plan.warnings.push(Warning {
                    message: format!(
                        "`{name}` is not a field of {} records in Sage's API description: records without it do not match",
                        endpoint.record
                    ),
                    span: Some(span),
                });
            }
            if !local_fields.contains(&head) {
                local_fields.push(head);
            }
        }
    }

    // attributes: the user's (the clause's, then the URL's `fields`), then what the poller needs, then what the
    // local predicate reads.
    let mut attributes: Vec<String> = user_attributes.clone().unwrap_or_default();
    for field in selected {
        if !DIALECT.is_always_returned(field) && !attributes.contains(field) {
            attributes.push(field.clone());
        }
    }
    let user_attributes = user_attributes.or_else(|| (!selected.is_empty()).then(Vec::new));
    if !attributes.iter().any(|a| a == "all") {
        let needed = needs.iter().map(|n| DIALECT.record_path(n).swap_remove(0)).chain(local_fields);
        for field in needed {
            if !DIALECT.is_always_returned(&field) && !attributes.contains(&field) {
                attributes.push(field);
            }
        }
    } else {
        attributes = vec!["all".to_string()];
    }
    if !attributes.is_empty() {
        if endpoint.declares("attributes") {
            let origin = match user_attributes {
                Some(_) => {
                    "attributes of the clause and fields, plus the fields the poller and the local predicate need"
                }
                None => "the fields the poller and the local predicate need",
            };
            plan.push("attributes", attributes.join(","), origin);
        } else {
            let kind = CeqlErrorKind::NotDeclared { name: "attributes".into(), path: endpoint.path.into() };
            errors.push(CeqlError::new(kind, 0..0));
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    plan.local = match local.len() {
        0 => None,
        1 => local.pop(),
        _ => {
            let span: Span = local[0].span.start..local[local.len() - 1].span.end;
            Some(Expr { kind: ExprKind::And(local), span })
        }
    };
    Ok(plan)
}

#[cfg(test)]
mod tests;
