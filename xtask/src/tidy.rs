//! Architecture checks: the dependency edges between crates are the ones ARCHITECTURE.md allows, a few
//! third-party crates stay in the crates that own them, and every module opens with a `//!` doc.
//! They run as `#[test]`s (so `cargo xtask test` runs them) and as `cargo xtask tidy`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Allowed edges: crate → (normal deps, dev-only deps).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Edges {
    normal: BTreeMap<String, BTreeSet<String>>,
    dev: BTreeMap<String, BTreeSet<String>>,
}

const START: &str = "<!-- tidy:edges:start -->";
const END: &str = "<!-- tidy:edges:end -->";

/// Third-party crates that only some crates may use (as normal or dev dependencies).
const OWNED: &[(&str, &[&str])] = &[
    // oc-tests: its callback receiver stands for the customer's server
    ("axum", &["oc-bin", "oc-sagesim", "oc-tests"]),
    // oc-tests: the end-to-end tests look at the real database from outside (who holds which lease)
    ("sqlx", &["oc-store", "oc-tests"]),
    ("anyhow", &["oc-bin", "xtask", "oc-tests"]),
    ("clap", &["oc-bin"]),
];

/// Reads the edges block of ARCHITECTURE.md: lines `a -> b, c` and `dev a -> b`.
pub(crate) fn parse_edges(text: &str) -> Result<Edges> {
    let start = text.find(START).context("ARCHITECTURE.md has no tidy:edges block")?;
    let end = text[start..].find(END).context("the tidy:edges block is not closed")? + start;
    let mut edges = Edges::default();
    for line in text[start + START.len()..end].lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("```") || line.starts_with('#') {
            continue;
        }
        let (dev, line) = match line.strip_prefix("dev ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (from, to) = line.split_once("->").with_context(|| format!("bad edge line {line:?}"))?;
        let targets: BTreeSet<String> =
            to.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        let map = if dev { &mut edges.dev } else { &mut edges.normal };
        map.entry(from.trim().to_string()).or_default().extend(targets);
    }
    Ok(edges)
}

fn dep_names(table: Option<&toml::Value>) -> BTreeSet<String> {
    table.and_then(toml::Value::as_table).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

/// Every violation of `manifest` (the Cargo.toml text of package `name`) against `edges`.
pub(crate) fn check_manifest(manifest: &str, edges: &Edges) -> Result<Vec<String>> {
    let doc: toml::Value = toml::from_str(manifest).context("manifest is not TOML")?;
    let name =
        doc.get("package").and_then(|p| p.get("name")).and_then(toml::Value::as_str).context("no package.name")?;
    let normal: BTreeSet<String> =
        dep_names(doc.get("dependencies")).union(&dep_names(doc.get("build-dependencies"))).cloned().collect();
    let dev = dep_names(doc.get("dev-dependencies"));
    let mut problems = Vec::new();
    let Some(allowed) = edges.normal.get(name) else {
        problems.push(format!("{name}: not listed in the ARCHITECTURE.md edges block"));
        return Ok(problems);
    };
    let allowed_dev = edges.dev.get(name).cloned().unwrap_or_default();
    for dep in normal.iter().filter(|d| d.starts_with("oc-")) {
        if !allowed.contains(dep) {
            problems.push(format!("{name} depends on {dep}: not an allowed edge in ARCHITECTURE.md"));
        }
    }
    // a package may dev-depend on itself, to enable a feature of its own for its tests
    for dep in dev.iter().filter(|d| d.starts_with("oc-") && d.as_str() != name) {
        if !allowed.contains(dep) && !allowed_dev.contains(dep) {
            problems.push(format!("{name} dev-depends on {dep}: not an allowed (dev) edge in ARCHITECTURE.md"));
        }
    }
    for (krate, owners) in OWNED {
        if (normal.contains(*krate) || dev.contains(*krate)) && !owners.contains(&name) {
            problems.push(format!("{name} uses {krate}: only {} may", owners.join(", ")));
        }
    }
    Ok(problems)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn manifests(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![root.join("xtask/Cargo.toml"), root.join("tests/Cargo.toml")];
    for entry in fs::read_dir(root.join("crates"))? {
        let p = entry?.path().join("Cargo.toml");
        if p.exists() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Every `.rs` file under the `src/` of a package must open with a `//!` line.
pub(crate) fn missing_module_docs(root: &Path) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for manifest in manifests(root)? {
        let src = manifest.parent().unwrap_or(root).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = fs::read_to_string(&path)?;
                    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("#!["));
                    if !first.is_some_and(|l| l.starts_with("//!")) {
                        missing.push(path.strip_prefix(root).unwrap_or(&path).display().to_string());
                    }
                }
            }
        }
    }
    missing.sort();
    Ok(missing)
}

/// The crates that claim not to know the provider: none of them may name Sage, a Sage field or header, or the
/// hub Sage serves, in code (comments and test modules aside).
const NEUTRAL: &[&str] = &["oc-model", "oc-poller", "oc-notify", "oc-store"];

/// Words a neutral crate's code must not hold (compared in lower case).
const PROVIDER_WORDS: &[&str] = &["sage", "sageone", "x-business", "finance", "\"deleted_at\"", "business_id"];

/// True when `word` stands in `text` as a word of its own (not inside `message` or `sageness`).
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        before.is_none_or(|c| !is_word(c)) && after.is_none_or(|c| !is_word(c))
    })
}

/// Every place a neutral crate names its provider in code: `file:line: the line`.
pub(crate) fn provider_knowledge(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for krate in NEUTRAL {
        let src = root.join("crates").join(krate).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    // a crate's own test suite (`src/tests/`) may name real data
                    if path.file_name().is_some_and(|n| n != "tests") {
                        stack.push(path);
                    }
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = fs::read_to_string(&path)?;
                for (i, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if code.starts_with("#[cfg(test)]") {
                        break; // the unit tests at the end of the file
                    }
                    if code.starts_with("//") {
                        continue;
                    }
                    let lower = code.to_ascii_lowercase();
                    if let Some(word) = PROVIDER_WORDS.iter().find(|w| has_word(&lower, w)) {
                        let shown = path.strip_prefix(root).unwrap_or(&path).display();
                        found.push(format!("{shown}:{}: names {word}: {}", i + 1, code.trim()));
                    }
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The library crates: each denies undocumented public items.
const LIBRARIES: &[&str] =
    &["oc-model", "oc-template", "oc-ceql", "oc-sageone", "oc-poller", "oc-notify", "oc-store", "oc-sagesim"];

/// The library crates whose `lib.rs` does not deny `missing_docs`.
pub(crate) fn undocumented_libraries(root: &Path) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for krate in LIBRARIES {
        let lib = root.join("crates").join(krate).join("src/lib.rs");
        let text = fs::read_to_string(&lib).with_context(|| format!("reading {}", lib.display()))?;
        if !text.lines().any(|l| l.trim() == "#![deny(missing_docs)]") {
            missing.push(format!("crates/{krate}/src/lib.rs: no #![deny(missing_docs)]"));
        }
    }
    Ok(missing)
}

/// All checks; an error lists every violation.
pub(crate) fn run() -> Result<()> {
    let root = workspace_root();
    let edges = parse_edges(&fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?)?;
    let mut problems = Vec::new();
    for m in manifests(&root)? {
        problems.extend(check_manifest(&fs::read_to_string(&m)?, &edges)?);
    }
    problems.extend(missing_module_docs(&root)?.into_iter().map(|p| format!("{p}: no `//!` module doc at the top")));
    problems.extend(provider_knowledge(&root)?);
    problems.extend(undocumented_libraries(&root)?);
    if problems.is_empty() {
        eprintln!("tidy: ok");
        Ok(())
    } else {
        bail!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGES: &str = "x\n<!-- tidy:edges:start -->\n```text\noc-model ->\noc-poller -> oc-model, oc-template\ndev oc-poller -> oc-store\noc-store -> oc-model\n```\n<!-- tidy:edges:end -->\n";

    fn manifest(name: &str, deps: &str, dev: &str) -> String {
        format!("[package]\nname = \"{name}\"\n[dependencies]\n{deps}\n[dev-dependencies]\n{dev}\n")
    }

    #[test]
    fn the_workspace_is_tidy() {
        run().unwrap();
    }

    #[test]
    fn parses_the_edges_block() {
        let e = parse_edges(EDGES).unwrap();
        assert_eq!(e.normal["oc-poller"], BTreeSet::from(["oc-model".to_string(), "oc-template".to_string()]));
        assert!(e.normal["oc-model"].is_empty());
        assert_eq!(e.dev["oc-poller"], BTreeSet::from(["oc-store".to_string()]));
        assert!(parse_edges("no block").is_err());
    }

    #[test]
    fn an_unlisted_edge_is_caught() {
        let e = parse_edges(EDGES).unwrap();
        let ok = manifest("oc-poller", "oc-model.workspace = true", "oc-store.workspace = true");
        assert_eq!(check_manifest(&ok, &e).unwrap(), Vec::<String>::new());
        let bad = manifest("oc-poller", "oc-model.workspace = true\noc-store.workspace = true", "");
        assert_eq!(
            check_manifest(&bad, &e).unwrap(),
            ["oc-poller depends on oc-store: not an allowed edge in ARCHITECTURE.md"]
        );
        let bad_dev = manifest("oc-store", "oc-model.workspace = true", "oc-poller = { path = \"../oc-poller\" }");
        assert_eq!(
            check_manifest(&bad_dev, &e).unwrap(),
            ["oc-store dev-depends on oc-poller: not an allowed (dev) edge in ARCHITECTURE.md"]
        );
        let unlisted = manifest("oc-new", "", "");
        assert_eq!(check_manifest(&unlisted, &e).unwrap(), ["oc-new: not listed in the ARCHITECTURE.md edges block"]);
    }

    #[test]
    fn owned_third_party_crates_stay_home() {
        let e = parse_edges(EDGES).unwrap();
        let m = manifest("oc-poller", "sqlx.workspace = true\naxum.workspace = true", "");
        assert_eq!(
            check_manifest(&m, &e).unwrap(),
            [
                "oc-poller uses axum: only oc-bin, oc-sagesim, oc-tests may",
                "oc-poller uses sqlx: only oc-store, oc-tests may"
            ]
        );
    }

    #[test]
    fn provider_names_in_a_neutral_crate_are_caught() {
        let dir = std::env::temp_dir().join(format!("tidy-neutral-{}", std::process::id()));
        let src = dir.join("crates/oc-poller/src");
        fs::create_dir_all(src.join("tests")).unwrap();
        fs::write(
            src.join("engine.rs"),
            "//! doc mentions Sage, fine\nlet f = \"deleted_at\";\n#[cfg(test)]\nmod tests { const S: &str = \"sage\"; }\n",
        )
        .unwrap();
        fs::write(src.join("tests/data.rs"), "const HUB: &str = \"finance\";\n").unwrap();
        let found = provider_knowledge(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, ["crates/oc-poller/src/engine.rs:2: names \"deleted_at\": let f = \"deleted_at\";"]);
    }

    #[test]
    fn module_docs_are_checked() {
        let dir = std::env::temp_dir().join(format!("tidy-docs-{}", std::process::id()));
        let src = dir.join("crates/oc-x/src");
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(dir.join("xtask/src")).unwrap();
        fs::create_dir_all(dir.join("tests/src")).unwrap();
        fs::write(dir.join("crates/oc-x/Cargo.toml"), "").unwrap();
        fs::write(src.join("lib.rs"), "//! documented\nmod a;\n").unwrap();
        fs::write(src.join("a.rs"), "fn f() {}\n").unwrap();
        let missing = missing_module_docs(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(missing, ["crates/oc-x/src/a.rs"]);
    }
}
