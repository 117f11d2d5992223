//! The simulator: shared state, the Rust control surface ([`Simulator`]) and the running server ([`SimHandle`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oc_model::ports::{Clock, SystemClock};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock::SimClock;
use crate::config::{AppRegistration, SimConfig};
use crate::error::SimError;
use crate::faults::{FaultSettings, Faults, PageHook};
use crate::oauth::{OAuth, TokenResponse};
use crate::requests::{LoggedRequest, RequestLog};
use crate::store::{Data, Stamp, new_id, resource};
use crate::swagger::Endpoint;
use crate::{http, seed};

/// Locks a mutex, ignoring poisoning: every critical section leaves the state consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the handlers and the control surface share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) clock: Arc<SimClock>,
    pub(crate) data: Mutex<Data>,
    pub(crate) oauth: Mutex<OAuth>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) log: Mutex<RequestLog>,
    pub(crate) rate_limit: AtomicU32,
    pub(crate) activity: watch::Sender<u32>,
    rng: Mutex<StdRng>,
}

impl Inner {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn stamp(&self) -> Stamp {
        Stamp { now: self.now(), delay: lock(&self.faults).visibility_delay() }
    }

    pub(crate) fn new_id(&self) -> String {
        new_id(&mut lock(&self.rng))
    }

    pub(crate) fn lead_business(&self) -> String {
        lock(&self.data).businesses.first().map(|b| b.id.clone()).unwrap_or_default()
    }
}

/// Result of deleting a record the way Sage does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Deleted {
    /// Gone (or a tombstone in the deleted feed).
    Deleted,
    /// Voided instead: the record as it now stands.
    Voided(Map<String, Value>),
}

/// Why a Sage-style delete was refused.
#[derive(Debug)]
pub(crate) enum DeleteError {
    /// A non-draft invoice needs a `void_reason`.
    ReasonRequired,
    /// It is void already.
    AlreadyVoid,
    /// Not found and friends.
    Sim(SimError),
}

/// Deletes as Sage does: an invoice-like record that is not a draft is voided (an update), others deleted.
pub(crate) fn delete_or_void(
    data: &mut Data,
    business: &str,
    endpoint: &'static Endpoint,
    id: &str,
    reason: Option<&str>,
    stamp: Stamp,
) -> Result<Deleted, DeleteError> {
    if endpoint.voids {
        let status = data
            .business(business)
            .and_then(|b| b.collection(endpoint.name))
            .and_then(|c| c.get(id))
            .filter(|r| r.current.deleted_at.is_none())
            .map(|r| {
                r.current.fields.get("status").and_then(|s| s.get("id")).and_then(Value::as_str).map(str::to_owned)
            });
        match status {
            Some(Some(s)) if s == "VOID" => return Err(DeleteError::AlreadyVoid),
            Some(Some(s)) if s != "DRAFT" => {
                let reason = reason.ok_or(DeleteError::ReasonRequired)?;
                let fields =
                    json!({"status_id": "VOID", "void_reason": reason, "outstanding_amount": 0.0, "editable": false});
                let fields = fields.as_object().cloned().unwrap_or_default();
                return data
                    .update(business, endpoint, id, &fields, stamp)
                    .map(Deleted::Voided)
                    .map_err(DeleteError::Sim);
            }
            _ => {}
        }
    }
    data.delete(business, endpoint, id, stamp).map(|()| Deleted::Deleted).map_err(DeleteError::Sim)
}

/// A business of the simulated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessInfo {
    /// Its id (the `X-Business` value).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is the lead business (the default without `X-Business`).
    pub lead: bool,
}

/// A simulator: its state and every control over it. Cheap to clone; clones share the state.
///
/// [`Simulator::new`] builds one without I/O (for driving [`Simulator::router`] in-process);
/// [`Simulator::start`] also binds the listener and runs the server and the background activity.
#[derive(Debug, Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

fn obj(fields: Value) -> Result<Map<String, Value>, SimError> {
    match fields {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(SimError::InvalidRecord(format!("fields must be a JSON object, not {other}"))),
    }
}

impl Simulator {
    /// Seeds the data and sets up the state; binds nothing.
    pub fn new(config: SimConfig) -> Result<Simulator, SimError> {
        config.validate()?;
        let base: Arc<dyn Clock> = config.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let clock = Arc::new(SimClock::new(base));
        let data = seed::generate_with(config.seed, config.businesses, config.customers, config.lean, clock.now());
        let (activity, _) = watch::channel(config.activity_per_minute);
        let inner = Inner {
            clock,
            data: Mutex::new(data),
            oauth: Mutex::new(OAuth::new(&config.apps, config.token_ttl)),
            faults: Mutex::new(Faults::new(config.seed)),
            log: Mutex::new(RequestLog::new(config.request_log_capacity)),
            rate_limit: AtomicU32::new(config.rate_limit_per_minute),
            activity,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed.wrapping_add(0x0ac7_1417))),
            config,
        };
        Ok(Simulator { inner: Arc::new(inner) })
    }

    /// The HTTP application: OAuth, `/v3.1`, and `/_sim` when the admin API is enabled.
    pub fn router(&self) -> axum::Router {
        http::router(self.inner.clone())
    }

    /// Builds a simulator, binds `config.listen` (port 0: any free port), serves it and starts the background
    /// activity. The server stops on [`SimHandle::shutdown`] or when the handle is dropped.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let addr = config.listen;
        let sim = Simulator::new(config)?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = sim.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        let activity = tokio::spawn(run_activity(sim.clone()));
        Ok(SimHandle { sim, addr, stop: Some(stop), server: Some(server), activity })
    }

    // ---- clock ----

    /// The simulator's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// The simulator's clock, for sharing with code that should see the same time.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Runs `offset` ahead of (negative: behind) the base clock, e.g. to simulate skew; unfreezes.
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.inner.clock.set_offset(offset);
    }

    /// Freezes time at `at`: it moves only by [`Simulator::advance_clock`] (a fully virtual clock).
    pub fn freeze_clock(&self, at: DateTime<Utc>) {
        self.inner.clock.freeze(at);
    }

    /// Moves the frozen instant, or the offset when running, by `by`.
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.inner.clock.advance(by);
    }

    /// Lets time run again from the frozen instant.
    pub fn unfreeze_clock(&self) {
        self.inner.clock.unfreeze();
    }

    // ---- businesses, apps, tokens ----

    /// The businesses of the simulated user, the lead one first.
    pub fn businesses(&self) -> Vec<BusinessInfo> {
        let data = lock(&self.inner.data);
        data.businesses
            .iter()
            .enumerate()
            .map(|(i, b)| BusinessInfo { id: b.id.clone(), name: b.name.clone(), lead: i == 0 })
            .collect()
    }

    /// The lead business's id.
    pub fn lead_business(&self) -> String {
        self.inner.lead_business()
    }

    /// Registers (or replaces) an OAuth app.
    pub fn register_app(&self, app: AppRegistration) -> Result<(), SimError> {
        crate::config::parse_app(&format!("{}:{}:{}", app.client_id, app.client_secret, app.redirect_uri))?;
        lock(&self.inner.oauth).register(app);
        Ok(())
    }

    /// Issues tokens to a registered app without the browser dance, as if the user had approved.
    pub fn issue_tokens(&self, client_id: &str) -> Result<TokenResponse, SimError> {
        let now = self.now();
        lock(&self.inner.oauth).grant_directly(client_id, now).ok_or_else(|| SimError::UnknownClient(client_id.into()))
    }

    /// Expires every access token issued so far, now (refresh tokens stay valid).
    pub fn expire_access_tokens(&self) {
        let now = self.now();
        lock(&self.inner.oauth).expire_access_tokens(now);
    }

    // ---- records ----

    fn business_known(&self, business: &str) -> Result<(), SimError> {
        match lock(&self.inner.data).business(business) {
            Some(_) => Ok(()),
            None => Err(SimError::UnknownBusiness(business.to_owned())),
        }
    }

    /// Creates a record at the simulator's clock from body-style fields (as in Sage's POST body, without the
    /// wrapper: `{"name": .., "contact_type_ids": ["CUSTOMER"]}`); returns the full record.
    pub fn create_record(&self, business: &str, resource_name: &str, fields: Value) -> Result<Value, SimError> {
        let endpoint = resource(resource_name)?;
        let fields = obj(fields)?;
        self.business_known(business)?;
        let id = self.inner.new_id();
        let stamp = self.inner.stamp();
        let record = lock(&self.inner.data).create(business, endpoint, &fields, id, None, stamp)?;
        Ok(Value::Object(record))
    }

    /// Updates a live record at the simulator's clock; returns the full record.
    pub fn update_record(
        &self,
        business: &str,
        resource_name: &str,
        id: &str,
        fields: Value,
    ) -> Result<Value, SimError> {
        let endpoint = resource(resource_name)?;
        let fields = obj(fields)?;
        let stamp = self.inner.stamp();
        let record = lock(&self.inner.data).update(business, endpoint, id, &fields, stamp)?;
        Ok(Value::Object(record))
    }

    /// Deletes a record as Sage's `DELETE` does: a sales invoice (or credit note) that is not a draft is voided
    /// instead, an update. Returns the voided record, or `None` when the record was deleted.
    pub fn delete_record(&self, business: &str, resource_name: &str, id: &str) -> Result<Option<Value>, SimError> {
        let endpoint = resource(resource_name)?;
        let stamp = self.inner.stamp();
        let mut data = lock(&self.inner.data);
        match delete_or_void(&mut data, business, endpoint, id, Some("voided by the simulator"), stamp) {
            Ok(Deleted::Deleted) => Ok(None),
            Ok(Deleted::Voided(r)) => Ok(Some(Value::Object(r))),
            Err(DeleteError::Sim(e)) => Err(e),
            Err(DeleteError::AlreadyVoid | DeleteError::ReasonRequired) => {
                Err(SimError::RecordNotFound { resource: resource_name.into(), id: id.into() })
            }
        }
    }

    /// The current state of a record (also a deleted one, with its `deleted_at`), all attributes.
    pub fn get_record(&self, business: &str, resource_name: &str, id: &str) -> Option<Value> {
        let data = lock(&self.inner.data);
        let r = data.business(business)?.collection(resource_name)?.get(id)?;
        Some(Value::Object(r.current.fields.clone()))
    }

    /// Ids of the live records, in the default list order.
    pub fn record_ids(&self, business: &str, resource_name: &str) -> Vec<String> {
        let data = lock(&self.inner.data);
        data.business(business).and_then(|b| b.collection(resource_name)).map(|c| c.live_ids()).unwrap_or_default()
    }

    /// Gives `count` live records (the first ones in default order) one shared `updated_at`: now. With `count`
    /// above the page size the tie spans pages. Returns their ids.
    pub fn tie_updated_at(&self, business: &str, resource_name: &str, count: usize) -> Result<Vec<String>, SimError> {
        let endpoint = resource(resource_name)?;
        self.business_known(business)?;
        let ids: Vec<String> = self.record_ids(business, resource_name).into_iter().take(count).collect();
        let stamp = self.inner.stamp();
        lock(&self.inner.data).touch(business, endpoint, &ids, stamp.now, stamp)?;
        Ok(ids)
    }

    // ---- faults ----

    /// The current fault settings.
    pub fn faults(&self) -> FaultSettings {
        lock(&self.inner.faults).settings.clone()
    }

    /// Replaces every fault setting (page hooks included).
    pub fn set_faults(&self, settings: FaultSettings) {
        lock(&self.inner.faults).settings = settings;
    }

    /// Clears every fault.
    pub fn clear_faults(&self) {
        self.set_faults(FaultSettings::default());
    }

    /// Adds `latency` to every API response.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner.faults).settings.latency_ms = latency.as_millis().min(u64::MAX as u128) as u64;
    }

    /// Answers this share (0.0 to 1.0) of API requests with 500.
    pub fn set_error_rate(&self, rate: f64) {
        lock(&self.inner.faults).settings.error_rate = rate.clamp(0.0, 1.0);
    }

    /// Answers the next `count` API requests with 500.
    pub fn fail_next(&self, count: u32) {
        lock(&self.inner.faults).settings.fail_next = count;
    }

    /// Answers the next `count` API requests with 429, with `Retry-After: secs` when given.
    pub fn throttle_next(&self, count: u32, retry_after: Option<u64>) {
        let mut f = lock(&self.inner.faults);
        f.settings.throttle_next = count;
        f.settings.throttle_retry_after = retry_after;
    }

    /// Makes changes visible to list calls only `delay` after their `updated_at` (late-visible rows).
    pub fn set_visibility_delay(&self, delay: Duration) {
        lock(&self.inner.faults).settings.visibility_delay_seconds = delay.as_secs();
    }

    /// Adds a one-shot mutation applied right after a given page of a list call is served.
    pub fn add_page_hook(&self, hook: PageHook) {
        lock(&self.inner.faults).settings.page_hooks.push(hook);
    }

    // ---- limits, activity, log ----

    /// API requests allowed per business per 60 s; 0 turns the limit off.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.inner.rate_limit.store(per_minute, Ordering::Relaxed);
    }

    /// Background changes per minute; 0 pauses the activity.
    pub fn set_activity(&self, per_minute: u32) {
        self.inner.activity.send_replace(per_minute);
    }

    /// Applies one background change now (what the activity task does at its rate), and says what it did.
    pub fn activity_step(&self) -> String {
        activity_step(self)
    }

    /// The requests served (newest last), up to the log's capacity.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.inner.log).entries()
    }

    /// How many requests were served in all.
    pub fn requests_served(&self) -> u64 {
        lock(&self.inner.log).served()
    }

    /// Empties the request log (the count stays).
    pub fn clear_requests(&self) {
        lock(&self.inner.log).clear();
    }
}

/// One background change in the lead business: creates a customer or an invoice, edits a record, deletes a
/// customer or voids an invoice.
fn activity_step(sim: &Simulator) -> String {
    let business = sim.lead_business();
    let (roll, pick, n) = {
        let mut rng = lock(&sim.inner.rng);
        (rng.r#gen::<f64>(), rng.r#gen::<u64>(), rng.gen_range(1..100_000u32))
    };
    let choose = |resource: &str| -> Option<String> {
        let ids = sim.record_ids(&business, resource);
        let mut rng = StdRng::seed_from_u64(pick);
        ids.choose(&mut rng).cloned()
    };
    let outcome = if roll < 0.35 {
        sim.create_record(
            &business,
            "contacts",
            json!({"name": format!("Activity Customer {n}"), "reference": format!("A{n:05}"), "contact_type_ids": ["CUSTOMER"],
                "email": format!("customer{n}@activity.example"), "is_active": true, "currency_id": "GBP"}),
        )
        .map(|r| format!("created contact {}", r["id"].as_str().unwrap_or("")))
    } else if roll < 0.5 {
        match choose("contacts") {
            Some(contact) => sim
                .create_record(
                    &business,
                    "sales_invoices",
                    json!({"contact_id": contact, "date": crate::timefmt::format_date(sim.now()), "currency_id": "GBP",
                        "invoice_lines": [{"description": "Activity", "quantity": 1 + n % 5, "unit_price": f64::from(n % 500) + 0.5}]}),
                )
                .map(|r| format!("created sales_invoice {}", r["id"].as_str().unwrap_or(""))),
            None => Ok("nothing to invoice".into()),
        }
    } else if roll < 0.85 {
        let resource = ["contacts", "products", "sales_invoices"][(pick % 3) as usize];
        match choose(resource) {
            Some(id) => sim
                .update_record(&business, resource, &id, json!({"notes": format!("activity edit {n}")}))
                .map(|_| format!("updated {resource} {id}")),
            None => Ok(format!("no {resource} to update")),
        }
    } else {
        let resource = if pick % 2 == 0 { "contacts" } else { "sales_invoices" };
        match choose(resource) {
            Some(id) => sim.delete_record(&business, resource, &id).map(|voided| match voided {
                Some(_) => format!("voided {resource} {id}"),
                None => format!("deleted {resource} {id}"),
            }),
            None => Ok(format!("no {resource} to delete")),
        }
    };
    outcome.unwrap_or_else(|e| format!("activity failed: {e}"))
}

async fn run_activity(sim: Simulator) {
    let mut rate = sim.inner.activity.subscribe();
    loop {
        let per_minute = *rate.borrow_and_update();
        if per_minute == 0 {
            if rate.changed().await.is_err() {
                return;
            }
            continue;
        }
        let period = Duration::from_secs_f64(60.0 / f64::from(per_minute));
        tokio::select! {
            changed = rate.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(period) => {
                let what = activity_step(&sim);
                tracing::debug!(%what, "simulator activity");
            }
        }
    }
}

/// A running simulator. Dereferences to [`Simulator`] for every control; stops on [`SimHandle::shutdown`] or
/// drop.
#[derive(Debug)]
pub struct SimHandle {
    sim: Simulator,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    activity: JoinHandle<()>,
}

impl std::ops::Deref for SimHandle {
    type Target = Simulator;

    fn deref(&self) -> &Simulator {
        &self.sim
    }
}

impl SimHandle {
    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/oauth2/auth/central`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth2/auth/central", self.base_url())
    }

    /// `http://ADDR/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// `http://ADDR/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.base_url())
    }

    /// `http://ADDR/v3.1`.
    pub fn api_url(&self) -> String {
        format!("{}/v3.1", self.base_url())
    }

    /// `http://ADDR/_sim` (served only with the admin API enabled).
    pub fn admin_url(&self) -> String {
        format!("{}/_sim", self.base_url())
    }

    /// The simulator behind the handle.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Stops accepting connections, lets requests in flight finish, stops the activity.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.activity.abort();
        match self.server.take() {
            Some(server) => match server.await {
                Ok(result) => result.map_err(SimError::Serve),
                Err(join) => Err(SimError::Serve(std::io::Error::other(join.to_string()))),
            },
            None => Ok(()),
        }
    }

    /// Waits until the server stops (when the process is told to stop, for `ocpoll sim`).
    pub async fn wait(mut self) -> Result<(), SimError> {
        match self.server.take() {
            Some(server) => match server.await {
                Ok(result) => result.map_err(SimError::Serve),
                Err(join) => Err(SimError::Serve(std::io::Error::other(join.to_string()))),
            },
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.activity.abort();
    }
}
