//! The library crates' `examples/` programs, run as a user runs them (`cargo run -p CRATE --example NAME -- ARGS`),
//! each with the exit code and a line of output it must give; and `cargo package` of every library crate
//! (issue 20: each crate stands alone).

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cargo, run, workspace_root};

/// The library crates, in the order `cargo package` is asked for them.
pub(crate) const LIBRARY_CRATES: &[&str] =
    &["oc-model", "oc-template", "oc-ceql", "oc-sageone", "oc-poller", "oc-notify", "oc-store", "oc-sagesim"];

struct Example {
    package: &'static str,
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    stdin: &'static str,
    code: i32,
    /// A line the output (standard output and error) must contain.
    says: &'static str,
}

const EXAMPLES: &[Example] = &[
    Example {
        package: "oc-store",
        name: "inspect",
        args: &[],
        env: &[],
        stdin: "",
        code: 0,
        says: "Sqlite store, schema version",
    },
    Example {
        package: "oc-store",
        name: "inspect",
        args: &["sqlite:///nonexistent-dir/ocpoll.db", "/nonexistent-dir/ocpoll.db.key"],
        env: &[],
        stdin: "",
        code: 2,
        says: "error: ",
    },
    Example {
        package: "oc-template",
        name: "render",
        args: &[
            "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            "2019-03-25T15:31:02Z",
        ],
        env: &[],
        stdin: "",
        code: 0,
        says: "/hubs/finance/customers?where=lastModifiedDate>='2019-03-25T15:31:02Z'",
    },
    Example {
        package: "oc-ceql",
        name: "parse",
        args: &["name like 'A%' and vip = true"],
        env: &[],
        stdin: r#"{"name": "Acme", "vip": true}"#,
        code: 0,
        says: "matches: true",
    },
    Example {
        package: "oc-ceql",
        name: "parse",
        args: &["name = "],
        env: &[],
        stdin: "",
        code: 2,
        says: "expected a value",
    },
    Example {
        package: "oc-model",
        name: "validate",
        args: &["tests/fixtures/seed-instance-body-example.json"],
        env: &[],
        stdin: "",
        code: 0,
        says: "valid: polls customers",
    },
    Example {
        package: "oc-model",
        name: "validate",
        args: &[],
        env: &[],
        stdin: r#"{"element": {}}"#,
        code: 1,
        says: "element.key: missing",
    },
    Example {
        package: "oc-sageone",
        name: "translate",
        args: &["customers", "lastModifiedDate >= '2024-01-31T10:00:00Z'"],
        env: &[],
        stdin: "",
        code: 0,
        says: "GET /contacts?contact_type_id=CUSTOMER&updated_or_created_since=2024-01-31T10:00:00Z",
    },
    Example {
        package: "oc-notify",
        name: "sign",
        args: &["k3y", r#"{"message":{}}"#],
        env: &[],
        stdin: "",
        code: 0,
        says: "webhook-signature: v1,",
    },
    Example {
        package: "oc-poller",
        name: "plan",
        args: &[r#"{"url": "/x?since=${date:yyyy-QQ}", "idField": "id"}"#],
        env: &[],
        stdin: "",
        code: 1,
        says: "illegal pattern character `Q`",
    },
    Example {
        package: "oc-sagesim",
        name: "serve",
        args: &[],
        env: &[("OC_EXAMPLE_ONCE", "1")],
        stdin: "",
        code: 0,
        says: "api       http://127.0.0.1:",
    },
];

/// Runs every example and checks what it says.
pub(crate) fn run_examples() -> Result<()> {
    let started = Instant::now();
    eprintln!("\n==> the library crates' examples");
    for e in EXAMPLES {
        let mut cmd = cargo();
        cmd.args(["run", "-q", "-p", e.package, "--example", e.name, "--"])
            .args(e.args)
            .current_dir(workspace_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in e.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting the example {} of {}", e.name, e.package))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(e.stdin.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let code = out.status.code().unwrap_or(-1);
        if code != e.code || !text.contains(e.says) {
            bail!(
                "cargo run -p {} --example {} -- {:?} exited {code} (expected {}) saying:\n{text}\n(expected it to say {:?})",
                e.package,
                e.name,
                e.args,
                e.code,
                e.says
            );
        }
        eprintln!("    ok  {} --example {} ({code})", e.package, e.name);
    }
    eprintln!("<== the library crates' examples: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo package` of every library crate together (the workspace's own crates resolve to each other's packages);
/// `verify` also builds each from its package, as a user depending on it would.
pub(crate) fn package(verify: bool) -> Result<()> {
    let mut cmd: Command = cargo();
    cmd.args(["package", "--allow-dirty"]).current_dir(workspace_root());
    if !verify {
        cmd.arg("--no-verify");
    }
    for p in LIBRARY_CRATES {
        cmd.args(["-p", p]);
    }
    let step = if verify {
        "cargo package of each library crate (built from its package)"
    } else {
        "cargo package of each library crate"
    };
    run(step, cmd)
}
