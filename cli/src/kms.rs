//! `cocoon kms`: the key service (run it; bind a TD's boot key with the keystore wallet; ask for the
//! public key it releases to a proxy, for governance to register).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use cocoon_attestation as att;
use cocoon_daemon::keys::{
    BootKeyBinding, DEFAULT_BINDING_LIFETIME, KMS_PUBLIC_KEY_PATH, PublicKeyAnswer, kms_client_tls,
    kms_request,
};
use cocoon_daemon::tls::Role;
use cocoon_daemon::tls_config::{TlsMode, TlsSection};
use ed25519_dalek::SigningKey;

use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::output::{Fields, OutputArgs};
use crate::runtime;
use crate::wallet::{parse_addr, unlock};

/// The key service.
#[derive(Debug, Args)]
pub(crate) struct KmsArgs {
    #[command(flatten)]
    out: OutputArgs,
    #[command(subcommand)]
    command: KmsCommand,
}

/// The roles a key service releases keys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TdRole {
    /// A proxy TD (gets its stable key P and storage key S).
    Proxy,
    /// A worker TD (signs with its boot key; gets its storage key).
    Worker,
}

impl TdRole {
    fn role(self) -> Role {
        match self {
            TdRole::Proxy => Role::Proxy,
            TdRole::Worker => Role::Worker,
        }
    }
}

/// How the CLI checks the key service's attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KmsTls {
    /// A TDX quote, verified with `--collateral-file`.
    Tdx,
    /// A simulated quote (INSECURE: development networks only).
    Simulated,
}

#[derive(Debug, Subcommand)]
enum KmsCommand {
    /// Run a key service from its config file (like `cocoon-kms`).
    Run(cocoon_daemon::launch::DaemonArgs),
    /// Bind a TD's boot key with the keystore wallet (the operator's): writes the binding the TD
    /// reads from its `tls.kms_binding_file`.
    Bind {
        /// The TD's role.
        #[arg(long, value_enum)]
        role: TdRole,
        /// The file the TD wrote its boot key to (`<kms_binding_file>.boot-key`).
        #[arg(long, value_name = "FILE", conflicts_with = "boot_key")]
        boot_key_file: Option<PathBuf>,
        /// The boot key itself (64 hex digits), as the TD logged it.
        #[arg(long)]
        boot_key: Option<String>,
        /// Where to write the binding (the TD's `tls.kms_binding_file`).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// How long the binding stays valid, hours.
        #[arg(long, default_value_t = DEFAULT_BINDING_LIFETIME.as_secs() / 3600)]
        valid_hours: u64,
    },
    /// The public key the key service releases to a wallet's proxy (what `gov register-proxy`
    /// registers), asked over RA-TLS after checking the service's image against the root.
    PublicKey {
        /// The key service, HOST:PORT.
        #[arg(long)]
        kms: String,
        /// The proxy operator's wallet.
        #[arg(long)]
        wallet: String,
        /// How the key service attests itself.
        #[arg(long, value_enum, default_value = "tdx")]
        tls_mode: KmsTls,
        /// Intel collateral for a TDX quote (`--tls-mode tdx`).
        #[arg(long, value_name = "FILE")]
        collateral_file: Option<PathBuf>,
    },
}

fn boot_key_from(file: Option<PathBuf>, hex_key: Option<String>) -> Result<[u8; 32]> {
    let text = match (file, hex_key) {
        (Some(path), None) => {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(k)) => k,
        _ => {
            return Err(fail(
                ExitKind::Usage,
                "give the TD's boot key: --boot-key-file FILE or --boot-key HEX",
            ));
        }
    };
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key)
        .map_err(|_| fail(ExitKind::Usage, "a boot key is 64 hex digits"))?;
    Ok(key)
}

/// Runs a `kms` subcommand.
pub(crate) fn run(global: &GlobalArgs, args: KmsArgs) -> Result<()> {
    let json = args.out.json;
    match args.command {
        KmsCommand::Run(run) => runtime::block_on_daemon(cocoon_kms::daemon::run(run)),
        KmsCommand::Bind {
            role,
            boot_key_file,
            boot_key,
            out,
            valid_hours,
        } => {
            let root = global.root.handle()?;
            let boot = boot_key_from(boot_key_file, boot_key)?;
            let wallet = unlock(global)?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let valid_until = now.saturating_add(valid_hours.saturating_mul(3600));
            let binding = BootKeyBinding::sign_with_wallet(
                &wallet,
                role.role(),
                &root.address,
                &boot,
                valid_until,
            )?;
            std::fs::write(&out, serde_json::to_vec_pretty(&binding)?)
                .with_context(|| format!("writing {}", out.display()))?;
            Fields::new()
                .add("role", role.role().as_str())
                .add("wallet", binding.wallet.clone())
                .add("root", binding.root.clone())
                .add("boot_key", binding.boot_key.clone())
                .add("valid_until", valid_until)
                .add("binding_file", out.display().to_string())
                .print(json)
        }
        KmsCommand::PublicKey {
            kms,
            wallet,
            tls_mode,
            collateral_file,
        } => {
            let root = global.root.handle()?;
            let (wallet, _) = parse_addr(&wallet)?;
            runtime::block_on(async move {
                let client = global.client()?;
                let storage = cocoon_onchain::allowlist::root_state(&client, &root.address)
                    .await
                    .context("reading the root's key-service images")?;
                let allowlist = att::InMemoryAllowlist::new();
                allowlist.replace(cocoon_onchain::allowlist::snapshot_of(&storage));
                let section = match tls_mode {
                    KmsTls::Simulated => TlsSection::with_mode(TlsMode::Simulated),
                    KmsTls::Tdx => TlsSection {
                        collateral_file: collateral_file
                            .ok_or_else(|| {
                                fail(
                                    ExitKind::Usage,
                                    "--tls-mode tdx verifies the key service's quote: give --collateral-file",
                                )
                            })?
                            .display()
                            .to_string(),
                        ..TlsSection::with_mode(TlsMode::Tdx)
                    },
                };
                let tls = kms_client_tls(
                    Role::Client,
                    &section,
                    SigningKey::generate(&mut rand::rngs::OsRng),
                    Arc::new(allowlist),
                )?;
                let query = format!(
                    "{KMS_PUBLIC_KEY_PATH}?role=proxy&wallet={}",
                    wallet.to_hex()
                );
                let (status, body) = tokio::time::timeout(
                    Duration::from_secs(30),
                    kms_request(&tls, &kms, hyper::Method::GET, &query, None),
                )
                .await
                .context("the key service did not answer")?
                .map_err(|e| anyhow::anyhow!(e))?;
                anyhow::ensure!(
                    status == 200,
                    "the key service answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                let answer: PublicKeyAnswer = serde_json::from_slice(&body)?;
                Fields::new()
                    .add("role", answer.role.as_str())
                    .add("wallet", answer.wallet)
                    .add("epoch", answer.epoch)
                    .add("public_key", answer.public_key)
                    .print(json)
            })
        }
    }
}
