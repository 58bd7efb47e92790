//! `cocoon gov`: governance operations on the root (owner only, except accept-owner).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use cocoon_contracts::fees::ROOT_OWNER_OP_VALUE;
use cocoon_contracts::messages::ProxyInfo;

use crate::common::{RoleChoice, contract_address, parse_hash};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::output::{Fields, OutputArgs};
use crate::wallet::{parse_addr, unlock};
use crate::{deploy, ops, runtime, tx};

/// Governance: images, models, proxies, parameters and ownership of the root.
#[derive(Debug, Args)]
pub(crate) struct GovArgs {
    #[command(flatten)]
    out: OutputArgs,
    #[command(subcommand)]
    command: GovCommand,
}

#[derive(Debug, Subcommand)]
enum GovCommand {
    /// Allow a TEE image hash for a role.
    AllowImage {
        /// Role the image may serve as.
        #[arg(long, value_enum)]
        role: RoleChoice,
        /// Image hash (64 hex digits): SHA-256 over MRTD and RTMR0..3.
        hash: String,
    },
    /// Revoke a TEE image hash for a role (the root records when).
    RevokeImage {
        /// Role the image served as.
        #[arg(long, value_enum)]
        role: RoleChoice,
        /// Image hash (64 hex digits).
        hash: String,
    },
    /// Allow a model hash under a readable name.
    AllowModel {
        /// Model hash (64 hex digits).
        hash: String,
        /// Readable name, e.g. qwen3-0.6b.
        #[arg(long)]
        name: String,
    },
    /// Remove a model.
    RemoveModel {
        /// Model hash (64 hex digits).
        hash: String,
    },
    /// Register a proxy (its owner address, signing key and endpoints).
    RegisterProxy {
        /// The proxy operator's wallet address.
        address: String,
        /// The proxy's Ed25519 public key (64 hex digits).
        #[arg(long)]
        key: String,
        /// Endpoint HOST:PORT; repeatable.
        #[arg(long = "endpoint", required = true)]
        endpoints: Vec<String>,
    },
    /// Send a registered proxy's key to its vault (anyone may).
    ///
    /// A vault pays out only against the key the root registered; it learns that key when opened
    /// and through this message, needed after a key change or when the vault was opened before the
    /// proxy was registered.
    SyncVaultKey {
        /// The proxy operator's wallet address.
        address: String,
    },
    /// Remove a registered proxy.
    RemoveProxy {
        /// The proxy operator's wallet address.
        address: String,
    },
    /// Replace the network parameters (bumps the params version).
    SetParams {
        /// Network parameters file (TOML, see `cocoon deploy --example-params`).
        #[arg(long, value_name = "FILE")]
        params: PathBuf,
    },
    /// Propose a new owner (they complete it with `accept-owner`).
    TransferOwner {
        /// The new owner's address.
        new_owner: String,
    },
    /// Accept ownership proposed to the keystore wallet.
    AcceptOwner,
}

/// Runs a `gov` subcommand.
pub(crate) fn run(global: &GlobalArgs, args: GovArgs) -> Result<()> {
    let root = global.root.handle()?;
    let json = args.out.json;
    runtime::block_on(async move {
        let client = global.client()?;
        let wallet = unlock(global)?;
        let network = wallet.network();
        let mut fields = Fields::new();
        let (action, fut_result) = match args.command {
            GovCommand::AllowImage { role, hash } => {
                let h = parse_hash(&hash, "image hash")?;
                fields = fields
                    .add("role", role.name())
                    .add("image_hash", hex::encode(h));
                let f = root.set_image(&client, &wallet, role.code(), h, true);
                (
                    "allow-image",
                    run_op(global, &client, &wallet, "allow-image", f).await,
                )
            }
            GovCommand::RevokeImage { role, hash } => {
                let h = parse_hash(&hash, "image hash")?;
                fields = fields
                    .add("role", role.name())
                    .add("image_hash", hex::encode(h));
                let f = root.set_image(&client, &wallet, role.code(), h, false);
                (
                    "revoke-image",
                    run_op(global, &client, &wallet, "revoke-image", f).await,
                )
            }
            GovCommand::AllowModel { hash, name } => {
                let h = parse_hash(&hash, "model hash")?;
                if name.is_empty() {
                    return Err(fail(ExitKind::Usage, "--name must not be empty"));
                }
                fields = fields
                    .add("model_hash", hex::encode(h))
                    .add("name", name.clone());
                let f = root.set_model(&client, &wallet, h, Some(name));
                (
                    "allow-model",
                    run_op(global, &client, &wallet, "allow-model", f).await,
                )
            }
            GovCommand::RemoveModel { hash } => {
                let h = parse_hash(&hash, "model hash")?;
                fields = fields.add("model_hash", hex::encode(h));
                let f = root.set_model(&client, &wallet, h, None);
                (
                    "remove-model",
                    run_op(global, &client, &wallet, "remove-model", f).await,
                )
            }
            GovCommand::RegisterProxy {
                address,
                key,
                endpoints,
            } => {
                let proxy = parse_addr(&address)?.0;
                let key = parse_hash(&key, "--key")?;
                let joined = endpoints.join(",");
                fields = contract_address(fields, "proxy", &proxy, network)
                    .add("key", hex::encode(key))
                    .add("endpoints", endpoints);
                let info = ProxyInfo {
                    key,
                    endpoints: joined,
                };
                let f = root.set_proxy(&client, &wallet, &proxy, Some(info));
                (
                    "register-proxy",
                    run_op(global, &client, &wallet, "register-proxy", f).await,
                )
            }
            GovCommand::SyncVaultKey { address } => {
                let proxy = parse_addr(&address)?.0;
                fields = contract_address(fields, "proxy", &proxy, network);
                let f = root.sync_vault_key(&client, &wallet, &proxy);
                (
                    "sync-vault-key",
                    run_op(global, &client, &wallet, "sync-vault-key", f).await,
                )
            }
            GovCommand::RemoveProxy { address } => {
                let proxy = parse_addr(&address)?.0;
                fields = contract_address(fields, "proxy", &proxy, network);
                let f = root.set_proxy(&client, &wallet, &proxy, None);
                (
                    "remove-proxy",
                    run_op(global, &client, &wallet, "remove-proxy", f).await,
                )
            }
            GovCommand::SetParams { params } => {
                let p = deploy::load_params(&params)?;
                let f = root.set_params(&client, &wallet, p);
                (
                    "set-params",
                    run_op(global, &client, &wallet, "set-params", f).await,
                )
            }
            GovCommand::TransferOwner { new_owner } => {
                let owner = parse_addr(&new_owner)?.0;
                fields = fields.add("new_owner", cocoon_ton::to_friendly(&owner, false, network));
                let f = root.change_owner(&client, &wallet, &owner);
                (
                    "transfer-owner",
                    run_op(global, &client, &wallet, "transfer-owner", f).await,
                )
            }
            GovCommand::AcceptOwner => {
                let f = root.accept_owner(&client, &wallet);
                (
                    "accept-owner",
                    run_op(global, &client, &wallet, "accept-owner", f).await,
                )
            }
        };
        let outcome = fut_result?;
        let head = contract_address(
            Fields::new().add("action", action),
            "root",
            &root.address,
            network,
        )
        .add("by", wallet.address_friendly());
        let mut all = head;
        all = all.nest("details", fields);
        all.nest("transaction", tx::tx_fields(&outcome.wallet_tx))
            .print(json)
    })
}

async fn run_op<F>(
    global: &GlobalArgs,
    client: &cocoon_ton::HttpTonClient,
    wallet: &cocoon_ton::Wallet,
    what: &str,
    fut: F,
) -> Result<cocoon_contracts::chain::Outcome>
where
    F: std::future::Future<
            Output = Result<cocoon_contracts::chain::Outcome, cocoon_contracts::chain::ChainError>,
        >,
{
    ops::op(global, client, wallet, ROOT_OWNER_OP_VALUE, what, fut).await
}
