//! `cocoon deploy`: deploy a root contract from a TOML parameters file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use cocoon_contracts::Contract;
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::messages::NetworkParams;
use cocoon_ton::TonClient;
use serde::Deserialize;

use crate::common::{contract_address, network_id};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::output::{Fields, OutputArgs};
use crate::wallet::{parse_amount, unlock};
use crate::{ops, runtime, tx};

/// A parameters file to start from (`cocoon deploy --example-params > params.toml`).
pub(crate) const EXAMPLE_PARAMS: &str = r#"# cocoon network parameters. Amounts in TON (decimal strings) unless named *_nano.
# Multipliers: 10000 = 1x. Basis points (bps): 10000 = 100 %. Delays and periods in seconds.
price_per_token_nano = 100
prompt_mult = 10000
cached_mult = 1000
completion_mult = 10000
reasoning_mult = 10000
worker_share_bps = 8000
min_worker_stake = "10"
min_proxy_stake = "20"
unbond_delay = 86400
close_delay = 3600
equivocation_slash_bps = 10000
revoked_slash_bps = 5000
fault_slash_bps = 100
reporter_reward_bps = 1000
burn_slashed = false
grace_period = 3600
fault_cap = 3
fault_period = 86400
"#;

/// The parameters file, as written by people.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    price_per_token_nano: u64,
    prompt_mult: u32,
    cached_mult: u32,
    completion_mult: u32,
    reasoning_mult: u32,
    worker_share_bps: u16,
    min_worker_stake: String,
    min_proxy_stake: String,
    unbond_delay: u32,
    close_delay: u32,
    equivocation_slash_bps: u16,
    revoked_slash_bps: u16,
    fault_slash_bps: u16,
    reporter_reward_bps: u16,
    burn_slashed: bool,
    grace_period: u32,
    fault_cap: u8,
    fault_period: u32,
}

/// Reads and checks a parameters file (exit code 2 when it is wrong).
pub(crate) fn load_params(path: &Path) -> Result<NetworkParams> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            ExitKind::NotFound,
            format!("cannot read parameters file {}: {e}", path.display()),
        )
    })?;
    parse_params(&text).map_err(|e| {
        fail(
            ExitKind::Usage,
            format!(
                "parameters file {}: {e:#} (see `cocoon deploy --example-params`)",
                path.display()
            ),
        )
    })
}

fn parse_params(text: &str) -> Result<NetworkParams> {
    let p: ParamsFile = toml::from_str(text)?;
    for (name, bps) in [
        ("worker_share_bps", p.worker_share_bps),
        ("equivocation_slash_bps", p.equivocation_slash_bps),
        ("revoked_slash_bps", p.revoked_slash_bps),
        ("fault_slash_bps", p.fault_slash_bps),
        ("reporter_reward_bps", p.reporter_reward_bps),
    ] {
        if bps > 10_000 {
            anyhow::bail!("{name} = {bps} is above 10000 (100 %)");
        }
    }
    Ok(NetworkParams {
        price_per_token: u128::from(p.price_per_token_nano),
        prompt_mult: p.prompt_mult,
        cached_mult: p.cached_mult,
        completion_mult: p.completion_mult,
        reasoning_mult: p.reasoning_mult,
        worker_share_bps: p.worker_share_bps,
        min_worker_stake: parse_amount(&p.min_worker_stake, "min_worker_stake")?,
        min_proxy_stake: parse_amount(&p.min_proxy_stake, "min_proxy_stake")?,
        unbond_delay: p.unbond_delay,
        close_delay: p.close_delay,
        equivocation_slash_bps: p.equivocation_slash_bps,
        revoked_slash_bps: p.revoked_slash_bps,
        fault_slash_bps: p.fault_slash_bps,
        reporter_reward_bps: p.reporter_reward_bps,
        burn_slashed: p.burn_slashed,
        grace_period: p.grace_period,
        fault_cap: p.fault_cap,
        fault_period: p.fault_period,
    })
}

/// Deploy a root contract (registry and governance) owned by the keystore wallet.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Network parameters file (TOML).
    #[arg(long, value_name = "FILE", required_unless_present = "example_params")]
    params: Option<PathBuf>,
    /// TON sent to the new root as its balance.
    #[arg(long, default_value = "1")]
    value: String,
    /// Print an example parameters file and exit.
    #[arg(long)]
    example_params: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// Runs `deploy`.
pub(crate) fn run(global: &GlobalArgs, args: DeployArgs) -> Result<()> {
    if args.example_params {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(EXAMPLE_PARAMS.as_bytes())?;
        stdout.flush()?;
        return Ok(());
    }
    let path = args
        .params
        .as_deref()
        .context("--params FILE is required")?;
    let params = load_params(path)?;
    let value = parse_amount(&args.value, "--value")?;
    runtime::block_on(async move {
        let client = global.client()?;
        let wallet = unlock(global)?;
        let network = wallet.network();
        let id = network_id(global);
        let planned = RootHandle::deployment(wallet.address(), id, params.clone())
            .context("building the root's initial state")?;
        let info = client.get_address_information(&planned.address).await?;
        if info.state == cocoon_ton::AccountState::Active {
            return Err(fail(
                ExitKind::Usage,
                format!(
                    "a root with this owner and these parameters is already deployed at {}",
                    cocoon_ton::to_friendly(&planned.address, true, network)
                ),
            ));
        }
        let (root, outcome) = ops::op(
            global,
            &client,
            &wallet,
            value,
            "deploy",
            RootHandle::deploy(&client, &wallet, id, params, value),
        )
        .await?;
        let mut fields = contract_address(Fields::new(), "root", &root.address, network);
        fields = fields
            .add("owner", wallet.address_friendly())
            .add("network_id", id)
            .add("root_code_hash", hex::encode(Contract::Root.code_hash()?))
            .add("stake_code_hash", hex::encode(Contract::Stake.code_hash()?))
            .add(
                "escrow_code_hash",
                hex::encode(Contract::Escrow.code_hash()?),
            )
            .nest("transaction", tx::tx_fields(&outcome.wallet_tx));
        crate::output::note(format!(
            "next: export COCOON_ROOT={}",
            cocoon_ton::to_friendly(&root.address, true, network)
        ));
        fields.print(args.out.json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_params_parse_and_bad_files_are_refused() {
        let p = parse_params(EXAMPLE_PARAMS).expect("example parses");
        assert_eq!(p.min_worker_stake, 10_000_000_000);
        assert_eq!(p.price_per_token, 100);
        let bad = EXAMPLE_PARAMS.replace("worker_share_bps = 8000", "worker_share_bps = 10001");
        assert!(parse_params(&bad).is_err());
        let unknown = format!("{EXAMPLE_PARAMS}\nextra = 1\n");
        assert!(parse_params(&unknown).is_err());
        let float = EXAMPLE_PARAMS.replace("min_worker_stake = \"10\"", "min_worker_stake = 10.5");
        assert!(
            parse_params(&float).is_err(),
            "amounts are strings, never floats"
        );
    }
}
