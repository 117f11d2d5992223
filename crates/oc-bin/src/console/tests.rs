//! The console through its router (`tower::ServiceExt::oneshot`), on a real SQLite store and the Sage simulator:
//! sign-in and its cookie, sign-out, the anti-forgery checks, the organization boundary, the form's validation,
//! and every ending of the OAuth round.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use oc_model::config::keys;
use oc_model::ports::{AccountStore, Clock, ManualClock, NewOrganization, Principal, Providers};
use oc_sagesim::{AppRegistration, SimConfig, SimHandle, Simulator};
use oc_store::testing::TestStore;
use tower::ServiceExt;

use super::{Console, ConsoleConfig};
use crate::api::{AppState, Wakers, app};
use crate::metrics::Metrics;
use crate::settings::ServeSettings;

/// The public URL of the harness (nothing listens there: requests go through `oneshot`).
const PUBLIC: &str = "http://console.test:8080";
const CLIENT_ID: &str = "console-app";
const CLIENT_SECRET: &str = "console-app-secret";

/// An organization whose secrets the test knows.
struct Org {
    org_secret: String,
    user_secret: String,
    principal: Principal,
}

struct Harness {
    app: Router,
    state: AppState,
    clock: Arc<ManualClock>,
    sim: SimHandle,
    a: Org,
    b: Org,
    _store: TestStore,
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok())
    }
}

/// A signed-in browser: its cookie and the session's anti-forgery token.
#[derive(Clone)]
struct Browser {
    cookie: String,
    csrf: String,
}

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").unwrap().with_timezone(&Utc)
}

async fn org(store: &dyn AccountStore, name: &str) -> Org {
    let org_secret = format!("{name}-org-secret");
    let user_secret = format!("{name}-user-secret");
    let (_, principal) = store
        .create_organization(&NewOrganization {
            name: name.into(),
            org_secret: org_secret.clone(),
            user_secret: user_secret.clone(),
            now: start_time(),
        })
        .await
        .unwrap();
    Org { org_secret, user_secret, principal }
}

async fn harness_with(change: impl FnOnce(&mut ConsoleConfig)) -> Harness {
    let clock = Arc::new(ManualClock::new(start_time()));
    let sim = Simulator::start(SimConfig {
        apps: vec![AppRegistration::new(CLIENT_ID, CLIENT_SECRET, format!("{PUBLIC}/ui/oauth/callback"))],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let store = oc_store::testing::sqlite_with_clock(clock.clone()).await;
    let settings = ServeSettings::from_args([
        "--sage-api-url",
        &sim.api_url(),
        "--sage-authorize-url",
        &sim.authorize_url(),
        "--sage-token-url",
        &sim.token_url(),
    ])
    .unwrap();
    let sage = crate::service::sage_provider(&settings, "console-test").unwrap();
    let s = store.store();
    let mut config = ConsoleConfig::new(PUBLIC);
    change(&mut config);
    let state = AppState {
        store: s.clone(),
        vault: s.clone(),
        maintenance: s.clone(),
        providers: Providers::new().with(Arc::new(sage)),
        clock: clock.clone() as Arc<dyn Clock>,
        metrics: Arc::new(Metrics::default()),
        wakers: Wakers::default(),
        page_tokens: crate::api::page_token::PageTokens::new(
            crate::keys::ServerKeys::derive(&store.options().key).page_tokens().clone(),
        ),
        console: Console::new(s.clone(), config),
        allow_private_callbacks: settings.allow_private_callbacks,
    };
    let a = org(s.as_ref(), "a").await;
    let b = org(s.as_ref(), "b").await;
    Harness { app: app(state.clone()), state, clock, sim, a, b, _store: store }
}

async fn harness() -> Harness {
    harness_with(|_| {}).await
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The value of `<meta name="csrf-token" content="...">`.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf-token\" content=\"").expect("a csrf meta") + 27;
    page[at..].split('"').next().unwrap().to_string()
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&self, path: &str, browser: Option<&Browser>) -> Answer {
        let mut r = Request::get(path);
        if let Some(b) = browser {
            r = r.header(header::COOKIE, &b.cookie);
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }

    /// A form POST as a page of this site sends it (`Origin` the public URL's, `Sec-Fetch-Site: same-origin`).
    async fn post(&self, path: &str, browser: Option<&Browser>, fields: &[(&str, &str)]) -> Answer {
        self.post_with(path, browser, fields, &[("origin", PUBLIC), ("sec-fetch-site", "same-origin")]).await
    }

    async fn post_with(
        &self,
        path: &str,
        browser: Option<&Browser>,
        fields: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut r = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(b) = browser {
            r = r.header(header::COOKIE, &b.cookie);
        }
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        self.send(r.body(Body::from(form_body(fields))).unwrap()).await
    }

    /// Signs in as `org`; the session's cookie and token.
    async fn sign_in(&self, org: &Org) -> Browser {
        let a = self
            .post("/ui/sign-in", None, &[("organization_secret", &org.org_secret), ("user_secret", &org.user_secret)])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let cookie = a.set_cookie().unwrap().split(';').next().unwrap().to_string();
        let page = self.get("/ui/", Some(&Browser { cookie: cookie.clone(), csrf: String::new() })).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        Browser { csrf: csrf_of(&page.body), cookie }
    }

    /// An instance of `org` created through the API's create function (the code from the simulator).
    async fn instance_of(&self, org: &Org, name: &str) -> i64 {
        let code = self.code().await;
        let body = serde_json::json!({
            "element": {"key": "sageone"},
            "name": name,
            "providerData": {"code": code},
            "configuration": {
                "oauth.api.key": CLIENT_ID, "oauth.api.secret": CLIENT_SECRET,
                "oauth.callback.url": format!("{PUBLIC}/ui/oauth/callback"),
                "event.notification.enabled": false,
            },
        });
        crate::api::instances::create_instance(&self.state, org.principal, &body).await.unwrap().instance.id
    }

    /// A code from the simulator's authorize URL, as a browser would get it.
    async fn code(&self) -> String {
        let mut url = url::Url::parse(&self.sim.authorize_url()).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", &format!("{PUBLIC}/ui/oauth/callback"));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let answer = client.get(url).send().await.unwrap();
        let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
        location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
    }

    async fn instances(&self, org: &Org) -> Vec<oc_model::ports::Instance> {
        self.state.store.list_instances(org.principal.org_id, &[]).await.unwrap()
    }

    /// Follows the 303 to the simulator's authorize URL (it approves at once); the callback path and query it
    /// redirects to.
    async fn consent(&self, authorize: &Answer) -> String {
        assert_eq!(authorize.status, StatusCode::SEE_OTHER, "{}", authorize.body);
        let url = authorize.location();
        assert!(url.starts_with(&self.sim.authorize_url()), "{url}");
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let answer = client.get(url).send().await.unwrap();
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        let path = location.strip_prefix(PUBLIC).unwrap_or_else(|| panic!("{location}"));
        assert!(path.starts_with("/ui/oauth/callback?"), "{path}");
        path.to_string()
    }
}

/// The fields of a valid form (the seed's customers entry in the code view, its unclosed quote included).
fn valid_form(csrf: &str) -> Vec<(&'static str, String)> {
    let poller = serde_json::json!({
        "customers": {
            "url": "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}' and attributes='created_at,updated_at",
            "idField": "id",
            "datesConfiguration": {
                "updatedDateField": "updated_at", "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                "updatedDateTimezone": "GMT", "createdDateField": "created_at",
                "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'", "createdDateTimezone": "GMT"
            }
        }
    });
    vec![
        ("csrf", csrf.to_string()),
        ("name", "From the console".into()),
        ("client_id", CLIENT_ID.into()),
        ("client_secret", CLIENT_SECRET.into()),
        ("country", "GB".into()),
        ("events_enabled", "true".into()),
        ("callback_url", "https://receiver.example/hooks".into()),
        ("signature_key", "sig-key".into()),
        ("interval", "15".into()),
        ("resource", "customers".into()),
        ("poller_configuration", poller.to_string()),
        ("tags", "Test, console".into()),
    ]
}

fn borrow<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn the_root_and_unsigned_pages_lead_to_sign_in() {
    let h = harness().await;
    let root = h.get("/", None).await;
    assert_eq!((root.status, root.location()), (StatusCode::SEE_OTHER, "/ui/"));
    for path in ["/ui/", "/ui/instances/new", "/ui/instances/1"] {
        let a = h.get(path, None).await;
        assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/sign-in"), "{path}");
    }
    assert_eq!(h.get("/ui/instances/1/events.json", None).await.status, StatusCode::UNAUTHORIZED);
    let page = h.get("/ui/sign-in", None).await;
    assert_eq!(page.status, StatusCode::OK);
    for name in ["Organization secret", "User secret", "Sign in"] {
        assert!(page.body.contains(&format!(">{name}<")), "{name}: {}", page.body);
    }
    assert!(page.body.contains("<main"), "{}", page.body);
    let csp = page.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

#[tokio::test]
async fn a_wrong_secret_gets_an_alert_and_no_cookie_a_right_one_a_strict_cookie() {
    let h = harness().await;
    for (org, user) in [(h.a.org_secret.as_str(), "wrong"), ("wrong", h.a.user_secret.as_str()), ("", "")] {
        let a = h.post("/ui/sign-in", None, &[("organization_secret", org), ("user_secret", user)]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{org}/{user}");
        assert!(a.body.contains("role=\"alert\""), "{}", a.body);
        assert!(a.set_cookie().is_none());
        assert!(!a.body.contains(&h.a.org_secret) && !a.body.contains(&h.a.user_secret), "secrets on the page");
    }
    let a = h
        .post("/ui/sign-in", None, &[("organization_secret", &h.a.org_secret), ("user_secret", &h.a.user_secret)])
        .await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/"));
    let cookie = a.set_cookie().unwrap();
    for part in ["ocpoll_session=", "HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "the public URL is http: {cookie}");
    let value = cookie.split(';').next().unwrap().trim_start_matches("ocpoll_session=");
    assert_eq!(value.len(), 43, "32 random bytes in base64url: {value}");
}

#[tokio::test]
async fn the_cookie_is_secure_behind_https() {
    let h = harness_with(|c| c.public_url = "https://ocpoll.example".into()).await;
    let a = h
        .post_with(
            "/ui/sign-in",
            None,
            &[("organization_secret", &h.a.org_secret), ("user_secret", &h.a.user_secret)],
            &[("origin", "https://ocpoll.example")],
        )
        .await;
    assert!(a.set_cookie().unwrap().contains("; Secure"), "{:?}", a.set_cookie());
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let out = h.post("/ui/sign-out", Some(&b), &[("csrf", &b.csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert!(out.set_cookie().unwrap().contains("Max-Age=0"));
    // the old cookie is worth nothing now, even if a browser kept it
    let again = h.get("/ui/", Some(&b)).await;
    assert_eq!((again.status, again.location()), (StatusCode::SEE_OTHER, "/ui/sign-in"));
}

#[tokio::test]
async fn a_session_ends_after_its_lifetime() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    h.clock.advance(std::time::Duration::from_secs(12 * 3600 + 1));
    assert_eq!(h.get("/ui/", Some(&b)).await.location(), "/ui/sign-in");
}

#[tokio::test]
async fn a_post_without_this_sessions_token_or_from_another_site_is_refused() {
    let h = harness().await;
    let id = h.instance_of(&h.a, "guarded").await;
    let b = h.sign_in(&h.a).await;
    let path = format!("/ui/instances/{id}/enabled");
    // (the token sent, the headers, what the case is)
    let cases = [
        (None, ("origin", PUBLIC), "no token"),
        (Some("not-the-token"), ("origin", PUBLIC), "a wrong token"),
        (Some(b.csrf.as_str()), ("origin", "https://evil.example"), "a cross-site Origin"),
        (Some(b.csrf.as_str()), ("sec-fetch-site", "cross-site"), "Sec-Fetch-Site: cross-site"),
        (Some(b.csrf.as_str()), ("sec-fetch-site", "same-site"), "Sec-Fetch-Site: same-site"),
        (Some(b.csrf.as_str()), ("origin", "null"), "Origin: null"),
    ];
    for (token, header, what) in cases {
        let mut fields = vec![("enabled", "false")];
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        let a = h.post_with(&path, Some(&b), &fields, &[header]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}: {}", a.body);
        assert!(a.body.contains("role=\"alert\""), "{what}");
        assert!(!h.instances(&h.a).await[0].disabled, "{what} switched the instance off");
    }
    // a token of another session does not do either
    let other = h.sign_in(&h.a).await;
    let a = h.post(&path, Some(&b), &[("csrf", &other.csrf), ("enabled", "false")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // the form of the page, from the page's site
    let a = h.post(&path, Some(&b), &[("csrf", &b.csrf), ("enabled", "false")]).await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, format!("/ui/instances/{id}?done=disabled").as_str()));
    assert!(h.instances(&h.a).await[0].disabled);
    // the script's header does as well as the field; Host stands for the origin when the public URL differs
    let a = h
        .post_with(
            &path,
            Some(&b),
            &[("enabled", "true")],
            &[("x-csrf-token", &b.csrf), ("origin", "http://localhost:9"), ("host", "localhost:9")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(!h.instances(&h.a).await[0].disabled);
    // sign-in itself is refused from another site (no signing a victim in to an attacker's organization)
    let a = h
        .post_with(
            "/ui/sign-in",
            None,
            &[("organization_secret", &h.a.org_secret), ("user_secret", &h.a.user_secret)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.set_cookie().is_none());
}

#[tokio::test]
async fn another_organization_cannot_see_or_touch_an_instance_by_its_url() {
    let h = harness().await;
    let id = h.instance_of(&h.a, "A's secret project").await;
    let a = h.sign_in(&h.a).await;
    let b = h.sign_in(&h.b).await;
    assert!(h.get("/ui/", Some(&a)).await.body.contains("secret project"), "A sees its own");
    let list = h.get("/ui/", Some(&b)).await;
    assert!(!list.body.contains("secret project"), "{}", list.body);
    for path in [
        format!("/ui/instances/{id}"),
        format!("/ui/instances/{id}/events.json"),
        format!("/ui/instances/{id}/chart.svg"),
        format!("/ui/instances/{id}/delete"),
        format!("/ui/instances/{id}/events/00000000-0000-0000-0000-000000000000"),
    ] {
        let got = h.get(&path, Some(&b)).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}: {}", got.body);
        assert!(!got.body.contains("secret project"), "{path}");
        if !path.contains("0000-0000") {
            assert_eq!(h.get(&path, Some(&a)).await.status, StatusCode::OK, "{path} for A");
        }
    }
    for (path, fields) in [
        (format!("/ui/instances/{id}/enabled"), vec![("enabled", "false")]),
        (format!("/ui/instances/{id}/delete"), vec![]),
        (format!("/ui/instances/{id}/reauthenticate"), vec![]),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &b.csrf));
        let got = h.post(&path, Some(&b), &fields).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}: {}", got.body);
    }
    let left = h.instances(&h.a).await;
    assert_eq!(left.len(), 1, "B deleted A's instance");
    assert!(!left[0].disabled, "B switched A's instance off");
}

#[tokio::test]
async fn the_form_has_the_spec_labels_and_every_resource() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let list = h.get("/ui/", Some(&b)).await;
    assert!(list.body.contains("href=\"/ui/instances/new\">Create Instance</a>"), "{}", list.body);
    let page = h.get("/ui/instances/new", Some(&b)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h1>Authenticate an instance</h1>"));
    for label in [
        "Name",
        "Client ID",
        "Client Secret",
        "Country",
        "Events Enabled",
        "Event Notification Callback URL",
        "Callback Notification Signature Key",
        "Event poller refresh interval (mins)",
        "event.poller.configuration",
        "Tags",
    ] {
        assert!(page.body.contains(&format!("\">{label}</label>")), "{label}");
    }
    for r in &h.state.providers.spec("sageone").unwrap().resources {
        assert!(page.body.contains(&format!("for=\"resource-{}\">{}</label>", r.name, r.name)), "{}", r.name);
    }
    assert!(page.body.contains("<summary>Show Optional Fields</summary>"));
    assert!(page.body.contains(">Create Instance</button>"));
    assert!(page.body.contains(&format!("{PUBLIC}/ui/oauth/callback")), "the redirect URI to register");
}

#[tokio::test]
async fn a_bad_form_shows_each_problem_beside_its_field_keeps_the_values_and_creates_nothing() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let fields = [
        ("csrf", b.csrf.as_str()),
        ("name", ""),
        ("client_id", "typed-client"),
        ("client_secret", "typed-secret"),
        ("country", "GB"),
        ("events_enabled", "true"),
        ("callback_url", "not a url"),
        ("signature_key", "typed-key"),
        ("interval", "0"),
        ("poller_configuration", "{\"customers\": {\"url\": "),
        ("tags", "kept-tag"),
    ];
    let a = h.post("/ui/instances", Some(&b), &fields).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.location().is_empty(), "no round begun");
    for (id, label) in [
        ("name", "Name"),
        ("callback-url", "Event Notification Callback URL"),
        ("interval", "Event poller refresh interval (mins)"),
        ("poller-configuration", "event.poller.configuration"),
    ] {
        let input = a.body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{id}"));
        let tag_end = a.body[input..].find('>').unwrap() + input;
        let tag = &a.body[input..tag_end];
        assert!(tag.contains("aria-invalid=\"true\""), "{id}: {tag}");
        assert!(tag.contains(&format!("{id}-error")), "{id} described by its error: {tag}");
        let error = a.body.find(&format!("id=\"{id}-error\" role=\"alert\"")).unwrap_or_else(|| panic!("{id}-error"));
        assert!(a.body[error..].split("</div>").next().unwrap().contains(&format!("{label}:")), "{id} names its field");
    }
    for kept in [
        "value=\"typed-client\"",
        "value=\"typed-secret\"",
        "value=\"not a url\"",
        "value=\"kept-tag\"",
        "value=\"typed-key\"",
        "{&quot;customers&quot;: {&quot;url&quot;: ",
    ] {
        assert!(a.body.contains(kept), "{kept} kept");
    }
    assert!(a.body.contains("checked"), "Events Enabled stays ticked");
    assert!(h.instances(&h.a).await.is_empty());

    // a bad poller entry is said at its field, with the path inside the JSON
    let mut good = valid_form(&b.csrf);
    for f in good.iter_mut() {
        if f.0 == "poller_configuration" {
            f.1 = r#"{"customers":{"url":"/hubs/finance/customers","idField":"id","datesConfiguration":{"updatedDateField":"updated_at","updatedDateFormat":"yyyy-MM-dd'T'HH:mm:ss'Q"}}}"#.into();
        }
    }
    let a = h.post("/ui/instances", Some(&b), &borrow(&good)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("event.poller.configuration (customers.datesConfiguration"), "{}", a.body);
}

#[tokio::test]
async fn ticked_resources_join_the_code_view_without_the_script() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    // nothing else filled: the answer is the form again, with the ticked resources' defaults in the JSON
    let a = h
        .post(
            "/ui/instances",
            Some(&b),
            &[("csrf", &b.csrf), ("resource", "vendors"), ("resource", "invoices"), ("poller_configuration", "{}")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let code = a.body.split("id=\"poller-configuration\"").nth(1).unwrap().split("</textarea>").next().unwrap();
    assert!(code.contains("&quot;vendors&quot;") && code.contains("&quot;invoices&quot;"), "{code}");
    assert!(code.contains("/hubs/finance/vendors"), "{code}");
}

#[tokio::test]
async fn the_oauth_round_creates_the_instance_with_the_apis_warnings() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let begun = h.post("/ui/instances", Some(&b), &borrow(&valid_form(&b.csrf))).await;
    let location = url::Url::parse(begun.location()).unwrap();
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["redirect_uri"], format!("{PUBLIC}/ui/oauth/callback"));
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["state"].len(), 43);
    assert!(!begun.location().contains(CLIENT_SECRET), "no secret in a URL");
    let callback = h.consent(&begun).await;
    assert!(h.instances(&h.a).await.is_empty(), "nothing before the callback");
    let page = h.get(&callback, Some(&b)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<h1>From the console</h1>"), "{}", page.body);
    assert!(page.body.contains("Warnings"), "{}", page.body);
    assert!(page.body.contains("a closing `'` was added"), "the repaired quote is reported: {}", page.body);
    let created = h.instances(&h.a).await;
    assert_eq!(created.len(), 1);
    let c = &created[0].configuration;
    assert_eq!(c.get(keys::OAUTH_CALLBACK_URL).unwrap(), &serde_json::json!(format!("{PUBLIC}/ui/oauth/callback")));
    assert_eq!(created[0].tags, ["Test", "console"]);
    assert!(page.body.contains(&format!("content=\"/ui/instances/{}\"", created[0].id)), "canonical address");
    // the page masks the secrets, as the API does
    for secret in [CLIENT_SECRET, "sig-key"] {
        assert!(!page.body.contains(secret), "{secret} shown");
    }
    assert!(page.body.contains("********"));

    // the same answer again: the state was used
    let replay = h.get(&callback, Some(&b)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("role=\"alert\"") && replay.body.contains("already used"), "{}", replay.body);
    assert_eq!(h.instances(&h.a).await.len(), 1);
}

#[tokio::test]
async fn the_servers_sage_app_fills_empty_client_fields() {
    let h = harness_with(|c| c.default_app = Some((CLIENT_ID.into(), oc_model::Secret::new(CLIENT_SECRET)))).await;
    let b = h.sign_in(&h.a).await;
    let page = h.get("/ui/instances/new", Some(&b)).await;
    assert!(
        page.body.contains("server&#39;s Sage app") || page.body.contains("server's Sage app"),
        "said beside the fields"
    );
    assert!(!page.body.contains(CLIENT_SECRET));
    let mut form = valid_form(&b.csrf);
    for f in form.iter_mut() {
        if f.0 == "client_id" || f.0 == "client_secret" {
            f.1.clear();
        }
    }
    let begun = h.post("/ui/instances", Some(&b), &borrow(&form)).await;
    let callback = h.consent(&begun).await;
    assert_eq!(h.get(&callback, Some(&b)).await.status, StatusCode::OK);
    let i = &h.instances(&h.a).await[0];
    assert_eq!(i.configuration.api_key().as_deref(), Some(CLIENT_ID));
    assert_eq!(i.configuration.api_secret().unwrap().expose(), CLIENT_SECRET);
}

#[tokio::test]
async fn without_a_default_app_empty_client_fields_are_problems() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let mut form = valid_form(&b.csrf);
    form.retain(|f| f.0 != "client_id" && f.0 != "client_secret");
    let a = h.post("/ui/instances", Some(&b), &borrow(&form)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("id=\"client-id-error\""), "{}", a.body);
    assert!(a.body.contains("id=\"client-secret-error\""));
}

#[tokio::test]
async fn a_round_of_another_session_an_expired_one_or_a_denied_consent_creates_nothing() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let other = h.sign_in(&h.a).await;

    // finished in another session (same organization): refused, and the state is spent
    let callback = h.consent(&h.post("/ui/instances", Some(&b), &borrow(&valid_form(&b.csrf))).await).await;
    let a = h.get(&callback, Some(&other)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("another session"), "{}", a.body);
    assert!(h.get(&callback, Some(&b)).await.body.contains("already used"));

    // expired: the consent page was left open past the round's ten minutes
    let callback = h.consent(&h.post("/ui/instances", Some(&b), &borrow(&valid_form(&b.csrf))).await).await;
    h.clock.advance(std::time::Duration::from_secs(11 * 60));
    let a = h.get(&callback, Some(&b)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("expired"), "{}", a.body);

    // denied at the consent page
    let begun = h.post("/ui/instances", Some(&b), &borrow(&valid_form(&b.csrf))).await;
    let state =
        url::Url::parse(begun.location()).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let a = h.get(&format!("/ui/oauth/callback?error=access_denied&state={state}"), Some(&b)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("did not grant access (access_denied)"), "{}", a.body);

    // an unknown state, and none at all
    let a = h.get("/ui/oauth/callback?code=x&state=made-up", Some(&b)).await;
    assert!(a.body.contains("unknown or was already used"), "{}", a.body);
    let a = h.get("/ui/oauth/callback?code=x", Some(&b)).await;
    assert!(a.body.contains("no state"), "{}", a.body);

    // a code the provider refuses
    let begun = h.post("/ui/instances", Some(&b), &borrow(&valid_form(&b.csrf))).await;
    let state =
        url::Url::parse(begun.location()).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let a = h.get(&format!("/ui/oauth/callback?code=GB%2Fforged&state={state}"), Some(&b)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("role=\"alert\"") && a.body.contains("Nothing was created"), "{}", a.body);

    assert!(h.instances(&h.a).await.is_empty());
    assert!(h.instances(&h.b).await.is_empty());
}

#[tokio::test]
async fn back_from_sage_without_the_strict_cookie_the_callback_asks_again_from_this_site() {
    let h = harness().await;
    let b = h.sign_in(&h.a).await;
    let callback = h.consent(&h.post("/ui/instances", Some(&b), &borrow(&valid_form(&b.csrf))).await).await;
    // the browser sends no SameSite=Strict cookie on the provider's redirect: a page asks for it again
    let hop = h.get(&callback, None).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(hop.body.contains("http-equiv=\"refresh\""), "{}", hop.body);
    let again = format!("{callback}&resumed=1");
    assert!(hop.body.contains(&again.replace('&', "&amp;")), "{}", hop.body);
    assert!(h.instances(&h.a).await.is_empty(), "the round is not taken without a session");
    // asked again from this site, the cookie comes along
    let page = h.get(&again, Some(&b)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(h.instances(&h.a).await.len(), 1);
    // and a second request without a session is not sent round again
    let a = h.get("/ui/oauth/callback?code=x&state=y&resumed=1", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn re_authentication_replaces_the_tokens_through_a_fresh_round() {
    let h = harness().await;
    let id = h.instance_of(&h.a, "again").await;
    let b = h.sign_in(&h.a).await;
    let begun = h.post(&format!("/ui/instances/{id}/reauthenticate"), Some(&b), &[("csrf", &b.csrf)]).await;
    let callback = h.consent(&begun).await;
    let before = h.state.vault.tokens(id).await.unwrap().unwrap();
    let page = h.get(&callback, Some(&b)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Authorized again"), "{}", page.body);
    let after = h.state.vault.tokens(id).await.unwrap().unwrap();
    assert_ne!(before.access_token.expose(), after.access_token.expose(), "new tokens");
    assert_eq!(h.instances(&h.a).await.len(), 1, "no second instance");
}

#[tokio::test]
async fn delete_takes_a_confirmation_step() {
    let h = harness().await;
    let id = h.instance_of(&h.a, "doomed").await;
    let b = h.sign_in(&h.a).await;
    let page = h.get(&format!("/ui/instances/{id}"), Some(&b)).await;
    for button in ["Disable", "Re-authenticate", "Delete"] {
        assert!(page.body.contains(&format!(">{button}</button>")), "{button}");
    }
    for column in ["Date", "Type", "Resource", "Object ID", "Status"] {
        assert!(page.body.contains(&format!("<th scope=\"col\">{column}</th>")), "{column}");
    }
    let confirm = h.get(&format!("/ui/instances/{id}/delete"), Some(&b)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("<h1>Delete doomed?</h1>"));
    assert_eq!(h.instances(&h.a).await.len(), 1, "asking is not deleting");
    let done = h.post(&format!("/ui/instances/{id}/delete"), Some(&b), &[("csrf", &b.csrf)]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/ui/"));
    assert!(h.instances(&h.a).await.is_empty());
}

#[tokio::test]
async fn a_one_time_link_signs_in_once() {
    let h = harness().await;
    let link = super::sign_in_link(&h.state, h.a.principal).await.unwrap();
    let path = link.strip_prefix(PUBLIC).unwrap();
    let a = h.get(path, None).await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/"));
    let cookie = a.set_cookie().unwrap().split(';').next().unwrap().to_string();
    assert!(!path.contains(cookie.trim_start_matches("ocpoll_session=")), "a session of its own, not the code");
    assert_eq!(h.get("/ui/", Some(&Browser { cookie, csrf: String::new() })).await.status, StatusCode::OK);
    let again = h.get(path, None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.set_cookie().is_none());
    // and one not used within its ten minutes is dead
    let late = super::sign_in_link(&h.state, h.a.principal).await.unwrap();
    h.clock.advance(std::time::Duration::from_secs(11 * 60));
    assert_eq!(h.get(late.strip_prefix(PUBLIC).unwrap(), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn assets_are_cached_by_their_hash_and_small() {
    let h = harness().await;
    let page = h.get("/ui/sign-in", None).await;
    let css = page
        .body
        .split("href=\"")
        .find(|s| s.starts_with("/ui/assets/console."))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let a = h.get(&css, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
    let etag = a.headers[header::ETAG].to_str().unwrap().to_string();
    let mut r = Request::get(&css);
    r = r.header(header::IF_NONE_MATCH, &etag);
    assert_eq!(h.send(r.body(Body::empty()).unwrap()).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(h.get("/ui/assets/console.0000.css", None).await.status, StatusCode::NOT_FOUND);
    let (css, js) = super::assets::sizes();
    assert!(css < 16 * 1024 && js < 8 * 1024, "css {css} B, js {js} B");
}

/// The seed's `customers` entry, as an object.
fn customers_poller() -> serde_json::Value {
    serde_json::json!({
        "customers": {
            "url": "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            "idField": "id",
            "datesConfiguration": {
                "updatedDateField": "updated_at", "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                "updatedDateTimezone": "GMT", "createdDateField": "created_at",
                "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'", "createdDateTimezone": "GMT"
            }
        }
    })
}

/// A `customers` change of `object` (version 0 is its creation).
fn change(instance: i64, object: &str, version: u64) -> oc_model::event::Event {
    use oc_model::event::{Event, EventType, event_id};
    let date = start_time() + chrono::Duration::seconds(version as i64);
    let event_type = if version == 0 { EventType::Created } else { EventType::Updated };
    Event {
        event_id: event_id(instance, "customers", object, event_type, date, version),
        event_type,
        object_type: "customers".into(),
        object_id: object.into(),
        date,
        record: serde_json::json!({"id": object, "version": version}),
    }
}

impl Harness {
    /// An instance of `org` polling `customers` with events enabled and no callback URL (its changes go to the
    /// feed only, withheld from webhooks), plus `extra` configuration.
    async fn polling_instance(&self, org: &Org, name: &str, extra: serde_json::Value) -> i64 {
        let code = self.code().await;
        let mut configuration = serde_json::json!({
            "oauth.api.key": CLIENT_ID, "oauth.api.secret": CLIENT_SECRET,
            "oauth.callback.url": format!("{PUBLIC}/ui/oauth/callback"),
            "event.notification.enabled": true,
            "event.poller.refresh_interval": 15,
            "event.poller.configuration": customers_poller(),
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            configuration[k] = v.clone();
        }
        let body = serde_json::json!({
            "element": {"key": "sageone"}, "name": name, "providerData": {"code": code},
            "configuration": configuration,
        });
        crate::api::instances::create_instance(&self.state, org.principal, &body).await.unwrap().instance.id
    }

    /// Commits `events` for the `customers` job of `instance` as a poll would (the job must be due).
    async fn commit(&self, instance: i64, events: Vec<oc_model::event::Event>) {
        use oc_model::ports::{PollCommit, PollOutcome, PollStatus, PollingStore};
        let store = self._store.store();
        let now = self.clock.now();
        let claims = store.claim_polls("console-test", now, 100, std::time::Duration::from_secs(60)).await.unwrap();
        let mut events = Some(events);
        for claim in claims {
            if claim.instance.id == instance && claim.resource == "customers" {
                let events = events.take().unwrap_or_default();
                let outcome = PollOutcome {
                    pages: 1,
                    records: events.len() as u64,
                    created: events.iter().filter(|e| e.event_type.as_str() == "CREATED").count() as u32,
                    updated: events.iter().filter(|e| e.event_type.as_str() == "UPDATED").count() as u32,
                    ..PollOutcome::new(now, now, PollStatus::Ok, Some(start_time()))
                };
                let commit = PollCommit {
                    events,
                    seen: vec![],
                    watermark: Some(now),
                    skew_ms: 0,
                    outcome,
                    next_run_at: now,
                    reconciled: None,
                    trace_parent: None,
                };
                store.commit_poll(instance, "customers", &claim.lease, &commit).await.unwrap();
            } else {
                store.release_poll(claim.instance.id, &claim.resource, &claim.lease).await.unwrap();
            }
        }
        assert!(events.is_none(), "instance {instance} had no due customers job");
    }

    /// A GET as the script sends it (cookie, and `If-None-Match` when given).
    async fn get_tagged(&self, path: &str, browser: &Browser, etag: Option<&str>) -> Answer {
        let mut r = Request::get(path).header(header::COOKIE, &browser.cookie);
        if let Some(tag) = etag {
            r = r.header(header::IF_NONE_MATCH, tag);
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }
}

/// The text of the element whose id is `id` (up to its closing tag `end`), tags left in.
fn element<'a>(page: &'a str, id: &str, end: &str) -> &'a str {
    let at = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {page}"));
    page[at..].split(end).next().unwrap()
}

#[tokio::test]
async fn the_instance_page_shows_where_the_feed_stands_with_a_curl_line() {
    let h = harness().await;
    let id = h.polling_instance(&h.a, "feed", serde_json::json!({})).await;
    let b = h.sign_in(&h.a).await;
    let page = h.get(&format!("/ui/instances/{id}"), Some(&b)).await;
    assert!(page.body.contains("<h2 id=\"feed-title\">Change feed</h2>"), "{}", page.body);
    assert!(element(&page.body, "feed-newest", "</dd>").contains("none kept yet"));
    assert!(element(&page.body, "feed-kept", "</dd>").contains(">0"));
    let curl = element(&page.body, "feed-curl", ">");
    assert!(curl.contains(&format!("{PUBLIC}/elements/api-v2/instances/changes?wait=30")), "from the oldest: {curl}");

    h.commit(id, vec![change(id, "c1", 0), change(id, "c2", 0), change(id, "c1", 1)]).await;
    let changes = crate::api::changes::encode_cursor;
    let page = h.get(&format!("/ui/instances/{id}"), Some(&b)).await;
    let newest = element(&page.body, "feed-newest", "</dd>");
    assert!(newest.contains("position 3") && newest.contains(&changes(3)), "{newest}");
    let oldest = element(&page.body, "feed-oldest", "</dd>");
    assert!(oldest.contains("position 1") && oldest.contains(&changes(1)), "{oldest}");
    assert!(element(&page.body, "feed-floor", "</dd>").contains("position 0"));
    assert!(element(&page.body, "feed-kept", "</dd>").contains(">3"));
    let curl = element(&page.body, "feed-curl", ">");
    for part in [
        "curl -sS -H 'Authorization: User &lt;user secret&gt;, Organization &lt;organization secret&gt;, Element \
         &lt;element token&gt;'"
            .to_string(),
        format!("{PUBLIC}/elements/api-v2/instances/changes?after={}&amp;wait=30", changes(3)),
    ] {
        assert!(curl.contains(&part), "{part} in {curl}");
    }
    assert!(page.body.contains("<label for=\"feed-curl\">Read the feed with curl</label>"));
    // the cursor of the curl line is the API's: the feed after it is empty, the feed after the oldest is not
    let api = |after: &str| format!("/elements/api-v2/instances/{id}/changes?after={after}");
    let auth = format!("User {}, Organization {}", h.a.user_secret, h.a.org_secret);
    for (after, want) in [(changes(3), 0), (changes(1), 2)] {
        let r = Request::get(api(&after)).header(header::AUTHORIZATION, &auth).body(Body::empty()).unwrap();
        let a = h.send(r).await;
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["changes"].as_array().unwrap().len(), want, "{}", a.body);
    }
}

#[tokio::test]
async fn the_polls_and_the_feed_refresh_from_their_fragments() {
    let h = harness().await;
    let id = h.polling_instance(&h.a, "live", serde_json::json!({})).await;
    let b = h.sign_in(&h.a).await;
    let page = h.get(&format!("/ui/instances/{id}"), Some(&b)).await;
    for (section, src) in [("polls-section", "polls.html"), ("feed", "feed.html")] {
        let tag = element(&page.body, section, ">");
        assert!(tag.contains(&format!("data-refresh=\"/ui/instances/{id}/{src}\"")), "{tag}");
    }
    assert!(element(&page.body, "polls-section", "</section>").contains("No poll yet."));

    let polls = format!("/ui/instances/{id}/polls.html");
    let feed = format!("/ui/instances/{id}/feed.html");
    let first = h.get_tagged(&polls, &b, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(first.body.starts_with("<section id=\"polls-section\""), "the section alone: {}", first.body);
    assert!(!first.body.contains("<html"), "{}", first.body);
    let polls_tag = first.headers[header::ETAG].to_str().unwrap().to_string();
    let feed_tag = h.get_tagged(&feed, &b, None).await.headers[header::ETAG].to_str().unwrap().to_string();
    // nothing new: 304, an answer of no weight
    assert_eq!(h.get_tagged(&polls, &b, Some(&polls_tag)).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(h.get_tagged(&feed, &b, Some(&feed_tag)).await.status, StatusCode::NOT_MODIFIED);

    // a poll: both fragments change
    h.commit(id, vec![change(id, "c1", 0), change(id, "c2", 0)]).await;
    let a = h.get_tagged(&polls, &b, Some(&polls_tag)).await;
    assert_eq!(a.status, StatusCode::OK);
    let rows = a.body.split("<tbody>").nth(1).unwrap();
    assert!(rows.contains("<td>customers</td><td>ok</td>"), "{}", a.body);
    assert!(rows.contains("<td class=\"num\">2</td>"), "{}", a.body);
    let a = h.get_tagged(&feed, &b, Some(&feed_tag)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.starts_with("<section id=\"feed\""), "{}", a.body);
    assert!(element(&a.body, "feed-kept", "</dd>").contains(">2"), "{}", a.body);

    // the script's endpoints: 401 without a session, 404 for another organization
    for path in [&polls, &feed] {
        assert_eq!(h.get(path, None).await.status, StatusCode::UNAUTHORIZED, "{path}");
        let other = h.sign_in(&h.b).await;
        assert_eq!(h.get(path, Some(&other)).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_replay_from_the_console_queues_the_kept_events_as_the_api_does() {
    let h = harness().await;
    let id = h.polling_instance(&h.a, "replayed", serde_json::json!({})).await;
    h.commit(id, vec![change(id, "c1", 0), change(id, "c2", 0), change(id, "c1", 1)]).await;
    let b = h.sign_in(&h.a).await;
    let page = h.get(&format!("/ui/instances/{id}"), Some(&b)).await;
    for (id, label) in [
        ("replay-since", "Since"),
        ("replay-until", "Until"),
        ("replay-object-type", "Object type"),
        ("replay-event-type", "Event type"),
    ] {
        assert!(page.body.contains(&format!("<label for=\"{id}\">{label}</label>")), "{label}");
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.body.contains(">Replay events</button>"));
    assert!(page.body.contains(&format!("action=\"/ui/instances/{id}/replay#replay\"")));
    assert!(page.body.contains("<option value=\"customers\">customers</option>"), "the instance's resources");
    let path = format!("/ui/instances/{id}/replay");

    // filtered: the one UPDATED customers event, the time typed as the console shows times
    let a = h
        .post(
            &path,
            Some(&b),
            &[
                ("csrf", &b.csrf),
                ("since", "2026-03-02 08:00:00 UTC"),
                ("until", ""),
                ("object_type", "customers"),
                ("event_type", "UPDATED"),
            ],
        )
        .await;
    assert_eq!(
        (a.status, a.location()),
        (StatusCode::SEE_OTHER, format!("/ui/instances/{id}?replayed=1#replay").as_str())
    );
    let page = h.get(a.location().split('#').next().unwrap(), Some(&b)).await;
    let status = element(&page.body, "replay-status", "</p>");
    assert!(status.contains("role=\"status\"") && status.contains("1 event queued again"), "{status}");
    // the rest: the UPDATED one is on its way already and is left alone, as the API's replay leaves it
    let a = h.post(&path, Some(&b), &[("csrf", &b.csrf), ("since", "2026-03-02T08:00:00Z")]).await;
    assert_eq!(a.location(), format!("/ui/instances/{id}?replayed=2#replay"));
    let page = h.get(&format!("/ui/instances/{id}?replayed=2"), Some(&b)).await;
    assert!(element(&page.body, "replay-status", "</p>").contains("2 events queued again"));
    // a range after every commit: nothing
    let a = h.post(&path, Some(&b), &[("csrf", &b.csrf), ("since", "2026-03-02T10:00:00Z")]).await;
    assert_eq!(a.location(), format!("/ui/instances/{id}?replayed=0#replay"));
    let listed = h
        .state
        .store
        .list_events(
            h.a.principal.org_id,
            &oc_model::ports::EventFilter { instance_id: Some(id), page: 1, page_size: 10, ..Default::default() },
        )
        .await
        .unwrap();
    assert!(listed.items.iter().all(|e| e.notification_id.is_some()), "every event in a notification again");

    // bad input: each problem beside its field, the values kept, nothing queued
    let a = h
        .post(
            &path,
            Some(&b),
            &[
                ("csrf", &b.csrf),
                ("since", "yesterday"),
                ("until", "2026-03-01 00:00:00"),
                ("object_type", "customers"),
                ("event_type", "MOVED"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    for (field, label) in [("replay-since", "Since:"), ("replay-event-type", "Event type:")] {
        let tag = element(&a.body, field, ">");
        assert!(tag.contains("aria-invalid=\"true\"") && tag.contains(&format!("{field}-error")), "{tag}");
        let error = element(&a.body, &format!("{field}-error"), "</div>");
        assert!(error.contains("role=\"alert\"") && error.contains(label), "{error}");
    }
    assert!(element(&a.body, "replay-since", ">").contains("value=\"yesterday\""));
    assert!(element(&a.body, "replay-until", ">").contains("value=\"2026-03-01 00:00:00\""));
    assert!(a.body.contains("<option value=\"customers\" selected>customers</option>"), "the choice is kept");
    assert!(!a.body.contains("id=\"replay-status\""), "no count after a refusal");
    // an Until before Since is said at Until
    let a = h
        .post(
            &path,
            Some(&b),
            &[("csrf", &b.csrf), ("since", "2026-03-02T10:00:00Z"), ("until", "2026-03-02T09:00:00Z")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(element(&a.body, "replay-until-error", "</div>").contains("Until: must be after Since"), "{}", a.body);

    // the console's rules: the session's token, this site, this organization
    let a = h.post(&path, Some(&b), &[("since", "2026-03-02T08:00:00Z")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = h
        .post_with(
            &path,
            Some(&b),
            &[("csrf", &b.csrf), ("since", "2026-03-02T08:00:00Z")],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let other = h.sign_in(&h.b).await;
    let a = h.post(&path, Some(&other), &[("csrf", &other.csrf), ("since", "2026-03-02T08:00:00Z")]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_says_until_when_the_previous_signature_key_signs() {
    let h = harness().await;
    let id =
        h.polling_instance(&h.a, "rotated", serde_json::json!({"event.notification.signature.key": "old-key"})).await;
    let b = h.sign_in(&h.a).await;
    let path = format!("/ui/instances/{id}");
    assert!(!h.get(&path, Some(&b)).await.body.contains("Previous signature key"), "no rotation yet");

    // a new key through the API: the old one signs on for the overlap (24 h by default)
    h.clock.advance(std::time::Duration::from_secs(3600));
    let patch = serde_json::json!({"configuration": {"event.notification.signature.key": "new-key"}});
    let r = Request::patch(format!("/elements/api-v2/instances/{id}"))
        .header(header::AUTHORIZATION, format!("User {}, Organization {}", h.a.user_secret, h.a.org_secret))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(patch.to_string()))
        .unwrap();
    let a = h.send(r).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let page = h.get(&path, Some(&b)).await;
    let shown = element(&page.body, "key-rotation", "</dd>");
    assert!(
        shown.contains("Previous signature key signs until <time datetime=\"2026-03-03T10:00:00.000Z\">2026-03-03 10:00:00 UTC</time>"),
        "{shown}"
    );
    for secret in ["old-key", "new-key"] {
        assert!(!page.body.contains(secret), "{secret} on the page");
    }
    // once the overlap is over, nothing is said
    h.clock.advance(std::time::Duration::from_secs(24 * 3600));
    assert!(!h.get(&path, Some(&b)).await.body.contains("Previous signature key"));
}

#[tokio::test]
async fn the_page_lists_the_alerts_and_redelivers_one() {
    let h = harness().await;
    let id = h.polling_instance(&h.a, "alerted", serde_json::json!({})).await;
    let b = h.sign_in(&h.a).await;
    let path = format!("/ui/instances/{id}");
    let page = h.get(&path, Some(&b)).await;
    assert!(element(&page.body, "alerts", "</section>").contains("No alert"), "{}", page.body);

    h.state.vault.mark_invalid(id, "sage refused the refresh token (invalid_grant: revoked)").await.unwrap();
    let page = h.get(&path, Some(&b)).await;
    let section = element(&page.body, "alerts", "</section>");
    assert!(section.contains("<code>instance.invalid</code>"), "{section}");
    assert!(section.contains("pending"), "{section}");
    assert!(section.contains("sage refused the refresh token (invalid_grant: revoked)"), "{section}");
    assert!(section.contains("aria-label=\"Redeliver alert instance.invalid of "), "{section}");

    let alerts = h.state.store.list_alerts(h.a.principal.org_id, id, None, 10, 0).await.unwrap().unwrap();
    let alert = alerts.items[0].id;
    let action = format!("{path}/alerts/{alert}/redeliver");
    assert!(section.contains(&action), "{section}");
    let done = h.post(&action, Some(&b), &[("csrf", &b.csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.headers[header::LOCATION].to_str().unwrap().contains("done=alert-redelivered"));
    // without the token, or of another organization: refused
    assert_eq!(h.post(&action, Some(&b), &[]).await.status, StatusCode::FORBIDDEN);
    let other = h.sign_in(&h.b).await;
    assert_eq!(h.post(&action, Some(&other), &[("csrf", &other.csrf)]).await.status, StatusCode::NOT_FOUND);
    let bogus = format!("{path}/alerts/not-a-uuid/redeliver");
    assert_eq!(h.post(&bogus, Some(&b), &[("csrf", &b.csrf)]).await.status, StatusCode::NOT_FOUND);
}
