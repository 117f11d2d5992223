//! Tests of the CEQL parser, printer, local evaluation and hub URL reader: tables of cases through one `check`
//! helper per feature, and proptest for "never panics" and "print then parse gives the same tree".

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use crate::eval::like_for_tests;
use crate::*;

/// An example dialect, shaped like the Sage provider's (the field names of the cases below are Sage's).
const EXAMPLE: Dialect = Dialect {
    element: "sageone",
    hubs: &["finance"],
    example_resource: "customers",
    field_aliases: &[("lastModifiedDate", "updated_at"), ("createdDate", "created_at"), ("deletedDate", "deleted_at")],
    always_returned: &["id", "displayed_as", "$path"],
};

/// Parses `input`; expects its canonical printing (plus ` [warning a..b]` per repair), or `error: <rendered>`.
fn check(input: &str, expected: &str) {
    let got = match parse(input) {
        Ok(p) => {
            let mut s = p.expr.to_string();
            for w in &p.warnings {
                let span = w.span.clone().unwrap_or(0..0);
                s.push_str(&format!(" [warning {}..{}]", span.start, span.end));
            }
            s
        }
        Err(e) => format!("error: {}", e.render(input)),
    };
    assert_eq!(got, expected, "input: {input:?}");
}

#[test]
fn parses_and_prints() {
    check("a = 1", "a = 1");
    check("a=1 and b='x' OR c != true", "a = 1 AND b = 'x' OR c != true");
    check("a = 1 Or b = 2 aNd c = 3", "a = 1 OR b = 2 AND c = 3");
    check("(a = 1 or b = 2) and c = 3", "(a = 1 OR b = 2) AND c = 3");
    check("a = 1 and (b = 2 and c = 3)", "a = 1 AND (b = 2 AND c = 3)");
    check("a = 1 or (b = 2 or c = 3)", "a = 1 OR (b = 2 OR c = 3)");
    check("((a = 1))", "a = 1");
    check("name = 'O''Brien'", "name = 'O''Brien'");
    check("name = ''", "name = ''");
    check("`odd name` = 1", "`odd name` = 1");
    check("`and` = 1", "`and` = 1");
    check("`a``b` = 1", "`a``b` = 1");
    check("`plain` = 1", "plain = 1");
    check("name like 'A%'", "name LIKE 'A%'");
    check("x in ('a', 'b',1, false)", "x IN ('a', 'b', 1, false)");
    check("x is null and y IS not NULL", "x IS NULL AND y IS NOT NULL");
    check("x <> 1", "x != 1");
    check("x>=-1.5e3 and y<2 and z<=0.25 and w>7", "x >= -1.5e3 AND y < 2 AND z <= 0.25 AND w > 7");
    check("contact.id = 'x' and $path = 'y'", "contact.id = 'x' AND $path = 'y'");
    check("\ta = 'multi\nline'\r\n", "a = 'multi\nline'");
    check("a = 'é €'", "a = 'é €'");
}

#[test]
fn the_seed_clause_is_repaired_with_a_warning() {
    check(
        "lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at",
        "lastModifiedDate >= '2019-03-25T15:31:02Z' AND attributes = 'created_at,updated_at' [warning 56..78]",
    );
    check("a = 'x''", "a = 'x''' [warning 4..8]");
    check("a = 'x' and b = 'unclosed and c = 1", "a = 'x' AND b = 'unclosed and c = 1' [warning 16..35]");
    let parsed = parse("attributes='a,b").unwrap();
    assert_eq!(
        parsed.warnings[0].render("attributes='a,b"),
        "the string starting at byte 11 is not closed: a closing `'` was added at the end of the clause\n  \
         attributes='a,b\n             ^^^^"
    );
}

#[test]
fn errors_point_at_the_offending_place() {
    check("", "error: the where clause is empty\n  \n  ^");
    check("   ", "error: the where clause is empty\n     \n  ^^^");
    check(
        "a = ",
        "error: expected a value (a quoted string, a number, `true` or `false`), found the end of the clause\n  a = \n      ^",
    );
    check("a = 1 b = 2", "error: expected `AND`, `OR` or the end of the clause, found `b`\n  a = 1 b = 2\n        ^");
    check("a LIKE 1", "error: expected a quoted pattern after `LIKE`, found `1`\n  a LIKE 1\n         ^");
    check(
        "a IN ()",
        "error: expected a value (a quoted string, a number, `true` or `false`), found `)`\n  a IN ()\n        ^",
    );
    check("a IN 'x'", "error: expected `(` after `IN`, found `'x'`\n  a IN 'x'\n       ^^^");
    check("a IN ('x' 'y')", "error: expected `,` or `)`, found `'y'`\n  a IN ('x' 'y')\n            ^^^");
    check("(a = 1", "error: expected `)`, found the end of the clause\n  (a = 1\n        ^");
    check("a = 1)", "error: expected `AND`, `OR` or the end of the clause, found `)`\n  a = 1)\n       ^");
    check("a # 1", "error: unexpected character `#`\n  a # 1\n    ^");
    check("é = 1", "error: unexpected character `é`\n  é = 1\n  ^");
    check("a - 1", "error: unexpected character `-`\n  a - 1\n    ^");
    check("`a = 1", "error: unterminated field name: the closing backtick is missing\n  `a = 1\n  ^^^^^^");
    check("`` = 1", "error: empty field name\n  `` = 1\n  ^^");
    check("= 1", "error: expected a field name or `(`, found `=`\n  = 1\n  ^");
    check("a = 1 and", "error: expected a field name or `(`, found the end of the clause\n  a = 1 and\n           ^");
    check("a is 1", "error: expected `NULL` or `NOT NULL`, found `1`\n  a is 1\n       ^");
    check("a is not 1", "error: expected `NULL`, found `1`\n  a is not 1\n           ^");
    check(
        "a b",
        "error: expected an operator (`=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `IN`, `IS`), found `b`\n  a b\n    ^",
    );
    check(
        "a = b",
        "error: expected a value (a quoted string, a number, `true` or `false`), found `b`\n  a = b\n      ^",
    );
    check(
        "a = null",
        "error: expected a value (a quoted string, a number, `true` or `false`), found `null`\n  a = null\n      ^^^^",
    );
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}a = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&ok).is_ok());
    let deep = format!("{}a = 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let err = parse(&deep).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooDeep { max: MAX_DEPTH });
    assert_eq!(err.span(), Some(&(MAX_DEPTH..MAX_DEPTH + 1)));
    assert_eq!(err.to_string(), "the clause is nested too deeply (more than 64 levels of parentheses)");
    // A huge input does not exhaust the stack either.
    assert!(parse(&"(".repeat(1_000_000)).is_err());
}

/// Evaluates `clause` on `record`.
fn check_eval(clause: &str, record: Json, expected: bool) {
    let parsed = parse(clause).unwrap_or_else(|e| panic!("{clause}: {e}"));
    let filter = LocalFilter::new(&parsed.expr, &EXAMPLE);
    assert_eq!(filter.matches(&record), expected, "{clause} on {record}");
}

#[test]
fn evaluates_with_ceql_semantics() {
    // Dates compare as instants, whatever their offset or precision.
    check_eval("updated_at > '2024-01-01T00:00:00Z'", json!({"updated_at": "2024-01-01T01:00:00+02:00"}), false);
    check_eval("updated_at > '2024-01-01T00:00:00Z'", json!({"updated_at": "2024-01-01T00:00:00.5Z"}), true);
    check_eval("updated_at >= '2024-01-01'", json!({"updated_at": "2024-01-01T00:00:00Z"}), true);
    check_eval("updated_at < '2024-01-01'", json!({"updated_at": "2023-12-31T23:59:59-00:30"}), false);
    check_eval("lastModifiedDate = '2024-01-01T00:00:00Z'", json!({"updated_at": "2024-01-01T01:00:00+01:00"}), true);
    check_eval("createdDate < '2025-01-01'", json!({"created_at": "2024-06-01"}), true);
    check_eval("deletedDate IS NOT NULL", json!({"deleted_at": "2024-06-01T00:00:00Z"}), true);
    // Numbers as numbers (a string compare would say "10.50" < "9").
    check_eval("balance > 9", json!({"balance": 10}), true);
    check_eval("balance > 9", json!({"balance": "10.50"}), true);
    check_eval("balance = '10'", json!({"balance": 10.0}), true);
    check_eval("balance <= -1", json!({"balance": -1}), true);
    check_eval("reference = 12", json!({"reference": "12"}), true);
    check_eval("reference = 12", json!({"reference": "abc"}), false);
    check_eval("reference != 12", json!({"reference": "abc"}), false);
    // Strings byte-wise, case-sensitive.
    check_eval("name = 'Acme'", json!({"name": "Acme"}), true);
    check_eval("name = 'acme'", json!({"name": "Acme"}), false);
    check_eval("name < 'B'", json!({"name": "Acme"}), true);
    check_eval("name = 'O''Brien'", json!({"name": "O'Brien"}), true);
    // LIKE.
    check_eval("name LIKE 'A%'", json!({"name": "Acme"}), true);
    check_eval("name LIKE 'A%'", json!({"name": "acme"}), false);
    check_eval("name LIKE '_cme'", json!({"name": "Acme"}), true);
    check_eval("name LIKE '%m%'", json!({"name": "Acme"}), true);
    check_eval("balance LIKE '1%'", json!({"balance": 150}), true);
    check_eval("name LIKE '%'", json!({"name": null}), false);
    // IN.
    check_eval("status.id IN ('PAID', 'VOID')", json!({"status": {"id": "PAID"}}), true);
    check_eval("status.id IN ('PAID', 'VOID')", json!({"status": {"id": "DRAFT"}}), false);
    check_eval("total IN (1, 2.5)", json!({"total": 2.5}), true);
    // Nulls: unknown is not true, and three-valued logic.
    check_eval("x != 'a'", json!({}), false);
    check_eval("x != 'a'", json!({"x": null}), false);
    check_eval("x != 'a'", json!({"x": "b"}), true);
    check_eval("x IS NULL", json!({}), true);
    check_eval("x IS NULL", json!({"x": null}), true);
    check_eval("x IS NULL", json!({"x": []}), true);
    check_eval("x IS NULL", json!({"x": 0}), false);
    check_eval("x IS NOT NULL", json!({"x": ""}), true);
    check_eval("x.y IS NULL", json!({"x": "scalar"}), true);
    check_eval("x = 1 OR y = 2", json!({"y": 2}), true);
    check_eval("x = 1 OR y = 2", json!({"y": 3}), false);
    check_eval("x = 1 AND y = 2", json!({"y": 2}), false);
    check_eval("(x = 1 OR y = 2) AND z = 3", json!({"x": 1, "z": 3}), true);
    // Arrays: some element matches.
    check_eval("contact_types.id = 'CUSTOMER'", json!({"contact_types": [{"id": "VENDOR"}, {"id": "CUSTOMER"}]}), true);
    check_eval("contact_types.id = 'CUSTOMER'", json!({"contact_types": [{"id": "VENDOR"}]}), false);
    check_eval("tags = 'b'", json!({"tags": ["a", "b"]}), true);
    check_eval("tags = 'b'", json!({"tags": []}), false);
    // Booleans.
    check_eval("active = true", json!({"active": true}), true);
    check_eval("active = true", json!({"active": "true"}), true);
    check_eval("active = false", json!({"active": true}), false);
    check_eval("active = true", json!({"active": 1}), false);
    check_eval("active = 'true'", json!({"active": true}), true);
    // Objects never equal a scalar.
    check_eval("status = 'PAID'", json!({"status": {"id": "PAID"}}), false);
}

fn check_like(pattern: &str, text: &str, expected: bool) {
    assert_eq!(like_for_tests(pattern, text), expected, "{text:?} LIKE {pattern:?}");
}

#[test]
fn like_patterns() {
    check_like("", "", true);
    check_like("", "a", false);
    check_like("%", "", true);
    check_like("%%", "abc", true);
    check_like("a%", "abc", true);
    check_like("%c", "abc", true);
    check_like("%b%", "abc", true);
    check_like("a_c", "abc", true);
    check_like("a_c", "ac", false);
    check_like("a%b%c", "aXbYc", true);
    check_like("a%b%c", "aXcYb", false);
    check_like("%a%a%a%a%b", &"a".repeat(2000), false);
    check_like("é_", "éx", true);
    check_like("A%", "a", false);
}

/// `parse_hub_url(url, dialect)` summarized as `HUB/RESOURCE@SPAN where=<text>@<url span> size=.. page=..
/// orderBy=.. warnings=[..]`, or `error: <every rendered problem>`.
fn check_hub_in(dialect: &Dialect, url: &str, expected: &str) {
    let got = match parse_hub_url(url, dialect) {
        Ok(h) => {
            let value = |d: &Option<Decoded>| match d {
                Some(d) => format!("{:?}@{:?}", d.text(), d.url_span(0..d.text().len())),
                None => "-".to_string(),
            };
            let warnings: Vec<String> = h.warnings.iter().map(|w| w.render(url)).collect();
            format!(
                "{}/{}@{:?} where={} size={:?} page={:?} orderBy={} warnings={warnings:?}",
                h.hub,
                h.resource,
                h.resource_span,
                value(&h.where_clause),
                h.page_size,
                h.page,
                value(&h.order_by)
            )
        }
        Err(errors) => {
            format!("error: {}", errors.iter().map(|e| e.render(url)).collect::<Vec<_>>().join("\n"))
        }
    };
    assert_eq!(got, expected, "{url}");
}

fn check_hub(url: &str, expected: &str) {
    check_hub_in(&EXAMPLE, url, expected);
}

#[test]
fn hub_values_raw_or_encoded_read_the_same() {
    let clause = "\"lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at'\"";
    // Raw, as users write it.
    check_hub(
        "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at'&pageSize=50",
        &format!("finance/customers@14..23 where={clause}@30..109 size=Some(50) page=None orderBy=- warnings=[]"),
    );
    // java.net.URLEncoder: spaces as `+`, quotes encoded.
    check_hub(
        "/hubs/finance/customers?where=lastModifiedDate%3E%3D%272019-03-25T15%3A31%3A02Z%27+and+attributes%3D%27created_at%2Cupdated_at%27&pageSize=50",
        &format!("finance/customers@14..23 where={clause}@30..129 size=Some(50) page=None orderBy=- warnings=[]"),
    );
    // encodeURIComponent: spaces as %20, quotes left alone, `+` would be %2B.
    check_hub(
        "/hubs/finance/customers?where=lastModifiedDate%3E%3D'2019-03-25T15%3A31%3A02%2B00%3A00'%20and%20attributes%3D'created_at%2Cupdated_at'&pageSize=50",
        "finance/customers@14..23 where=\"lastModifiedDate>='2019-03-25T15:31:02+00:00' and attributes='created_at,updated_at'\"@30..134 size=Some(50) page=None orderBy=- warnings=[]",
    );
    // A raw `+` next to a raw quote stays a `+`.
    check_hub(
        "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T17:31:02+02:00'",
        "finance/customers@14..23 where=\"lastModifiedDate>='2019-03-25T17:31:02+02:00'\"@30..75 size=None page=None orderBy=- warnings=[]",
    );
    // A raw value with spaces is not percent-decoded: the LIKE pattern survives.
    check_hub(
        "/hubs/finance/contacts?where=name like '%20%'",
        "finance/contacts@14..22 where=\"name like '%20%'\"@29..45 size=None page=None orderBy=- warnings=[]",
    );
    // A `%` not followed by two hex digits is itself.
    check_hub(
        "/hubs/finance/contacts?where=a%2",
        "finance/contacts@14..22 where=\"a%2\"@29..32 size=None page=None orderBy=- warnings=[]",
    );
}

#[test]
fn hub_parameters() {
    // A prefix before `/hubs/`, a trailing slash, parameter names in any case, an `&` inside a string, an unknown
    // parameter.
    check_hub(
        "https://ocpoll.example/elements/api-v2/hubs/finance/invoices/?where=name='A&B'&PAGESIZE=5&page=2&orderBy=lastModifiedDate desc&foo=1",
        "finance/invoices@52..60 where=\"name='A&B'\"@68..78 size=Some(5) page=Some(2) orderBy=\"lastModifiedDate desc\"@105..126 warnings=[\"unknown hub parameter `foo` is ignored (known: where, pageSize, page, orderBy, fields)\\n  https://ocpoll.example/elements/api-v2/hubs/finance/invoices/?where=name='A&B'&PAGESIZE=5&page=2&orderBy=lastModifiedDate desc&foo=1\\n                                                                                                                                 ^^^\"]",
    );
    // A string left open before another hub parameter ends at that parameter.
    check_hub(
        "/hubs/finance/customers?where=attributes='a,b&pageSize=10",
        "finance/customers@14..23 where=\"attributes='a,b\"@30..45 size=Some(10) page=None orderBy=- warnings=[]",
    );
    // Empty values are absent; a path without the leading slash is a hub URL too; the resource is decoded.
    check_hub(
        "hubs/finance/sales%5Finvoices?where=&orderBy=%20",
        "finance/sales_invoices@13..29 where=- size=None page=None orderBy=- warnings=[]",
    );
    check_hub("/hubs/finance/products", "finance/products@14..22 where=- size=None page=None orderBy=- warnings=[]");
}

#[test]
fn hub_fields_are_read_like_the_other_values() {
    let fields = |url: &str| {
        let hub = parse_hub_url(url, &EXAMPLE).expect("a hub url");
        hub.fields.map(|d| (d.text().to_string(), d.url_span(0..d.text().len())))
    };
    assert_eq!(fields("/hubs/finance/customers?fields=name,email"), Some(("name,email".into(), 31..41)));
    assert_eq!(fields("/hubs/finance/customers?FIELDS=name%2Cemail&pageSize=2"), Some(("name,email".into(), 31..43)));
    assert_eq!(fields("/hubs/finance/customers?fields=&where=a=1"), None);
    assert_eq!(fields("/hubs/finance/customers"), None);
    // `fields` ends a quoted string left open, as the other parameters do
    let hub = parse_hub_url("/hubs/finance/customers?where=name='a&fields=b", &EXAMPLE).expect("a hub url");
    assert_eq!(hub.where_clause.map(|w| w.text().to_string()), Some("name='a".into()));
    assert_eq!(hub.fields.map(|f| f.text().to_string()), Some("b".into()));
    let errors = parse_hub_url("/hubs/finance/customers?fields=a&fields=b", &EXAMPLE).unwrap_err();
    assert_eq!(errors[0].to_string(), "`fields` is given twice");
}

#[test]
fn hub_errors_point_into_the_url() {
    check_hub(
        "/hubs/finance/widgets?pageSize=0&pageSize=2",
        "error: `pageSize` must be a whole number from 1, found `0`\n  /hubs/finance/widgets?pageSize=0&pageSize=2\n                                 ^\n`pageSize` is given twice\n  /hubs/finance/widgets?pageSize=0&pageSize=2\n                                   ^^^^^^^^",
    );
    check_hub(
        "/hubs/finance/x?page=two",
        "error: `page` must be a whole number from 1, found `two`\n  /hubs/finance/x?page=two\n                       ^^^",
    );
    check_hub(
        "/hubs/crm/contacts",
        "error: unknown hub `crm`: sageone serves the `finance` hub\n  /hubs/crm/contacts\n        ^^^",
    );
    check_hub(
        "/contacts?where=a=1",
        "error: expected a hub URL such as `/hubs/finance/customers?where=...`\n  /contacts?where=a=1\n  ^^^^^^^^^",
    );
    for url in ["/hubs/finance", "/hubs/finance/", "/hubs//contacts", "/hubs/finance/contacts/1", "/hubs/finance/a//"] {
        let shown = format!(
            "error: expected a hub URL such as `/hubs/finance/customers?where=...`\n  {url}\n  {}",
            "^".repeat(url.len())
        );
        check_hub(url, &shown);
    }
    check_hub(
        "/hubs/finance/contacts?where=a%FF",
        "error: the value of `where` is not UTF-8 once percent-decoded\n  /hubs/finance/contacts?where=a%FF\n                               ^^^^",
    );
    check_hub(
        "/hubs/finance/a%FF",
        "error: the value of `resource` is not UTF-8 once percent-decoded\n  /hubs/finance/a%FF\n                ^^^^",
    );
    // Every problem, the path's and the parameters'.
    check_hub(
        "/hubs/crm/x?where=1&where=2",
        "error: unknown hub `crm`: sageone serves the `finance` hub\n  /hubs/crm/x?where=1&where=2\n        ^^^\n`where` is given twice\n  /hubs/crm/x?where=1&where=2\n                      ^^^^^",
    );
}

#[test]
fn the_dialect_names_the_hubs() {
    const TWO: Dialect = Dialect {
        element: "acme",
        hubs: &["crm", "marketing"],
        example_resource: "leads",
        field_aliases: &[],
        always_returned: &[],
    };
    check_hub_in(
        &TWO,
        "/hubs/marketing/leads",
        "marketing/leads@16..21 where=- size=None page=None orderBy=- warnings=[]",
    );
    check_hub_in(
        &TWO,
        "/hubs/finance/leads",
        "error: unknown hub `finance`: acme serves the `crm` and `marketing` hubs\n  /hubs/finance/leads\n        ^^^^^^^",
    );
    check_hub_in(&TWO, "/leads", "error: expected a hub URL such as `/hubs/crm/leads?where=...`\n  /leads\n  ^^^^^^");
}

#[test]
fn where_errors_map_back_into_the_url() {
    let url = "/hubs/finance/customers?where=name%20%3D%20";
    let hub = parse_hub_url(url, &EXAMPLE).unwrap();
    let clause = hub.where_clause.unwrap();
    assert_eq!(clause.text(), "name = ");
    let err = parse(clause.text()).unwrap_err().map_span(|s| clause.url_span(s));
    assert_eq!(
        err.render(url),
        "expected a value (a quoted string, a number, `true` or `false`), found the end of the clause\n  /hubs/finance/customers?where=name%20%3D%20\n                                             ^"
    );
    assert_eq!(clause.url_span(4..5), 34..37);
    assert_eq!(clause.url_span(5..99), 37..43);
}

#[test]
fn the_dialect_resolves_fields() {
    assert_eq!(EXAMPLE.record_path("lastModifiedDate"), ["updated_at"]);
    assert_eq!(EXAMPLE.record_path("deletedDate"), ["deleted_at"]);
    assert_eq!(EXAMPLE.record_path("contact.id"), ["contact", "id"]);
    assert_eq!(EXAMPLE.record_path("updated_at"), ["updated_at"]);
    assert_eq!(EXAMPLE.alias("name"), None);
    assert!(EXAMPLE.is_always_returned("$path"));
    assert!(!EXAMPLE.is_always_returned("name"));
    assert!(EXAMPLE.serves("finance"));
    assert!(!EXAMPLE.serves("Finance"));
}

// ---- proptest ----

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z_$][a-zA-Z0-9_.$]{0,8}", "\\PC{1,6}", "(and|or|in|is|not|null|true|false|LIKE)", "[a`]{1,4}"]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        "-?[0-9]{1,4}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?".prop_map(Value::Number),
        any::<bool>().prop_map(Value::Bool),
    ]
    .prop_map(|value| Literal { value, span: 0..0 })
}

fn leaf() -> impl Strategy<Value = Expr> {
    let field = || name().prop_map(|name| Field { name, span: 0..0 });
    let op = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    prop_oneof![
        (field(), op, literal()).prop_map(|(field, op, value)| ExprKind::Compare { field, op, value }),
        (field(), any::<String>())
            .prop_map(|(field, p)| ExprKind::Like { field, pattern: Literal { value: Value::String(p), span: 0..0 } }),
        (field(), prop::collection::vec(literal(), 1..4)).prop_map(|(field, values)| ExprKind::In { field, values }),
        (field(), any::<bool>()).prop_map(|(field, negated)| ExprKind::IsNull { field, negated }),
    ]
    .prop_map(|kind| Expr { kind, span: 0..0 })
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(ExprKind::And),
            prop::collection::vec(inner, 2..4).prop_map(ExprKind::Or),
        ]
        .prop_map(|kind| Expr { kind, span: 0..0 })
    })
}

/// Text made of CEQL's own pieces, so that the parser is driven deep rather than stopped at the first byte.
fn ceqlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a".to_string()),
        Just(" AND ".to_string()),
        Just(" or ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("'".to_string()),
        Just("`".to_string()),
        Just("= ".to_string()),
        Just(">=".to_string()),
        Just("!".to_string()),
        Just("<".to_string()),
        Just(" like ".to_string()),
        Just(" in ".to_string()),
        Just(" is ".to_string()),
        Just("not ".to_string()),
        Just("null".to_string()),
        Just(",".to_string()),
        Just("-".to_string()),
        Just("1.5e".to_string()),
        Just("true".to_string()),
        "\\PC{0,3}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parser_never_panics(input in any::<String>()) {
        let _ = parse(&input);
    }

    #[test]
    fn parser_never_panics_on_ceql_pieces(input in ceqlish()) {
        if let Ok(parsed) = parse(&input) {
            // Whatever parses prints to a clause that parses back to the same tree.
            let printed = parsed.expr.to_string();
            let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(again.expr.without_spans(), parsed.expr.without_spans());
        } else if let Err(e) = parse(&input) {
            // Errors carry a span inside the input (or at its end) and render without panicking.
            let span = e.span().cloned().unwrap_or(0..0);
            prop_assert!(span.start <= span.end && span.end <= input.len());
            let _ = e.render(&input);
        }
    }

    #[test]
    fn printing_then_parsing_gives_the_same_tree(tree in expr()) {
        let printed = tree.to_string();
        let parsed = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        prop_assert!(parsed.warnings.is_empty());
        prop_assert_eq!(parsed.expr.without_spans(), tree);
    }

    #[test]
    fn evaluation_never_panics(tree in expr(), record in any::<String>()) {
        let filter = LocalFilter::new(&tree, &EXAMPLE);
        let _ = filter.matches(&json!({"a": record, "and": [1, {"x": null}], "$path": "/x"}));
    }

    #[test]
    fn hub_url_reader_never_panics(url in any::<String>(), query in hub_query()) {
        let _ = parse_hub_url(&url, &EXAMPLE);
        let url = format!("/hubs/finance/invoices?{query}");
        match parse_hub_url(&url, &EXAMPLE) {
            // Decoded values map back inside the URL, and so do the errors of the clause they hold.
            Ok(hub) => {
                for d in hub.where_clause.iter().chain(&hub.order_by) {
                    let span = d.url_span(0..d.text().len());
                    prop_assert!(span.start <= span.end && span.end <= url.len(), "{span:?} in {url:?}");
                }
                if let Some(w) = &hub.where_clause
                    && let Err(e) = parse(w.text())
                {
                    let span = e.map_span(|s| w.url_span(s)).span().cloned().unwrap_or(0..0);
                    prop_assert!(span.start <= span.end && span.end <= url.len(), "{span:?} in {url:?}");
                }
            }
            Err(errors) => {
                for e in &errors {
                    let span = e.span().cloned().unwrap_or(0..0);
                    prop_assert!(span.start <= span.end && span.end <= url.len(), "{span:?} in {url:?}");
                    let _ = e.render(&url);
                }
            }
        }
    }
}

/// Query text made of hub URL pieces.
fn hub_query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("where=".to_string()),
        Just("&".to_string()),
        Just("pageSize=".to_string()),
        Just("page=".to_string()),
        Just("orderBy=".to_string()),
        Just("'".to_string()),
        Just("%".to_string()),
        Just("%2".to_string()),
        Just("%27".to_string()),
        Just("%FF".to_string()),
        Just("%C3%A9".to_string()),
        Just("+".to_string()),
        Just(" ".to_string()),
        Just("=".to_string()),
        Just("lastModifiedDate>=".to_string()),
        Just("'2024-01-01T00:00:00Z'".to_string()),
        Just(" and ".to_string()),
        Just("12".to_string()),
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}
