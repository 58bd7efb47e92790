//! Options every command accepts, and the chain connection they resolve to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use cocoon_ton::{HttpTonClient, Network, TonClientConfig};

use crate::common::RootArg;
use crate::exit::{ExitKind, fail};

/// Where the local devnet started by `cocoon devnet up` keeps its PID, URL and state.
pub(crate) const DEFAULT_DEVNET_DIR: &str = ".cache/devnet";

/// Which chain to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NetworkChoice {
    /// The local devnet (`cocoon devnet up`); testnet address conventions.
    Local,
    /// TON testnet through toncenter (or --api-url).
    Testnet,
    /// TON mainnet through toncenter (or --api-url). Real money.
    Mainnet,
}

impl NetworkChoice {
    /// The address and wallet-id conventions of this network.
    pub(crate) fn ton_network(self) -> Network {
        match self {
            NetworkChoice::Local | NetworkChoice::Testnet => Network::Testnet,
            NetworkChoice::Mainnet => Network::Mainnet,
        }
    }

    /// The name as written on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            NetworkChoice::Local => "local",
            NetworkChoice::Testnet => "testnet",
            NetworkChoice::Mainnet => "mainnet",
        }
    }
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Chain to use. `local` finds the devnet started by `cocoon devnet up`.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "COCOON_NETWORK",
        default_value = "local"
    )]
    pub(crate) network: NetworkChoice,

    /// toncenter v2 compatible API base URL (default: the devnet for `local`, toncenter otherwise).
    #[arg(long, global = true, env = "COCOON_API_URL", value_name = "URL")]
    pub(crate) api_url: Option<String>,

    /// toncenter API key (sent as X-API-Key).
    #[arg(
        long,
        global = true,
        env = "COCOON_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub(crate) api_key: Option<String>,

    /// Keystore file holding the encrypted wallet mnemonic [default: ~/.config/cocoon/keystore.json].
    #[arg(long, global = true, env = "COCOON_KEYSTORE", value_name = "PATH")]
    pub(crate) keystore: Option<PathBuf>,

    /// Seconds to wait for a transaction before giving up (exit code 5).
    #[arg(
        long,
        global = true,
        env = "COCOON_TX_TIMEOUT",
        value_name = "SECS",
        default_value_t = 90
    )]
    pub(crate) tx_timeout: u64,

    /// The root contract (`--root`, `COCOON_ROOT`): read by gov, worker, proxy, client and audit;
    /// global so that it may come before or after the command.
    #[command(flatten)]
    pub(crate) root: RootArg,
}

impl GlobalArgs {
    /// The keystore path: `--keystore`, else `$XDG_CONFIG_HOME/cocoon/keystore.json`, else `~/.config/…`.
    pub(crate) fn keystore_path(&self) -> PathBuf {
        if let Some(p) = &self.keystore {
            return p.clone();
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("cocoon").join("keystore.json")
    }

    /// How long to wait for a transaction.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.tx_timeout)
    }

    /// The API base URL for the chosen network.
    pub(crate) fn resolve_api_url(&self) -> Result<String> {
        if let Some(url) = &self.api_url {
            return Ok(url.clone());
        }
        match self.network {
            NetworkChoice::Local => {
                let dir = devnet_dir();
                let running = cocoon_devnet::DetachedDevnet::new(&dir)
                    .running()
                    .map_err(|e| {
                        fail(ExitKind::Error, format!("reading {}: {e}", dir.display()))
                    })?;
                match running {
                    Some(state) => Ok(state.url),
                    None => Err(fail(
                        ExitKind::NotFound,
                        format!(
                            "no local devnet is running (looked in {}); start one with \
                             `cocoon devnet up`, or pass --api-url URL or --network testnet",
                            dir.display()
                        ),
                    )),
                }
            }
            NetworkChoice::Testnet => Ok(TonClientConfig::toncenter_testnet().base_url),
            NetworkChoice::Mainnet => Ok(TonClientConfig::toncenter_mainnet().base_url),
        }
    }

    /// A toncenter client for the chosen network.
    pub(crate) fn client(&self) -> Result<HttpTonClient> {
        let url = self.resolve_api_url()?;
        let mut config = match (self.network, &self.api_url) {
            (NetworkChoice::Testnet, None) => TonClientConfig::toncenter_testnet(),
            (NetworkChoice::Mainnet, None) => TonClientConfig::toncenter_mainnet(),
            _ => TonClientConfig::new(url),
        };
        if let Some(key) = &self.api_key {
            config = config.with_api_key(key.clone());
            // toncenter allows 10 requests per second with a key.
            if config.min_interval.is_some() {
                config.min_interval = Some(Duration::from_millis(110));
            }
        }
        if self.network == NetworkChoice::Local {
            // A devnet that is not there will not appear by retrying.
            config.max_retries = 1;
            config.timeout = Duration::from_secs(30);
        }
        HttpTonClient::new(config).map_err(anyhow::Error::from)
    }
}

/// The devnet state folder: `$COCOON_DEVNET_DIR` or `.cache/devnet`.
pub(crate) fn devnet_dir() -> PathBuf {
    std::env::var_os("COCOON_DEVNET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVNET_DIR))
}
