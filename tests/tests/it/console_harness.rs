//! The browser harness (`oc_tests::browser`) against a page of its own that names its elements every way the
//! console's spec allows (`<label for>`, a wrapping label, `aria-label`, `aria-labelledby`, a styled switch, a
//! field behind "Show Optional Fields", an ARIA table, a confirmation dialog): the finders the console's tests
//! rely on are proven before the console exists. Skipped, with one line, where no browser is installed.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use oc_tests::browser::{Browser, By, keys};
use serde_json::Value;

const EVENTS: [&str; 5] = ["Date", "Type", "Resource", "Object ID", "Status"];

const FIXTURE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Harness fixture</title>
<style>.switch input { opacity: 0; position: absolute; width: 1px; height: 1px; }
.switch { display: inline-block; padding: 4px 12px; border: 1px solid; }</style></head>
<body>
<h1>Authenticate an instance</h1>
<div role="alert">Wrong secrets</div>
<div role="alert"></div>
<form id="f" onsubmit="event.preventDefault(); document.getElementById('out').textContent = 'submitted ' + document.getElementById('org').value;">
  <label for="org">Organization secret</label> <input id="org" type="password">
  <label>User secret <input id="user" type="password"></label>
  <span id="cs">Client Secret</span> <input id="secret" aria-labelledby="cs">
  <input id="cb" type="url" aria-label="Event Notification Callback URL" aria-invalid="true" aria-describedby="cb-err">
  <span id="cb-err">event.notification.callback.url: must be an absolute http(s) URL</span>
  <label for="nameof">Name of the thing</label> <input id="nameof">
  <label for="name">Name</label> <input id="name" value="kept">
  <label for="mins">Event poller refresh interval (mins)</label> <input id="mins" type="number" step="any" value="15">
  <label class="switch"><input type="checkbox" id="customers"> customers</label>
  <label><input type="checkbox" id="vendors" checked> vendors</label>
  <span id="ee">Events Enabled</span>
  <button type="button" role="switch" aria-checked="false" aria-labelledby="ee"
    onclick="this.setAttribute('aria-checked', this.getAttribute('aria-checked') === 'true' ? 'false' : 'true')">●</button>
  <button type="button" onclick="document.getElementById('opt').hidden = false">Show Optional Fields</button>
  <div id="opt" hidden><label for="key">Callback Notification Signature Key</label> <input id="key"></div>
  <label for="cfg">event.poller.configuration</label>
  <textarea id="cfg">{"vendors": {"idField": "id"}}</textarea>
  <input type="submit" value="Create Instance">
</form>
<p id="out"></p>
<button type="button" onclick="document.getElementById('out').textContent = confirm('Delete the instance?') ? 'deleted' : 'kept'">Delete</button>
<a href="/redirect">Create Instance</a>
<h2 id="ev">Events</h2>
<table aria-labelledby="ev">
  <thead><tr><th>Date</th><th>Type</th><th>Resource</th><th>Object ID</th><th>Status</th></tr></thead>
  <tbody id="rows"><tr><td>2026-01-01T10:00:00Z</td><td>CREATED</td><td>customers</td><td>c-1</td><td>NOTIFIED</td></tr></tbody>
</table>
<div role="table" aria-label="Polls">
  <div role="row"><span role="columnheader">Window</span> <span role="columnheader">Records</span></div>
  <div role="row"><span role="cell">10:00–10:01</span> <span role="cell">3</span></div>
</div>
<div style="height: 2000px">(room below, for a whole-page screenshot)</div>
<script>
  setTimeout(() => {
    const r = document.createElement('tr');
    r.innerHTML = '<td>2026-01-01T10:05:00Z</td><td>UPDATED</td><td>customers</td><td>c-2</td><td>FAILED</td>';
    document.getElementById('rows').prepend(r);
  }, 700);
  document.cookie = 'visible_to_scripts=1; SameSite=Lax; Path=/';
</script>
</body></html>"#;

/// The width and height of a PNG (from its IHDR chunk), if it is one.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

/// The fixture site: `/form` (which sets an HttpOnly, SameSite=Strict cookie), `/redirect` → `/landing`.
async fn fixture_site() -> String {
    let app = Router::new()
        .route(
            "/form",
            get(|| async {
                ([(header::SET_COOKIE, "sid=s3cret; Path=/; Max-Age=600; HttpOnly; SameSite=Strict")], Html(FIXTURE))
                    .into_response()
            }),
        )
        .route("/redirect", get(|| async { Redirect::to("/landing?from=redirect") }))
        .route("/landing", get(|| async { Html("<!doctype html><title>Landed</title><h1>Landed</h1>") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_harness_finds_elements_by_accessible_name() -> Result<()> {
    let Some(b) = Browser::for_test("console_harness_finds_elements_by_accessible_name").await? else {
        return Ok(());
    };
    let site = fixture_site().await;
    b.goto(&format!("{site}/form")).await?;
    ensure!(b.title().await? == "Harness fixture");
    ensure!(b.source().await?.contains("Harness fixture"));
    ensure!(b.current_url().await? == format!("{site}/form"));

    // Fields by <label for>, a wrapping <label>, aria-labelledby and aria-label; an exact name only.
    b.field("Organization secret").await?.set("org-1").await?;
    b.field("User secret").await?.set("user-1").await?;
    b.field("Client Secret").await?.set("client-secret-1").await?;
    let ids = b.execute("return ['org', 'user', 'secret'].map(i => document.getElementById(i).value);", vec![]).await?;
    ensure!(ids == serde_json::json!(["org-1", "user-1", "client-secret-1"]), "{ids}");
    let name = b.field("Name").await?;
    ensure!(name.attribute("id").await?.as_deref() == Some("name"), "\"Name\" is not \"Name of the thing\"");
    ensure!(name.value().await? == "kept");
    let callback = b.field("Event Notification Callback URL").await?;
    ensure!(callback.computed_label().await? == "Event Notification Callback URL");
    let mins = b.field("Event poller refresh interval (mins)").await?;
    mins.set("0.025").await?;
    ensure!(mins.value().await? == "0.025", "a number field takes fractional minutes");

    // Checkboxes: a visually hidden input in a styled label, a plain one, an ARIA switch.
    let customers = b.checkbox("customers").await?;
    ensure!(!customers.checked().await?);
    customers.set_checked(true).await?;
    ensure!(customers.checked().await? && customers.is_selected().await?);
    ensure!(b.checkbox("vendors").await?.checked().await?);
    let events = b.checkbox("Events Enabled").await?;
    ensure!(events.computed_role().await? == "switch");
    events.set_checked(true).await?;
    ensure!(events.attribute("aria-checked").await?.as_deref() == Some("true"));

    // A field behind "Show Optional Fields": present but hidden, then shown.
    let key = By::Field("Callback Notification Signature Key".into());
    let hidden = b.elements(&key).await?;
    ensure!(hidden.len() == 1 && !hidden[0].is_displayed().await?, "the key field is there, hidden");
    let err = b.find_within(&key, Duration::from_millis(300)).await.expect_err("hidden is not found");
    let err = format!("{err:#}");
    ensure!(err.contains("one exists but is hidden") && err.contains("\"Show Optional Fields\""), "{err}");
    b.button("Show Optional Fields").await?.click().await?;
    b.field("Callback Notification Signature Key").await?.set("key-1").await?;

    // The code view, by its label.
    let config: Value = serde_json::from_str(&b.labelled("event.poller.configuration").await?.content().await?)?;
    ensure!(config["vendors"]["idField"] == "id", "{config}");

    // A button and a link of the same name are told apart; headings; alerts with something to say.
    ensure!(b.button("Create Instance").await?.tag_name().await? == "input");
    ensure!(b.link("Create Instance").await?.tag_name().await? == "a");
    ensure!(b.control("Create Instance").await?.tag_name().await? == "input", "a button comes before a link");
    b.heading("Authenticate an instance").await?;
    b.heading("Events").await?;
    ensure!(b.alerts().await? == ["Wrong secrets"]);
    let invalid = b.invalid_fields().await?;
    ensure!(invalid.len() == 1 && invalid[0].name == "Event Notification Callback URL", "{invalid:?}");
    ensure!(invalid[0].message.contains("must be an absolute http(s) URL"), "{invalid:?}");

    // Tables by their column headers; a row added by a script appears without a reload.
    let marker = b.execute("window.__noReload = 1; return 1;", vec![]).await?;
    ensure!(marker == 1);
    let row = b
        .wait_for("the row of c-2", Duration::from_secs(5), async || {
            Ok(b.try_table(&EVENTS).await?.and_then(|t| t.find(&[("Object ID", "c-2")]).cloned()))
        })
        .await?;
    ensure!(row.get("Type") == Some("UPDATED") && row.get("Status") == Some("FAILED"), "{row:?}");
    let table = b.table(&EVENTS).await?;
    ensure!(table.column("Object ID") == ["c-2", "c-1"], "newest first: {table:?}");
    ensure!(b.execute("return window.__noReload;", vec![]).await? == 1, "the page was not reloaded");
    let polls = b.table(&["Window", "Records"]).await?;
    ensure!(polls.rows.len() == 1 && polls.rows[0].get("Records") == Some("3"), "{polls:?}");
    ensure!(b.try_table(&["Date", "Nope"]).await?.is_none());

    // Cookies with their flags; an HttpOnly cookie is not visible to scripts.
    let sid = b.cookie("sid").await?.context("the sid cookie")?;
    ensure!(sid.http_only && !sid.secure && sid.same_site.as_deref() == Some("Strict") && sid.expiry.is_some());
    let script_cookie = b.cookie("visible_to_scripts").await?.context("the script's cookie")?;
    ensure!(!script_cookie.http_only && script_cookie.same_site.as_deref() == Some("Lax"));
    let document_cookie = b.execute("return document.cookie;", vec![]).await?;
    ensure!(!document_cookie.as_str().unwrap_or_default().contains("s3cret"), "{document_cookie}");

    // The keyboard: Enter in a field submits its form.
    b.field("Organization secret").await?.send_keys(keys::ENTER).await?;
    b.wait_for("the form submitted", Duration::from_secs(5), async || {
        let t = b.css("#out").await?.text().await?;
        Ok((t == "submitted org-1").then_some(()))
    })
    .await?;

    // A confirmation dialog.
    b.button("Delete").await?.click().await?;
    ensure!(b.dialog_text().await?.as_deref() == Some("Delete the instance?"));
    b.accept_dialog().await?;
    ensure!(b.dialog_text().await?.is_none());
    ensure!(b.css("#out").await?.text().await? == "deleted");

    // Screenshots are PNGs: of the viewport (1280 wide), and of the whole page (taller than the viewport).
    let png = std::env::temp_dir().join(format!("ocpoll-harness-{}.png", std::process::id()));
    b.screenshot(&png).await?;
    let viewport = png_size(&std::fs::read(&png)?).context("the viewport's screenshot is no PNG")?;
    b.full_page_screenshot(&png).await?;
    let full = png_size(&std::fs::read(&png)?).context("the whole page's screenshot is no PNG")?;
    std::fs::remove_file(&png)?;
    // (the whole page is as wide as its content: without the vertical scroll bar)
    ensure!(viewport.0 == 1280 && full.0 + 20 >= 1280 && full.1 > viewport.1 + 1000, "{viewport:?} and {full:?}");

    // A missing element: the error describes the page.
    let err = b.find_within(&By::Button("Sign in".into()), Duration::from_millis(200)).await.expect_err("no Sign in");
    let err = format!("{err:#}");
    ensure!(err.contains("a button named \"Sign in\": none") && err.contains("\"Show Optional Fields\""), "{err}");

    // A link through a redirect: every document requested is seen, the redirect's too.
    b.link("Create Instance").await?.click().await?;
    b.heading("Landed").await?;
    ensure!(b.current_url().await? == format!("{site}/landing?from=redirect"));
    let navigations = b.navigations().await?;
    let tail: Vec<&str> = navigations.iter().rev().take(2).rev().map(String::as_str).collect();
    ensure!(tail == [format!("{site}/redirect"), format!("{site}/landing?from=redirect")], "{navigations:?}");
    b.quit().await
}
