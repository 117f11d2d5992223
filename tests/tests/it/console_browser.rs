//! Issue 16, item 6: ocpoll in a real browser (headless Chromium over WebDriver, `oc_tests::browser`).
//!
//! The first test only opens a page of a running ocpoll in the browser. The others walk the console of
//! `../shared/spec/console.md` by its accessible names — sign in (wrong and right), sign out, create an instance
//! through the OAuth round with the simulator, see its events arrive live, redeliver a failed notification, the
//! bad-input paths, a replayed state, a denied consent, another organization's instance — and, on an instance's
//! page, the change feed's position and its curl line, a replay, the rotation overlap, and the polls and the chart
//! refreshed without a reload.
//!
//! The set-up every console test shares ([`Console::start`]):
//! - ocpoll listens on a port picked before it starts, so that `--public-url http://127.0.0.1:PORT` can be given;
//! - the simulator shows its consent page (Approve / Deny), and the browser meets it under `localhost`, ocpoll under
//!   `127.0.0.1`: two sites, as sage.com and ocpoll are. So the console's `SameSite=Strict` session cookie is *not*
//!   sent on the redirect back from the consent page (Chrome sends no Strict cookie on a navigation another site
//!   started), and the round must still work, as it will with the real Sage;
//! - the app the user types into the form is registered in the simulator after ocpoll started, with the redirect
//!   URI `{public URL}/ui/oauth/callback` the console sends (the simulator matches redirect URIs exactly).
//!
//! Screenshots go to `docs/console-*.png` with `OCPOLL_SCREENSHOTS=1`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use oc_bin::settings::ServeSettings;
use oc_model::ports::SystemClock;
use oc_sagesim::{AppRegistration, SimConfig};
use oc_store::testing;
use oc_tests::browser::{Browser, By, Cookie, Element, Row, WAIT, free_port};
use oc_tests::receiver::Receiver;
use oc_tests::sim::Sage;
use oc_tests::{Api, Org, SEED_EXAMPLE, Server};
use serde_json::{Value, json};

const KEY: &str = "console-signature-key";
/// The columns of the Events table.
const EVENTS: [&str; 5] = ["Date", "Type", "Resource", "Object ID", "Status"];
/// The columns of the Polls table.
const POLLS: [&str; 11] = [
    "Started",
    "Resource",
    "Status",
    "Window from",
    "Pages",
    "Records",
    "Created",
    "Updated",
    "Deleted",
    "Warnings",
    "Error",
];
/// Polls every 1.5 s (`event.poller.refresh_interval` in minutes).
const INTERVAL: &str = "0.025";
/// "Within a few seconds of their commit": a poll interval, the poll, the page's own refresh.
const LIVE: Duration = Duration::from_secs(15);
/// The exchange of the code and the first look at the business, after the consent page.
const ROUND: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_browser_opens_a_page_of_ocpoll() -> Result<()> {
    let Some(b) = Browser::for_test("console_browser_opens_a_page_of_ocpoll").await? else { return Ok(()) };
    let server = Server::start(testing::sqlite().await, &[]).await?;
    for (path, want) in [("/healthz", json!({"status": "up"})), ("/readyz", json!({"status": "ready"}))] {
        let url = format!("{}{path}", server.root);
        b.goto(&url).await?;
        ensure!(b.current_url().await? == url);
        // Chrome shows a JSON answer in a <pre>
        let shown = b.css("pre").await?.text().await?;
        let v: Value = serde_json::from_str(&shown).with_context(|| format!("{path} shows {shown:?}"))?;
        ensure!(v == want, "{path} shows {v}");
    }
    b.quit().await?;
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_signs_in_with_the_right_secrets_only() -> Result<()> {
    let Some(c) = Console::start("console_signs_in_with_the_right_secrets_only", &[]).await? else { return Ok(()) };
    let b = &c.b;
    b.goto(&c.ui("/")).await?;
    b.field("Organization secret").await?;
    b.docs_screenshot("sign-in").await?;
    let before = b.cookies().await?;

    // Wrong secrets: an alert, no session.
    b.field("Organization secret").await?.set(&format!("{}-wrong", c.org.org_secret)).await?;
    b.field("User secret").await?.set(&c.org.user_secret).await?;
    b.button("Sign in").await?.click().await?;
    let alerts = b
        .wait_for("an alert after wrong secrets", WAIT, async || Ok(Some(b.alerts().await?).filter(|a| !a.is_empty())))
        .await?;
    ensure!(b.cookies().await? == before, "wrong secrets gave a cookie: {:?} (alerts {alerts:?})", b.cookies().await?);
    ensure!(b.try_find(&By::Button("Sign out".into())).await?.is_none(), "signed in with wrong secrets");
    b.field("Organization secret").await?;

    // The right ones: a session cookie, HttpOnly and SameSite=Strict (not Secure on http), that scripts cannot read.
    c.sign_in().await?;
    let session = session_cookies(&before, &b.cookies().await?);
    ensure!(!session.is_empty(), "no new cookie after signing in: {:?}", b.cookies().await?);
    for s in &session {
        ensure!(s.http_only, "{s:?} is not HttpOnly");
        ensure!(s.same_site.as_deref() == Some("Strict"), "{s:?} is not SameSite=Strict");
        ensure!(!s.secure, "{s:?} is Secure on an http public URL (the browser would not send it)");
        let seen = b.execute("return document.cookie;", vec![]).await?;
        ensure!(!seen.as_str().unwrap_or_default().contains(&s.value), "scripts see the session: {seen}");
    }
    // Nothing secret in the URL or the page.
    let (url, source) = (b.current_url().await?, b.source().await?);
    for secret in [&c.org.org_secret, &c.org.user_secret] {
        ensure!(!url.contains(secret.as_str()) && !source.contains(secret.as_str()), "a secret in {url} or its page");
    }
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_out_ends_the_session_on_the_server() -> Result<()> {
    let Some(c) = Console::start("console_sign_out_ends_the_session_on_the_server", &[]).await? else {
        return Ok(());
    };
    let b = &c.b;
    b.goto(&c.ui("/")).await?;
    let before = b.cookies().await?;
    c.sign_in().await?;
    let session = session_cookies(&before, &b.cookies().await?);
    ensure!(!session.is_empty(), "no session cookie");

    b.button("Sign out").await?.click().await?;
    b.field("Organization secret").await?;
    // The old cookie, put back as a thief would, opens nothing: the session ended on the server.
    for cookie in &session {
        b.add_cookie(cookie).await?;
    }
    b.goto(&c.ui("/")).await?;
    b.field("Organization secret").await.context("the old session cookie still signs in")?;
    ensure!(b.try_find(&By::Button("Sign out".into())).await?.is_none(), "the old session cookie still signs in");
    // And outside the browser too.
    let header: Vec<String> = session.iter().map(|s| format!("{}={}", s.name, s.value)).collect();
    let page = c.server.http.get(c.ui("/")).header("cookie", header.join("; ")).send().await?.text().await?;
    ensure!(!page.contains("Sign out"), "GET /ui/ with the old cookie is signed in:\n{page:.2000}");
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_creates_an_instance_through_the_oauth_round_and_shows_its_events_live() -> Result<()> {
    let test = "console_creates_an_instance_through_the_oauth_round_and_shows_its_events_live";
    let Some(c) = Console::start(test, &[]).await? else { return Ok(()) };
    let b = &c.b;
    c.sign_in().await?;
    c.open_form().await?;
    let redirect_uri = format!("{}/ui/oauth/callback", c.server.root);
    ensure!(b.source().await?.contains(&redirect_uri), "the form does not show the redirect URI {redirect_uri}");

    let callback = c.receiver.url("/hooks/console");
    c.fill(&c.form("Browser_Polling", &callback), &["customers", "vendors"]).await?;
    // Ticking the resources put their default configurations in the code view.
    let config = b
        .wait_for("customers and vendors in the code view", WAIT, async || {
            let config = code_view(b).await?;
            Ok((config.get("customers").is_some() && config.get("vendors").is_some()).then_some(config))
        })
        .await?;
    ensure!(config["customers"]["idField"] == "id" && config["vendors"]["idField"] == "id", "{config:#}");
    // The seed's customers entry (its URL misses a closing quote), edited in by hand.
    let seed: Value = serde_json::from_str(SEED_EXAMPLE)?;
    let mut edited = config.clone();
    edited["customers"] = seed["configuration"]["event.poller.configuration"]["customers"].clone();
    edit_code_view(b, &serde_json::to_string_pretty(&edited)?).await?;
    b.docs_screenshot("create").await?;

    // Create Instance: to Sage's authorize URL (the simulator's, on another site), its consent page, back.
    b.button("Create Instance").await?.click().await?;
    let authorize = b
        .wait_for("the simulator's consent page", WAIT, async || {
            let url = b.current_url().await?;
            Ok(url.starts_with(&c.authorize_url()).then_some(url))
        })
        .await?;
    let authorize = url::Url::parse(&authorize)?;
    let query = |k: &str| authorize.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    ensure!(query("client_id").as_deref() == Some(c.app.client_id.as_str()), "{authorize}");
    ensure!(query("redirect_uri").as_deref() == Some(redirect_uri.as_str()), "{authorize}");
    ensure!(query("state").is_some_and(|s| s.len() >= 16), "a state that cannot be guessed: {authorize}");
    ensure!(!authorize.as_str().contains(&c.app.client_secret), "the client secret is in the authorize URL");
    b.button("Approve").await?.click().await?;

    // The instance page: its name, the warning the API gives for the seed's URL.
    b.find_within(&By::Heading("Browser_Polling".into()), ROUND).await?;
    let instance_page = b.current_url().await?;
    let text = b.page_text().await?.replace('`', "");
    ensure!(text.contains("closing ' was added"), "the repaired-quote warning is not shown:\n{text:.3000}");
    let source = b.source().await?;
    for secret in [&c.app.client_secret, &KEY.to_string(), &c.org.user_secret] {
        ensure!(!source.contains(secret.as_str()), "a secret is in the instance page");
    }
    // Created as POST /instances would have: one instance, with what was typed and ticked.
    let instances = c.instances().await;
    ensure!(instances.len() == 1, "{instances:#?}");
    let id = instances[0]["id"].as_i64().context("an instance id")?;
    let detail = c.api().ok("GET", &format!("/instances/{id}"), None, 200).await;
    let conf = &detail["configuration"];
    ensure!(detail["name"] == "Browser_Polling" && detail["valid"] == true, "{detail:#}");
    ensure!(conf["event.notification.callback.url"] == callback.as_str(), "{detail:#}");
    ensure!(conf["event.notification.signature.key"] == "********", "{detail:#}");
    ensure!(conf["event.poller.refresh_interval"].to_string().contains(INTERVAL), "{detail:#}");
    let resources = resources_of(conf);
    ensure!(resources == ["customers", "vendors"], "{resources:?}\n{detail:#}");

    // Events arrive in the table without a reload.
    b.execute("window.__ocpollNoReload = true; return true;", vec![]).await?;
    let (customer, _) = c.sage.create_customer("Console Live Customer");
    let vendor = c.sage.sim.create_record(
        &c.sage.business(),
        "contacts",
        json!({"name": "Console Live Vendor", "contact_type_ids": ["VENDOR"]}),
    )?;
    let vendor = vendor["id"].as_str().context("a vendor id")?.to_string();
    for (object, resource) in [(&customer, "customers"), (&vendor, "vendors")] {
        let row = event_row(b, object, "CREATED", is_delivered).await?;
        ensure!(row.get("Resource") == Some(resource), "{row:?}");
        ensure!(row.get("Date").is_some_and(|d| !d.is_empty()), "{row:?}");
    }
    let kept = b.execute("return window.__ocpollNoReload === true;", vec![]).await?;
    ensure!(kept == true, "the page was reloaded to show the events");
    ensure!(b.current_url().await? == instance_page);
    b.docs_screenshot("instance").await?;
    ensure!(c.receiver.events().iter().any(|e| e.object_id == customer), "the receiver got the customer's event");
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_redelivers_a_failed_notification() -> Result<()> {
    // no retries: the first failed attempt fails the notification for good
    let Some(c) = Console::start("console_redelivers_a_failed_notification", &["--delivery-retries", "0"]).await?
    else {
        return Ok(());
    };
    let b = &c.b;
    let id = c.instance_by_api("Redelivery_Polling").await?;
    c.receiver.set_status(500);
    c.sign_in().await?;
    b.link("Redelivery_Polling").await?.click().await?;
    b.heading("Redelivery_Polling").await?;
    let instance_page = b.current_url().await?;

    let (customer, _) = c.sage.create_customer("Console Failing Customer");
    let row = event_row(b, &customer, "CREATED", |s| s.to_ascii_uppercase().contains("FAILED")).await?;
    let listed = c.api().events(id).await;
    ensure!(listed.iter().any(|e| e["objectId"] == customer.as_str() && e["status"] == "FAILED"), "{listed:#?}");

    // The row opens the event; its failed notification has Redeliver.
    c.receiver.set_status(200);
    match row.element.find_css("a[href]").await?.into_iter().next() {
        Some(link) => link.click().await?,
        None => row.element.click().await?,
    }
    b.button("Redeliver").await?.click().await?;
    b.wait_for("the redelivered notification at the receiver", LIVE, async || {
        Ok(c.receiver.events().iter().any(|e| e.object_id == customer && e.event_type == "CREATED").then_some(()))
    })
    .await?;
    b.goto(&instance_page).await?;
    event_row(b, &customer, "CREATED", is_delivered).await?;
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_bad_input_is_shown_beside_its_field_and_creates_nothing() -> Result<()> {
    let test = "console_bad_input_is_shown_beside_its_field_and_creates_nothing";
    let Some(c) = Console::start(test, &[]).await? else { return Ok(()) };
    let b = &c.b;
    c.sign_in().await?;
    c.open_form().await?;

    // A callback URL the API refuses (a browser's own checks of type=url let ftp through).
    let bad = "ftp://example.com/hook";
    let form = c.form("Bad_Input", bad);
    c.fill(&form, &["customers"]).await?;
    b.button("Create Instance").await?.click().await?;
    c.problem_named(&["Event Notification Callback URL", "event.notification.callback.url"]).await?;
    b.heading("Authenticate an instance").await?;
    ensure!(b.current_url().await?.starts_with(&c.server.root), "left ocpoll: {}", b.current_url().await?);
    // What was typed is still there.
    for (label, want) in [
        ("Name", "Bad_Input"),
        ("Client ID", c.app.client_id.as_str()),
        ("Event Notification Callback URL", bad),
        ("Event poller refresh interval (mins)", INTERVAL),
    ] {
        let got = field(b, label).await?.value().await?;
        ensure!(got == want, "{label:?} holds {got:?} after the refusal, not {want:?}");
    }
    ensure!(b.checkbox("customers").await?.checked().await?, "the ticked resource was unticked");

    // A hand edit of the code view that is not JSON.
    field(b, "Event Notification Callback URL").await?.set(&c.receiver.url("/hooks/console")).await?;
    edit_code_view(b, "{\"customers\": {\"idField\": ").await?;
    b.button("Create Instance").await?.click().await?;
    c.problem_named(&["event.poller.configuration"]).await?;
    b.heading("Authenticate an instance").await?;

    // Nothing was created, and Sage was never asked.
    ensure!(c.instances().await.is_empty(), "{:#?}", c.instances().await);
    ensure!(c.authorize_requests() == 0, "the browser was sent to Sage with a bad form");
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_a_replayed_or_forged_state_and_a_denied_consent() -> Result<()> {
    let test = "console_refuses_a_replayed_or_forged_state_and_a_denied_consent";
    let Some(c) = Console::start(test, &[]).await? else { return Ok(()) };
    let b = &c.b;
    c.sign_in().await?;

    // A round that works.
    c.open_form().await?;
    c.fill(&c.form("Replay_Polling", &c.receiver.url("/hooks/console")), &["customers"]).await?;
    b.button("Create Instance").await?.click().await?;
    b.button("Approve").await?.click().await?;
    b.find_within(&By::Heading("Replay_Polling".into()), ROUND).await?;
    ensure!(c.instances().await.len() == 1);
    let prefix = format!("{}/ui/oauth/callback?", c.server.root);
    let navigations = b.navigations().await?;
    let callback = navigations
        .iter()
        .find(|u| u.starts_with(&prefix))
        .with_context(|| format!("the browser never requested {prefix}...: {navigations:#?}"))?
        .clone();

    // The same callback again (its state is spent), then a state never issued.
    let forged = format!("{prefix}code=GB%2Fforged&state=forged-state");
    for url in [&callback, &forged] {
        b.goto(url).await?;
        let alerts = b
            .wait_for(&format!("an error at {url}"), WAIT, async || {
                Ok(Some(b.alerts().await?).filter(|a| !a.is_empty()))
            })
            .await?;
        ensure!(c.instances().await.len() == 1, "{url} created an instance (alerts {alerts:?})");
    }

    // A denied consent.
    c.open_form().await?;
    c.fill(&c.form("Denied_Polling", &c.receiver.url("/hooks/console")), &["customers"]).await?;
    b.button("Create Instance").await?.click().await?;
    b.button("Deny").await?.click().await?;
    let alerts = b
        .wait_for("an error after the denied consent", ROUND, async || {
            Ok(Some(b.alerts().await?).filter(|a| !a.is_empty()))
        })
        .await?;
    let instances = c.instances().await;
    ensure!(instances.len() == 1 && instances[0]["name"] == "Replay_Polling", "{instances:#?} (alerts {alerts:?})");
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_an_organization_its_own_instances_only() -> Result<()> {
    let test = "console_shows_an_organization_its_own_instances_only";
    let Some(mut c) = Console::start(test, &[]).await? else { return Ok(()) };
    let id = c.instance_by_api("Other_Org_Polling").await?;
    // Its own organization sees it...
    c.sign_in().await?;
    c.b.link("Other_Org_Polling").await?;
    c.b.button("Sign out").await?.click().await?;
    c.b.field("Organization secret").await?;
    // ...another does not, in the list or at its address.
    c.org = c.server.organization("console-other").await;
    let b = &c.b;
    c.sign_in().await?;
    ensure!(b.try_find(&By::Link("Other_Org_Polling".into())).await?.is_none(), "another organization's instance");
    b.goto(&c.ui(&format!("/instances/{id}"))).await?;
    let text = b.page_text().await?;
    ensure!(!text.contains("Other_Org_Polling"), "another organization's instance page opens:\n{text:.2000}");
    c.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_the_feed_replays_events_and_refreshes_polls_and_chart_live() -> Result<()> {
    let test = "console_shows_the_feed_replays_events_and_refreshes_polls_and_chart_live";
    let Some(c) = Console::start(test, &[]).await? else { return Ok(()) };
    let b = &c.b;
    let (id, token) = c.instance_and_token_by_api("Feed_Polling").await?;
    c.sign_in().await?;
    b.link("Feed_Polling").await?.click().await?;
    b.heading("Feed_Polling").await?;
    b.heading("Change feed").await?;
    b.execute("window.__ocpollNoReload = true; return true;", vec![]).await?;
    let chart_before = b.css("#chart-summary").await?.text().await?;

    // A change: its event in the table, then the Polls section, the chart and the feed follow without a reload.
    let (customer, _) = c.sage.create_customer("Console Feed Customer");
    let row = event_row(b, &customer, "CREATED", is_delivered).await?;
    b.wait_for("the poll that found it in the Polls table", LIVE, async || {
        let Some(t) = b.try_table(&POLLS).await? else { return Ok(None) };
        Ok(t.find(&[("Resource", "customers"), ("Created", "1")]).map(drop))
    })
    .await?;
    b.wait_for("the chart counting the event", Duration::from_secs(30), async || {
        let text = b.css("#chart-summary").await?.text().await?;
        Ok(text.contains("1 created").then_some(text))
    })
    .await
    .with_context(|| format!("the chart said {chart_before:?} before"))?;
    let feed = c.api().ok("GET", &format!("/instances/{id}/changes?limit=1000"), None, 200).await;
    let cursor = feed["nextCursor"].as_str().context("a cursor")?.to_string();
    let kept = feed["changes"].as_array().map_or(0, Vec::len);
    ensure!(kept >= 1, "{feed:#}");
    b.wait_for("the feed's newest change and count on the page", LIVE, async || {
        let newest = b.css("#feed-newest").await?.text().await?;
        let count = b.css("#feed-kept").await?.text().await?;
        Ok((newest.contains(&cursor) && count.trim() == kept.to_string()).then_some(()))
    })
    .await?;
    let kept_page = b.execute("return window.__ocpollNoReload === true;", vec![]).await?;
    ensure!(kept_page == true, "the page was reloaded to refresh the polls, the chart or the feed");

    // The curl line, its placeholders filled in, reads the feed after the newest change: nothing yet.
    let line = field(b, "Read the feed with curl").await?.value().await?;
    ensure!(line.contains("Element <element token>") && line.contains(&format!("after={cursor}")), "{line}");
    let quoted: Vec<&str> = line.split('\'').collect();
    ensure!(quoted.len() == 5, "a header and a URL in single quotes: {line}");
    let header = quoted[1]
        .replace("<user secret>", &c.org.user_secret)
        .replace("<organization secret>", &c.org.org_secret)
        .replace("<element token>", &token);
    let (name, value) = header.split_once(": ").context("a header")?;
    let url = quoted[3].replace("wait=30", "wait=0");
    let answer: Value = c.server.http.get(&url).header(name, value).send().await?.error_for_status()?.json().await?;
    ensure!(answer["changes"] == json!([]) && answer["nextCursor"] == cursor.as_str(), "{url}: {answer:#}");
    // With the script, a Copy button beside it (what the clipboard got is the browser's business).
    b.button("Copy").await?.click().await?;

    // Replay: the customer's creation again, from the time the table shows, to the receiver under the same id.
    let date = row.get("Date").context("a date")?.to_string();
    field(b, "Since").await?.set("not a date").await?;
    b.button("Replay events").await?.click().await?;
    c.problem_named(&["Since"]).await?;
    ensure!(field(b, "Since").await?.value().await? == "not a date", "the value typed is gone");
    field(b, "Since").await?.set(&date).await?;
    for (label, value) in [("Object type", "customers"), ("Event type", "CREATED")] {
        let select = field(b, label).await?;
        let option = select.find_css(&format!("option[value={value}]")).await?.into_iter().next();
        option.with_context(|| format!("{label} offers {value}"))?.click().await?;
    }
    b.button("Replay events").await?.click().await?;
    let status = b
        .wait_for("the count of the replay", WAIT, async || {
            let found = b.execute(
                "return Array.from(document.querySelectorAll('[role=status]')).map(e => e.innerText).join(' | ');",
                vec![],
            );
            let text = found.await?.as_str().unwrap_or_default().to_string();
            Ok(text.contains("queued again").then_some(text))
        })
        .await?;
    ensure!(status.contains("1 event queued again"), "{status}");
    b.wait_for("the replayed event at the receiver", LIVE, async || {
        let got: Vec<_> = c.receiver.events().into_iter().filter(|e| e.object_id == customer).collect();
        Ok((got.len() >= 2 && got.iter().all(|e| e.event_id == got[0].event_id)).then_some(()))
    })
    .await?;

    // A new signature key: the old one signs on, and the page says until when.
    c.api()
        .ok(
            "PATCH",
            &format!("/instances/{id}"),
            Some(&json!({"configuration": {"event.notification.signature.key": "rotated-key"}})),
            200,
        )
        .await;
    b.refresh().await?;
    b.heading("Feed_Polling").await?;
    let text = b.page_text().await?;
    let said = text.lines().find(|l| l.contains("Previous signature key signs until")).map(str::to_string);
    let said = said.with_context(|| format!("no rotation shown:\n{text:.3000}"))?;
    let ends = said.rsplit("until ").next().unwrap_or_default().trim();
    ensure!(chrono::NaiveDateTime::parse_from_str(ends, "%Y-%m-%d %H:%M:%S UTC").is_ok(), "{said}");
    ensure!(!b.source().await?.contains("rotated-key"), "the new key is on the page");
    c.finish().await
}

/// What a console test has: a browser, ocpoll on a known port, the simulator, a receiver, an organization.
struct Console {
    b: Browser,
    server: Server,
    sage: Sage,
    /// The app typed into the form, registered with the console's redirect URI (`sage.app` keeps the API's).
    app: AppRegistration,
    receiver: Receiver,
    org: Org,
}

/// The fields of the form, by their labels.
struct Form {
    name: String,
    client_id: String,
    client_secret: String,
    callback: String,
    key: String,
    interval: String,
}

impl Console {
    /// The set-up of the module's doc; `None` when the test is skipped (no browser).
    async fn start(test: &str, extra: &[&str]) -> Result<Option<Console>> {
        let Some(b) = Browser::for_test(test).await? else { return Ok(None) };
        let sage = Sage::start_with(SimConfig { customers: 5, consent_page: true, ..SimConfig::default() }).await?;
        let receiver = Receiver::start(KEY).await;
        let mut args = sage.serve_args();
        let i = args.iter().position(|a| a == "--sage-authorize-url").context("serve_args has the authorize URL")?;
        args[i + 1] = args[i + 1].replacen("127.0.0.1", "localhost", 1);
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = serve_on_a_known_port(&args).await?;
        let app = AppRegistration::new(
            format!("console-app-{}", uuid::Uuid::new_v4().simple()),
            format!("console-secret-{}", uuid::Uuid::new_v4().simple()),
            format!("{}/ui/oauth/callback", server.root),
        );
        sage.sim.register_app(app.clone())?;
        let org = server.organization("console").await;
        Ok(Some(Console { b, server, sage, app, receiver, org }))
    }

    /// `{root}/ui{path}`.
    fn ui(&self, path: &str) -> String {
        format!("{}/ui{path}", self.server.root)
    }

    /// The simulator's authorize URL as the browser meets it.
    fn authorize_url(&self) -> String {
        self.sage.sim.authorize_url().replacen("127.0.0.1", "localhost", 1)
    }

    fn api(&self) -> Api {
        self.server.api(&self.org)
    }

    /// The organization's instances, over the API.
    async fn instances(&self) -> Vec<Value> {
        let v = self.api().ok("GET", "/instances", None, 200).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// How many times the browser was sent to the simulator's authorize URL.
    fn authorize_requests(&self) -> usize {
        self.sage.sim.requests().iter().filter(|r| r.path == "/oauth2/auth/central").count()
    }

    /// Creates an instance named `name` over the API (the seed body, the simulator's own app), polling every 1.5 s
    /// and notifying the receiver.
    async fn instance_by_api(&self, name: &str) -> Result<i64> {
        let code = self.consent_code().await?;
        let mut body = self.sage.instance_body(&code, &self.receiver.url("/hooks/console"), KEY, 1.5);
        body["name"] = json!(name);
        Ok(self.api().create_instance(&body).await.0)
    }

    /// [`instance_by_api`](Self::instance_by_api), with the instance's `Element` token.
    async fn instance_and_token_by_api(&self, name: &str) -> Result<(i64, String)> {
        let code = self.consent_code().await?;
        let mut body = self.sage.instance_body(&code, &self.receiver.url("/hooks/console"), KEY, 1.5);
        body["name"] = json!(name);
        let (id, answer) = self.api().create_instance(&body).await;
        Ok((id, answer["token"].as_str().context("an Element token")?.to_string()))
    }

    /// A code for the simulator's own app (`sage.app`), approved on the consent page as a browser would post it
    /// (`Sage::code` expects no consent page).
    async fn consent_code(&self) -> Result<String> {
        let app = &self.sage.app;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let resp = http
            .post(self.sage.sim.authorize_url())
            .form(&[
                ("response_type", "code"),
                ("client_id", app.client_id.as_str()),
                ("redirect_uri", app.redirect_uri.as_str()),
                ("scope", "full_access"),
                ("state", "console-api"),
                ("decision", "approve"),
            ])
            .send()
            .await?;
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let url = url::Url::parse(location).with_context(|| format!("the consent answered {}", resp.status()))?;
        let code = url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
        code.with_context(|| format!("no code in {location}"))
    }

    /// Signs in with the organization's secrets (from any page: the console's root shows the sign-in form).
    async fn sign_in(&self) -> Result<()> {
        let b = &self.b;
        b.goto(&self.ui("/")).await?;
        b.field("Organization secret").await?.set(&self.org.org_secret).await?;
        b.field("User secret").await?.set(&self.org.user_secret).await?;
        b.button("Sign in").await?.click().await?;
        b.button("Sign out").await.context("not signed in")?;
        Ok(())
    }

    /// From the instances list, "Create Instance" (a link or a button) to the form.
    async fn open_form(&self) -> Result<()> {
        self.b.goto(&self.ui("/")).await?;
        self.b.control("Create Instance").await?.click().await?;
        self.b.heading("Authenticate an instance").await?;
        Ok(())
    }

    fn form(&self, name: &str, callback: &str) -> Form {
        Form {
            name: name.into(),
            client_id: self.app.client_id.clone(),
            client_secret: self.app.client_secret.clone(),
            callback: callback.into(),
            key: KEY.into(),
            interval: INTERVAL.into(),
        }
    }

    /// Fills the form by its labels and ticks `resources`.
    async fn fill(&self, form: &Form, resources: &[&str]) -> Result<()> {
        let b = &self.b;
        field(b, "Name").await?.set(&form.name).await?;
        field(b, "Client ID").await?.set(&form.client_id).await?;
        field(b, "Client Secret").await?.set(&form.client_secret).await?;
        b.checkbox("Events Enabled").await?.set_checked(true).await?;
        field(b, "Event Notification Callback URL").await?.set(&form.callback).await?;
        let key = By::Field("Callback Notification Signature Key".into());
        if b.rendered(&key).await?.is_none() {
            b.control("Show Optional Fields").await?.click().await?;
        }
        b.find(&key).await?.set(&form.key).await?;
        field(b, "Event poller refresh interval (mins)").await?.set(&form.interval).await?;
        for r in resources {
            b.checkbox(r).await?.set_checked(true).await?;
        }
        Ok(())
    }

    /// Waits for a problem shown about a field: a `role="alert"` naming it (by one of `names`), or the field marked
    /// `aria-invalid`.
    async fn problem_named(&self, names: &[&str]) -> Result<()> {
        let b = &self.b;
        let what = format!("a problem shown about {names:?} (role=alert naming it, or aria-invalid)");
        let found = b
            .wait_for(&what, WAIT, async || {
                let alerts = b.alerts().await?;
                if alerts.iter().any(|a| names.iter().any(|n| a.contains(n))) {
                    return Ok(Some(()));
                }
                let invalid = b.invalid_fields().await?;
                Ok(invalid.iter().any(|f| names.contains(&f.name.as_str())).then_some(()))
            })
            .await;
        if let Err(e) = found {
            // the browser's own checks (required, pattern) stop a form without an alert or aria-invalid
            let natively = b
                .execute(
                    "return Array.from(document.querySelectorAll(':invalid')).filter(e => e.validationMessage)\
                     .map(e => (e.labels && e.labels[0] ? e.labels[0].innerText : e.name) + ': ' + e.validationMessage);",
                    vec![],
                )
                .await?;
            bail!("{e:#}\nthe browser's own validation says: {natively}");
        }
        Ok(())
    }

    async fn finish(self) -> Result<()> {
        self.b.quit().await?;
        self.server.stop().await;
        Ok(())
    }
}

/// `ocpoll serve` (in process, on a fresh SQLite store) with `--listen 127.0.0.1:PORT --public-url
/// http://127.0.0.1:PORT` and `args`: the port is picked before, so the public URL can be given (tried again
/// when another process took the port in between).
async fn serve_on_a_known_port(args: &[String]) -> Result<Server> {
    let mut last = None;
    for _ in 0..3 {
        let port = free_port()?;
        let root = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["--listen", listen.as_str(), "--public-url", root.as_str()];
        all.extend(args.iter().map(String::as_str));
        let settings = ServeSettings::from_args(all)?;
        let test_store = testing::sqlite().await;
        let keys = oc_bin::keys::ServerKeys::derive(&test_store.options().key);
        match oc_bin::service::start(&settings, test_store.store(), &keys, Arc::new(SystemClock)).await {
            Ok(running) => {
                return Ok(Server {
                    api: format!("{root}/elements/api-v2"),
                    root,
                    running,
                    http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
                    test_store,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("ocpoll did not start")))
}

/// The cookies of `after` that `before` did not have (by name and value): what signing in set.
fn session_cookies(before: &[Cookie], after: &[Cookie]) -> Vec<Cookie> {
    after.iter().filter(|a| !before.iter().any(|b| b.name == a.name && b.value == a.value)).cloned().collect()
}

/// A field by its label; of a number and a slider sharing a label, the number.
async fn field(b: &Browser, label: &str) -> Result<Element> {
    let by = By::Field(label.into());
    b.find(&by).await?;
    for e in b.elements(&by).await? {
        if e.is_displayed().await? && e.attribute("type").await?.as_deref() != Some("range") {
            return Ok(e);
        }
    }
    b.find(&by).await
}

/// The JSON the code view labelled `event.poller.configuration` shows.
async fn code_view(b: &Browser) -> Result<Value> {
    let text = b.labelled("event.poller.configuration").await?.content().await?;
    serde_json::from_str(&text).with_context(|| format!("the code view holds no JSON: {text:?}"))
}

/// Types `text` into the code view, after "Edit" when it is shown read-only.
async fn edit_code_view(b: &Browser, text: &str) -> Result<()> {
    let view = By::Labelled("event.poller.configuration".into());
    let mut editor = editable(&b.find(&view).await?).await?;
    if editor.is_none() {
        b.control("Edit").await?.click().await?;
        editor = b
            .wait_for("an editable code view after Edit", WAIT, async || match b.rendered(&view).await? {
                Some(v) => editable(&v).await,
                None => Ok(None),
            })
            .await
            .map(Some)?;
    }
    let editor = editor.context("no editable code view")?;
    editor.set(text).await
}

/// The element itself when it takes typing, else the first text area or `contenteditable` inside it.
async fn editable(view: &Element) -> Result<Option<Element>> {
    if view.is_editable().await? {
        return Ok(Some(view.clone()));
    }
    for e in view.find_css("textarea, [contenteditable=''], [contenteditable=true]").await? {
        if e.is_editable().await? {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// Waits for the Events table's row of `object` and `event_type` whose Status satisfies `status`.
async fn event_row(b: &Browser, object: &str, event_type: &str, status: impl Fn(&str) -> bool) -> Result<Row> {
    b.wait_for(&format!("the {event_type} event of {object} in the Events table"), LIVE, async || {
        let Some(table) = b.try_table(&EVENTS).await? else { return Ok(None) };
        Ok(table
            .find(&[("Object ID", object), ("Type", event_type)])
            .filter(|r| r.get("Status").is_some_and(&status))
            .cloned())
    })
    .await
}

/// A Status that says delivered (Open Connectors' `NOTIFIED`, or ocpoll's `delivered`).
fn is_delivered(status: &str) -> bool {
    let s = status.to_ascii_uppercase();
    s.contains("NOTIFIED") || s.contains("DELIVERED")
}

/// The keys of `event.poller.configuration`, sorted (it may come as an object or as a JSON string).
fn resources_of(conf: &Value) -> Vec<String> {
    let c = &conf["event.poller.configuration"];
    let parsed = match c {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    let mut keys: Vec<String> = parsed.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}
