//! The simulator's configuration: one field per `ocpoll sim` flag, plus the clock for in-process use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oc_model::ports::Clock;

use crate::error::SimError;

/// An OAuth app the simulator accepts: what a developer registers with Sage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The redirect URI; `redirect_uri` must match it exactly.
    pub redirect_uri: String,
}

impl AppRegistration {
    /// An app from its three parts.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        AppRegistration {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: redirect_uri.into(),
        }
    }
}

/// Parses `CLIENT_ID:CLIENT_SECRET:REDIRECT_URI` (the `--app` flag), splitting at the first two colons only:
/// the redirect URI has colons of its own.
///
/// ```
/// let app = oc_sagesim::parse_app("id:secret:http://localhost:8080/cb").unwrap();
/// assert_eq!(app.redirect_uri, "http://localhost:8080/cb");
/// ```
pub fn parse_app(value: &str) -> Result<AppRegistration, SimError> {
    let invalid = |reason: &str| SimError::InvalidApp { value: value.to_owned(), reason: reason.to_owned() };
    let mut parts = value.splitn(3, ':');
    let (Some(id), Some(secret), Some(uri)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("expected CLIENT_ID:CLIENT_SECRET:REDIRECT_URI"));
    };
    if id.is_empty() {
        return Err(invalid("empty client id"));
    }
    if secret.is_empty() {
        return Err(invalid("empty client secret"));
    }
    match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
        Ok(_) => return Err(invalid("the redirect uri must be an http or https url")),
        Err(e) => return Err(invalid(&format!("the redirect uri is not a url: {e}"))),
    }
    Ok(AppRegistration::new(id, secret, uri))
}

/// Parses an apps file: one `CLIENT_ID:CLIENT_SECRET:REDIRECT_URI` per line; blank lines and lines starting with
/// `#` are skipped. The error names the first bad line (from 1).
pub fn parse_apps(text: &str) -> Result<Vec<AppRegistration>, SimError> {
    let mut apps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        apps.push(parse_app(line).map_err(|e| match e {
            SimError::InvalidApp { value, reason } => {
                SimError::InvalidApp { value, reason: format!("line {}: {reason}", n + 1) }
            }
            other => other,
        })?);
    }
    Ok(apps)
}

/// How to run a simulator. `Default` is what `ocpoll sim` uses without flags (with port 0).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on (`--listen`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// Seed of the generated data and of the random faults (`--seed`).
    pub seed: u64,
    /// Live customer contacts seeded in the lead business (`--customers`), created over the past days; those
    /// deleted in the generated history come on top.
    pub customers: usize,
    /// Businesses of the simulated user (at least 1); the first is the lead business.
    pub businesses: usize,
    /// Load runs: the businesses other than the lead one get only [`LEAN_CUSTOMERS`] customers — no ledger,
    /// bank accounts, vendors, products, services, invoices or quotes: about 20 KB of memory a business instead
    /// of about 150 KB, so that 100,000 businesses fit in about 2 GB.
    pub lean: bool,
    /// Registered OAuth apps (`--app`, repeatable).
    pub apps: Vec<AppRegistration>,
    /// Access token lifetime (`--token-ttl`, default 300 s).
    pub token_ttl: Duration,
    /// API requests allowed per business per 60 s (`--rate-limit`, default 200); 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// Background changes per minute (`--activity`, default 0: off).
    pub activity_per_minute: u32,
    /// Whether the admin API under `/_sim` is served (`--admin`).
    pub admin: bool,
    /// Whether `/oauth2/auth/central` shows a consent page with an Approve button instead of redirecting at once.
    pub consent_page: bool,
    /// The clock the simulator's time derives from; `None` is the system clock. The simulator adds its own
    /// offset or freezes on top of it (see [`crate::Simulator::set_clock_offset`]).
    pub clock: Option<Arc<dyn Clock>>,
    /// How many served requests the request log keeps (the oldest are dropped beyond it).
    pub request_log_capacity: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            customers: 25,
            businesses: 2,
            lean: false,
            apps: Vec::new(),
            token_ttl: Duration::from_secs(300),
            rate_limit_per_minute: 200,
            activity_per_minute: 0,
            admin: false,
            consent_page: false,
            clock: None,
            request_log_capacity: 100_000,
        }
    }
}

/// Customers of each business but the lead one with [`SimConfig::lean`].
pub const LEAN_CUSTOMERS: usize = 2;

impl SimConfig {
    /// Checks the values that have no meaning (no business, a zero token lifetime).
    pub fn validate(&self) -> Result<(), SimError> {
        if self.businesses == 0 {
            return Err(SimError::InvalidConfig("at least one business is needed".into()));
        }
        if self.token_ttl.is_zero() {
            return Err(SimError::InvalidConfig("the token ttl must be positive".into()));
        }
        for app in &self.apps {
            parse_app(&format!("{}:{}:{}", app.client_id, app.client_secret, app.redirect_uri))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str, &str), &str>) {
        match (parse_app(input), expected) {
            (Ok(app), Ok((id, secret, uri))) => {
                assert_eq!(
                    (app.client_id.as_str(), app.client_secret.as_str(), app.redirect_uri.as_str()),
                    (id, secret, uri)
                )
            }
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{input}: {e}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parse_app_splits_at_the_first_two_colons() {
        check("id:secret:http://localhost:8080/cb", Ok(("id", "secret", "http://localhost:8080/cb")));
        check("a:b:https://x.test:443/a:b?c=d:e", Ok(("a", "b", "https://x.test:443/a:b?c=d:e")));
        check("id:secret", Err("expected CLIENT_ID:CLIENT_SECRET:REDIRECT_URI"));
        check(":secret:http://x.test/", Err("empty client id"));
        check("id::http://x.test/", Err("empty client secret"));
        check("id:secret:not a url", Err("not a url"));
        check("id:secret:ftp://x.test/", Err("http or https"));
    }

    #[test]
    fn an_apps_file_holds_one_app_per_line() {
        let apps = parse_apps("# demo apps\n\na:b:http://x.test/cb\n  c:d:https://y.test:8443/cb  \n").expect("apps");
        assert_eq!(
            apps,
            [
                AppRegistration::new("a", "b", "http://x.test/cb"),
                AppRegistration::new("c", "d", "https://y.test:8443/cb")
            ]
        );
        let err = parse_apps("a:b:http://x.test/cb\nbroken\n").expect_err("bad line");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn parse_app_never_panics(s in ".*") {
            let _ = parse_app(&s);
        }
    }

    #[test]
    fn validate_rejects_meaningless_values() {
        assert!(SimConfig::default().validate().is_ok());
        assert!(SimConfig { businesses: 0, ..SimConfig::default() }.validate().is_err());
        assert!(SimConfig { token_ttl: Duration::ZERO, ..SimConfig::default() }.validate().is_err());
    }
}
