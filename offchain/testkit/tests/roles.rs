//! The workspace's dependency rules, read from `cargo metadata`: no role crate (proxy, worker,
//! gateway, engine, kms) depends on another role crate, and no crate but the CLI (behind its optional
//! `bench` feature) takes the testkit outside its dev-dependencies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

const ROLES: [&str; 5] = [
    "cocoon-proxy",
    "cocoon-worker",
    "cocoon-gateway",
    "cocoon-engine",
    "cocoon-kms",
];

fn workspace_packages() -> Vec<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    meta["packages"].as_array().expect("packages").clone()
}

/// `(dependency name, optional)` of `package`'s normal and build dependencies.
fn shipped_deps(package: &Value) -> Vec<(String, bool)> {
    package["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["kind"].as_str() != Some("dev"))
        .map(|d| {
            let name = d["name"].as_str().expect("name").to_owned();
            (name, d["optional"].as_bool().unwrap_or(false))
        })
        .collect()
}

#[test]
fn no_role_crate_depends_on_another_role_crate() {
    let packages = workspace_packages();
    let mut seen = 0;
    let mut offences = Vec::new();
    for p in &packages {
        let name = p["name"].as_str().unwrap();
        if !ROLES.contains(&name) {
            continue;
        }
        seen += 1;
        for (dep, _) in shipped_deps(p) {
            if ROLES.contains(&dep.as_str()) {
                offences.push(format!("{name} → {dep}"));
            }
        }
    }
    assert_eq!(seen, ROLES.len(), "every role crate is in the workspace");
    assert!(
        offences.is_empty(),
        "role crates depend on each other: {offences:?}"
    );
}

#[test]
fn the_testkit_is_only_a_dev_dependency() {
    let mut offences = Vec::new();
    for p in &workspace_packages() {
        let name = p["name"].as_str().unwrap();
        for (dep, optional) in shipped_deps(p) {
            // The CLI links it only with its `bench` feature, for `cocoon bench`.
            let allowed = name == "cocoon-cli" && optional;
            if dep == "cocoon-testkit" && !allowed {
                offences.push(name.to_owned());
            }
        }
    }
    assert!(
        offences.is_empty(),
        "production crates depending on the testkit: {offences:?}"
    );
}
