//! Tests of the CEQL parser, printer and local evaluation: tables of cases through one `check` helper per
//! feature, and proptest for "never panics" and "print then parse gives the same tree".

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::eval::like_for_tests;
use super::*;
use crate::error::render;

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
        Err(e) => format!("error: {}", render(&e.to_string(), input, e.span().as_ref())),
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
    assert!(matches!(parse(&deep), Err(CeqlError::TooDeep { span, .. }) if span == (MAX_DEPTH..MAX_DEPTH + 1)));
    // A huge input does not exhaust the stack either.
    assert!(parse(&"(".repeat(1_000_000)).is_err());
}

/// Evaluates `clause` on `record`.
fn check_eval(clause: &str, record: Json, expected: bool) {
    let parsed = parse(clause).unwrap_or_else(|e| panic!("{clause}: {e}"));
    let filter = LocalFilter::new(&parsed.expr);
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
            let span = e.span().unwrap_or(0..0);
            prop_assert!(span.start <= span.end && span.end <= input.len());
            let _ = e.diagnostic(&input);
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
        let filter = LocalFilter::new(&tree);
        let _ = filter.matches(&json!({"a": record, "and": [1, {"x": null}], "$path": "/x"}));
    }
}
