//! From a hub URL to a Tasks request: `lastModifiedDate >= 'X'` (the first such term of the top-level `AND`) is
//! sent as `modified_since=X` (the API's bound is inclusive); `>` is sent the same way and also kept local;
//! every other term is evaluated locally by `oc-ceql`'s [`LocalFilter`] behind the port's [`RecordFilter`].
//! `attributes` terms (a Sage habit) are dropped with a warning: the API always returns whole records.

use std::fmt;
use std::sync::Arc;

use chrono::SecondsFormat;
use oc_ceql::{CmpOp, Expr, ExprKind, LocalFilter, Value, parse_instant};
use oc_model::ports::{CompiledQuery, QueryError, RecordFilter};
use serde_json::Value as Json;

use crate::error::{CompileError, CompileErrorKind, query_error};
use crate::spec::{DIALECT, RESOURCES};

/// Compiles a rendered hub URL (`/hubs/work/tasks?where=...&pageSize=50`) into the Tasks request. Pure.
/// The fields the engine needs are not asked for: the API returns whole records. Errors point into the URL.
///
/// ```
/// let err = oc_tasks::compile("/hubs/work/tasks?where=lastModifiedDate >= 'soon'").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "`soon` is not a date (an ISO date or an RFC 3339 date-time)\n  \
///      /hubs/work/tasks?where=lastModifiedDate >= 'soon'\n                                             ^^^^^^"
/// );
/// ```
pub fn compile(hub_url: &str) -> Result<CompiledQuery, QueryError> {
    let fail = |errors: Vec<CompileError>| query_error(&errors, hub_url);
    let url =
        oc_ceql::parse_hub_url(hub_url, &DIALECT).map_err(|e| fail(e.into_iter().map(CompileError::from).collect()))?;
    let mut errors = Vec::new();
    if !RESOURCES.iter().any(|(name, _)| *name == url.resource) {
        let kind = CompileErrorKind::UnknownResource { name: url.resource.clone() };
        errors.push(CompileError::new(kind, url.resource_span.clone()));
    }
    if let Some(order) = &url.order_by {
        let words: Vec<String> = order.text().split_whitespace().map(str::to_ascii_lowercase).collect();
        let field_ok = words.first().is_some_and(|f| f == "lastmodifieddate" || f == "modified");
        if !field_ok || words.len() > 2 || words.get(1).is_some_and(|d| d != "asc") {
            let kind = CompileErrorKind::BadOrder { found: order.text().trim().to_string() };
            errors.push(CompileError::new(kind, order.url_span(0..order.text().len())));
        }
    }
    let mut warnings: Vec<String> = url.warnings.iter().map(|w| w.message.clone()).collect();
    if url.page.is_some() {
        warnings.push("`page` is ignored: the tasks api pages by cursor, and every page is read".into());
    }
    let mut query = Vec::new();
    let mut local: Vec<Expr> = Vec::new();
    if let Some(clause) = &url.where_clause {
        match oc_ceql::parse(clause.text()) {
            Err(e) => errors.push(CompileError::from(e.map_span(|s| clause.url_span(s)))),
            Ok(parsed) => {
                warnings.extend(parsed.warnings.iter().map(|w| format!("where: {}", w.message)));
                for term in parsed.expr.conjuncts() {
                    match term.kind {
                        ExprKind::Compare { ref field, op: op @ (CmpOp::Ge | CmpOp::Gt), ref value }
                            if query.is_empty() && matches!(field.name.as_str(), "lastModifiedDate" | "modified") =>
                        {
                            let instant = match &value.value {
                                Value::String(s) => parse_instant(s),
                                _ => None,
                            };
                            let Some(t) = instant else {
                                let kind = CompileErrorKind::NotADate { value: value.value.as_text().to_string() };
                                errors.push(CompileError::new(kind, clause.url_span(value.span.clone())));
                                continue;
                            };
                            query.push(("modified_since".into(), t.to_rfc3339_opts(SecondsFormat::AutoSi, true)));
                            if op == CmpOp::Gt {
                                local.push(term.clone());
                            }
                        }
                        ExprKind::Compare { ref field, .. } if field.name == "attributes" => {
                            warnings.push("where: `attributes` is ignored: the tasks api returns whole records".into())
                        }
                        _ => local.push(term.clone()),
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let local = match local.len() {
        0 => None,
        1 => local.pop(),
        _ => {
            let span = local[0].span.start..local[local.len() - 1].span.end;
            Some(Expr { kind: ExprKind::And(local), span })
        }
    };
    Ok(CompiledQuery {
        path: format!("/v1/{}", url.resource),
        resource: url.resource,
        query,
        page_size: url.page_size,
        page: url.page,
        has_deleted_feed: true,
        local: local.map(|e| Arc::new(TasksFilter(LocalFilter::new(&e, &DIALECT))) as Arc<dyn RecordFilter>),
        warnings,
    })
}

/// The residual predicate of a compiled query: CEQL's evaluation in the Tasks dialect.
struct TasksFilter(LocalFilter);

impl fmt::Debug for TasksFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl RecordFilter for TasksFilter {
    fn matches(&self, record: &Json) -> bool {
        self.0.matches(record)
    }

    fn describe(&self) -> String {
        self.0.text().to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The query (`k=v&k=v`) and the residual predicate of `url`, or its rendered errors.
    fn check(url: &str, expected: Result<(&str, Option<&str>), &str>) {
        let got = compile(url).map_err(|e| e.to_string()).map(|q| {
            let query: Vec<String> = q.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (query.join("&"), q.local.map(|l| l.describe()))
        });
        let want = expected.map(|(q, l)| (q.to_string(), l.map(String::from))).map_err(String::from);
        assert_eq!(got, want, "{url}");
    }

    #[test]
    fn last_modified_is_pushed_down_and_the_rest_stays_local() {
        let since = "modified_since=2024-01-31T10:00:00Z";
        check("/hubs/work/tasks?where=lastModifiedDate>='2024-01-31T10:00:00Z'", Ok((since, None)));
        check("/hubs/work/projects?where=modified >= '2024-01-31T11:00:00+01:00'", Ok((since, None)));
        check(
            "/hubs/work/tasks?where=lastModifiedDate > '2024-01-31T10:00:00Z' and title like 'A%'",
            Ok((since, Some("lastModifiedDate > '2024-01-31T10:00:00Z' AND title LIKE 'A%'"))),
        );
        // under OR nothing is pushed down; a second bound stays local
        check(
            "/hubs/work/tasks?where=lastModifiedDate >= '2024-01-31T10:00:00Z' or done = true",
            Ok(("", Some("lastModifiedDate >= '2024-01-31T10:00:00Z' OR done = true"))),
        );
        check(
            "/hubs/work/tasks?where=lastModifiedDate>='2024-01-31T10:00:00Z' and lastModifiedDate>='2024-02-01'",
            Ok((since, Some("lastModifiedDate >= '2024-02-01'"))),
        );
        check("/hubs/work/tasks?where=lastModifiedDate>='2024-01-31T10:00:00Z' and attributes='a,b", Ok((since, None)));
        check("/hubs/work/tasks?orderBy=lastModifiedDate%20asc&pageSize=5", Ok(("", None)));
    }

    #[test]
    fn errors_point_into_the_url() {
        check(
            "/hubs/work/notes",
            Err("unknown resource `notes`: the work hub has tasks, projects\n  /hubs/work/notes\n             ^^^^^"),
        );
        check(
            "/hubs/finance/tasks",
            Err("unknown hub `finance`: tasks serves the `work` hub\n  /hubs/finance/tasks\n        ^^^^^^^"),
        );
        check(
            "/hubs/work/tasks?where=lastModifiedDate >= 3",
            Err("`3` is not a date (an ISO date or an RFC 3339 date-time)\n  \
                 /hubs/work/tasks?where=lastModifiedDate >= 3\n                                             ^"),
        );
        check(
            "/hubs/work/tasks?orderBy=title",
            Err(
                "the tasks api orders by lastModifiedDate only, found `title`\n  /hubs/work/tasks?orderBy=title\n                           ^^^^^",
            ),
        );
        let two = compile("/hubs/work/notes?where=a =").unwrap_err();
        assert_eq!(two.0.len(), 2, "every problem is reported: {two}");
        assert_eq!(two.0[1].span, Some(26..26));
    }

    #[test]
    fn the_residual_reads_the_tasks_fields() {
        let q = compile("/hubs/work/tasks?where=createdDate >= '2024-01-31' and done = false&page=2").unwrap();
        let local = q.local.unwrap();
        assert!(local.matches(&json!({"uid": "t1", "created": "2024-01-31T00:00:00Z", "done": false})));
        assert!(!local.matches(&json!({"uid": "t2", "created": "2024-01-30T23:59:59Z", "done": false})));
        assert_eq!(q.warnings, ["`page` is ignored: the tasks api pages by cursor, and every page is read"]);
        assert_eq!((q.path.as_str(), q.resource.as_str(), q.page_size), ("/v1/tasks", "tasks", None));
    }
}
