//! `cargo xtask schemathesis [--max-examples N] [--hold] [--keep] [-- SCHEMATHESIS ARGS]`: the API fuzzed against its own
//! OpenAPI document with schemathesis (PyPI).
//!
//! 1. A Python venv under the target directory (`schemathesis-venv`, reused while it holds the pinned version) with
//!    `schemathesis==SCHEMATHESIS_VERSION`.
//! 2. `ocpoll sim` (Sage simulator, one OAuth app, background activity) and `ocpoll serve` against it on SQLite in a
//!    fresh directory, with bootstrap credentials, a callback receiver of our own (answering 200 and 500 in turn, so
//!    that notifications are delivered and fail, and operational alerts are raised) and one delivery attempt per
//!    notification.
//! 3. `seed.py`: instances created through the API with codes from the simulator, then an event, a notification,
//!    an alert, a customer and a configuration entry waited for; it writes the run's `schemathesis.toml` (the
//!    committed `xtask/schemathesis/schemathesis.toml` — the checks and any temporary exclusion — plus the
//!    credentials and path parameters).
//! 4. `schemathesis run` against `/elements/api-v2/openapi.json`, bounded; any finding fails the task.
//!
//! `--keep` keeps the run's directory (logs, configuration, report) after a successful run too (a failed run keeps
//! it always). `--hold` stops after step 3 and keeps the stack running (printing where and how to call it) until Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};

use crate::{cargo, run, workspace_root};

/// The schemathesis release used (works with CPython 3.9 and later; checked with 3.11).
pub(crate) const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The checks of every response: no 5xx, a documented status, a documented content type (a plain-text error
/// where the document says JSON fails), a body matching the documented schema.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Test cases per operation unless `--max-examples` says otherwise.
const DEFAULT_MAX_EXAMPLES: u32 = 20;

/// The whole schemathesis run's budget (`--max-time`), in seconds.
const MAX_SECONDS: u32 = 150;

/// Runs the task.
pub(crate) fn task(args: &[String]) -> Result<()> {
    let mut max_examples = DEFAULT_MAX_EXAMPLES;
    let mut hold = false;
    let mut keep = false;
    let mut extra: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--max-examples" | "-n" => {
                let v = it.next().ok_or_else(|| anyhow!("--max-examples needs a number"))?;
                max_examples = v.parse().with_context(|| format!("--max-examples {v:?}"))?;
            }
            "--hold" => hold = true,
            "--keep" => keep = true,
            "--" => extra.extend(it.by_ref().cloned()),
            other => {
                bail!(
                    "unknown flag {other:?}; usage: cargo xtask schemathesis [--max-examples N] [--hold] [--keep] [-- ARGS]"
                )
            }
        }
    }
    let started = Instant::now();
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() { target } else { root.join(target) };

    let venv = target.join("schemathesis-venv");
    let schemathesis = ensure_venv(&venv)?;
    let python = venv.join("bin").join("python");

    let mut build = cargo();
    build.args(["build", "-p", "oc-bin", "--bin", "ocpoll"]).current_dir(&root);
    run("build ocpoll", build)?;
    let ocpoll = target.join("debug").join("ocpoll");

    let dir = RunDir::create(&target)?;
    eprintln!("\n==> start the simulator and ocpoll serve (SQLite in {})", dir.0.display());
    let receiver = Receiver::start()?;
    let stamp = unique();
    let client_id = format!("schemathesis-app-{stamp}");
    let client_secret = format!("schemathesis-secret-{stamp}");
    let redirect_uri = format!("http://{}/oauth/callback", receiver.addr);
    let mut sim = Process::spawn(
        "ocpoll sim",
        Command::new(&ocpoll).args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "--activity",
            "120",
            "--app",
            &format!("{client_id}:{client_secret}:{redirect_uri}"),
        ]),
        &dir.0.join("sim.log"),
        Stream::Stdout,
    )?;
    let authorize = sim.wait_for_line("  authorize  ")?;
    let token_url = sim.wait_for_line("  token      ")?;
    let api_url = sim.wait_for_line("  api        ")?;

    let org_secret = format!("schemathesis-org-{stamp}");
    let user_secret = format!("schemathesis-user-{stamp}");
    let mut serve = Process::spawn(
        "ocpoll serve",
        Command::new(&ocpoll)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.0.join("ocpoll.db").display()))
            .args(["--sage-api-url", &api_url, "--sage-authorize-url", &authorize, "--sage-token-url", &token_url])
            .args(["--sage-rate-limit", "100000", "--allow-private-callbacks"])
            .args(["--organization-secret", &org_secret, "--user-secret", &user_secret])
            .args(["--delivery-retries", "0", "--delivery-timeout-seconds", "5"])
            .args(["--operational-webhook-url", &format!("http://{}/operational", receiver.addr)])
            .args(["--operational-webhook-secret", "schemathesis-operational-secret"])
            .env("RUST_LOG", "info,sqlx=warn")
            .env_remove("OCPOLL_DATABASE_URL")
            .env_remove("OCPOLL_LISTEN")
            .env_remove("OCPOLL_MASTER_KEY")
            .env_remove("OCPOLL_MASTER_KEY_FILE"),
        &dir.0.join("serve.log"),
        Stream::Stderr,
    )?;
    let api = serve.wait_for_line("ocpoll: API at ")?;
    let api = api.split_whitespace().next().unwrap_or_default().trim_end_matches(',').to_string();
    eprintln!("simulator at {api_url}, ocpoll API at {api} (logs: {})", dir.0.display());

    let authorization = format!("User {user_secret}, Organization {org_secret}");
    let config = dir.0.join("schemathesis.toml");
    let here = root.join("xtask").join("schemathesis");
    let mut seed = Command::new(&python);
    seed.arg(here.join("seed.py"))
        .args(["--api", &api, "--authorize-url", &authorize, "--client-id", &client_id])
        .args(["--client-secret", &client_secret, "--redirect-uri", &redirect_uri])
        .args(["--callback-url", &format!("http://{}/events", receiver.addr), "--authorization", &authorization])
        .arg("--body")
        .arg(root.join("tests").join("fixtures").join("seed-instance-body-example.json"))
        .arg("--config-in")
        .arg(here.join("schemathesis.toml"))
        .arg("--config-out")
        .arg(&config);
    run("seed instances, events, notifications and alerts through the API", seed)?;

    if hold {
        eprintln!(
            "\nholding (Enter or Ctrl-C ends): API {api}\n  Authorization: {authorization}\n  config {}",
            config.display()
        );
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            // no terminal: hold until killed
            Ok(0) | Err(_) => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Ok(_) => {
                serve.stop();
                sim.stop();
                dir.remove();
                return Ok(());
            }
        }
    }

    let openapi = format!("{api}/openapi.json");
    let mut st = Command::new(&schemathesis);
    st.arg("--config-file")
        .arg(&config)
        .args(["run", &openapi])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--max-time", &MAX_SECONDS.to_string()])
        // one worker: hypothesis' lambda descriptions are not thread-safe on CPython 3.11 ("AST constructor
        // recursion depth mismatch" runtime errors with several)
        .args(["--request-timeout", "10", "--workers", "1", "--no-color"])
        .args(["--generation-database", "none", "--suppress-health-check", "too_slow,filter_too_much"])
        .arg("--report")
        .arg("junit")
        .arg("--report-dir")
        .arg(dir.0.join("report"))
        .args(&extra)
        .current_dir(&dir.0)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("HYPOTHESIS_STORAGE_DIRECTORY", dir.0.join("hypothesis"));
    eprintln!("\nschemathesis {SCHEMATHESIS_VERSION}: every operation of {openapi}");
    eprintln!("  checks {CHECKS}");
    eprintln!("  at most {max_examples} cases per operation, {MAX_SECONDS} s in all");
    let result = run("schemathesis run", st);
    serve.stop();
    sim.stop();
    match &result {
        Ok(()) if !keep => dir.remove(),
        _ => eprintln!("the logs, the configuration and the JUnit report are kept in {}", dir.0.display()),
    }
    eprintln!(
        "schemathesis task: {} in {:.1}s",
        if result.is_ok() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}

/// The venv's `schemathesis`, installing the pinned version when the venv does not hold it.
fn ensure_venv(venv: &Path) -> Result<PathBuf> {
    let bin = venv.join("bin");
    let schemathesis = bin.join("schemathesis");
    let installed = Command::new(&schemathesis)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if installed.as_deref().is_some_and(|v| v.ends_with(SCHEMATHESIS_VERSION)) {
        eprintln!("schemathesis {SCHEMATHESIS_VERSION} found in {}", venv.display());
        return Ok(schemathesis);
    }
    if !bin.join("python").exists() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut mk = Command::new(&python);
        mk.args(["-m", "venv"]).arg(venv);
        run(&format!("create a Python venv with {python} in {}", venv.display()), mk)?;
    }
    let mut pip = Command::new(bin.join("python"));
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet"])
        .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}"));
    run(&format!("pip install schemathesis=={SCHEMATHESIS_VERSION}"), pip)?;
    Ok(schemathesis)
}

fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{:x}{:x}{}", nanos, std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The run's directory (database, logs, configuration, report) under the target directory; removed after a
/// successful run, kept after a failed one.
struct RunDir(PathBuf);

impl RunDir {
    fn create(target: &Path) -> Result<RunDir> {
        let dir = target.join("schemathesis-runs").join(unique());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(RunDir(dir))
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which output of a child carries the lines waited for.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// A child process whose output is copied to a log file; killed when dropped.
struct Process {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path, stream: Stream) -> Result<Process> {
        let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let other = file.try_clone()?;
        cmd.stdin(Stdio::null());
        match stream {
            Stream::Stdout => cmd.stdout(Stdio::piped()).stderr(other),
            Stream::Stderr => cmd.stderr(Stdio::piped()).stdout(other),
        };
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let out: Box<dyn Read + Send> = match stream {
            Stream::Stdout => Box::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?),
            Stream::Stderr => Box::new(child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?),
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut file = std::io::LineWriter::new(file);
            for line in BufReader::new(out).lines().map_while(std::result::Result::ok) {
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        Ok(Process { name, child, lines, log: log.to_path_buf() })
    }

    /// The rest of the first line starting with `prefix` (trimmed), waiting up to a minute.
    fn wait_for_line(&mut self, prefix: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(_) => bail!("{} did not print {prefix:?}; see {}", self.name, self.log.display()),
            }
        }
    }

    fn stop(&mut self) {
        // SIGKILL: the run's directory goes anyway, and SQLite survives it
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A callback receiver: answers `200` and `500` in turn to every request (so that, with no retries, some
/// notifications are delivered and some fail).
struct Receiver {
    addr: std::net::SocketAddr,
}

impl Receiver {
    fn start() -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the callback receiver")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            let mut n = 0u64;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                n += 1;
                let status = if n % 2 == 1 { "200 OK" } else { "500 Internal Server Error" };
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = read_request(&mut stream);
                    let _ = write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                });
            }
        });
        Ok(Receiver { addr })
    }
}

/// Reads one request (head and `content-length` bytes of body).
fn read_request(stream: &mut std::net::TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)
}
