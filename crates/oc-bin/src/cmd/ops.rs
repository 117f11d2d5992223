//! `ocpoll backup` and `ocpoll doctor`: the operator's commands on a host (docs/operations.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use oc_bin::service::{open_store, open_store_and_keys};
use oc_bin::settings::{DatabaseArgs, ServeSettings};
use oc_model::config::keys;
use oc_model::ports::SystemClock;
use oc_model::secret::redact_url;
use oc_store::{Backend, KeySource, MasterKey};

/// `ocpoll backup`.
#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// Where the copy goes (a new file; never overwritten).
    pub(crate) to: PathBuf,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
}

/// Where the master key comes from, without creating one: an operator's command on an existing database must not
/// leave a new key beside it.
fn key_source(db: &DatabaseArgs) -> Result<KeySource, String> {
    let env = std::env::var(oc_store::MASTER_KEY_ENV).ok().filter(|v| !v.is_empty());
    if db.master_key_file.is_none() && env.is_none() {
        match oc_store::sqlite_key_path(&db.database_url) {
            Some(path) if !path.exists() => {
                return Err(format!(
                    "no master key: {} does not exist, and neither --master-key-file nor {} is given",
                    path.display(),
                    oc_store::MASTER_KEY_ENV
                ));
            }
            None => {
                return Err(format!(
                    "no master key: give --master-key-file or {} for {}",
                    oc_store::MASTER_KEY_ENV,
                    redact_url(&db.database_url)
                ));
            }
            Some(_) => {}
        }
    }
    MasterKey::resolve(&db.database_url, db.master_key_file.as_deref(), env.as_deref())
        .map(|(_, s)| s)
        .map_err(|e| e.to_string())
}

fn key_text(source: &KeySource) -> String {
    match source {
        KeySource::File(p) | KeySource::BesideDatabase(p) | KeySource::Created(p) => {
            format!("the key file {}", p.display())
        }
        KeySource::Env => format!("the value of {}", oc_store::MASTER_KEY_ENV),
    }
}

/// `ocpoll backup PATH`: a consistent copy of the SQLite database, taken while it serves.
pub(crate) async fn backup(args: &BackupArgs) -> Result<()> {
    let source = key_source(&args.database).map_err(anyhow::Error::msg)?;
    let store = open_store(&args.database, Arc::new(SystemClock)).await?;
    if store.backend() == Backend::Postgres {
        store.close().await;
        anyhow::bail!(
            "{} is PostgreSQL: back it up with pg_dump (pg_dump --format=custom --file=ocpoll.dump \"$URL\"; with \
             --schema when ocpoll uses one), and keep the master key beside the dump — see docs/operations.md",
            redact_url(&args.database.database_url)
        );
    }
    let started = Instant::now();
    let bytes = store
        .backup_sqlite(&args.to)
        .await
        .with_context(|| format!("backing up {} to {}", redact_url(&args.database.database_url), args.to.display()))?;
    store.close().await;
    println!(
        "backed up {} to {} ({bytes} bytes, mode 0600) in {:.1} s: a consistent copy, taken while serving",
        redact_url(&args.database.database_url),
        args.to.display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "the copy's tokens and secrets are sealed under the master key, which is not in it: keep {} too, apart \
         from the copy (without it the copy's tokens are lost). Restore: put the copy where --database-url points \
         and start ocpoll with the same key.",
        key_text(&source)
    );
    Ok(())
}

/// One line of `ocpoll doctor`.
struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("ok    {what}: {}", detail.as_ref());
    }
    fn warn(&mut self, what: &str, detail: impl AsRef<str>) {
        self.warnings += 1;
        println!("warn  {what}: {}", detail.as_ref());
    }
    fn fail(&mut self, what: &str, detail: impl AsRef<str>) {
        self.failures += 1;
        println!("FAIL  {what}: {}", detail.as_ref());
    }
}

/// Connects to the host of `url` (no request sent): the time it took, or why not.
async fn connect(url: &str) -> Result<Duration, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = parsed.port_or_known_default().ok_or("no port")?;
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!("no connection to {host}:{port} within 5 s")),
    }
}

/// `ocpoll doctor`: checks what `ocpoll serve` with the same settings would need, one line each; `Ok(false)` when
/// something failed.
pub(crate) async fn doctor(settings: &ServeSettings) -> Result<bool> {
    let mut r = Report { failures: 0, warnings: 0 };
    r.ok(
        "settings",
        format!(
            "listen {}, database {}, Sage {}, private callbacks {}",
            settings.listen,
            redact_url(&settings.database.database_url),
            settings.sage_api_url,
            if settings.allow_private_callbacks { "allowed" } else { "refused" }
        ),
    );
    if let Err(e) = settings.console.default_app() {
        r.fail("settings", format!("the console's Sage app: {e}"));
    }
    match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(_) => r.ok("listen", format!("{} is free", settings.listen)),
        Err(e) => r.warn("listen", format!("{} cannot be bound ({e}): is ocpoll serving already?", settings.listen)),
    }

    let source = match key_source(&settings.database) {
        Ok(source) => source,
        Err(e) => {
            r.fail("master key", e);
            println!("{} failure(s), {} warning(s)", r.failures, r.warnings);
            return Ok(false);
        }
    };
    let store =
        match open_store_and_keys(&settings.database, Arc::new(SystemClock), settings.polling_failing_after()).await {
            Ok((store, _)) => {
                r.ok(
                    "database",
                    format!(
                        "{} opened ({:?}), migrations applied up to schema version {}",
                        redact_url(&settings.database.database_url),
                        store.backend(),
                        oc_store::SCHEMA_VERSION
                    ),
                );
                r.ok("master key", format!("{} opens the database's secrets", key_text(&source)));
                if let KeySource::BesideDatabase(p) | KeySource::Created(p) = &source {
                    r.warn(
                        "master key",
                        format!("back up {} apart from the database: without it the tokens are lost", p.display()),
                    );
                }
                Some(store)
            }
            Err(e) => {
                r.fail("database", format!("{e:#} — check --database-url and the master key ({})", key_text(&source)));
                None
            }
        };

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    for (what, url) in [("sage api", &settings.sage_api_url), ("sage token", &settings.sage_token_url)] {
        let started = Instant::now();
        match http.get(url.as_str()).send().await {
            Ok(answer) => r.ok(
                what,
                format!(
                    "{url} answered HTTP {} in {} ms (reachable)",
                    answer.status().as_u16(),
                    started.elapsed().as_millis()
                ),
            ),
            Err(e) => r.fail(what, format!("{url} cannot be reached: {e} — check the URL, DNS and the firewall")),
        }
    }

    let node = oc_bin::service::node_id(settings);
    match oc_bin::traces::TraceSettings::from_flag_or_env(settings.otlp_endpoint.as_deref(), 1.0, &node) {
        Ok(None) => r.ok("traces", "off (no --otlp-endpoint, no OTEL_EXPORTER_OTLP_ENDPOINT)"),
        // a warning, not a failure: ocpoll serves without its collector and drops the spans it cannot send
        Ok(Some(t)) => match connect(&t.endpoint).await {
            Ok(d) => r.ok(
                "traces",
                format!(
                    "{} accepts connections ({} ms); {} of the polls traced",
                    t.endpoint,
                    d.as_millis(),
                    settings.trace_sample_ratio
                ),
            ),
            Err(e) => {
                r.warn("traces", format!("{}: {e} — spans will be dropped until the collector answers", t.endpoint))
            }
        },
        Err(e) => r.fail("traces", format!("{e:#}")),
    }

    if let Some(url) = &settings.operational_webhook_url {
        match connect(url).await {
            Ok(t) => r.ok("operational webhook", format!("{url} accepts connections ({} ms)", t.as_millis())),
            Err(e) => r.fail("operational webhook", format!("{url}: {e}")),
        }
    }

    if let Some(store) = store {
        let instances = store.instance_summaries().await.context("reading the instances")?;
        if instances.is_empty() {
            r.ok("instances", "none yet");
        }
        for i in &instances {
            let what = format!("instance {} {:?}", i.id, i.name);
            if i.disabled {
                r.ok(&what, "disabled (not polled)");
                continue;
            }
            if !i.valid {
                r.warn(&what, "not valid: authorize it again (PUT /instances/{id} with a new code, or Re-authenticate in the console)");
            }
            for key in [keys::NOTIFICATION_CALLBACK_URL, keys::OPERATIONAL_CALLBACK_URL] {
                let Some(url) = i.configuration.get(key).and_then(|v| v.as_str()) else { continue };
                if let Err(refusal) = oc_notify::ssrf::check_callback(url, settings.allow_private_callbacks).await {
                    r.fail(&what, format!("{key} {url}: {refusal}"));
                    continue;
                }
                match connect(url).await {
                    Ok(t) => r.ok(&what, format!("{key} {url} accepts connections ({} ms)", t.as_millis())),
                    Err(e) => r.fail(&what, format!("{key} {url}: {e} — deliveries are retried until it answers")),
                }
            }
        }
        store.close().await;
    }
    println!(
        "{} failure(s), {} warning(s){}",
        r.failures,
        r.warnings,
        if r.failures == 0 { ": ready to serve" } else { "" }
    );
    Ok(r.failures == 0)
}
