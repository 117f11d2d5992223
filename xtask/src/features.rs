//! Each library crate with features built alone in the feature combinations a user may ask for: its library and
//! its unit tests checked and linted (`cargo clippy -p CRATE --lib --tests --no-default-features [--features ...]
//! -- -D warnings`; no code generated, nothing run). The workspace build turns every feature on, so code of one
//! backend that escapes its `#[cfg(feature = ...)]`, or a warning that only a build without it gives, shows here
//! only.

use anyhow::Result;

use crate::{cargo, run, workspace_root};

/// A crate built alone with these feature arguments.
struct Build {
    package: &'static str,
    features: &'static [&'static str],
}

/// Every library crate that declares features appears at least with `--no-default-features` (a test checks it).
const BUILDS: &[Build] = &[
    Build { package: "oc-store", features: &["--no-default-features"] },
    Build { package: "oc-store", features: &["--no-default-features", "--features", "sqlite"] },
    Build { package: "oc-store", features: &["--no-default-features", "--features", "postgres"] },
    Build { package: "oc-poller", features: &["--no-default-features"] },
];

/// Builds each entry of [`BUILDS`]; the first that fails stops the run, named by its crate and features.
pub(crate) fn check_builds() -> Result<()> {
    for b in BUILDS {
        let mut cmd = cargo();
        cmd.args(["clippy", "-p", b.package, "--lib", "--tests"]).args(b.features).args(["--", "-D", "warnings"]);
        cmd.current_dir(workspace_root());
        run(&format!("{} alone ({})", b.package, b.features.join(" ")), cmd)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::LIBRARY_CRATES;

    #[test]
    fn every_library_crate_with_features_is_built_without_its_defaults() {
        for krate in LIBRARY_CRATES {
            let path = workspace_root().join("crates").join(krate).join("Cargo.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            let manifest: toml::Value = toml::from_str(&text).unwrap();
            if manifest.get("features").is_none() {
                continue;
            }
            assert!(
                BUILDS.iter().any(|b| b.package == *krate && b.features == ["--no-default-features"]),
                "{krate} declares features: add {{ package: {krate:?}, features: &[\"--no-default-features\"] }} to \
                 BUILDS in xtask/src/features.rs"
            );
        }
    }
}
