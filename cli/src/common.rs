//! Arguments and parsing shared by the contract commands (deploy, gov, worker, proxy, client, audit).

use anyhow::Result;
use clap::{Args, ValueEnum};
use cocoon_contracts::Bits256;
use cocoon_contracts::address::{NETWORK_ID_MAINNET, NETWORK_ID_TESTNET};
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::state::{ROLE_KMS, ROLE_PROXY, ROLE_WORKER};
use cocoon_ton::{Network, TonAddress, to_friendly, to_raw};

use crate::exit::{ExitKind, fail};
use crate::global::{GlobalArgs, NetworkChoice};
use crate::output::Fields;
use crate::wallet::parse_addr;

/// The root contract to talk to.
#[derive(Debug, Clone, Args)]
pub(crate) struct RootArg {
    /// Root contract address (printed by `cocoon deploy`).
    #[arg(long, global = true, env = "COCOON_ROOT", value_name = "ADDRESS")]
    pub(crate) root: Option<String>,
}

impl RootArg {
    /// The root's handle; without `--root` or `COCOON_ROOT`, a usage error.
    pub(crate) fn handle(&self) -> Result<RootHandle> {
        let text = self.root.as_deref().ok_or_else(|| {
            fail(
                ExitKind::Usage,
                "no root contract: pass --root ADDRESS or set COCOON_ROOT (`cocoon deploy` prints it)",
            )
        })?;
        Ok(RootHandle::at(parse_addr(text)?.0))
    }
}

/// A role in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleChoice {
    /// GPU owner serving models.
    Worker,
    /// Router between clients and workers.
    Proxy,
    /// Key service (image allowlist only).
    Kms,
}

impl RoleChoice {
    /// The schema's role number.
    pub(crate) fn code(self) -> u8 {
        match self {
            RoleChoice::Worker => ROLE_WORKER,
            RoleChoice::Proxy => ROLE_PROXY,
            RoleChoice::Kms => ROLE_KMS,
        }
    }

    /// The role's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RoleChoice::Worker => "worker",
            RoleChoice::Proxy => "proxy",
            RoleChoice::Kms => "kms",
        }
    }
}

/// The name of a schema role number.
pub(crate) fn role_name(role: u8) -> String {
    match role {
        ROLE_WORKER => "worker".to_string(),
        ROLE_PROXY => "proxy".to_string(),
        ROLE_KMS => "kms".to_string(),
        other => format!("unknown({other})"),
    }
}

/// Parses a 32-byte hash or key in hex (an optional `0x` prefix is allowed).
pub(crate) fn parse_hash(text: &str, what: &str) -> Result<Bits256> {
    let clean = text.trim().trim_start_matches("0x");
    let bytes =
        hex::decode(clean).map_err(|e| fail(ExitKind::Usage, format!("{what}: not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        fail(
            ExitKind::Usage,
            format!("{what}: expected 32 bytes (64 hex digits), got {}", b.len()),
        )
    })
}

/// The chain's global id for this network, as the root stores it.
pub(crate) fn network_id(global: &GlobalArgs) -> i32 {
    // The devnet's chain runs mainnet's configuration (its global id), whatever its address flavour.
    if global.network == NetworkChoice::Local {
        return cocoon_devnet::GLOBAL_ID;
    }
    match global.network.ton_network() {
        Network::Mainnet => NETWORK_ID_MAINNET,
        Network::Testnet => NETWORK_ID_TESTNET,
    }
}

/// `key` (bounceable user-friendly) and `key_raw` fields for a contract address.
pub(crate) fn contract_address(
    fields: Fields,
    key: &str,
    addr: &TonAddress,
    network: Network,
) -> Fields {
    fields
        .add(key, to_friendly(addr, true, network))
        .add(&format!("{key}_raw"), to_raw(addr))
}

/// Friendly form of a raw address string from decoded state (left as is if it does not parse).
pub(crate) fn friendly_raw(raw: &str, network: Network) -> String {
    cocoon_ton::parse_address(raw)
        .map(|a| to_friendly(&a, true, network))
        .unwrap_or_else(|_| raw.to_string())
}
