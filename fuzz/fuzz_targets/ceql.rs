//! Fuzz target `ceql`: the CEQL lexer, parser, canonical printer and local evaluator (crate `oc-ceql`).
//!
//! Input: `CLAUSE [\n JSON_RECORD]` (UTF-8). Checks:
//! - nothing panics on any input; an error's span lies inside the clause and renders;
//! - every node's span lies inside the clause, on character boundaries, and a field's span covers its name as
//!   written;
//! - printing a parsed tree gives canonical CEQL that parses, without repairs, to the same tree (spans aside),
//!   and prints the same again;
//! - the evaluator agrees with three-valued logic at the top: an `AND` passes a record exactly when each of its
//!   terms passes it, an `OR` when one does; on the record of the input and on records built from the
//!   clause's own fields and literals.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oc_ceql::{Dialect, Expr, ExprKind, Literal, LocalFilter, Value, parse};
use serde_json::{Map, Value as Json, json};

const DIALECT: Dialect = Dialect {
    element: "acme",
    hubs: &["crm"],
    example_resource: "contacts",
    field_aliases: &[("lastModifiedDate", "modified_at"), ("createdDate", "created_at")],
    always_returned: &["id"],
};

fn spans_ok(input: &str, e: &Expr) {
    assert!(e.span.start <= e.span.end && input.get(e.span.clone()).is_some(), "node span {:?}", e.span);
    let literal = |l: &Literal| assert!(input.get(l.span.clone()).is_some(), "literal span {:?}", l.span);
    match &e.kind {
        ExprKind::And(terms) | ExprKind::Or(terms) => {
            assert!(terms.len() >= 2);
            terms.iter().for_each(|t| spans_ok(input, t));
        }
        ExprKind::Compare { value, .. } => literal(value),
        ExprKind::Like { pattern, .. } => literal(pattern),
        ExprKind::In { values, .. } => {
            assert!(!values.is_empty());
            values.iter().for_each(literal)
        }
        ExprKind::IsNull { .. } => {}
    }
    for f in e.fields() {
        let written = input.get(f.span.clone()).unwrap_or_else(|| panic!("field span {:?}", f.span));
        assert!(written == f.name || written.starts_with('`'), "field {:?} written {written:?}", f.name);
    }
}

fn json_of(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => serde_json::from_str(n).unwrap_or_else(|_| Json::String(n.clone())),
        Value::Bool(b) => Json::Bool(*b),
    }
}

/// Records that give the clause's fields the clause's own values, one value for all fields at a time.
fn records(expr: &Expr) -> Vec<Json> {
    let mut literals = Vec::new();
    fn walk(e: &Expr, out: &mut Vec<Json>) {
        match &e.kind {
            ExprKind::And(t) | ExprKind::Or(t) => t.iter().for_each(|t| walk(t, out)),
            ExprKind::Compare { value, .. } => out.push(json_of(&value.value)),
            ExprKind::Like { pattern, .. } => out.push(json_of(&pattern.value)),
            ExprKind::In { values, .. } => out.extend(values.iter().map(|v| json_of(&v.value))),
            ExprKind::IsNull { .. } => out.push(Json::Null),
        }
    }
    walk(expr, &mut literals);
    literals.truncate(8);
    let mut out = vec![json!({})];
    for lit in literals {
        let mut record = Map::new();
        for f in expr.fields() {
            let path = DIALECT.record_path(&f.name);
            let mut at = &mut record;
            for (i, key) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    at.insert(key.clone(), lit.clone());
                } else {
                    let next = at.entry(key.clone()).or_insert_with(|| json!({}));
                    if !next.is_object() {
                        *next = json!({});
                    }
                    at = next.as_object_mut().unwrap();
                }
            }
        }
        out.push(Json::Object(record.clone()));
        out.push(json!([record]));
    }
    out
}

fn three_valued_top(expr: &Expr, record: &Json) {
    let whole = LocalFilter::new(expr, &DIALECT).matches(record);
    let term = |t: &Expr| LocalFilter::new(t, &DIALECT).matches(record);
    match &expr.kind {
        ExprKind::And(terms) => assert_eq!(whole, terms.iter().all(term), "{expr} on {record}"),
        ExprKind::Or(terms) => assert_eq!(whole, terms.iter().any(term), "{expr} on {record}"),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (clause, record) = input.split_once('\n').unwrap_or((input, ""));
    let parsed = match parse(clause) {
        Ok(p) => p,
        Err(e) => {
            let span = e.span().cloned().unwrap_or(0..0);
            assert!(span.start <= span.end && span.end <= clause.len(), "error span {span:?} in {clause:?}");
            let _ = e.render(clause);
            return;
        }
    };
    spans_ok(clause, &parsed.expr);
    for w in &parsed.warnings {
        let _ = w.render(clause);
    }

    let printed = parsed.expr.to_string();
    let again = match parse(&printed) {
        Ok(p) => p,
        Err(e) => panic!("{clause:?} printed as {printed:?} does not parse: {}", e.render(&printed)),
    };
    assert!(again.warnings.is_empty(), "{printed:?} needed repairs: {:?}", again.warnings);
    assert_eq!(again.expr.without_spans(), parsed.expr.without_spans(), "{clause:?} printed as {printed:?}");
    assert_eq!(again.expr.to_string(), printed);

    let filter = LocalFilter::new(&parsed.expr, &DIALECT);
    assert_eq!(filter.text(), printed);
    if let Ok(record) = serde_json::from_str::<Json>(record) {
        three_valued_top(&parsed.expr, &record);
    }
    for record in records(&parsed.expr) {
        three_valued_top(&parsed.expr, &record);
    }
});
