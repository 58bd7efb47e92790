//! `cocoon audit`: compare deployed code with this repository's build and decode every state field.

use anyhow::Result;
use clap::{Args, Subcommand};
use cocoon_contracts::chain::{EscrowHandle, RootHandle, StakeHandle};
use cocoon_contracts::messages::NetworkParams;
use cocoon_contracts::state::{ROLE_PROXY, RootStorage};
use cocoon_contracts::{ArcCell, Contract};
use cocoon_ton::{AccountState, HttpTonClient, Network, TonAddress, TonClient, to_friendly};

use crate::common::{contract_address, friendly_raw};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::output::{Fields, OutputArgs};
use crate::wallet::parse_addr;
use crate::{attest, client, ops, receipt, runtime, stake};

/// Audit: deployed code versus this repository, decoded state, the network's registry.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    out: OutputArgs,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check each contract's code hash against the code built from this repository and decode
    /// every field of its state: the root, every registered proxy's vault, and any --stake/--escrow.
    /// Exits 1 if any code differs.
    Contracts {
        /// Another stake contract to audit (e.g. a worker's); repeatable.
        #[arg(long = "stake", value_name = "ADDRESS")]
        stakes: Vec<String>,
        /// An escrow contract to audit; repeatable.
        #[arg(long = "escrow", value_name = "ADDRESS")]
        escrows: Vec<String>,
    },
    /// The network as the root defines it: owner, parameters, image hashes, models, proxies.
    Network,
    /// Verify a proof bundle offline and list every check (the same verification as `cocoon
    /// receipt verify`). Exit 9 if anything fails, 10 if the attestation is simulated or absent
    /// (unless --allow-insecure). Reads the root's image allowlist unless --image is given.
    Receipt(receipt::VerifyArgs),
    /// Run the attested TLS 1.3 handshake with HOST:PORT and report what was verified (the same
    /// check as `cocoon attest endpoint`). Needs no chain.
    Endpoint(attest::EndpointArgs),
    /// Measure an image and check its hash against the root's allowlist for a role.
    ///
    /// Takes the inputs of `cocoon image measure`; with --expected, names the register and event
    /// that differ. Exit 9 if the hash is not allowed.
    Image(crate::image::AuditImageArgs),
}

/// Runs an `audit` subcommand.
pub(crate) fn run(global: &GlobalArgs, args: AuditArgs) -> Result<()> {
    let json = args.out.json;
    match args.command {
        AuditCommand::Receipt(a) => {
            return receipt::verify(global, &a, json, receipt::Style::Audit);
        }
        AuditCommand::Endpoint(a) => return attest::run_endpoint(a, json),
        AuditCommand::Image(a) => return crate::image::run_audit(global, &global.root, a, json),
        AuditCommand::Network | AuditCommand::Contracts { .. } => {}
    }
    let root = global.root.handle()?;
    runtime::block_on(async move {
        let client = global.client()?;
        let network = global.network.ton_network();
        let storage = read_root(&client, &root, network).await?;
        match args.command {
            AuditCommand::Network => network_fields(&root, &storage, network).print(json),
            AuditCommand::Contracts { stakes, escrows } => {
                contracts(&client, &root, &storage, &stakes, &escrows, network, json).await
            }
            AuditCommand::Receipt(_) | AuditCommand::Endpoint(_) | AuditCommand::Image(_) => Ok(()),
        }
    })
}

async fn read_root(
    client: &HttpTonClient,
    root: &RootHandle,
    network: Network,
) -> Result<RootStorage> {
    let info = client.get_address_information(&root.address).await?;
    if info.state != AccountState::Active {
        return Err(fail(
            ExitKind::NotFound,
            format!(
                "no contract at {} on this network (is --root right, and --network?)",
                to_friendly(&root.address, true, network)
            ),
        ));
    }
    root.storage(client).await.map_err(|e| {
        fail(
            ExitKind::Error,
            format!(
                "{} is not a cocoon root (its state does not decode: {e})",
                to_friendly(&root.address, true, network)
            ),
        )
    })
}

fn hash_hex(cell: &ArcCell) -> String {
    hex::encode(cell.cell_hash().as_slice())
}

/// Every field of the network parameters.
pub(crate) fn params_fields(p: &NetworkParams) -> Fields {
    Fields::new()
        .ton("price_per_token", p.price_per_token)
        .add("prompt_mult", p.prompt_mult)
        .add("cached_mult", p.cached_mult)
        .add("completion_mult", p.completion_mult)
        .add("reasoning_mult", p.reasoning_mult)
        .add("worker_share_bps", p.worker_share_bps)
        .ton("min_worker_stake", p.min_worker_stake)
        .ton("min_proxy_stake", p.min_proxy_stake)
        .add("unbond_delay", p.unbond_delay)
        .add("close_delay", p.close_delay)
        .add("equivocation_slash_bps", p.equivocation_slash_bps)
        .add("revoked_slash_bps", p.revoked_slash_bps)
        .add("fault_slash_bps", p.fault_slash_bps)
        .add("reporter_reward_bps", p.reporter_reward_bps)
        .add("burn_slashed", p.burn_slashed)
        .add("grace_period", p.grace_period)
        .add("fault_cap", p.fault_cap)
        .add("fault_period", p.fault_period)
}

fn images(map: &std::collections::BTreeMap<[u8; 32], u32>) -> Vec<Fields> {
    map.iter()
        .map(|(hash, revoked_at)| {
            Fields::new()
                .add("image_hash", hex::encode(hash))
                .add("allowed", *revoked_at == 0)
                .add("revoked_at", *revoked_at)
        })
        .collect()
}

fn proxy_address(account: &[u8; 32]) -> TonAddress {
    TonAddress::new(0, cocoon_ton::TonHash::from(*account))
}

fn network_fields(root: &RootHandle, s: &RootStorage, network: Network) -> Fields {
    let models = s
        .registry
        .models
        .iter()
        .map(|(hash, name)| {
            Fields::new()
                .add("model_hash", hex::encode(hash))
                .add("name", name.clone())
        })
        .collect();
    let proxies = s
        .registry
        .proxies
        .iter()
        .map(|(account, info)| {
            contract_address(Fields::new(), "address", &proxy_address(account), network)
                .add("key", hex::encode(info.key))
                .add(
                    "endpoints",
                    info.endpoints
                        .split(',')
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                )
        })
        .collect();
    contract_address(Fields::new(), "root", &root.address, network)
        .add("owner", friendly_raw(&s.owner.to_hex(), network))
        .add("network_id", s.network_id)
        .add("params_version", s.params_version)
        .nest("params", params_fields(&s.params))
        .list("worker_images", images(&s.registry.worker_images))
        .list("proxy_images", images(&s.registry.proxy_images))
        .list("kms_images", images(&s.kms_images))
        .list("models", models)
        .list("proxies", proxies)
}

/// One contract's code check: `code_hash`, `expected_code_hash`, `code_matches`.
async fn code_check(
    client: &HttpTonClient,
    address: &TonAddress,
    contract: Contract,
) -> Result<(Fields, bool, bool)> {
    let info = client.get_address_information(address).await?;
    let expected = hex::encode(contract.code_hash()?);
    let Some(code) = info.code.filter(|_| info.state == AccountState::Active) else {
        return Ok((
            Fields::new()
                .add("deployed", false)
                .add("expected_code_hash", expected),
            true,
            false,
        ));
    };
    let actual = hash_hex(&code);
    let ok = actual == expected;
    Ok((
        Fields::new()
            .add("deployed", true)
            .add("code_hash", actual)
            .add("expected_code_hash", expected)
            .add("code_matches", ok)
            .ton("balance", info.balance),
        ok,
        true,
    ))
}

async fn contracts(
    client: &HttpTonClient,
    root: &RootHandle,
    s: &RootStorage,
    extra_stakes: &[String],
    extra_escrows: &[String],
    network: Network,
    json: bool,
) -> Result<()> {
    let mut all_ok = true;
    let (root_code, ok, _) = code_check(client, &root.address, Contract::Root).await?;
    all_ok &= ok;
    let stake_code = hash_hex(&s.codes.stake_code);
    let escrow_code = hash_hex(&s.codes.escrow_code);
    let stake_expected = hex::encode(Contract::Stake.code_hash()?);
    let escrow_expected = hex::encode(Contract::Escrow.code_hash()?);
    all_ok &= stake_code == stake_expected && escrow_code == escrow_expected;
    let root_state = Fields::new()
        .add("owner", friendly_raw(&s.owner.to_hex(), network))
        .add(
            "pending_owner",
            s.pending_owner
                .as_ref()
                .map(|a| friendly_raw(&a.to_hex(), network)),
        )
        .add("params_version", s.params_version)
        .ton("kept", s.kept)
        .add("network_id", s.network_id)
        .nest("params", params_fields(&s.params))
        .nest(
            "child_codes",
            Fields::new()
                .add("stake_code_hash", stake_code.clone())
                .add("stake_code_matches", stake_code == stake_expected)
                .add("escrow_code_hash", escrow_code.clone())
                .add("escrow_code_matches", escrow_code == escrow_expected),
        )
        .nest(
            "registry",
            Fields::new()
                .add("worker_images", s.registry.worker_images.len())
                .add("proxy_images", s.registry.proxy_images.len())
                .add("kms_images", s.kms_images.len())
                .add("models", s.registry.models.len())
                .add("proxies", s.registry.proxies.len()),
        );
    let root_fields = contract_address(Fields::new(), "address", &root.address, network)
        .extend(root_code)
        .nest("state", root_state);

    let mut stake_addrs: Vec<(TonAddress, String)> = Vec::new();
    for account in s.registry.proxies.keys() {
        let proxy = proxy_address(account);
        let d = root
            .stake_deployment(client, &proxy, ROLE_PROXY)
            .await
            .map_err(|e| ops::chain_error(e, "deriving a vault address", network))?;
        stake_addrs.push((d.address, "proxy vault".to_string()));
    }
    for text in extra_stakes {
        stake_addrs.push((parse_addr(text)?.0, "given".to_string()));
    }
    let mut stake_list = Vec::new();
    for (addr, source) in stake_addrs {
        let (code, ok, deployed) = code_check(client, &addr, Contract::Stake).await?;
        all_ok &= ok;
        let mut f = contract_address(Fields::new(), "address", &addr, network)
            .add("source", source)
            .extend(code);
        if deployed {
            match StakeHandle::at(addr.clone()).storage(client).await {
                Ok(st) => f = f.nest("state", stake::stake_state_fields(&st, network)),
                Err(e) => f = f.add("state_error", e.to_string()),
            }
        }
        stake_list.push(f);
    }
    let mut escrow_list = Vec::new();
    for text in extra_escrows {
        let addr = parse_addr(text)?.0;
        let (code, ok, deployed) = code_check(client, &addr, Contract::Escrow).await?;
        all_ok &= ok;
        let mut f = contract_address(Fields::new(), "address", &addr, network).extend(code);
        if deployed {
            match EscrowHandle::at(addr.clone()).storage(client).await {
                Ok(st) => f = f.nest("state", client::escrow_state_fields(&st, network)),
                Err(e) => f = f.add("state_error", e.to_string()),
            }
        }
        escrow_list.push(f);
    }
    Fields::new()
        .add("all_code_matches", all_ok)
        .nest("root", root_fields)
        .list("stakes", stake_list)
        .list("escrows", escrow_list)
        .print(json)?;
    if !all_ok {
        return Err(fail(
            ExitKind::Error,
            "deployed code differs from the code built from this repository (see *_matches fields)",
        ));
    }
    Ok(())
}
