//! Issue 20, item 2, as an operator runs them: `ocpoll backup` (a consistent copy of the SQLite database while
//! it serves, 0600, never overwriting, refusing to invent a master key), the restore drill (the copy opens with the
//! same key), `ocpoll doctor` (a line per check, exit 1 on a failure), shell completions and the man page.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use oc_tests::process::ocpoll_binary;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(ocpoll_binary())
        .args(args)
        .env_remove("OCPOLL_MASTER_KEY")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn backup_restore_doctor_completions_and_man() {
    let dir = std::env::temp_dir().join(format!("ocpoll-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("restore")).unwrap();
    let db = dir.join("ocpoll.db");
    let url = format!("sqlite://{}", db.display());
    let (code, text) = run(&["org", "create", "--name", "ops", "--database-url", &url]);
    assert_eq!(code, 0, "{text}");

    // backup: a file of its owner only; the key reminder names the key file
    let copy = dir.join("restore/ocpoll.db");
    let copy_s = copy.display().to_string();
    let (code, text) = run(&["backup", "--database-url", &url, &copy_s]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("backed up") && text.contains(&format!("{}.key", db.display())), "{text}");
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    let (code, text) = run(&["backup", "--database-url", &url, &copy_s]);
    assert!(code != 0 && text.contains("never overwrites"), "{text}");

    // restore: the copy is refused without its key (no new key is made up), opens with it
    let copy_url = format!("sqlite://{copy_s}");
    let (code, text) = run(&["doctor", "--database-url", &copy_url, "--sage-api-url", "http://127.0.0.1:9/v3.1"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL  master key: no master key"), "{text}");
    assert!(!dir.join("restore/ocpoll.db.key").exists(), "doctor made up a key");
    let key = format!("{}.key", db.display());
    let (code, text) = run(&[
        "doctor",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &copy_url,
        "--master-key-file",
        &key,
        "--sage-api-url",
        "http://127.0.0.1:9/v3.1",
        "--sage-token-url",
        "http://127.0.0.1:9/token",
        "--otlp-endpoint",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, 1, "Sage is unreachable: {text}");
    assert!(text.contains("warn  traces: http://127.0.0.1:9/v1/traces: cannot connect to 127.0.0.1:9"), "{text}");
    assert!(text.contains("ok    database: ") && text.contains("ok    master key: "), "{text}");
    assert!(text.contains("FAIL  sage api: http://127.0.0.1:9/v3.1 cannot be reached"), "{text}");
    assert!(text.contains("ok    instances: none yet"), "{text}");
    assert!(text.trim_end().ends_with("2 failure(s), 1 warning(s)"), "{text}");

    let (code, text) = run(&["completions", "bash"]);
    assert!(code == 0 && text.contains("ocpoll") && text.contains("doctor"), "{text}");
    let (code, text) = run(&["man"]);
    assert!(code == 0 && text.contains(".TH ocpoll") && text.contains("backup"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
