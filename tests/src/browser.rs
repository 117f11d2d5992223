//! A small W3C WebDriver client for the browser tests of the console: it runs `chromedriver` as a child process,
//! opens a headless Chromium session, and finds elements the way a user (and a screen reader) does, by accessible
//! name — candidates are found with a script, and Chrome's own accessible-name computation (WebDriver's
//! `computedlabel`) decides which of them really carry the name.
//!
//! The protocol is JSON over HTTP, so this is reqwest and serde_json, not a WebDriver crate and its dependencies.
//!
//! Skipping works like the PostgreSQL suites: [`Browser::for_test`] gives `None` (after one line on stderr) when
//! Chromium or ChromeDriver is not installed, unless `OCPOLL_REQUIRE_BROWSER=1` (set by `cargo xtask test` when it
//! found a browser, and required by `cargo xtask ci`), in which case it is an error. `$CHROMIUM` and
//! `$CHROMEDRIVER` name the two programs when they are not `chromium` and `chromedriver` on the `PATH`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, SemaphorePermit};

/// `1`: a browser test without a browser fails instead of skipping.
pub const REQUIRE_BROWSER_ENV: &str = "OCPOLL_REQUIRE_BROWSER";
/// `1`: [`Browser::docs_screenshot`] writes `docs/console-NAME.png`.
pub const SCREENSHOTS_ENV: &str = "OCPOLL_SCREENSHOTS";
/// How many browsers may run at once in one test process (default 2).
pub const BROWSERS_ENV: &str = "OCPOLL_BROWSERS";
/// How long the finders ([`Browser::find`], [`Browser::field`], ...) wait for an element to appear.
pub const WAIT: Duration = Duration::from_secs(10);

/// The key of a web element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys for [`Element::send_keys`] (WebDriver's code points).
pub mod keys {
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
    /// Tab.
    pub const TAB: &str = "\u{E004}";
    /// Backspace.
    pub const BACKSPACE: &str = "\u{E003}";
    /// Escape.
    pub const ESCAPE: &str = "\u{E00C}";
    /// Space.
    pub const SPACE: &str = "\u{E00D}";
}

/// Where the browser and its driver are installed.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Chromium (`$CHROMIUM`, else `chromium` or `chromium-browser` on the `PATH`).
    pub chromium: PathBuf,
    /// ChromeDriver (`$CHROMEDRIVER`, else `chromedriver` on the `PATH`).
    pub chromedriver: PathBuf,
}

/// An error answered by the WebDriver server.
#[derive(Debug, Clone)]
pub struct WebDriverError {
    /// The command, e.g. `POST /element/.../click`.
    pub command: String,
    /// The W3C error code, e.g. `no such element`, `stale element reference`.
    pub error: String,
    /// The driver's message (its first line).
    pub message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "webdriver {}: {}: {}", self.command, self.error, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// Whether `e` is a WebDriver error of code `code`.
pub fn is_webdriver_error(e: &anyhow::Error, code: &str) -> bool {
    e.downcast_ref::<WebDriverError>().is_some_and(|w| w.error == code)
}

/// Errors a live page gives while it changes under the test (a re-rendered element, a navigation in progress):
/// waiting retries them.
fn transient(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WebDriverError>().is_some_and(|w| {
        matches!(w.error.as_str(), "stale element reference" | "no such element" | "detached shadow root")
            || w.message.contains("Execution context was destroyed")
            || w.message.contains("Cannot find context")
            || w.message.contains("cannot determine loading status")
    })
}

/// How to find elements: by CSS or XPath, or by role and accessible name as the console's spec names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// A CSS selector.
    Css(String),
    /// An XPath expression.
    XPath(String),
    /// A text field, text area, select or number input (also `role=textbox|combobox|spinbutton|slider`) whose
    /// accessible name is this: its `<label>`, `aria-label` or `aria-labelledby`.
    Field(String),
    /// A checkbox (also `role=checkbox|switch`) with this accessible name.
    Checkbox(String),
    /// A `<button>`, `input[type=submit|button|reset]`, `role=button` or `<summary>` with this accessible name.
    Button(String),
    /// An `a[href]` or `role=link` with this accessible name.
    Link(String),
    /// A button or a link with this accessible name ("reached by a link or button").
    Control(String),
    /// A heading (`h1`–`h6`, `role=heading`) with this text.
    Heading(String),
    /// Any element whose accessible name comes from a label, `aria-label`, `aria-labelledby`, `title` or a
    /// caption (a code view, a region, a table), not from its content.
    Labelled(String),
}

impl By {
    /// The script kind and name of an accessible-name locator.
    fn accessible(&self) -> Option<(&'static str, &str)> {
        match self {
            By::Css(_) | By::XPath(_) => None,
            By::Field(n) => Some(("field", n)),
            By::Checkbox(n) => Some(("checkbox", n)),
            By::Button(n) => Some(("button", n)),
            By::Link(n) => Some(("link", n)),
            By::Control(n) => Some(("control", n)),
            By::Heading(n) => Some(("heading", n)),
            By::Labelled(n) => Some(("labelled", n)),
        }
    }
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Css(s) => write!(f, "the element at css {s:?}"),
            By::XPath(s) => write!(f, "the element at xpath {s:?}"),
            By::Field(n) => write!(f, "a field labelled {n:?}"),
            By::Checkbox(n) => write!(f, "a checkbox labelled {n:?}"),
            By::Button(n) => write!(f, "a button named {n:?}"),
            By::Link(n) => write!(f, "a link named {n:?}"),
            By::Control(n) => write!(f, "a button or link named {n:?}"),
            By::Heading(n) => write!(f, "a heading {n:?}"),
            By::Labelled(n) => write!(f, "an element labelled {n:?}"),
        }
    }
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// `Domain`.
    pub domain: String,
    /// `Path`.
    pub path: String,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `Secure`.
    pub secure: bool,
    /// `SameSite` (`Strict`, `Lax` or `None`), when the browser reports it.
    pub same_site: Option<String>,
    /// When it expires (seconds since the epoch); `None` for a session cookie.
    pub expiry: Option<u64>,
}

impl Cookie {
    fn from_json(v: &Value) -> Cookie {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Cookie {
            name: s("name"),
            value: s("value"),
            domain: s("domain"),
            path: s("path"),
            http_only: v["httpOnly"].as_bool().unwrap_or(false),
            secure: v["secure"].as_bool().unwrap_or(false),
            same_site: v["sameSite"].as_str().map(str::to_string),
            expiry: v["expiry"].as_u64(),
        }
    }

    fn to_json(&self) -> Value {
        let mut c = json!({
            "name": self.name, "value": self.value, "path": self.path,
            "httpOnly": self.http_only, "secure": self.secure,
        });
        if !self.domain.is_empty() {
            c["domain"] = json!(self.domain);
        }
        if let Some(s) = &self.same_site {
            c["sameSite"] = json!(s);
        }
        if let Some(e) = self.expiry {
            c["expiry"] = json!(e);
        }
        c
    }
}

/// A table read at one instant, by its column headers.
#[derive(Debug, Clone)]
pub struct Table {
    /// The table element.
    pub element: Element,
    /// The column headers, in order.
    pub headers: Vec<String>,
    /// The body rows, in order.
    pub rows: Vec<Row>,
}

/// One body row of a [`Table`].
#[derive(Debug, Clone)]
pub struct Row {
    /// The row element (click it to open what it shows).
    pub element: Element,
    /// `(column header, cell text)` in column order.
    pub cells: Vec<(String, String)>,
}

impl Row {
    /// The text of the cell under `column`.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells.iter().find(|(h, _)| h == column).map(|(_, v)| v.as_str())
    }
}

impl Table {
    /// The texts of one column, top to bottom.
    pub fn column(&self, column: &str) -> Vec<&str> {
        self.rows.iter().filter_map(|r| r.get(column)).collect()
    }

    /// The first row whose cells hold every `(column, text)` of `want`.
    pub fn find(&self, want: &[(&str, &str)]) -> Option<&Row> {
        self.rows.iter().find(|r| want.iter().all(|(c, v)| r.get(c) == Some(*v)))
    }
}

/// A field marked `aria-invalid="true"` and the message it points to.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// The field.
    pub element: Element,
    /// Its accessible name (Chrome's).
    pub name: String,
    /// The text of its `aria-errormessage` or `aria-describedby` elements.
    pub message: String,
}

/// One WebDriver session's address and client, shared by the browser and its elements.
#[derive(Debug)]
struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    url: String,
}

impl Session {
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let command = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        // WebDriver wants a JSON body on every POST, `{}` when there is nothing to say.
        if let Some(body) = &body {
            req = req.json(body);
        }
        let resp = req.send().await.with_context(|| format!("webdriver {command}: chromedriver does not answer"))?;
        let text = resp.text().await.with_context(|| format!("webdriver {command}: reading the answer"))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("webdriver {command}: not JSON: {text:.300}"))?;
        if let Some(error) = v["value"]["error"].as_str() {
            let message = v["value"]["message"].as_str().unwrap_or_default();
            return Err(WebDriverError {
                command,
                error: error.to_string(),
                message: message.lines().next().unwrap_or_default().to_string(),
            }
            .into());
        }
        Ok(v["value"].clone())
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.cmd(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.cmd(Method::POST, path, Some(body)).await
    }
}

/// An element of the page.
#[derive(Clone)]
pub struct Element {
    session: Arc<Session>,
    id: String,
    /// What found it, for messages.
    what: String,
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Element({})", self.what)
    }
}

impl Element {
    fn from_json(session: &Arc<Session>, v: &Value, what: &str) -> Option<Element> {
        v[ELEMENT_KEY].as_str().map(|id| Element { session: session.clone(), id: id.to_string(), what: what.into() })
    }

    /// The reference to pass to a script.
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    async fn get(&self, what: &str) -> Result<Value> {
        self.session
            .get(&format!("/element/{}/{what}", self.id))
            .await
            .with_context(|| format!("{} of {}", what, self.what))
    }

    async fn post(&self, what: &str, body: Value) -> Result<Value> {
        self.session
            .post(&format!("/element/{}/{what}", self.id), body)
            .await
            .with_context(|| format!("{what} on {}", self.what))
    }

    async fn script(&self, script: &str) -> Result<Value> {
        self.session
            .post("/execute/sync", json!({"script": script, "args": [self.to_json()]}))
            .await
            .with_context(|| format!("a script on {}", self.what))
    }

    /// Clicks it (scrolled into view; an error when something covers it).
    pub async fn click(&self) -> Result<()> {
        self.post("click", json!({})).await.map(drop)
    }

    /// Types `text` into it (see [`keys`] for Enter, Tab, ...).
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.post("value", json!({"text": text})).await.map(drop)
    }

    /// Empties a field.
    pub async fn clear(&self) -> Result<()> {
        self.post("clear", json!({})).await.map(drop)
    }

    /// Empties a field and types `text`.
    pub async fn set(&self, text: &str) -> Result<()> {
        self.clear().await?;
        if !text.is_empty() {
            self.send_keys(text).await?;
        }
        Ok(())
    }

    /// An HTML attribute.
    pub async fn attribute(&self, name: &str) -> Result<Option<String>> {
        Ok(self.get(&format!("attribute/{name}")).await?.as_str().map(str::to_string))
    }

    /// A DOM property (`value`, `checked`, `validationMessage`, ...).
    pub async fn property(&self, name: &str) -> Result<Value> {
        self.get(&format!("property/{name}")).await
    }

    /// The rendered text.
    pub async fn text(&self) -> Result<String> {
        Ok(self.get("text").await?.as_str().unwrap_or_default().to_string())
    }

    /// A field's current value.
    pub async fn value(&self) -> Result<String> {
        Ok(match self.property("value").await? {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// What a code view shows: the value of a field, else the text of the first `textarea`, `pre` or `code`
    /// inside, else its own text.
    pub async fn content(&self) -> Result<String> {
        let v = self
            .script(
                "const e = arguments[0];
                 const f = e.matches('textarea, input') ? e : e.querySelector('textarea');
                 if (f) return f.value;
                 const c = e.matches('pre, code') ? e : (e.querySelector('pre') || e.querySelector('code'));
                 return (c || e).innerText;",
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Whether it accepts typing (a text field or text area not read-only, or `contenteditable`).
    pub async fn is_editable(&self) -> Result<bool> {
        let v = self
            .script(
                "const e = arguments[0];
                 if (e.isContentEditable) return true;
                 return e.matches('textarea, input') && !e.readOnly && !e.disabled;",
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Whether it is selected (a checkbox, radio or option).
    pub async fn is_selected(&self) -> Result<bool> {
        Ok(self.get("selected").await?.as_bool().unwrap_or(false))
    }

    /// Whether it is enabled.
    pub async fn is_enabled(&self) -> Result<bool> {
        Ok(self.get("enabled").await?.as_bool().unwrap_or(false))
    }

    /// Whether it is rendered (not `display: none` or `visibility: hidden`, itself or an ancestor).
    pub async fn is_displayed(&self) -> Result<bool> {
        Ok(self.script(&format!("{LIB}\nreturn visible(arguments[0]);")).await?.as_bool().unwrap_or(false))
    }

    /// Its tag name, lower case.
    pub async fn tag_name(&self) -> Result<String> {
        Ok(self.get("name").await?.as_str().unwrap_or_default().to_lowercase())
    }

    /// Its accessible name as Chrome computes it.
    pub async fn computed_label(&self) -> Result<String> {
        Ok(self.get("computedlabel").await?.as_str().unwrap_or_default().to_string())
    }

    /// Its ARIA role as Chrome computes it (`checkbox`, `switch`, `button`, `textbox`, ...).
    pub async fn computed_role(&self) -> Result<String> {
        Ok(self.get("computedrole").await?.as_str().unwrap_or_default().to_string())
    }

    /// Whether a checkbox is ticked: `checked` of an input, `aria-checked` of a `role=checkbox|switch`.
    pub async fn checked(&self) -> Result<bool> {
        let v = self
            .script(
                "const e = arguments[0];
                 if (e.matches('input')) return e.checked;
                 return e.getAttribute('aria-checked') === 'true';",
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Ticks or unticks a checkbox (clicking its label when the input itself is visually hidden, as styled
    /// switches do).
    pub async fn set_checked(&self, on: bool) -> Result<()> {
        if self.checked().await? == on {
            return Ok(());
        }
        match self.click().await {
            Ok(()) => {}
            Err(e)
                if is_webdriver_error(&e, "element not interactable")
                    || is_webdriver_error(&e, "element click intercepted") =>
            {
                let label = self.script("const l = arguments[0].labels; return l && l.length ? l[0] : null;").await?;
                let label = Element::from_json(&self.session, &label, &format!("the label of {}", self.what))
                    .ok_or(e)
                    .with_context(|| format!("{} cannot be clicked and has no label", self.what))?;
                label.click().await?;
            }
            Err(e) => return Err(e),
        }
        if self.checked().await? != on {
            bail!("{} is still {} after a click", self.what, if on { "unticked" } else { "ticked" });
        }
        Ok(())
    }

    /// The elements inside it at `css`.
    pub async fn find_css(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.post("elements", json!({"using": "css selector", "value": css})).await?;
        let what = format!("{css:?} in {}", self.what);
        Ok(v.as_array().into_iter().flatten().filter_map(|e| Element::from_json(&self.session, e, &what)).collect())
    }
}

/// A `chromedriver` child process, in a process group of its own and with a `$TMPDIR` of its own, both gone on
/// drop.
struct Driver {
    child: Child,
    port: u16,
    /// `$TMPDIR` of the driver and its browser.
    dir: PathBuf,
    log: PathBuf,
}

impl Driver {
    async fn start(path: &Path, http: &reqwest::Client) -> Result<Driver> {
        let mut last = None;
        // A free port is picked, then given to chromedriver: another process may take it in between; try again.
        for _ in 0..3 {
            let port = free_port()?;
            // the driver's and the browser's temporary files (profile, singleton socket, shared memory) go to a
            // directory of their own, removed on drop: even a browser that exits cleanly leaves some in $TMPDIR
            let dir = std::env::temp_dir().join(format!("ocpoll-browser-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let log = dir.join("chromedriver.log");
            let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
            let child = {
                use std::os::unix::process::CommandExt;
                Command::new(path)
                    .arg(format!("--port={port}"))
                    .env("TMPDIR", &dir)
                    .stdin(Stdio::null())
                    .stdout(file.try_clone()?)
                    .stderr(file)
                    .process_group(0)
                    .spawn()
                    .with_context(|| format!("starting {}", path.display()))?
            };
            let mut driver = Driver { child, port, dir, log };
            match driver.ready(http).await {
                Ok(()) => return Ok(driver),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("chromedriver did not start")))
    }

    async fn ready(&mut self, http: &reqwest::Client) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(20);
        let status = format!("http://127.0.0.1:{}/status", self.port);
        loop {
            if let Some(exit) = self.child.try_wait()? {
                bail!("chromedriver exited ({exit}) before it was ready; its output:\n{}", self.output());
            }
            if let Ok(resp) = http.get(&status).send().await
                && let Ok(v) = resp.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("chromedriver did not say ready within 20 s at {status}; its output:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // asked to, chromedriver quits its browsers and removes their profiles; killed, it would leave them
        request(self.port, "GET", "/shutdown");
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // the group is chromedriver's own (process_group(0)): it holds the browser when all else failed
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free loopback port (free when asked; nothing holds it afterwards).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Browsers running at once in this process: each is a Chromium of a few hundred MB and some CPU.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::env::var(BROWSERS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(2);
        Semaphore::new(n)
    })
}

/// A headless Chromium driven over WebDriver. Dropping it closes the session and kills chromedriver.
pub struct Browser {
    session: Arc<Session>,
    id: String,
    closed: bool,
    navigations: Mutex<Vec<String>>,
    // dropped after the session is closed (fields drop in order, after `Drop::drop`)
    driver: Driver,
    _slot: SemaphorePermit<'static>,
}

impl Browser {
    /// Where Chromium and ChromeDriver are, or why they cannot be used.
    pub fn available() -> std::result::Result<Installed, String> {
        let chromium = locate("CHROMIUM", &["chromium", "chromium-browser"])?;
        let chromedriver = locate("CHROMEDRIVER", &["chromedriver"])?;
        Ok(Installed { chromium, chromedriver })
    }

    /// A browser for the test `test`, or `None` (after one line on stderr) when none is installed and
    /// `OCPOLL_REQUIRE_BROWSER` is not `1`; an error when one is required but missing, or installed but broken.
    pub async fn for_test(test: &str) -> Result<Option<Browser>> {
        match Browser::available() {
            Ok(_) => Browser::start().await.map(Some),
            Err(why) if required() => bail!("{REQUIRE_BROWSER_ENV}=1 but the browser test {test} cannot run: {why}"),
            Err(why) => {
                eprintln!("browser test {test} skipped: {why}");
                Ok(None)
            }
        }
    }

    /// Starts chromedriver and opens a headless Chromium session (waits while [`BROWSERS_ENV`] others run).
    pub async fn start() -> Result<Browser> {
        let installed = Browser::available().map_err(|why| anyhow!("no browser: {why}"))?;
        let slot = slots().acquire().await.context("the browser slots are closed")?;
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(90)).build()?;
        let driver = Driver::start(&installed.chromedriver, &http).await?;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": installed.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=en-US"],
            },
            // the network log lets a test see every document the browser requested, redirects included
            "goog:loggingPrefs": {"performance": "ALL"},
            "timeouts": {"implicit": 0, "pageLoad": 60_000, "script": 30_000},
        }}});
        let url = format!("http://127.0.0.1:{}/session", driver.port);
        let resp = http.post(&url).json(&capabilities).send().await.context("chromedriver does not answer")?;
        let v: Value = resp.json().await.context("a new session: the answer is not JSON")?;
        let Some(id) = v["value"]["sessionId"].as_str() else {
            bail!(
                "chromedriver could not open a session with {}: {}\nchromedriver's output:\n{}",
                installed.chromium.display(),
                v["value"]["message"].as_str().unwrap_or(&v.to_string()),
                driver.output()
            );
        };
        Ok(Browser {
            session: Arc::new(Session { http, url: format!("{url}/{id}") }),
            id: id.to_string(),
            closed: false,
            navigations: Mutex::new(Vec::new()),
            driver,
            _slot: slot,
        })
    }

    /// Closes the session (the browser quits); dropping does it too, blocking.
    pub async fn quit(mut self) -> Result<()> {
        self.closed = true;
        self.session.cmd(Method::DELETE, "", None).await.map(drop)
    }

    // ---- navigation and page ----

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session.post("/url", json!({"url": url})).await.with_context(|| format!("opening {url}")).map(drop)
    }

    /// Goes back in the history.
    pub async fn back(&self) -> Result<()> {
        self.session.post("/back", json!({})).await.map(drop)
    }

    /// Reloads the page.
    pub async fn refresh(&self) -> Result<()> {
        self.session.post("/refresh", json!({})).await.map(drop)
    }

    /// The page's URL.
    pub async fn current_url(&self) -> Result<String> {
        Ok(self.session.get("/url").await?.as_str().unwrap_or_default().to_string())
    }

    /// The page's title.
    pub async fn title(&self) -> Result<String> {
        Ok(self.session.get("/title").await?.as_str().unwrap_or_default().to_string())
    }

    /// The page's source (the DOM serialized as it stands).
    pub async fn source(&self) -> Result<String> {
        Ok(self.session.get("/source").await?.as_str().unwrap_or_default().to_string())
    }

    /// The rendered text of the page (`document.body.innerText`).
    pub async fn page_text(&self) -> Result<String> {
        let v = self.execute("return document.body ? document.body.innerText : '';", vec![]).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` (a function body: `arguments[i]` are `args`, elements as [`Element::to_json`]) and gives
    /// what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.session.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// Every document the browser requested so far (each hop of a redirect chain too), in order.
    pub async fn navigations(&self) -> Result<Vec<String>> {
        let entries = self.session.post("/se/log", json!({"type": "performance"})).await?;
        let mut all = self.navigations.lock().unwrap_or_else(|e| e.into_inner());
        for entry in entries.as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else { continue };
            let Ok(m) = serde_json::from_str::<Value>(message) else { continue };
            let m = &m["message"];
            if m["method"] == "Network.requestWillBeSent"
                && m["params"]["type"] == "Document"
                && let Some(url) = m["params"]["request"]["url"].as_str()
            {
                all.push(url.to_string());
            }
        }
        Ok(all.clone())
    }

    /// Saves a PNG of the viewport to `path` (creating its directory).
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let b64 = self.session.get("/screenshot").await?;
        write_png(path, b64.as_str().unwrap_or_default())
    }

    /// Saves a PNG of the whole height of the page, beyond the viewport, as wide as the viewport, to `path`
    /// (Chrome's DevTools `Page.captureScreenshot` through chromedriver: WebDriver itself only shoots the viewport).
    pub async fn full_page_screenshot(&self, path: &Path) -> Result<()> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let width = metrics["cssLayoutViewport"]["clientWidth"].as_f64().unwrap_or(1280.0);
        let height = metrics["cssContentSize"]["height"].as_f64().unwrap_or(900.0);
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
            )
            .await?;
        write_png(path, shot["data"].as_str().unwrap_or_default())
    }

    /// A Chrome DevTools Protocol command (`goog/cdp/execute`).
    pub async fn cdp(&self, command: &str, params: Value) -> Result<Value> {
        self.session.post("/goog/cdp/execute", json!({"cmd": command, "params": params})).await
    }

    /// Saves the whole page as `docs/console-NAME.png` of the workspace, only when `OCPOLL_SCREENSHOTS=1` (so that
    /// test runs do not rewrite the repository); gives the path written.
    pub async fn docs_screenshot(&self, name: &str) -> Result<Option<PathBuf>> {
        if std::env::var(SCREENSHOTS_ENV).ok().as_deref() != Some("1") {
            return Ok(None);
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("docs").join(format!("console-{name}.png"));
        self.full_page_screenshot(&path).await?;
        Ok(Some(path))
    }

    // ---- cookies and dialogs ----

    /// The cookies of the page's site.
    pub async fn cookies(&self) -> Result<Vec<Cookie>> {
        let v = self.session.get("/cookie").await?;
        Ok(v.as_array().into_iter().flatten().map(Cookie::from_json).collect())
    }

    /// The cookie named `name`, if any.
    pub async fn cookie(&self, name: &str) -> Result<Option<Cookie>> {
        Ok(self.cookies().await?.into_iter().find(|c| c.name == name))
    }

    /// Sets a cookie on the page's site (the page must be of its domain).
    pub async fn add_cookie(&self, cookie: &Cookie) -> Result<()> {
        self.session.post("/cookie", json!({"cookie": cookie.to_json()})).await.map(drop)
    }

    /// Deletes every cookie of the page's site.
    pub async fn delete_cookies(&self) -> Result<()> {
        self.session.cmd(Method::DELETE, "/cookie", None).await.map(drop)
    }

    /// The text of an open `alert`/`confirm`/`prompt`, if one is open.
    pub async fn dialog_text(&self) -> Result<Option<String>> {
        match self.session.get("/alert/text").await {
            Ok(v) => Ok(v.as_str().map(str::to_string)),
            Err(e) if is_webdriver_error(&e, "no such alert") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Accepts the open dialog (OK).
    pub async fn accept_dialog(&self) -> Result<()> {
        self.session.post("/alert/accept", json!({})).await.map(drop)
    }

    /// Dismisses the open dialog (Cancel).
    pub async fn dismiss_dialog(&self) -> Result<()> {
        self.session.post("/alert/dismiss", json!({})).await.map(drop)
    }

    /// The element that has the keyboard focus.
    pub async fn active_element(&self) -> Result<Element> {
        let v = self.session.get("/element/active").await?;
        Element::from_json(&self.session, &v, "the focused element").ok_or_else(|| anyhow!("no focused element"))
    }

    // ---- finding ----

    /// Every element `by` finds now, rendered ones first (accessible-name locators: a rendered element only when
    /// its name as Chrome computes it is exactly the one asked for, white space collapsed; a hidden one, which
    /// Chrome gives no name, when the script finds it so named).
    pub async fn elements(&self, by: &By) -> Result<Vec<Element>> {
        let what = by.to_string();
        let (using, value) = match by {
            By::Css(s) => ("css selector", s.as_str()),
            By::XPath(s) => ("xpath", s.as_str()),
            _ => return self.accessible(by, false).await,
        };
        let v = self.session.post("/elements", json!({"using": using, "value": value})).await?;
        Ok(v.as_array().into_iter().flatten().filter_map(|e| Element::from_json(&self.session, e, &what)).collect())
    }

    /// The first element `by` finds now, if any.
    pub async fn try_find(&self, by: &By) -> Result<Option<Element>> {
        Ok(self.elements(by).await?.into_iter().next())
    }

    /// The first rendered element `by` finds, waiting up to [`WAIT`] for it; the error describes the page.
    pub async fn find(&self, by: &By) -> Result<Element> {
        self.find_within(by, WAIT).await
    }

    /// [`find`](Browser::find), waiting up to `timeout`.
    pub async fn find_within(&self, by: &By, timeout: Duration) -> Result<Element> {
        let until = Instant::now() + timeout;
        loop {
            match self.rendered(by).await {
                Ok(Some(e)) => return Ok(e),
                Ok(None) => {}
                Err(e) if transient(&e) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // the candidates' script may miss a way of naming: ask Chrome about every element of the role
        if by.accessible().is_some()
            && let Some(e) = self.accessible(by, true).await?.into_iter().next()
        {
            eprintln!(
                "browser: {by} was found only by Chrome's name of every element of its role (the harness's script misses how it is named)"
            );
            return Ok(e);
        }
        let hidden = self.elements(by).await.map(|v| !v.is_empty()).unwrap_or(false);
        bail!(
            "{by}: {} after {timeout:?}\n{}",
            if hidden { "one exists but is hidden" } else { "none" },
            self.describe().await
        )
    }

    /// The first rendered element of `by` now, if any (no waiting).
    pub async fn rendered(&self, by: &By) -> Result<Option<Element>> {
        for e in self.elements(by).await? {
            if e.is_displayed().await? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Elements of an accessible-name locator: the script's candidates (or, `every`, all elements of the role),
    /// kept when Chrome's computed name is the one asked for.
    async fn accessible(&self, by: &By, every: bool) -> Result<Vec<Element>> {
        let Some((kind, name)) = by.accessible() else { return Ok(Vec::new()) };
        let script = format!("{LIB}\nreturn find(arguments[0], arguments[1], arguments[2]);");
        let v = self.execute(&script, vec![json!(kind), json!(name), json!(every)]).await?;
        let want = collapse(name);
        let what = by.to_string();
        let mut found: Vec<(bool, Element)> = Vec::new();
        for c in v.as_array().into_iter().flatten() {
            let Some(e) = Element::from_json(&self.session, &c["el"], &what) else { continue };
            let visible = c["visible"].as_bool().unwrap_or(false);
            // Chrome names no hidden element: a hidden one is matched by the script's names alone
            if (!visible && !every) || collapse(&e.computed_label().await?) == want {
                found.push((visible, e));
            }
        }
        found.sort_by_key(|(visible, _)| !*visible);
        Ok(found.into_iter().map(|(_, e)| e).collect())
    }

    /// [`find`](Browser::find) `By::Field(label)`.
    pub async fn field(&self, label: &str) -> Result<Element> {
        self.find(&By::Field(label.into())).await
    }

    /// [`find`](Browser::find) `By::Checkbox(label)`.
    pub async fn checkbox(&self, label: &str) -> Result<Element> {
        self.find(&By::Checkbox(label.into())).await
    }

    /// [`find`](Browser::find) `By::Button(name)`.
    pub async fn button(&self, name: &str) -> Result<Element> {
        self.find(&By::Button(name.into())).await
    }

    /// [`find`](Browser::find) `By::Link(name)`.
    pub async fn link(&self, name: &str) -> Result<Element> {
        self.find(&By::Link(name.into())).await
    }

    /// [`find`](Browser::find) `By::Control(name)`: a button or a link.
    pub async fn control(&self, name: &str) -> Result<Element> {
        self.find(&By::Control(name.into())).await
    }

    /// [`find`](Browser::find) `By::Heading(text)`.
    pub async fn heading(&self, text: &str) -> Result<Element> {
        self.find(&By::Heading(text.into())).await
    }

    /// [`find`](Browser::find) `By::Labelled(name)`.
    pub async fn labelled(&self, name: &str) -> Result<Element> {
        self.find(&By::Labelled(name.into())).await
    }

    /// [`find`](Browser::find) `By::Css(selector)`.
    pub async fn css(&self, selector: &str) -> Result<Element> {
        self.find(&By::Css(selector.into())).await
    }

    /// [`find`](Browser::find) `By::XPath(xpath)`.
    pub async fn xpath(&self, xpath: &str) -> Result<Element> {
        self.find(&By::XPath(xpath.into())).await
    }

    /// The texts of the rendered `role="alert"` elements that say something.
    pub async fn alerts(&self) -> Result<Vec<String>> {
        let script = format!(
            "{LIB}\nreturn Array.from(document.querySelectorAll('[role=alert]')).filter(visible)\
             .map(e => norm(e.innerText)).filter(t => t);"
        );
        let v = self.execute(&script, vec![]).await?;
        Ok(v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect())
    }

    /// The fields marked `aria-invalid="true"`, with their names and messages.
    pub async fn invalid_fields(&self) -> Result<Vec<Invalid>> {
        let script = format!(
            "{LIB}\nreturn Array.from(document.querySelectorAll('[aria-invalid=true]'))\
             .map(e => ({{el: e, message: byIds(e, 'aria-errormessage') || byIds(e, 'aria-describedby') || ''}}));"
        );
        let v = self.execute(&script, vec![]).await?;
        let mut out = Vec::new();
        for c in v.as_array().into_iter().flatten() {
            let Some(element) = Element::from_json(&self.session, &c["el"], "an aria-invalid field") else { continue };
            let name = element.computed_label().await?;
            out.push(Invalid { element, name, message: c["message"].as_str().unwrap_or_default().to_string() });
        }
        Ok(out)
    }

    /// The first table (`<table>`, `role=table|grid`) whose column headers include every one of `columns`, read
    /// now, if any.
    pub async fn try_table(&self, columns: &[&str]) -> Result<Option<Table>> {
        let script = format!("{LIB}\nreturn tables(arguments[0]);");
        let v = self.execute(&script, vec![json!(columns)]).await?;
        let Some(t) = v.as_array().and_then(|a| a.first()) else { return Ok(None) };
        let what = format!("the table with the columns {columns:?}");
        let element =
            Element::from_json(&self.session, &t["el"], &what).ok_or_else(|| anyhow!("{what}: no element"))?;
        let headers: Vec<String> =
            t["headers"].as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_string)).collect();
        let mut rows = Vec::new();
        for (i, r) in t["rows"].as_array().into_iter().flatten().enumerate() {
            let Some(row) = Element::from_json(&self.session, &r["el"], &format!("row {} of {what}", i + 1)) else {
                continue;
            };
            let cells = r["cells"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap_or_default().to_string());
            rows.push(Row { element: row, cells: headers.iter().cloned().zip(cells).collect() });
        }
        Ok(Some(Table { element, headers, rows }))
    }

    /// [`try_table`](Browser::try_table), waiting up to [`WAIT`] for the table to appear.
    pub async fn table(&self, columns: &[&str]) -> Result<Table> {
        self.wait_for(&format!("a table with the columns {columns:?}"), WAIT, async || self.try_table(columns).await)
            .await
    }

    /// Waits until `check` gives `Some`, for at most `timeout`, trying again every 100 ms (and on the errors of a
    /// page changing under it); the error says what was awaited and describes the page.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl AsyncFnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let until = Instant::now() + timeout;
        let mut last = None;
        loop {
            match check().await {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => {}
                Err(e) if transient(&e) => last = Some(e),
                Err(e) => return Err(e.context(format!("while waiting for {what}"))),
            }
            if Instant::now() > until {
                let last = last.map(|e| format!("\nlast error: {e:#}")).unwrap_or_default();
                bail!("timed out after {timeout:?} waiting for {what}{last}\n{}", self.describe().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the page offers, for error messages: URL, title, headings, alerts and the names of its controls.
    pub async fn describe(&self) -> String {
        let script = format!("{LIB}\nreturn describe();");
        match self.execute(&script, vec![]).await {
            Ok(v) => {
                let list = |k: &str| {
                    let items: Vec<String> = v[k]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str())
                        .take(40)
                        .map(|s| format!("{s:?}"))
                        .collect();
                    format!("  {k}: [{}]", items.join(", "))
                };
                let mut out = format!("the page: {} (title {:?})", v["url"].as_str().unwrap_or("?"), v["title"]);
                for k in ["headings", "alerts", "fields", "checkboxes", "buttons", "links"] {
                    out.push('\n');
                    out.push_str(&list(k));
                }
                out
            }
            Err(e) => format!("(the page could not be described: {e:#})"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            // an orphaned Chromium would outlive the test
            request(self.driver.port, "DELETE", &format!("/session/{}", self.id));
        }
    }
}

/// `METHOD path` to chromedriver over a plain TCP connection (Drop cannot await), waiting up to 10 s for the whole
/// answer (chromedriver keeps the connection open after it: the answer's length says when it is complete).
fn request(port: u16, method: &str, path: &str) {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            return;
        }
        answer.extend_from_slice(&chunk[..n]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return;
            }
        }
    }
}

/// Writes the base64 PNG `b64` to `path`, creating its directory.
fn write_png(path: &Path, b64: &str) -> Result<()> {
    let png = base64::engine::general_purpose::STANDARD.decode(b64).context("the screenshot is not base64")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
}

fn required() -> bool {
    std::env::var(REQUIRE_BROWSER_ENV).is_ok_and(|v| v == "1")
}

/// `$env` when set, else the first of `names` on the `PATH`.
fn locate(env: &str, names: &[&str]) -> std::result::Result<PathBuf, String> {
    if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(format!("${env} is {} which is not an executable file", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if executable(&p) {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "{} is not on the PATH (install Debian's chromium and chromium-driver, or set ${env})",
        names.join(" or ")
    ))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// White space collapsed and trimmed, as accessible names are compared.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page-side half of the finders: candidates by role and name (Chrome's computed label then decides), tables
/// by column headers, and a summary of the page for error messages.
const LIB: &str = r#"
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
// Rendered: not `display: none` or `visibility: hidden`, itself or an ancestor. The visually hidden input of a
// styled switch counts: it is there for the keyboard.
const visible = el => el.checkVisibility ? el.checkVisibility({visibilityProperty: true})
  : !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
const byIds = (el, attr) => {
  const ids = el.getAttribute(attr);
  if (!ids) return '';
  return norm(ids.split(/\s+/).map(id => document.getElementById(id)).filter(Boolean)
    .map(r => r.innerText || r.textContent || '').join(' '));
};
const SEL = {
  field: 'input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]):not([type=image])' +
         ':not([type=checkbox]):not([type=radio]), textarea, select, [role=textbox], [role=combobox], ' +
         '[role=spinbutton], [role=searchbox], [role=slider], [contenteditable=""], [contenteditable=true]',
  checkbox: 'input[type=checkbox], [role=checkbox], [role=switch]',
  button: 'button, input[type=submit], input[type=button], input[type=reset], input[type=image], [role=button], ' +
          'summary',
  link: 'a[href], area[href], [role=link]',
  heading: 'h1, h2, h3, h4, h5, h6, [role=heading]',
  labelled: '[aria-label], [aria-labelledby], [title], input, textarea, select, table, figure, fieldset',
};
SEL.control = SEL.button + ', ' + SEL.link;
// The kinds whose elements are named by their content.
const BY_CONTENT = {checkbox: true, button: true, link: true, control: true, heading: true};
const labelText = l => {
  const c = l.cloneNode(true);
  c.querySelectorAll('input, select, textarea').forEach(n => n.remove());
  return norm(c.textContent);
};
// Every name an element may carry; Chrome's computed label decides which one counts.
function names(el, kind) {
  const out = [byIds(el, 'aria-labelledby'), norm(el.getAttribute('aria-label'))];
  if (el.labels) for (const l of el.labels) out.push(labelText(l));
  if (el.matches('input[type=submit], input[type=button], input[type=reset]')) out.push(norm(el.value));
  if (BY_CONTENT[kind] && !el.matches('input, textarea, select')) out.push(norm(el.innerText || el.textContent));
  if (el.matches('table') && el.caption) out.push(norm(el.caption.innerText));
  if (el.matches('figure')) { const c = el.querySelector('figcaption'); if (c) out.push(norm(c.innerText)); }
  if (el.matches('fieldset')) { const c = el.querySelector('legend'); if (c) out.push(norm(c.innerText)); }
  out.push(norm(el.getAttribute('title')), norm(el.getAttribute('placeholder')));
  return out.filter(Boolean);
}
function find(kind, name, every) {
  const want = norm(name);
  return Array.from(document.querySelectorAll(SEL[kind]))
    .filter(el => every || names(el, kind).includes(want))
    .map(el => ({el: el, visible: visible(el)}));
}
function readTable(t) {
  const owner = 'table, [role=table], [role=grid], [role=treegrid]';
  const rows = Array.from(t.querySelectorAll('tr, [role=row]')).filter(r => r.closest(owner) === t);
  let headers = null;
  const out = [];
  for (const r of rows) {
    const cells = Array.from(r.children).filter(c =>
      c.matches('th, td, [role=columnheader], [role=cell], [role=gridcell], [role=rowheader]'));
    if (!cells.length) continue;
    if (headers === null && cells.every(c => c.matches('th, [role=columnheader]'))) {
      headers = cells.map(c => norm(c.innerText));
      continue;
    }
    out.push({el: r, cells: cells.map(c => norm(c.innerText))});
  }
  return {el: t, headers: headers || [], rows: out};
}
function tables(columns) {
  return Array.from(document.querySelectorAll('table, [role=table], [role=grid], [role=treegrid]'))
    .filter(visible).map(readTable).filter(t => columns.every(c => t.headers.includes(c)));
}
function describe() {
  const named = kind => Array.from(document.querySelectorAll(SEL[kind])).filter(visible)
    .map(el => names(el, kind)[0] || '(no name)');
  return {
    url: location.href, title: document.title,
    headings: named('heading'), fields: named('field'), checkboxes: named('checkbox'),
    buttons: named('button'), links: named('link'),
    alerts: Array.from(document.querySelectorAll('[role=alert]')).filter(visible).map(e => norm(e.innerText)),
  };
}
"#;
