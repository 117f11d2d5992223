//! The simulated accounts: businesses, and per business one collection of records per resource. Records keep
//! their previous state too, so that a change can stay invisible to list calls for a while (late-visible rows).

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rand::{Rng, rngs::StdRng};
use serde_json::{Map, Value, json};

use crate::error::SimError;
use crate::swagger::{self, Endpoint, Kind};
use crate::timefmt;

/// One state of a record: its timestamps and its full JSON (every property of its swagger definition).
#[derive(Debug, Clone)]
pub(crate) struct RecordState {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
    pub(crate) fields: Map<String, Value>,
    /// The references list filters (`contact_id`, `contact_type_id`, ...) look at, precomputed.
    pub(crate) refs: RefKeys,
}

/// The ids of a record's nested references that a declared `x_id` list parameter can filter on, kept inline as
/// hashes of `(field, id)` so that filtering a list touches no record JSON (it is the hot path of a poll).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RefKeys {
    keys: [u64; 8],
    len: u8,
    /// More references than fit: filters read the record's JSON instead.
    pub(crate) overflow: bool,
}

impl RefKeys {
    /// The key of reference `field` (as named in the record, e.g. `contact_types`) to `id`.
    pub(crate) fn key(field: &str, id: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        field.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    }

    fn push(&mut self, key: u64) {
        match self.keys.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = key;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    /// Whether the record refers to `key` (meaningless when `overflow`).
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.keys[..usize::from(self.len)].contains(&key)
    }

    fn of(endpoint: &Endpoint, record: &Map<String, Value>) -> RefKeys {
        let mut refs = RefKeys::default();
        for param in endpoint.list_ref_params() {
            let single = param.trim_end_matches("_id");
            let plural = format!("{single}s");
            if let Some(id) = record.get(single).and_then(|v| v.get("id")).and_then(Value::as_str) {
                refs.push(RefKeys::key(single, id));
            }
            for item in record.get(&plural).and_then(Value::as_array).into_iter().flatten() {
                if let Some(id) = item.get("id").and_then(Value::as_str) {
                    refs.push(RefKeys::key(&plural, id));
                }
            }
        }
        refs
    }
}

impl RecordState {
    /// The instant of the state's last change (its deletion for a deleted record).
    pub(crate) fn stamp(&self) -> DateTime<Utc> {
        self.deleted_at.map_or(self.updated_at, |d| d.max(self.updated_at))
    }

    fn visible_at(&self, now: DateTime<Utc>, delay: chrono::Duration) -> bool {
        self.stamp() + delay <= now
    }
}

/// A record: its current state and the last state list calls could already see.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) id: String,
    seq: u64,
    pub(crate) current: RecordState,
    prior: Option<RecordState>,
}

impl Record {
    /// The state a list call at `now` sees when changes become visible `delay` after they happen.
    pub(crate) fn visible(&self, now: DateTime<Utc>, delay: chrono::Duration) -> Option<&RecordState> {
        if delay <= chrono::Duration::zero() || self.current.visible_at(now, delay) {
            Some(&self.current)
        } else {
            self.prior.as_ref()
        }
    }

    fn replace(&mut self, next: RecordState, now: DateTime<Utc>, delay: chrono::Duration) {
        let old = std::mem::replace(&mut self.current, next);
        if delay <= chrono::Duration::zero() || old.visible_at(now, delay) {
            self.prior = Some(old);
        }
    }
}

/// The records of one resource in one business, in the default list order: creation time, then insertion.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    records: Vec<Record>,
    index: HashMap<String, usize>,
}

impl Collection {
    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Record> {
        self.index.get(id).map(|&i| &self.records[i])
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.index.get(id).map(|&i| &mut self.records[i])
    }

    fn insert(&mut self, record: Record) {
        let key = (record.current.created_at, record.seq);
        let at = self.records.partition_point(|r| (r.current.created_at, r.seq) <= key);
        if at == self.records.len() {
            self.index.insert(record.id.clone(), at);
            self.records.push(record);
        } else {
            self.records.insert(at, record);
            self.reindex();
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(i) = self.index.remove(id) {
            self.records.remove(i);
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.index = self.records.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
    }

    /// Ids of the live (not deleted) records, in default order.
    pub(crate) fn live_ids(&self) -> Vec<String> {
        self.records.iter().filter(|r| r.current.deleted_at.is_none()).map(|r| r.id.clone()).collect()
    }
}

/// One business of the simulated user.
#[derive(Debug)]
pub(crate) struct Business {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_at: DateTime<Utc>,
    collections: HashMap<&'static str, Collection>,
    counters: HashMap<&'static str, u64>,
    /// Instants of the API requests in the current rate-limit window.
    pub(crate) window: VecDeque<DateTime<Utc>>,
}

impl Business {
    pub(crate) fn new(id: String, name: String, created_at: DateTime<Utc>) -> Self {
        Business {
            id,
            name,
            created_at,
            collections: HashMap::new(),
            counters: HashMap::new(),
            window: VecDeque::new(),
        }
    }

    pub(crate) fn collection(&self, resource: &str) -> Option<&Collection> {
        self.collections.get(resource)
    }

    /// The business as `GET /businesses` shows it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "displayed_as": self.name,
            "$path": format!("/businesses/{}", self.id),
            "name": self.name,
            "created_at": timefmt::format(self.created_at),
            "updated_at": timefmt::format(self.created_at),
            "address_line_1": "1 High Street",
            "city": "Newcastle upon Tyne",
            "postal_code": "NE1 1AA",
            "country": {"id": "GB", "displayed_as": "United Kingdom (GB)", "$path": "/countries/GB"},
            "subscriptions": [],
            "owner": {"id": USER_ID, "displayed_as": "Sim User"},
        })
    }
}

/// The id of the simulated user (`requested_by_id`, business owner).
pub(crate) const USER_ID: &str = "5f0c1a6b2d3e4f5a6b7c8d9e0f1a2b3c";

/// 32 lowercase hex digits, as Sage ids.
pub(crate) fn new_id(rng: &mut StdRng) -> String {
    format!("{:032x}", rng.r#gen::<u128>())
}

/// Every business and its records.
#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) businesses: Vec<Business>,
    seq: u64,
}

/// How a change is stamped: when, and how long list calls keep seeing the previous state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub(crate) now: DateTime<Utc>,
    pub(crate) delay: chrono::Duration,
}

impl Data {
    pub(crate) fn new(businesses: Vec<Business>) -> Self {
        Data { businesses, seq: 0 }
    }

    pub(crate) fn business(&self, id: &str) -> Option<&Business> {
        self.businesses.iter().find(|b| b.id == id)
    }

    fn business_mut(&mut self, id: &str) -> Result<&mut Business, SimError> {
        self.businesses.iter_mut().find(|b| b.id == id).ok_or_else(|| SimError::UnknownBusiness(id.to_owned()))
    }

    /// Creates a record from body-style fields (`contact_id`, `contact_type_ids`, ... or full nested objects).
    /// `created_at` defaults to `stamp.now`.
    pub(crate) fn create(
        &mut self,
        business: &str,
        endpoint: &'static Endpoint,
        fields: &Map<String, Value>,
        id: String,
        created_at: Option<DateTime<Utc>>,
        stamp: Stamp,
    ) -> Result<Map<String, Value>, SimError> {
        let created = timefmt::second(created_at.unwrap_or(stamp.now));
        let mut record = Map::new();
        for (name, kind) in endpoint.properties() {
            record.insert((*name).to_owned(), empty(*kind));
        }
        let lookup = |id: &str| self.lookup(business, id);
        apply_fields(&mut record, endpoint, fields, &lookup);
        let status_default = record.get("status").is_none_or(Value::is_null).then(|| {
            let status = if endpoint.name == "sales_invoices" { "UNPAID" } else { "DRAFT" };
            base("status", status, &lookup)
        });
        self.seq += 1;
        let seq = self.seq;
        let b = self.business_mut(business)?;
        if b.collections.get(endpoint.name).is_some_and(|c| c.get(&id).is_some()) {
            return Err(SimError::InvalidRecord(format!("a record {id:?} exists already")));
        }
        if endpoint.name == "sales_invoices" || endpoint.name == "sales_quotes" {
            let (key, prefix) =
                if endpoint.name == "sales_invoices" { ("invoice_number", "SI-") } else { ("quote_number", "SQ-") };
            if record.get(key).is_none_or(Value::is_null) {
                let n = b.counters.entry(endpoint.name).or_insert(0);
                *n += 1;
                record.insert(key.into(), Value::String(format!("{prefix}{n}")));
            }
            if let Some(status) = status_default {
                record.insert("status".into(), status);
            }
        }
        let state = finish(record, endpoint, &id, created, created, None, fields.contains_key("displayed_as"));
        let out = state.fields.clone();
        b.collections.entry(endpoint.name).or_default().insert(Record { id, seq, current: state, prior: None });
        Ok(out)
    }

    /// Applies body-style fields to a live record; `updated_at` becomes `stamp.now`.
    pub(crate) fn update(
        &mut self,
        business: &str,
        endpoint: &'static Endpoint,
        id: &str,
        fields: &Map<String, Value>,
        stamp: Stamp,
    ) -> Result<Map<String, Value>, SimError> {
        let not_found = || SimError::RecordNotFound { resource: endpoint.name.to_owned(), id: id.to_owned() };
        let current = self
            .business(business)
            .ok_or_else(|| SimError::UnknownBusiness(business.to_owned()))?
            .collection(endpoint.name)
            .and_then(|c| c.get(id))
            .filter(|r| r.current.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let mut next = current.current.fields.clone();
        let lookup = |id: &str| self.lookup(business, id);
        apply_fields(&mut next, endpoint, fields, &lookup);
        let b = self.business_mut(business)?;
        let record = b.collections.get_mut(endpoint.name).and_then(|c| c.get_mut(id)).ok_or_else(not_found)?;
        let now = timefmt::second(stamp.now);
        let state =
            finish(next, endpoint, id, record.current.created_at, now, None, fields.contains_key("displayed_as"));
        let out = state.fields.clone();
        record.replace(state, stamp.now, stamp.delay);
        Ok(out)
    }

    /// Deletes a live record: a tombstone where the resource has `deleted_at` (the deleted feed), gone otherwise.
    pub(crate) fn delete(
        &mut self,
        business: &str,
        endpoint: &'static Endpoint,
        id: &str,
        stamp: Stamp,
    ) -> Result<(), SimError> {
        let b = self.business_mut(business)?;
        let not_found = || SimError::RecordNotFound { resource: endpoint.name.to_owned(), id: id.to_owned() };
        let collection = b.collections.get_mut(endpoint.name).ok_or_else(not_found)?;
        let record = collection.get_mut(id).ok_or_else(not_found)?;
        if record.current.deleted_at.is_some() {
            return Err(not_found());
        }
        if !endpoint.has_property("deleted_at") {
            collection.remove(id);
            return Ok(());
        }
        let now = timefmt::second(stamp.now);
        let mut next = record.current.clone();
        next.deleted_at = Some(now);
        next.fields.insert("deleted_at".into(), Value::String(timefmt::format(now)));
        record.replace(next, stamp.now, stamp.delay);
        Ok(())
    }

    /// Sets `updated_at` of live records to one instant (a tie), keeping their content.
    pub(crate) fn touch(
        &mut self,
        business: &str,
        endpoint: &'static Endpoint,
        ids: &[String],
        at: DateTime<Utc>,
        stamp: Stamp,
    ) -> Result<(), SimError> {
        let at = timefmt::second(at);
        let b = self.business_mut(business)?;
        let Some(collection) = b.collections.get_mut(endpoint.name) else { return Ok(()) };
        for id in ids {
            let not_found = || SimError::RecordNotFound { resource: endpoint.name.to_owned(), id: id.clone() };
            let record = collection.get_mut(id).ok_or_else(not_found)?;
            let mut next = record.current.clone();
            next.updated_at = at;
            next.fields.insert("updated_at".into(), Value::String(timefmt::format(at)));
            record.replace(next, stamp.now, stamp.delay);
        }
        Ok(())
    }

    /// The display name and resource of a record a body refers to by id, for the nested
    /// `{id, displayed_as, $path}`.
    fn lookup(&self, business: &str, id: &str) -> Option<(String, &'static str)> {
        let b = self.business(business)?;
        ["contacts", "ledger_accounts", "bank_accounts", "products", "services"].into_iter().find_map(|resource| {
            let r = b.collections.get(resource)?.get(id)?;
            let shown = r.current.fields.get("displayed_as").and_then(Value::as_str).unwrap_or("");
            Some((shown.to_owned(), resource))
        })
    }
}

/// Finds the display name and resource of a record by id.
type Lookup<'a> = dyn Fn(&str) -> Option<(String, &'static str)> + 'a;

/// The value of a property nobody set.
fn empty(kind: Kind) -> Value {
    match kind {
        Kind::Array => Value::Array(vec![]),
        _ => Value::Null,
    }
}

/// Where a nested reference named `field` points (`contact` → `contacts`).
fn collection_of(field: &str) -> String {
    match field {
        "status" => "artefact_statuses".into(),
        "currency" => "currencies".into(),
        "usual_supplier" => "contacts".into(),
        f if f.ends_with("ledger_account") => "ledger_accounts".into(),
        f if f.ends_with("tax_rate") => "tax_rates".into(),
        f if f.ends_with("address_region") => "address_regions".into(),
        f if f.ends_with('y') => format!("{}ies", &f[..f.len() - 1]),
        f => format!("{f}s"),
    }
}

/// `UNPAID` → `Unpaid`, `CUSTOMER_RECEIPT` → `Customer Receipt`.
fn title(id: &str) -> String {
    id.split('_')
        .map(|w| {
            let lower = w.to_lowercase();
            let mut c = lower.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A nested `{id, displayed_as, $path}` for the reference `field` = `id`.
fn base(field: &str, id: &str, lookup: &Lookup<'_>) -> Value {
    let (shown, resource) = match lookup(id) {
        Some((shown, resource)) => (shown, resource.to_owned()),
        None => (title(id), collection_of(field)),
    };
    json!({"id": id, "displayed_as": shown, "$path": format!("/{resource}/{id}")})
}

/// Writes body-style fields into a record: `x_id` → `x`, `x_ids` → `xs` (when the definition has them), other
/// properties of the definition as given. Names the definition does not have are ignored, as Sage does.
fn apply_fields(
    record: &mut Map<String, Value>,
    endpoint: &Endpoint,
    fields: &Map<String, Value>,
    lookup: &Lookup<'_>,
) {
    const FIXED: [&str; 6] = ["id", "$path", "created_at", "updated_at", "deleted_at", "links"];
    for (name, value) in fields {
        if FIXED.contains(&name.as_str()) {
            continue;
        }
        if let Some(field) = name.strip_suffix("_ids").map(|f| format!("{f}s")).filter(|f| endpoint.has_property(f)) {
            let single = name.trim_end_matches("_ids");
            let items =
                value.as_array().map(|ids| ids.iter().filter_map(Value::as_str).map(|id| base(single, id, lookup)));
            record.insert(field, Value::Array(items.map(Iterator::collect).unwrap_or_default()));
        } else if let Some(field) = name.strip_suffix("_id").filter(|f| endpoint.has_property(f)) {
            let v = value.as_str().map_or(Value::Null, |id| base(field, id, lookup));
            record.insert(field.to_owned(), v);
        } else if endpoint.has_property(name) || name == "displayed_as" {
            record.insert(name.clone(), value.clone());
        }
    }
    recompute_totals(record);
}

/// Line amounts and totals of a sales artefact with `*_lines` (20 % tax unless a line says otherwise).
fn recompute_totals(record: &mut Map<String, Value>) {
    let Some(lines_key) =
        ["invoice_lines", "quote_lines"].into_iter().find(|k| record.get(*k).is_some_and(Value::is_array))
    else {
        return;
    };
    let mut net_total = 0.0;
    let mut tax_total = 0.0;
    let mut quantity_total = 0.0;
    let Some(Value::Array(lines)) = record.get_mut(lines_key) else { return };
    if lines.is_empty() {
        return;
    }
    for line in lines.iter_mut() {
        let Some(line) = line.as_object_mut() else { continue };
        let quantity = line.get("quantity").and_then(Value::as_f64).unwrap_or(1.0);
        let price = line.get("unit_price").and_then(Value::as_f64).unwrap_or(0.0);
        let net = round2(quantity * price);
        let tax = line.get("tax_amount").and_then(Value::as_f64).unwrap_or(round2(net * 0.2));
        line.insert("net_amount".into(), json!(net));
        line.insert("tax_amount".into(), json!(tax));
        line.insert("total_amount".into(), json!(round2(net + tax)));
        net_total += net;
        tax_total += tax;
        quantity_total += quantity;
    }
    let total = round2(net_total + tax_total);
    record.insert("net_amount".into(), json!(round2(net_total)));
    record.insert("tax_amount".into(), json!(round2(tax_total)));
    record.insert("total_amount".into(), json!(total));
    record.insert("total_quantity".into(), json!(quantity_total));
    if record.contains_key("outstanding_amount") {
        let paid = record.get("total_paid").and_then(Value::as_f64).unwrap_or(0.0);
        record.insert("outstanding_amount".into(), json!(round2(total - paid)));
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What Sage shows as `displayed_as` for a record of this resource.
fn displayed_as(endpoint: &Endpoint, record: &Map<String, Value>, id: &str) -> String {
    let s = |k: &str| record.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    match endpoint.name {
        "contacts" => match (s("name"), s("reference")) {
            (Some(n), Some(r)) => return format!("{n} ({r})"),
            (Some(n), None) => return n,
            _ => {}
        },
        "ledger_accounts" => {
            if let (Some(n), Some(code)) = (s("name"), record.get("nominal_code").and_then(Value::as_i64)) {
                return format!("{n} ({code})");
            }
        }
        "bank_accounts" => {
            if let Some(n) =
                record.get("bank_account_details").and_then(|d| d.get("account_name")).and_then(Value::as_str)
            {
                return n.to_owned();
            }
        }
        _ => {}
    }
    ["name", "invoice_number", "quote_number", "credit_note_number", "description", "reference"]
        .into_iter()
        .find_map(s)
        .unwrap_or_else(|| id.to_owned())
}

fn finish(
    mut record: Map<String, Value>,
    endpoint: &Endpoint,
    id: &str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    keep_displayed_as: bool,
) -> RecordState {
    record.insert("id".into(), Value::String(id.to_owned()));
    if !keep_displayed_as || record.get("displayed_as").is_none_or(|v| !v.is_string()) {
        let shown = displayed_as(endpoint, &record, id);
        record.insert("displayed_as".into(), Value::String(shown));
    }
    record.insert("$path".into(), Value::String(format!("/{}/{id}", endpoint.name)));
    record.insert("created_at".into(), Value::String(timefmt::format(created_at)));
    record.insert("updated_at".into(), Value::String(timefmt::format(updated_at)));
    if endpoint.has_property("deleted_at") {
        record.insert("deleted_at".into(), deleted_at.map_or(Value::Null, |d| Value::String(timefmt::format(d))));
    }
    let refs = RefKeys::of(endpoint, &record);
    RecordState { created_at, updated_at, deleted_at, fields: record, refs }
}

/// The endpoint a Rust or admin caller names, if the simulator can hold its records.
pub(crate) fn resource(name: &str) -> Result<&'static Endpoint, SimError> {
    swagger::endpoint(name).ok_or_else(|| SimError::UnknownResource(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("t")
    }

    fn stamp(now: &str, delay: i64) -> Stamp {
        Stamp { now: t(now), delay: chrono::Duration::seconds(delay) }
    }

    fn data() -> Data {
        Data::new(vec![Business::new("b1".into(), "B".into(), t("2024-01-01T00:00:00Z"))])
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn create_shapes_the_record_after_the_swagger() {
        let mut d = data();
        let contacts = resource("contacts").expect("contacts");
        let body =
            obj(json!({"name": "Acme", "reference": "ACME", "contact_type_ids": ["CUSTOMER"], "currency_id": "GBP"}));
        let r = d
            .create("b1", contacts, &body, "a".repeat(32), None, stamp("2024-01-02T03:04:05.600Z", 0))
            .expect("create");
        assert_eq!(r["displayed_as"], "Acme (ACME)");
        assert_eq!(r["$path"], format!("/contacts/{}", "a".repeat(32)));
        assert_eq!(r["created_at"], "2024-01-02T03:04:05Z");
        assert_eq!(r["updated_at"], "2024-01-02T03:04:05Z");
        assert_eq!(r["deleted_at"], Value::Null);
        assert_eq!(
            r["contact_types"],
            json!([{"id": "CUSTOMER", "displayed_as": "Customer", "$path": "/contact_types/CUSTOMER"}])
        );
        assert_eq!(r["currency"]["$path"], "/currencies/GBP");
        assert!(r.contains_key("credit_limit") && r["credit_limit"].is_null(), "every swagger property is present");
        assert!(!r.contains_key("contact_type_ids"));
    }

    #[test]
    fn invoices_get_numbers_status_and_totals() {
        let mut d = data();
        let invoices = resource("sales_invoices").expect("sales_invoices");
        let body = obj(json!({"contact_id": "c1", "date": "2024-01-02",
            "invoice_lines": [{"description": "x", "quantity": 2, "unit_price": 10.5}]}));
        let r =
            d.create("b1", invoices, &body, "1".repeat(32), None, stamp("2024-01-02T00:00:00Z", 0)).expect("create");
        assert_eq!(r["invoice_number"], "SI-1");
        assert_eq!(r["displayed_as"], "SI-1");
        assert_eq!(r["status"]["id"], "UNPAID");
        assert_eq!(r["net_amount"], json!(21.0));
        assert_eq!(r["tax_amount"], json!(4.2));
        assert_eq!(r["total_amount"], json!(25.2));
        assert_eq!(r["contact"]["$path"], "/contacts/c1");
    }

    #[test]
    fn changes_stay_invisible_to_lists_until_the_delay_passed() {
        let mut d = data();
        let contacts = resource("contacts").expect("contacts");
        let id = new_id(&mut StdRng::seed_from_u64(1));
        let body = obj(json!({"name": "A", "contact_type_ids": ["CUSTOMER"]}));
        d.create("b1", contacts, &body, id.clone(), None, stamp("2024-01-02T00:00:00Z", 10)).expect("create");
        let record = |d: &Data| d.business("b1").unwrap().collection("contacts").unwrap().get(&id).cloned().unwrap();
        let delay = chrono::Duration::seconds(10);
        assert!(record(&d).visible(t("2024-01-02T00:00:09Z"), delay).is_none());
        assert!(record(&d).visible(t("2024-01-02T00:00:10Z"), delay).is_some());
        d.update("b1", contacts, &id, &obj(json!({"name": "B"})), stamp("2024-01-02T00:01:00Z", 10)).expect("update");
        let r = record(&d);
        assert_eq!(r.visible(t("2024-01-02T00:01:05Z"), delay).unwrap().fields["name"], "A");
        assert_eq!(r.visible(t("2024-01-02T00:01:10Z"), delay).unwrap().fields["name"], "B");
        assert_eq!(r.visible(t("2024-01-02T00:01:05Z"), chrono::Duration::zero()).unwrap().fields["name"], "B");
        d.delete("b1", contacts, &id, stamp("2024-01-02T00:02:00Z", 10)).expect("delete");
        let r = record(&d);
        assert!(r.visible(t("2024-01-02T00:02:01Z"), delay).unwrap().deleted_at.is_none());
        assert_eq!(r.visible(t("2024-01-02T00:02:10Z"), delay).unwrap().fields["deleted_at"], "2024-01-02T00:02:00Z");
        assert!(matches!(
            d.update("b1", contacts, &id, &Map::new(), stamp("2024-01-02T00:03:00Z", 0)),
            Err(SimError::RecordNotFound { .. })
        ));
    }

    #[test]
    fn resources_without_deleted_at_are_removed() {
        let mut d = data();
        let quotes = resource("sales_quotes").expect("sales_quotes");
        let body = obj(json!({"contact_id": "c1"}));
        d.create("b1", quotes, &body, "q".repeat(32), None, stamp("2024-01-02T00:00:00Z", 0)).expect("create");
        d.delete("b1", quotes, &"q".repeat(32), stamp("2024-01-02T00:00:01Z", 0)).expect("delete");
        assert!(d.business("b1").unwrap().collection("sales_quotes").unwrap().records().is_empty());
    }

    #[test]
    fn default_order_is_creation_time_then_insertion() {
        let mut d = data();
        let p = resource("products").expect("products");
        let s = stamp("2024-01-05T00:00:00Z", 0);
        for (id, at) in [("a", "2024-01-03T00:00:00Z"), ("b", "2024-01-01T00:00:00Z"), ("c", "2024-01-03T00:00:00Z")] {
            d.create("b1", p, &obj(json!({"description": id})), id.into(), Some(t(at)), s).expect("create");
        }
        let ids: Vec<_> = d.business("b1").unwrap().collection("products").unwrap().live_ids();
        assert_eq!(ids, ["b", "a", "c"]);
        assert_eq!(d.business("b1").unwrap().collection("products").unwrap().get("c").unwrap().id, "c");
    }
}
