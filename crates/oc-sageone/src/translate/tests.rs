//! Tests of the translator: `translate` (a clause for a resource) and `compile` (a whole hub URL), each through
//! one `check` helper, expected values written out in full.

use oc_model::ports::FieldNeeds;
use serde_json::json;

use super::*;

/// `translate(resource, clause)` as its exact JSON, or `error: <every rendered problem>`.
fn check(resource: &str, clause: &str, expected: &str) {
    let got = match translate(resource, clause) {
        Ok(t) => serde_json::to_string(&t).unwrap(),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "{resource}: {clause}");
}

#[test]
fn seed_clause() {
    check(
        "customers",
        "lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at",
        r#"{"path":"/contacts","query":[["contact_type_id","CUSTOMER"],["updated_or_created_since","2019-03-25T15:31:02Z"],["attributes","created_at,updated_at"]],"local":null,"warnings":["the string starting at byte 56 is not closed: a closing `'` was added at the end of the clause"]}"#,
    );
}

#[test]
fn dates_push_down_exactly() {
    // Strict: Sage is inclusive, so the term is finished locally (and its field fetched).
    check(
        "invoices",
        "lastModifiedDate > '2024-01-01T00:00:00Z'",
        r#"{"path":"/sales_invoices","query":[["updated_or_created_since","2024-01-01T00:00:00Z"],["attributes","updated_at"],["sort","updated_at"]],"local":"lastModifiedDate > '2024-01-01T00:00:00Z'","warnings":[]}"#,
    );
    // A fraction of a second is floored for Sage and finished locally.
    check(
        "contacts",
        "updated_at >= '2024-01-01T00:00:00.250Z'",
        r#"{"path":"/contacts","query":[["updated_or_created_since","2024-01-01T00:00:00Z"],["attributes","updated_at"]],"local":"updated_at >= '2024-01-01T00:00:00.250Z'","warnings":[]}"#,
    );
    // Offsets and date-only values are normalized to UTC.
    check(
        "products",
        "lastModifiedDate >= '2024-01-01T02:00:00+02:00'",
        r#"{"path":"/products","query":[["updated_or_created_since","2024-01-01T00:00:00Z"]],"local":null,"warnings":[]}"#,
    );
    check(
        "products",
        "lastModifiedDate >= '2024-01-01'",
        r#"{"path":"/products","query":[["updated_or_created_since","2024-01-01T00:00:00Z"]],"local":null,"warnings":[]}"#,
    );
    // deleted_since is exclusive: `>=` asks for one second earlier, `>` for the instant itself.
    check(
        "contacts",
        "deletedDate >= '2024-01-01T00:00:00Z'",
        r#"{"path":"/contacts","query":[["deleted_since","2023-12-31T23:59:59Z"]],"local":null,"warnings":[]}"#,
    );
    check(
        "contacts",
        "deleted_at > '2024-01-01T00:00:00Z'",
        r#"{"path":"/contacts","query":[["deleted_since","2024-01-01T00:00:00Z"]],"local":null,"warnings":[]}"#,
    );
    // Only the first date term of a kind is pushed down; the next stays local.
    check(
        "contacts",
        "updated_at >= '2024-01-01' and lastModifiedDate >= '2024-02-01'",
        r#"{"path":"/contacts","query":[["updated_or_created_since","2024-01-01T00:00:00Z"],["attributes","updated_at"]],"local":"lastModifiedDate >= '2024-02-01'","warnings":[]}"#,
    );
    // Other comparisons on dates are local.
    check(
        "contacts",
        "lastModifiedDate < '2024-01-01'",
        r#"{"path":"/contacts","query":[["attributes","updated_at"]],"local":"lastModifiedDate < '2024-01-01'","warnings":[]}"#,
    );
    // No deleted feed on sales quotes (nor a deleted_at field): local, with a warning.
    check(
        "sales-quotes",
        "deletedDate > '2024-01-01'",
        r#"{"path":"/sales_quotes","query":[["attributes","deleted_at"],["sort","updated_at"]],"local":"deletedDate > '2024-01-01'","warnings":["`deletedDate` is not a field of SalesQuote records in Sage's API description: records without it do not match"]}"#,
    );
}

#[test]
fn or_keeps_the_whole_disjunction_local() {
    check(
        "customers",
        "lastModifiedDate >= '2024-01-01' or name = 'a'",
        r#"{"path":"/contacts","query":[["contact_type_id","CUSTOMER"],["attributes","updated_at,name"]],"local":"lastModifiedDate >= '2024-01-01' OR name = 'a'","warnings":[]}"#,
    );
    check(
        "customers",
        "lastModifiedDate >= '2024-01-01' and (email = 'a@b.c' or name like 'A%')",
        r#"{"path":"/contacts","query":[["contact_type_id","CUSTOMER"],["updated_or_created_since","2024-01-01T00:00:00Z"],["attributes","email,name"]],"local":"email = 'a@b.c' OR name LIKE 'A%'","warnings":[]}"#,
    );
}

#[test]
fn declared_parameters_push_down() {
    check(
        "customers",
        "search = 'acme' and email = 'a@b.c' and contact_type_id = 'CUSTOMER'",
        r#"{"path":"/contacts","query":[["contact_type_id","CUSTOMER"],["search","acme"],["email","a@b.c"]],"local":null,"warnings":[]}"#,
    );
    check(
        "invoices",
        "status_id = 'PAID' and contact_id = 'abc' and from_date = '2024-01-01' and to_date = '2024-12-31' and has_attachments = true",
        r#"{"path":"/sales_invoices","query":[["status_id","PAID"],["contact_id","abc"],["from_date","2024-01-01"],["to_date","2024-12-31"],["has_attachments","true"],["sort","updated_at"]],"local":null,"warnings":[]}"#,
    );
    check(
        "contacts",
        "exclude_system = 'false' and contact_type_id = 'VENDOR'",
        r#"{"path":"/contacts","query":[["exclude_system","false"],["contact_type_id","VENDOR"]],"local":null,"warnings":[]}"#,
    );
    // `!=` on a parameter is not a push-down, and the parameter is not a record field.
    check(
        "contacts",
        "contact_type_id != 'VENDOR'",
        "error: `contact_type_id` is a query parameter of /contacts, not a record field: use it only as a top-level AND term `contact_type_id = value`\n  contact_type_id != 'VENDOR'\n  ^^^^^^^^^^^^^^^",
    );
}

#[test]
fn attributes() {
    check(
        "products",
        "attributes = 'all' and description like 'A%'",
        r#"{"path":"/products","query":[["attributes","all"]],"local":"description LIKE 'A%'","warnings":[]}"#,
    );
    check(
        "products",
        "attributes = ' item_code , , description ' and id = 'x'",
        r#"{"path":"/products","query":[["attributes","item_code,description"]],"local":"id = 'x'","warnings":[]}"#,
    );
    check(
        "products",
        "colour = 'red'",
        r#"{"path":"/products","query":[["attributes","colour"]],"local":"colour = 'red'","warnings":["`colour` is not a field of Product records in Sage's API description: records without it do not match"]}"#,
    );
}

#[test]
fn empty_clause_is_the_plain_list() {
    check(
        "customers",
        "",
        r#"{"path":"/contacts","query":[["contact_type_id","CUSTOMER"]],"local":null,"warnings":[]}"#,
    );
    check("journal_codes", "  ", r#"{"path":"/journal_codes","query":[],"local":null,"warnings":[]}"#);
}

#[test]
fn errors() {
    check(
        "customers",
        "contact_type_id = 'VENDOR'",
        "error: the resource already sends `contact_type_id=CUSTOMER`\n  contact_type_id = 'VENDOR'\n  ^^^^^^^^^^^^^^^^^^^^^^^^^^",
    );
    check(
        "contacts",
        "exclude_system = 'yes'",
        "error: `exclude_system` takes a boolean value\n  exclude_system = 'yes'\n  ^^^^^^^^^^^^^^^^^^^^^^",
    );
    check(
        "invoices",
        "sort = 'date'",
        "error: `sort` cannot be set in the where clause: use the hub URL's orderBy\n  sort = 'date'\n  ^^^^^^^^^^^^^",
    );
    check(
        "contacts",
        "attributes != 'x'",
        "error: `attributes` must be a top-level AND term `attributes='field,field'`\n  attributes != 'x'\n  ^^^^^^^^^^^^^^^^^",
    );
    check(
        "contacts",
        "attributes = 'a' or name = 'x'",
        "error: `attributes` must be a top-level AND term `attributes='field,field'`\n  attributes = 'a' or name = 'x'\n  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    );
    check(
        "contacts",
        "lastModifiedDate >= 'yesterday'",
        "error: `yesterday` is not a date (expected e.g. `2024-01-31` or `2024-01-31T12:00:00Z`)\n  lastModifiedDate >= 'yesterday'\n                      ^^^^^^^^^^^",
    );
    check(
        "widgets",
        "a = 1",
        "error: unknown resource `widgets`; known: customers, vendors, contacts, invoices, sales-credit-notes, sales-quotes, purchase-invoices, purchase-credit-notes, payments, other-payments, products, services, ledger-accounts, bank-accounts, tax-rates, journals, addresses, contact-persons, contact-allocations, stock-items; open connectors' names: items, tax-codes, journal-entries, bills, credit-memos, vendor-credits, estimates, bill-payments",
    );
    // Every problem is reported, not only the first.
    check(
        "customers",
        "items_per_page = 5 and search = 'a' and search = 'b'",
        "error: `items_per_page` cannot be set in the where clause: use the hub URL's pageSize and page\n  items_per_page = 5 and search = 'a' and search = 'b'\n  ^^^^^^^^^^^^^^^^^^\n`search` is given twice\n  items_per_page = 5 and search = 'a' and search = 'b'\n                                          ^^^^^^^^^^^^",
    );
}

#[test]
fn human_rendering_says_where_each_pair_comes_from() {
    let t =
        translate("invoices", "lastModifiedDate > '2024-01-01T00:00:00Z' and status_id = 'PAID' and x = 'y").unwrap();
    assert_eq!(
        t.to_string(),
        "GET /sales_invoices?updated_or_created_since=2024-01-01T00:00:00Z&status_id=PAID&attributes=updated_at,x&sort=updated_at\n\
         \x20 updated_or_created_since=2024-01-01T00:00:00Z  <- lastModifiedDate > '2024-01-01T00:00:00Z'\n\
         \x20 status_id=PAID                                 <- status_id = 'PAID'\n\
         \x20 attributes=updated_at,x                        <- the fields the poller and the local predicate need\n\
         \x20 sort=updated_at                                <- a stable order while paging (change detection)\n\
         local: lastModifiedDate > '2024-01-01T00:00:00Z' AND x = 'y'\n\
         warning: the string starting at byte 73 is not closed: a closing `'` was added at the end of the clause\n\
         \x20 lastModifiedDate > '2024-01-01T00:00:00Z' and status_id = 'PAID' and x = 'y\n\
         \x20                                                                          ^^\n\
         warning: `x` is not a field of SalesInvoice records in Sage's API description: records without it do not match\n\
         \x20 lastModifiedDate > '2024-01-01T00:00:00Z' and status_id = 'PAID' and x = 'y\n\
         \x20                                                                      ^\n"
    );
}

/// `compile(url, needs)` summarized as `PATH?k=v&... local=<..> size=<..> page=<..> deleted=<..> warnings=[..]`,
/// or `error: <every rendered problem>`.
fn check_compile(url: &str, needs: &[&str], expected: &str) {
    let needs = FieldNeeds { fields: needs.iter().map(|s| s.to_string()).collect() };
    let got = match compile(url, &needs) {
        Ok(q) => {
            let query: Vec<String> = q.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{}?{} local={} size={:?} page={:?} deleted={} warnings={:?}",
                q.path,
                query.join("&"),
                q.local.as_ref().map_or("-".to_string(), |l| l.describe()),
                q.page_size,
                q.page,
                q.has_deleted_feed,
                q.warnings
            )
        }
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "{url}");
}

const SEED: &str =
    "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at";
const REPAIRED: &str =
    "where: the string starting at byte 56 is not closed: a closing `'` was added at the end of the clause";

#[test]
fn compiles_the_seed_url() {
    check_compile(
        SEED,
        &["id", "updated_at", "created_at"],
        &format!(
            "/contacts?contact_type_id=CUSTOMER&updated_or_created_since=2019-03-25T15:31:02Z&attributes=created_at,updated_at local=- size=None page=None deleted=true warnings=[{REPAIRED:?}]"
        ),
    );
}

#[test]
fn needs_become_attributes() {
    check_compile(
        "/hubs/finance/invoices?where=lastModifiedDate>='2024-01-01T00:00:00Z'",
        &["id", "updated_at", "created_at", "contact.id"],
        "/sales_invoices?updated_or_created_since=2024-01-01T00:00:00Z&attributes=updated_at,created_at,contact&sort=updated_at local=- size=None page=None deleted=true warnings=[]",
    );
    check_compile(
        "/hubs/finance/products?where=attributes='description' and active = true",
        &["id", "lastModifiedDate"],
        "/products?active=true&attributes=description,updated_at local=- size=None page=None deleted=true warnings=[]",
    );
    check_compile("/hubs/finance/products", &[], "/products? local=- size=None page=None deleted=true warnings=[]");
}

#[test]
fn query_values_raw_or_encoded_read_the_same() {
    let expected = "/contacts?contact_type_id=CUSTOMER&updated_or_created_since=2019-03-25T15:31:02Z&attributes=created_at,updated_at local=- size=Some(50) page=None deleted=true warnings=[]";
    // Raw, as users write it.
    check_compile(
        "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at'&pageSize=50",
        &[],
        expected,
    );
    // java.net.URLEncoder: spaces as `+`, quotes encoded.
    check_compile(
        "/hubs/finance/customers?where=lastModifiedDate%3E%3D%272019-03-25T15%3A31%3A02Z%27+and+attributes%3D%27created_at%2Cupdated_at%27&pageSize=50",
        &[],
        expected,
    );
    // encodeURIComponent: spaces as %20, quotes left alone, `+` would be %2B.
    check_compile(
        "/hubs/finance/customers?where=lastModifiedDate%3E%3D'2019-03-25T15%3A31%3A02%2B00%3A00'%20and%20attributes%3D'created_at%2Cupdated_at'&pageSize=50",
        &[],
        expected,
    );
    // A raw `+` in a raw date offset stays a `+`.
    check_compile(
        "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T17:31:02+02:00'&pageSize=50",
        &[],
        "/contacts?contact_type_id=CUSTOMER&updated_or_created_since=2019-03-25T15:31:02Z local=- size=Some(50) page=None deleted=true warnings=[]",
    );
    // A raw value with spaces is not percent-decoded: the LIKE pattern survives.
    check_compile(
        "/hubs/finance/contacts?where=name like '%20%'",
        &[],
        "/contacts?attributes=name local=name LIKE '%20%' size=None page=None deleted=true warnings=[]",
    );
}

#[test]
fn hub_parameters() {
    check_compile(
        "https://ocpoll.example/elements/api-v2/hubs/finance/invoices/?where=name='A&B'&PAGESIZE=5&page=2&orderBy=lastModifiedDate desc&foo=1",
        &[],
        "/sales_invoices?attributes=name&sort=updated_at:desc local=name = 'A&B' size=Some(5) page=Some(2) deleted=true warnings=[\"unknown hub parameter `foo` is ignored (known: where, pageSize, page, orderBy, fields)\", \"where: `name` is not a field of SalesInvoice records in Sage's API description: records without it do not match\"]",
    );
    // A string left open before another hub parameter ends at that parameter.
    check_compile(
        "/hubs/finance/customers?where=attributes='a,b&pageSize=10",
        &[],
        "/contacts?contact_type_id=CUSTOMER&attributes=a,b local=- size=Some(10) page=None deleted=true warnings=[\"where: the string starting at byte 11 is not closed: a closing `'` was added at the end of the clause\"]",
    );
    check_compile(
        "/hubs/finance/sales_quotes?orderBy=created_at",
        &[],
        "/sales_quotes?sort=created_at local=- size=None page=None deleted=false warnings=[]",
    );
    check_compile(
        "/hubs/finance/customers?where=",
        &[],
        "/contacts?contact_type_id=CUSTOMER local=- size=None page=None deleted=true warnings=[]",
    );
}

#[test]
fn fields_select_sage_attributes() {
    // `fields` becomes `attributes` (Sage always returns id, displayed_as and $path), OC names read as Sage's.
    check_compile(
        "/hubs/finance/customers?fields=name,email",
        &[],
        "/contacts?contact_type_id=CUSTOMER&attributes=name,email local=- size=None page=None deleted=true warnings=[]",
    );
    check_compile(
        "/hubs/finance/customers?fields=%20name%2C%20lastModifiedDate,id,,main_address.city",
        &[],
        "/contacts?contact_type_id=CUSTOMER&attributes=name,updated_at,main_address local=- size=None page=None deleted=true warnings=[]",
    );
    // with the clause's attributes, what the poller needs and what is evaluated locally
    check_compile(
        "/hubs/finance/customers?where=email like '%x%' and attributes='reference'&fields=name",
        &["updated_at"],
        "/contacts?contact_type_id=CUSTOMER&attributes=reference,name,updated_at,email local=email LIKE '%x%' size=None page=None deleted=true warnings=[]",
    );
    check_compile(
        "/hubs/finance/products?fields=all,description",
        &[],
        "/products?attributes=all local=- size=None page=None deleted=true warnings=[]",
    );
    // a composite resource asks every list for them, and a field one list lacks is said per list
    check_compile(
        "/hubs/finance/items?fields=item_code,sales_prices",
        &[],
        "/products?attributes=item_code,sales_prices local=- size=None page=None deleted=true warnings=[\"fields: `sales_prices` is not a field of Service records in Sage's API description\"]",
    );
    check_compile(
        "/hubs/finance/customers?fields=name,nmae",
        &[],
        "/contacts?contact_type_id=CUSTOMER&attributes=name,nmae local=- size=None page=None deleted=true warnings=[\"fields: `nmae` is not a field of Contact records in Sage's API description\"]",
    );
    check_compile(
        "/hubs/finance/customers?fields=name,e mail,a..b",
        &[],
        "error: `e mail` is not a field name: `fields` takes record fields separated by commas (e.g. `name,email`)\n  /hubs/finance/customers?fields=name,e mail,a..b\n                                      ^^^^^^\n`a..b` is not a field name: `fields` takes record fields separated by commas (e.g. `name,email`)\n  /hubs/finance/customers?fields=name,e mail,a..b\n                                             ^^^^",
    );
}

#[test]
fn compile_errors_point_into_the_url() {
    check_compile(
        "/hubs/finance/customers?where=name%20%3D%20",
        &[],
        "error: expected a value (a quoted string, a number, `true` or `false`), found the end of the clause\n  /hubs/finance/customers?where=name%20%3D%20\n                                             ^",
    );
    check_compile(
        "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy}'",
        &[],
        "error: `${date:yyyy}` is not a date (expected e.g. `2024-01-31` or `2024-01-31T12:00:00Z`)\n  /hubs/finance/customers?where=lastModifiedDate>='${date:yyyy}'\n                                                  ^^^^^^^^^^^^^^",
    );
    check_compile(
        "/hubs/finance/widgets?pageSize=0&pageSize=2",
        &[],
        "error: `pageSize` must be a whole number from 1, found `0`\n  /hubs/finance/widgets?pageSize=0&pageSize=2\n                                 ^\n`pageSize` is given twice\n  /hubs/finance/widgets?pageSize=0&pageSize=2\n                                   ^^^^^^^^",
    );
    check_compile(
        "/hubs/finance/widgets",
        &[],
        "error: unknown resource `widgets`; known: customers, vendors, contacts, invoices, sales-credit-notes, sales-quotes, purchase-invoices, purchase-credit-notes, payments, other-payments, products, services, ledger-accounts, bank-accounts, tax-rates, journals, addresses, contact-persons, contact-allocations, stock-items; open connectors' names: items, tax-codes, journal-entries, bills, credit-memos, vendor-credits, estimates, bill-payments\n  /hubs/finance/widgets\n                ^^^^^^^",
    );
    check_compile(
        "/hubs/crm/contacts",
        &[],
        "error: unknown hub `crm`: sageone serves the `finance` hub\n  /hubs/crm/contacts\n        ^^^",
    );
    check_compile(
        "/contacts?where=a=1",
        &[],
        "error: expected a hub URL such as `/hubs/finance/customers?where=...`\n  /contacts?where=a=1\n  ^^^^^^^^^",
    );
    check_compile(
        "/hubs/finance/contacts?orderBy=updated_at",
        &[],
        "error: /contacts cannot be ordered by `updated_at` (it has no sort)\n  /hubs/finance/contacts?orderBy=updated_at\n                                 ^^^^^^^^^^",
    );
    check_compile(
        "/hubs/finance/invoices?orderBy=name",
        &[],
        "error: /sales_invoices cannot be ordered by `name` (sort keys: created_at, updated_at, date, due_date)\n  /hubs/finance/invoices?orderBy=name\n                                 ^^^^",
    );
    check_compile(
        "/hubs/finance/contacts?where=a%FF",
        &[],
        "error: the value of `where` is not UTF-8 once percent-decoded\n  /hubs/finance/contacts?where=a%FF\n                               ^^^^",
    );
}

#[test]
fn the_local_filter_of_a_compiled_query_applies_ceql() {
    let q = compile(
        "/hubs/finance/customers?where=lastModifiedDate > '2024-01-01T00:00:00Z' and (name like 'A%' or balance > 10)",
        &FieldNeeds::default(),
    )
    .unwrap();
    let local = q.local.unwrap();
    assert_eq!(local.describe(), "lastModifiedDate > '2024-01-01T00:00:00Z' AND (name LIKE 'A%' OR balance > 10)");
    assert!(local.matches(&json!({"updated_at": "2024-01-01T00:00:01Z", "name": "Acme", "balance": 0})));
    assert!(local.matches(&json!({"updated_at": "2024-01-01T00:00:01Z", "name": "Zed", "balance": 11})));
    assert!(!local.matches(&json!({"updated_at": "2024-01-01T00:00:00Z", "name": "Acme", "balance": 11})));
    assert!(!local.matches(&json!({"updated_at": "2024-01-02T00:00:00Z", "name": "Zed", "balance": 10})));
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    fn query_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("where=".to_string()),
            Just("&".to_string()),
            Just("pageSize=".to_string()),
            Just("orderBy=".to_string()),
            Just("'".to_string()),
            Just("%".to_string()),
            Just("%2".to_string()),
            Just("%27".to_string()),
            Just("+".to_string()),
            Just(" ".to_string()),
            Just("lastModifiedDate>=".to_string()),
            Just("'2024-01-01T00:00:00Z'".to_string()),
            Just(" and ".to_string()),
            Just(" or ".to_string()),
            Just("search=".to_string()),
            Just("attributes=".to_string()),
            Just("deletedDate>".to_string()),
            "\\PC{0,4}",
        ];
        prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn compile_never_panics(url in any::<String>(), query in query_text()) {
            let _ = compile(&url, &FieldNeeds::default());
            let url = format!("/hubs/finance/invoices?{query}");
            if let Err(e) = compile(&url, &FieldNeeds { fields: vec!["id".into(), "updated_at".into()] }) {
                for d in &e.0 {
                    if let Some(span) = &d.span {
                        prop_assert!(span.start <= span.end && span.end <= url.len(), "{span:?} in {url:?}");
                    }
                }
            }
        }

        #[test]
        fn translate_never_panics(clause in query_text(), resource in "(customers|invoices|sales_quotes|x)") {
            let _ = translate(&resource, &clause);
        }
    }
}
