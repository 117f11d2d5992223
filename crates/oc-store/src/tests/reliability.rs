//! Reliability of the write path (issue 18): a failed write, a failed `COMMIT` or a full disk must not wedge the
//! store; the write probe behind `/readyz` tells whether the store can write.

use std::path::{Path, PathBuf};

use oc_model::ports::{Principal, StoreError};

use super::prelude::*;
use super::{customers, on_both, open, t0};
use crate::db::args;
use crate::testing;
use crate::{Backend, MasterKey, SqlStore, StoreOptions, connect_with};

/// A heartbeat: the smallest write of the store.
async fn beat(s: &SqlStore) -> Result<(), StoreError> {
    s.heartbeat("probe-node", t0(), false).await
}

/// A write that grows the database by about `kib` KiB: an instance with a large configuration value.
async fn grow(s: &SqlStore, owner: Principal, kib: usize) -> Result<(), StoreError> {
    let mut configuration = customers();
    configuration.insert("ballast", serde_json::Value::String("x".repeat(kib * 1024)));
    s.create_instance(&testing::new_instance(owner, configuration, t0())).await.map(drop)
}

/// A statement failing with "database or disk is full" in the middle of a transaction (SQLite's
/// `max_page_count` stands for the disk) leaves the single writer connection usable: later writes succeed once
/// there is room again, without a restart.
async fn a_full_database_mid_transaction_does_not_wedge_the_writer(b: Backend) {
    if b == Backend::Postgres {
        return; // `max_page_count` is SQLite's; PostgreSQL: `a_failed_commit_does_not_wedge_the_writer`
    }
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (_, owner) = testing::organization(&*s).await;
    beat(&s).await.expect("a first write");
    // the writer connection may grow the database by nothing more
    let mut tx = s.pools.write().await.unwrap();
    let pages = tx.c().one("PRAGMA page_count", args![]).await.unwrap().i64("page_count").unwrap();
    tx.c().all(&format!("PRAGMA max_page_count = {pages}"), args![]).await.unwrap();
    tx.commit().await.unwrap();
    let err = grow(&s, owner, 256).await.expect_err("no room");
    assert!(err.to_string().contains("full"), "{err}");
    // room again (on the same connection, if it is still the writer's; a fresh connection has no limit)
    let mut tx = s.pools.write().await.expect("the writer is not wedged");
    tx.c().all("PRAGMA max_page_count = 1073741823", args![]).await.unwrap();
    tx.commit().await.unwrap();
    beat(&s).await.expect("writes recover");
    grow(&s, owner, 256).await.expect("large writes recover");
}

/// A `COMMIT` refused (a deferred constraint checked at commit) leaves the writer usable on both backends.
async fn a_failed_commit_does_not_wedge_the_writer(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let mut tx = s.pools.write().await.unwrap();
    let ddl = if b == Backend::Postgres {
        "CREATE TABLE deferred_check (id BIGINT PRIMARY KEY, parent BIGINT REFERENCES deferred_check (id) \
         DEFERRABLE INITIALLY DEFERRED)"
    } else {
        "CREATE TABLE deferred_check (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES deferred_check (id) \
         DEFERRABLE INITIALLY DEFERRED)"
    };
    tx.c().exec(ddl, args![]).await.unwrap();
    tx.commit().await.unwrap();
    for _ in 0..3 {
        let mut tx = s.pools.write().await.expect("the writer is not wedged");
        tx.c().exec("INSERT INTO deferred_check (id, parent) VALUES (1, 42)", args![]).await.unwrap();
        let err = tx.commit().await.expect_err("the deferred foreign key fails at COMMIT");
        assert!(err.to_string().to_lowercase().contains("foreign key"), "{err}");
        beat(&s).await.expect("the next write succeeds");
    }
    // nothing of the refused transactions stayed
    let mut conn = s.pools.read().await.unwrap();
    let n = conn.c().one("SELECT COUNT(*) AS n FROM deferred_check", args![]).await.unwrap().i64("n").unwrap();
    assert_eq!(n, 0);
}

/// A transaction dropped before its end (an error returned with `?`, a cancelled request) is rolled back, and
/// the writer serves the next write.
async fn a_dropped_transaction_is_rolled_back(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    for _ in 0..3 {
        let mut tx = s.pools.write().await.expect("the writer is not wedged");
        tx.c()
            .exec("INSERT INTO nodes (node_id, beats, started_at, heartbeat_at) VALUES ('dropped', 1, 0, 0)", args![])
            .await
            .unwrap();
        drop(tx);
        beat(&s).await.expect("the next write succeeds");
    }
    let nodes: Vec<String> = s.nodes().await.unwrap().into_iter().map(|n| n.node).collect();
    assert_eq!(nodes, ["probe-node"], "the dropped transactions left nothing");
}

/// Makes every write of the probe row fail (as a full disk would), or lets it through again.
async fn refuse_probe_writes(s: &SqlStore, b: Backend, refuse: bool) {
    let statements: &[&str] = match (b, refuse) {
        (Backend::Sqlite, true) => &["CREATE TRIGGER probe_refused BEFORE INSERT ON meta \
             BEGIN SELECT RAISE(ABORT, 'simulated: database or disk is full'); END"],
        (Backend::Sqlite, false) => &["DROP TRIGGER probe_refused"],
        (Backend::Postgres, true) => &[
            "CREATE FUNCTION probe_refused() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'simulated: could not extend file: No space left on device'; END $$",
            "CREATE TRIGGER probe_refused BEFORE INSERT ON meta FOR EACH ROW EXECUTE FUNCTION probe_refused()",
        ],
        (Backend::Postgres, false) => &["DROP TRIGGER probe_refused ON meta", "DROP FUNCTION probe_refused()"],
    };
    let mut tx = s.pools.write().await.unwrap();
    for sql in statements {
        tx.c().exec(sql, args![]).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The write probe fails while the store cannot write and recovers by itself once it can; between two real
/// writes it repeats its last answer.
async fn the_write_probe_tells_whether_the_store_can_write(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let every = crate::maintenance::WRITE_PROBE_EVERY;
    let mut now = t0();
    s.write_probe(now).await.expect("a healthy store can write");
    refuse_probe_writes(&s, b, true).await;
    s.write_probe(now + every / 2).await.expect("within the interval, the last answer stands");
    now += every;
    let err = s.write_probe(now).await.expect_err("the store cannot write");
    assert!(err.to_string().contains("the store cannot write") && err.to_string().contains("simulated"), "{err}");
    // reads still answer: only the probe tells
    s.outbox_stats(now).await.expect("reads answer");
    refuse_probe_writes(&s, b, false).await;
    assert!(s.write_probe(now).await.is_err(), "the failure stands for its interval");
    now += every;
    s.write_probe(now).await.expect("recovers by itself");
    // a clock set back probes again rather than trusting an answer from the future
    refuse_probe_writes(&s, b, true).await;
    assert!(s.write_probe(t0()).await.is_err());
}

/// Ten concurrent read–merge–writes through `modify_instance`, each adding one key: every key remains; a change
/// answered `None` changes nothing.
async fn concurrent_modifications_lose_nothing(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = super::setup(&s, customers()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let s = s.clone();
        tasks.spawn(async move {
            s.modify_instance(owner.org_id, inst.id, &mut |current| {
                let mut configuration = current.configuration.clone();
                configuration.insert(format!("custom.key.{n}"), serde_json::json!(n));
                Some(oc_model::ports::InstanceUpdate {
                    configuration: Some(configuration),
                    secret_keys: oc_model::config::SecretKeys::default(),
                    now: t0(),
                    ..Default::default()
                })
            })
            .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.unwrap().unwrap().is_some());
    }
    let after = s.instance(owner.org_id, inst.id).await.unwrap().unwrap();
    let kept: Vec<i64> = (0..10).filter(|n| after.configuration.get(&format!("custom.key.{n}")).is_some()).collect();
    assert_eq!(kept, (0..10).collect::<Vec<_>>());
    let unchanged = s.modify_instance(owner.org_id, inst.id, &mut |_| None).await.unwrap();
    assert!(unchanged.is_none());
    assert_eq!(s.instance(owner.org_id, inst.id).await.unwrap().unwrap(), after);
    beat(&s).await.expect("the writer serves the next write");
}

on_both!(
    concurrent_modifications_lose_nothing,
    the_write_probe_tells_whether_the_store_can_write,
    a_full_database_mid_transaction_does_not_wedge_the_writer,
    a_failed_commit_does_not_wedge_the_writer,
    a_dropped_transaction_is_rolled_back,
);

/// A directory on a tmpfs of `size` (unmounted and removed on drop); `None` where mounting is not permitted.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = std::env::temp_dir().join(format!("ocpoll-full-disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(SmallDisk(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The database on a small disk: writes until the disk is full (a `COMMIT` or a statement fails with "database
/// or disk is full"), then space is freed, and writes succeed again by themselves — no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_wedge_the_sqlite_store() {
    let disk = match SmallDisk::mount("2m") {
        Ok(disk) => disk,
        Err(reason) => {
            eprintln!("SKIPPED a_full_disk_does_not_wedge_the_sqlite_store: {reason} (needs root or CAP_SYS_ADMIN)");
            return;
        }
    };
    // ballast that, removed, frees the disk
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024]).unwrap();
    let url = format!("sqlite://{}", disk.path().join("ocpoll.db").display());
    let s = connect_with(StoreOptions::new(url, MasterKey::generate())).await.expect("a store on the small disk");
    let (_, owner) = testing::organization(&s).await;
    let mut full = None;
    for _ in 0..200 {
        if let Err(e) = grow(&s, owner, 64).await {
            full = Some(e);
            break;
        }
    }
    let full = full.expect("the disk fills up");
    assert!(full.to_string().contains("full"), "{full}");
    // while full, small writes may fail, but never with a wedged connection
    for _ in 0..3 {
        if let Err(e) = beat(&s).await {
            assert!(!e.to_string().contains("transaction depth"), "wedged: {e}");
        }
    }
    // the probe of /readyz answers what a small write meets: it may still fit in the WAL already on disk, but
    // it never finds a wedged writer
    let every = crate::maintenance::WRITE_PROBE_EVERY;
    let mut now = t0();
    if let Err(e) = s.write_probe(now).await {
        assert!(!e.to_string().contains("transaction depth"), "wedged: {e}");
    }
    std::fs::remove_file(&ballast).unwrap();
    beat(&s).await.expect("writes recover once there is room");
    grow(&s, owner, 64).await.expect("large writes recover too");
    now += every;
    s.write_probe(now).await.expect("ready again by itself");
    s.close().await;
}

/// The mode of a file, without its type bits.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The database and its `-wal` and `-shm` are created readable by their owner only, whatever the umask
/// (the tests run under the usual 022), and those of an earlier version are narrowed at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ocpoll.db");
    let files = [db.clone(), dir.path().join("ocpoll.db-wal"), dir.path().join("ocpoll.db-shm")];
    let key = MasterKey::generate();
    let options = StoreOptions::new(format!("sqlite://{}", db.display()), key);
    let s = connect_with(options.clone()).await.expect("a new store");
    beat(&s).await.unwrap();
    for f in &files {
        assert_eq!(mode_of(f), 0o600, "{} is {:o}", f.display(), mode_of(f));
    }
    // files of an earlier version, readable by every user
    use std::os::unix::fs::PermissionsExt;
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let again = connect_with(options).await.expect("the store reopened");
    beat(&again).await.unwrap();
    for f in &files {
        assert_eq!(mode_of(f), 0o600, "{} is {:o} after reopening", f.display(), mode_of(f));
    }
    again.close().await;
    s.close().await;
}
