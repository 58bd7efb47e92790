//! `cocoon` without a chain: help texts (insta), completions, the keystore, usage errors and exit codes.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A valid TON mnemonic used only by tests (never fund it anywhere real).
const MNEMONIC: &str = "remove enroll margin hip deer remember cement blossom word exist fence work \
    woman proof marine avoid marriage couch assume fancy chunk upper receive icon";

/// Runs `cocoon` with a clean environment: no COCOON_* variables except those given.
fn cocoon(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("COCOON_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("COCOON_DEVNET_DIR", "/nonexistent/cocoon-devnet");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cocoon");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait cocoon")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Every command path of the groups this crate's CLI engineer owns.
const COMMANDS: &[&str] = &[
    "wallet",
    "wallet new",
    "wallet import",
    "wallet address",
    "wallet balance",
    "wallet send",
    "deploy",
    "gov",
    "gov allow-image",
    "gov revoke-image",
    "gov allow-model",
    "gov remove-model",
    "gov register-proxy",
    "gov remove-proxy",
    "gov set-params",
    "gov transfer-owner",
    "gov accept-owner",
    "worker",
    "worker stake",
    "worker unbond",
    "worker withdraw",
    "worker status",
    "worker claim",
    "proxy",
    "proxy stake",
    "proxy unbond",
    "proxy withdraw",
    "proxy status",
    "proxy withdraw-earnings",
    "client",
    "client open",
    "client top-up",
    "client withdraw",
    "client close",
    "client set-key",
    "client status",
    "audit",
    "audit contracts",
    "audit network",
    "kms",
    "kms bind",
    "kms public-key",
    "completions",
];

#[test]
fn help_of_every_command_is_stable() {
    for path in COMMANDS {
        let mut args: Vec<&str> = path.split(' ').collect();
        args.push("--help");
        let o = cocoon(&args, &[], None);
        assert!(o.status.success(), "{path} --help: {}", err(&o));
        let name = format!("help_{}", path.replace([' ', '-'], "_"));
        insta::assert_snapshot!(name, out(&o));
    }
}

#[test]
fn top_level_help_lists_the_groups_and_documents_exit_codes() {
    let o = cocoon(&["--help"], &[], None);
    assert!(o.status.success());
    let help = out(&o);
    for group in [
        "wallet",
        "deploy",
        "gov",
        "worker",
        "proxy",
        "client",
        "audit",
        "kms",
        "completions",
    ] {
        assert!(
            help.contains(&format!("  {group} ")),
            "{group} missing:\n{help}"
        );
    }
    for code in 0..=8 {
        assert!(
            help.contains(&format!("\n  {code}  ")),
            "exit code {code} undocumented"
        );
    }
    for flag in [
        "--network",
        "--api-url",
        "--api-key",
        "--keystore",
        "--tx-timeout",
    ] {
        assert!(help.contains(flag), "{flag} missing");
    }
}

#[test]
fn usage_errors_exit_2_and_print_to_stderr_only() {
    let o = cocoon(&["wallet", "send"], &[], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).is_empty());
    assert!(err(&o).contains("Usage"), "{}", err(&o));
    let o = cocoon(&["--network", "moon", "wallet", "address"], &[], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = cocoon(&["completions", shell], &[], None);
        assert!(o.status.success(), "{shell}: {}", err(&o));
        let script = out(&o);
        assert!(script.contains("cocoon"), "{shell}");
        assert!(script.contains("allow-image"), "{shell} lacks subcommands");
    }
}

fn import(dir: &Path, name: &str, version: &str, mnemonic: &str, pass: &str) -> Output {
    let ks = dir.join(name);
    cocoon(
        &[
            "--keystore",
            ks.to_str().expect("utf-8 path"),
            "wallet",
            "import",
            "--wallet-version",
            version,
            "--json",
        ],
        &[("COCOON_PASSPHRASE", pass)],
        Some(mnemonic),
    )
}

#[test]
fn import_derives_known_addresses_and_keeps_the_mnemonic_encrypted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let mut seen = Vec::new();
    for version in ["v4r2", "v5r1"] {
        let name = format!("{version}.json");
        let o = import(dir.path(), &name, version, MNEMONIC, "correct horse");
        assert!(o.status.success(), "{}", err(&o));
        let mut v: serde_json::Value = serde_json::from_str(&out(&o)).expect("json");
        v["keystore"] = "[keystore]".into();
        seen.push(v["address"].as_str().expect("address").to_string());
        insta::assert_json_snapshot!(format!("import_{version}"), v);
        let path = dir.path().join(&name);
        let text = std::fs::read_to_string(&path).expect("keystore");
        assert!(!text.contains("remove enroll"), "mnemonic in clear");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The address needs no passphrase and agrees with import's.
        let o = cocoon(
            &[
                "--keystore",
                path.to_str().expect("path"),
                "wallet",
                "address",
                "--json",
            ],
            &[],
            None,
        );
        assert!(o.status.success(), "{}", err(&o));
        let a: serde_json::Value = serde_json::from_str(&out(&o)).expect("json");
        assert_eq!(a["address"], v["address"]);
    }
    assert_ne!(seen[0], seen[1], "v4r2 and v5r1 wallets differ");
    // the text form, for people
    let path = dir.path().join("v4r2.json");
    let o = cocoon(
        &["--keystore", path.to_str().expect("p"), "wallet", "address"],
        &[],
        None,
    );
    assert!(o.status.success());
    insta::assert_snapshot!("address_v4r2_text", out(&o));
    // mainnet conventions give another v5r1 address (wallet id) and non-testnet flags
    let path = dir.path().join("v5r1.json");
    let o = cocoon(
        &[
            "--network",
            "mainnet",
            "--keystore",
            path.to_str().expect("p"),
            "wallet",
            "address",
            "--json",
        ],
        &[],
        None,
    );
    let a: serde_json::Value = serde_json::from_str(&out(&o)).expect("json");
    assert!(a["address"].as_str().expect("a").starts_with("UQ"), "{a}");
}

#[test]
fn bad_mnemonics_and_existing_keystores_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = import(dir.path(), "a.json", "v5r1", "abandon ability able", "pw");
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("24"), "{}", err(&o));
    let swapped = MNEMONIC.replacen("remove", "zebra", 1);
    let o = import(dir.path(), "a.json", "v5r1", &swapped, "pw");
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(!dir.path().join("a.json").exists());
    assert!(
        import(dir.path(), "a.json", "v5r1", MNEMONIC, "pw")
            .status
            .success()
    );
    let o = import(dir.path(), "a.json", "v4r2", MNEMONIC, "pw");
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("--force"), "{}", err(&o));
}

#[test]
fn new_hides_the_mnemonic_unless_asked_and_needs_a_passphrase() {
    let dir = tempfile::tempdir().expect("tmp");
    let ks = dir.path().join("n.json");
    let ks = ks.to_str().expect("path");
    // no passphrase and no terminal
    let o = cocoon(&["--keystore", ks, "wallet", "new"], &[], None);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("COCOON_PASSPHRASE"));
    let o = cocoon(
        &["--keystore", ks, "wallet", "new", "--json"],
        &[("COCOON_PASSPHRASE", "p")],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).expect("json");
    assert!(v.get("mnemonic").is_none());
    let o = cocoon(
        &[
            "--keystore",
            ks,
            "wallet",
            "new",
            "--force",
            "--show-mnemonic",
            "--json",
        ],
        &[("COCOON_PASSPHRASE", "p")],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out(&o)).expect("json");
    let words = v["mnemonic"].as_str().expect("mnemonic shown");
    assert_eq!(words.split(' ').count(), 24);
}

#[test]
fn missing_keystore_and_missing_devnet_exit_3() {
    let dir = tempfile::tempdir().expect("tmp");
    let ks = dir.path().join("none.json");
    let o = cocoon(
        &["--keystore", ks.to_str().expect("p"), "wallet", "address"],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("wallet new"), "{}", err(&o));
    let o = cocoon(
        &[
            "wallet",
            "balance",
            "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3",
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("cocoon devnet up"), "{}", err(&o));
}

#[test]
fn unreachable_api_is_a_chain_error() {
    // Port 9 (discard) on loopback: nothing listens there in CI.
    let o = cocoon(
        &[
            "--api-url",
            "http://127.0.0.1:9",
            "wallet",
            "balance",
            "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3",
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
}

#[test]
fn bad_addresses_amounts_and_params_are_usage_errors() {
    let url = ["--api-url", "http://127.0.0.1:9"];
    let o = cocoon(
        &[&url[..], &["wallet", "balance", "not-an-address"]].concat(),
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let dir = tempfile::tempdir().expect("tmp");
    let params = dir.path().join("p.toml");
    std::fs::write(&params, "price_per_token_nano = 1.5\n").expect("write");
    let o = cocoon(
        &["deploy", "--params", params.to_str().expect("p")],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("example-params"), "{}", err(&o));
    let o = cocoon(&["deploy", "--example-params"], &[], None);
    assert!(o.status.success());
    assert!(out(&o).contains("min_worker_stake"));
    let o = cocoon(&["gov", "allow-model", "abcd", "--name", "x"], &[], None);
    assert_eq!(o.status.code(), Some(2), "no root given: {}", err(&o));
}
