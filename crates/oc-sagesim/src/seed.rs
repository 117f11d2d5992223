//! Deterministic data: from a seed and a start instant, the same businesses and records every time — customers,
//! vendors, products, services, ledger and bank accounts, invoices, quotes and payments, created over the past
//! days, some edited since, a few deleted.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Map, Value, json};

use crate::store::{Business, Data, Stamp, new_id, resource, round2};
use crate::timefmt;

const FIRST: [&str; 16] = [
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hugo", "Isla", "Jonah", "Kiran", "Lena", "Marek", "Nia",
    "Omar", "Priya",
];
const LAST: [&str; 16] = [
    "Archer", "Bennett", "Clarke", "Dawson", "Evans", "Fletcher", "Gupta", "Hughes", "Iqbal", "Jones", "Khan", "Lewis",
    "Murphy", "Novak", "Owens", "Patel",
];
const TRADES: [&str; 10] =
    ["Bakery", "Builders", "Consulting", "Design", "Garage", "Joinery", "Logistics", "Media", "Plumbing", "Studio"];
const BUSINESS_NAMES: [&str; 4] = ["Sim Trading Ltd", "Sim Consulting Ltd", "Sim Retail Ltd", "Sim Services Ltd"];

/// How far back generated history reaches.
const HISTORY_DAYS: i64 = 30;

/// Chart of accounts: nominal code, name, type id, control account.
const LEDGER_ACCOUNTS: [(i64, &str, &str, bool); 10] = [
    (1100, "Trade Debtors", "CURRENT_ASSETS", true),
    (1200, "Current", "BANK", false),
    (1210, "Savings", "BANK", false),
    (2100, "Trade Creditors", "CURRENT_LIABILITY", true),
    (2200, "Sales Tax Control Account", "CURRENT_LIABILITY", true),
    (4000, "Sales Type A", "SALES", false),
    (4001, "Sales Type B", "SALES", false),
    (4900, "Other Income", "OTHER_INCOME", false),
    (5000, "Cost of sales - goods", "DIRECT_EXPENSES", false),
    (7500, "Office costs", "OVERHEADS", false),
];

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Sorted random instants in `[from, to)`, whole seconds.
fn instants(rng: &mut StdRng, n: usize, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let span = (to - from).num_seconds().max(1);
    let mut v: Vec<_> = (0..n).map(|_| timefmt::second(from + Duration::seconds(rng.gen_range(0..span)))).collect();
    v.sort();
    v
}

struct Seeder<'a> {
    data: &'a mut Data,
    rng: StdRng,
    now: DateTime<Utc>,
}

impl Seeder<'_> {
    fn stamp(&self, at: DateTime<Utc>) -> Stamp {
        Stamp { now: at, delay: Duration::zero() }
    }

    fn create(&mut self, business: &str, res: &str, fields: Value, at: DateTime<Utc>) -> String {
        let id = new_id(&mut self.rng);
        let endpoint = resource(res).expect("seeded resources are in the swagger table");
        self.data
            .create(business, endpoint, &obj(fields), id.clone(), Some(at), self.stamp(at))
            .expect("seeded records are valid");
        id
    }

    /// Edits some records after their creation and deletes a few, at instants before now. Returns how many were
    /// deleted.
    fn churn(&mut self, business: &str, res: &str, ids: &[(String, DateTime<Utc>)], edit: f64, delete: f64) -> usize {
        let endpoint = resource(res).expect("seeded resources are in the swagger table");
        let mut deleted = 0;
        for (id, created) in ids {
            let roll: f64 = self.rng.r#gen();
            let later = (self.now - *created).num_seconds().max(2);
            let at = *created + Duration::seconds(self.rng.gen_range(1..later));
            if roll < delete && endpoint.has_property("deleted_at") && !endpoint.voids {
                if self.data.delete(business, endpoint, id, self.stamp(at)).is_ok() {
                    deleted += 1;
                }
            } else if roll < delete + edit {
                let fields = obj(json!({"notes": format!("edited {}", timefmt::format(at))}));
                let _ = self.data.update(business, endpoint, id, &fields, self.stamp(at));
            }
        }
        deleted
    }
}

fn contact_fields(rng: &mut StdRng, kind: &str, n: usize) -> Value {
    let first = FIRST[rng.gen_range(0..FIRST.len())];
    let last = LAST[rng.gen_range(0..LAST.len())];
    let trade = TRADES[rng.gen_range(0..TRADES.len())];
    let prefix = if kind == "CUSTOMER" { "C" } else { "V" };
    let name = format!("{last} {trade}");
    json!({
        "name": name,
        "reference": format!("{prefix}{:05}", n + 1),
        "contact_type_ids": [kind],
        "email": format!("{}.{}@{}.example", first.to_lowercase(), last.to_lowercase(), trade.to_lowercase()),
        "main_contact_person": {"name": format!("{first} {last}"), "email": format!("{}@{}.example", first.to_lowercase(), trade.to_lowercase())},
        "main_address": {"address_line_1": format!("{} High Street", rng.gen_range(1..200)), "city": "Leeds", "postal_code": "LS1 4AP",
            "country": {"id": "GB", "displayed_as": "United Kingdom (GB)", "$path": "/countries/GB"}},
        "currency_id": "GBP",
        "credit_limit": (rng.gen_range(1..50) * 100) as f64,
        "credit_days": 30,
        "balance": 0.0,
        "locale": "en",
        "is_active": true,
        "system": false,
        "deletable": true,
        "gb_based": true,
        "tax_number": format!("GB{:09}", rng.gen_range(100_000_000..999_999_999)),
    })
}

#[cfg(test)]
pub(crate) fn generate(seed: u64, businesses: usize, customers: usize, now: DateTime<Utc>) -> Data {
    generate_with(seed, businesses, customers, false, now)
}

/// Builds the businesses and their records as they stand at `now`; with `lean`, the businesses but the lead one
/// get only a few customers (load runs).
pub(crate) fn generate_with(seed: u64, businesses: usize, customers: usize, lean: bool, now: DateTime<Utc>) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = timefmt::second(now);
    let start = now - Duration::days(HISTORY_DAYS);
    let list = (0..businesses.max(1))
        .map(|i| {
            let name = match BUSINESS_NAMES.get(i) {
                Some(n) => (*n).to_owned(),
                None => format!("Sim Business {} Ltd", i + 1),
            };
            Business::new(new_id(&mut rng), name, start - Duration::days(1 + i as i64))
        })
        .collect::<Vec<_>>();
    let ids: Vec<String> = list.iter().map(|b| b.id.clone()).collect();
    let mut data = Data::new(list);
    let mut s = Seeder { data: &mut data, rng, now };
    for (i, business) in ids.iter().enumerate() {
        match (i, lean) {
            (0, _) => seed_business(&mut s, business, customers, start),
            (_, false) => seed_business(&mut s, business, 5, start),
            (_, true) => seed_customers(&mut s, business, crate::config::LEAN_CUSTOMERS, start),
        }
    }
    data
}

/// Only `customers` customer contacts (a lean business).
fn seed_customers(s: &mut Seeder<'_>, b: &str, customers: usize, start: DateTime<Utc>) {
    let now = s.now;
    for (n, at) in instants(&mut s.rng, customers, start, now).into_iter().enumerate() {
        let fields = contact_fields(&mut s.rng, "CUSTOMER", n);
        s.create(b, "contacts", fields, at);
    }
}

fn seed_business(s: &mut Seeder<'_>, b: &str, customers: usize, start: DateTime<Utc>) {
    let mut ledger = std::collections::HashMap::new();
    for (code, name, kind, control) in LEDGER_ACCOUNTS {
        let visible_in_sales = kind == "SALES" || kind == "OTHER_INCOME";
        let id = s.create(
            b,
            "ledger_accounts",
            json!({"name": name, "display_name": name, "nominal_code": code, "ledger_account_type_id": kind,
                "included_in_chart": true, "is_control_account": control, "visible_in_sales": visible_in_sales,
                "visible_in_banking": kind == "BANK", "visible_in_expenses": kind.ends_with("EXPENSES") || kind == "OVERHEADS",
                "visible_in_journals": true, "visible_in_other_payments": !control, "visible_in_other_receipts": !control,
                "visible_in_reporting": true, "fixed_tax_rate": false}),
            start,
        );
        ledger.insert(code, id);
    }
    let bank_ids: Vec<String> = [("Current Account", 1200, "CHECKING"), ("Savings Account", 1210, "SAVINGS")]
        .into_iter()
        .map(|(name, code, kind)| {
            let account_number = format!("{:08}", s.rng.gen_range(10_000_000..99_999_999));
            s.create(
                b,
                "bank_accounts",
                json!({"bank_account_details": {"account_name": name, "account_number": account_number, "sort_code": "40-12-76"},
                    "bank_account_type_id": kind, "ledger_account_id": ledger[&code], "nominal_code": code,
                    "balance": 0.0, "is_active": true, "editable": true, "deletable": false, "currency_id": "GBP"}),
                start,
            )
        })
        .collect();
    let now = s.now;
    let times = instants(&mut s.rng, customers, start, now);
    let mut customer_ids = Vec::with_capacity(customers);
    for (n, at) in times.into_iter().enumerate() {
        let fields = contact_fields(&mut s.rng, "CUSTOMER", n);
        customer_ids.push((s.create(b, "contacts", fields, at), at));
    }
    let times = instants(&mut s.rng, 5, start, now);
    for (n, at) in times.into_iter().enumerate() {
        let fields = contact_fields(&mut s.rng, "VENDOR", n);
        s.create(b, "contacts", fields, at);
    }
    let mut product_ids = vec![];
    for (n, at) in instants(&mut s.rng, 8, start, now).into_iter().enumerate() {
        let price = round2(s.rng.gen_range(5.0..500.0));
        let description =
            format!("{} {}", ["Widget", "Gadget", "Bracket", "Cable", "Panel", "Valve", "Hinge", "Lamp"][n], n + 1);
        let id = s.create(
            b,
            "products",
            json!({"item_code": format!("P{:04}", n + 1), "description": description, "active": true,
                "sales_ledger_account_id": ledger[&4000], "purchase_ledger_account_id": ledger[&5000],
                "cost_price": round2(price * 0.6), "deletable": true, "deactivatable": true,
                "sales_prices": [{"price_name": "Selling Price", "price": price, "price_includes_tax": false}]}),
            at,
        );
        product_ids.push((id, at, description, price));
    }
    for (n, at) in instants(&mut s.rng, 5, start, now).into_iter().enumerate() {
        let rate = round2(s.rng.gen_range(30.0..150.0));
        s.create(
            b,
            "services",
            json!({"item_code": format!("S{:04}", n + 1),
                "description": format!("{} hour", ["Consulting", "Installation", "Repair", "Training", "Support"][n]),
                "active": true, "sales_ledger_account_id": ledger[&4001], "deletable": true, "deactivatable": true,
                "sales_rates": [{"rate_name": "Hourly", "rate": rate, "rate_includes_tax": false}]}),
            at,
        );
    }
    // Invoices and quotes for a share of the customers, after each customer's creation.
    let invoices = (customers / 2).clamp(3, 200).min(customers.max(1) * 2);
    let mut invoice_ids = vec![];
    for _ in 0..invoices {
        let Some((contact, created)) = customer_ids.choose(&mut s.rng).cloned() else { break };
        let Some((_, _, description, price)) = product_ids.choose(&mut s.rng).cloned() else { break };
        let at = created + Duration::seconds(s.rng.gen_range(1..(now - created).num_seconds().max(2)));
        let quantity = s.rng.gen_range(1..10);
        let status = ["DRAFT", "UNPAID", "UNPAID", "PAID"][s.rng.gen_range(0..4)];
        let date = timefmt::format_date(at);
        let reference = format!("PO-{}", s.rng.gen_range(1000..9999));
        let due = timefmt::format_date(at + Duration::days(30));
        let id = s.create(
            b,
            "sales_invoices",
            json!({"contact_id": contact, "date": date, "due_date": due, "status_id": status,
                "reference": reference, "currency_id": "GBP", "sent": status != "DRAFT",
                "invoice_lines": [{"description": description, "quantity": quantity, "unit_price": price,
                    "ledger_account": {"id": ledger[&4000], "displayed_as": "Sales Type A (4000)", "$path": format!("/ledger_accounts/{}", ledger[&4000])}}]}),
            at,
        );
        invoice_ids.push((id, at, contact, status));
    }
    for _ in 0..(invoices / 3).max(2) {
        let Some((contact, created)) = customer_ids.choose(&mut s.rng).cloned() else { break };
        let Some((_, _, description, price)) = product_ids.choose(&mut s.rng).cloned() else { break };
        let at = created + Duration::seconds(s.rng.gen_range(1..(now - created).num_seconds().max(2)));
        let status = ["DRAFT", "PENDING", "ACCEPTED"][s.rng.gen_range(0..3)];
        let quantity = s.rng.gen_range(1..5);
        s.create(
            b,
            "sales_quotes",
            json!({"contact_id": contact, "date": timefmt::format_date(at), "expiry_date": timefmt::format_date(at + Duration::days(30)),
                "status_id": status,
                "quote_lines": [{"description": description, "quantity": quantity, "unit_price": price}]}),
            at,
        );
    }
    for (invoice, at, contact, status) in invoice_ids.iter().filter(|i| i.3 == "PAID") {
        let paid_at = *at + Duration::seconds(s.rng.gen_range(1..(now - *at).num_seconds().max(2)));
        let total = s
            .data
            .business(b)
            .and_then(|bz| bz.collection("sales_invoices"))
            .and_then(|c| c.get(invoice))
            .and_then(|r| r.current.fields.get("total_amount").and_then(Value::as_f64))
            .unwrap_or(0.0);
        let _ = status;
        s.create(
            b,
            "contact_payments",
            json!({"transaction_type_id": "CUSTOMER_RECEIPT", "contact_id": contact, "bank_account_id": bank_ids[0],
                "payment_method_id": "BANK_TRANSFER", "date": timefmt::format_date(paid_at), "total_amount": total,
                "net_amount": total, "tax_amount": 0.0, "currency_id": "GBP", "reference": format!("Payment {invoice}"),
                "allocated_artefacts": [{"artefact": {"id": invoice, "$path": format!("/sales_invoices/{invoice}")}, "amount": total}]}),
            paid_at,
        );
    }
    let products: Vec<_> = product_ids.iter().map(|(id, at, _, _)| (id.clone(), *at)).collect();
    // `customers` is the number of live customers: those the churn deleted are made again, on top
    let deleted = s.churn(b, "contacts", &customer_ids, 0.3, 0.05);
    let times = instants(&mut s.rng, deleted, start, now);
    for (n, at) in times.into_iter().enumerate() {
        let fields = contact_fields(&mut s.rng, "CUSTOMER", customers + n);
        s.create(b, "contacts", fields, at);
    }
    s.churn(b, "products", &products, 0.3, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(d: &Data) -> Vec<String> {
        d.businesses
            .iter()
            .flat_map(|b| {
                ["contacts", "sales_invoices", "products", "contact_payments", "ledger_accounts", "bank_accounts"]
                    .into_iter()
                    .flat_map(move |r| b.collection(r).into_iter().flat_map(|c| c.records().iter()))
                    .map(|r| serde_json::to_string(&r.current.fields).expect("json"))
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let now: DateTime<Utc> = "2024-06-01T12:00:00Z".parse().expect("t");
        let a = generate(7, 2, 40, now);
        let b = generate(7, 2, 40, now);
        let c = generate(8, 2, 40, now);
        assert_eq!(snapshot(&a), snapshot(&b));
        assert_ne!(snapshot(&a), snapshot(&c));
    }

    #[test]
    fn customers_are_seeded_in_the_lead_business_over_the_past_days() {
        let now: DateTime<Utc> = "2024-06-01T12:00:00Z".parse().expect("t");
        let lean = generate_with(1, 50, 10, true, now);
        assert_eq!(lean.businesses.len(), 50);
        let records = |data: &Data, i: usize, resource: &str| {
            data.businesses[i].collection(resource).map_or(0, |c| c.records().len())
        };
        assert_eq!(records(&lean, 1, "contacts"), crate::config::LEAN_CUSTOMERS, "a lean business: its customers");
        for other in ["ledger_accounts", "products", "sales_invoices", "bank_accounts"] {
            assert_eq!(records(&lean, 1, other), 0, "{other}: nothing else in a lean business");
            assert!(records(&lean, 0, other) > 0, "{other}: the lead business is seeded in full");
        }
        let d = generate(1, 3, 120, now);
        assert_eq!(d.businesses.len(), 3);
        let contacts = d.businesses[0].collection("contacts").expect("contacts");
        let customers: Vec<_> = contacts
            .records()
            .iter()
            .filter(|r| r.current.fields["contact_types"][0]["id"] == "CUSTOMER" && r.current.deleted_at.is_none())
            .collect();
        assert_eq!(customers.len(), 120, "live customers");
        let all =
            contacts.records().iter().filter(|r| r.current.fields["contact_types"][0]["id"] == "CUSTOMER").count();
        assert!(all > 120, "deleted ones on top: {all}");
        let created: Vec<_> = customers.iter().map(|r| r.current.created_at).collect();
        assert!(created.iter().all(|c| *c < now && *c >= now - Duration::days(HISTORY_DAYS)));
        let days: std::collections::BTreeSet<_> = created.iter().map(|c| c.date_naive()).collect();
        assert!(days.len() > 10, "spread over many days: {days:?}");
        assert!(customers.iter().any(|r| r.current.updated_at > r.current.created_at));
        assert!(customers.iter().all(|r| r.current.updated_at < now));
        let other = d.businesses[1].collection("contacts").expect("contacts").records().len();
        assert_eq!(other, 10);
        assert_ne!(d.businesses[0].id, d.businesses[1].id);
    }
}
