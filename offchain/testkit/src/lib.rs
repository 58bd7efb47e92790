//! Test support for cocoon: the in-process network, the in-memory chains, the fake engine and
//! polling helpers. A dev-dependency of the roles' tests, drills and examples (and of the CLI's
//! `bench` feature); no production crate depends on it, and it holds every test double the
//! production crates used to carry.
//!
//! - [`MemoryNetwork`] ([`NetworkBuilder`]): fake engine → worker(s) → proxy → gateway on
//!   127.0.0.1, as the daemons run, with the config helpers it is made of.
//! - [`MemoryChain`] (the proxy's chain), [`VaultMemoryChain`] (payouts through vault records the
//!   workers see too) and [`WorkerMemoryChain`] (the worker's chain).
//! - [`FakeEngine`]: `cocoon-engine`'s fixed echo backend with hold, health and counters.
//! - [`devnet::start_devnet`]: a local devnet and its client, for the devnet-backed tests.
//! - [`RogueProxy`]: a compromised proxy that names and signs with a worker key of its own.
//! - [`wait`]: bounded waiting for what must happen; [`load`]: closed-loop chat clients.
//! - [`rogue_client`]: an adversarial HTTP/2 client of the proxy's client port (windows, resets, cuts).

pub mod devnet;
pub mod engine;
pub mod http;
pub mod load;
pub mod network;
mod proxy_chain;
pub mod rogue_client;
pub mod rogue_proxy;
pub mod tls;
mod vault_chain;
pub mod wait;
mod worker_chain;

/// The role crates a test network is made of, for tests that name their types (a test depends on
/// the testkit alone).
pub mod roles {
    pub use cocoon_engine as engine;
    pub use cocoon_gateway as gateway;
    pub use cocoon_proxy as proxy;
    pub use cocoon_worker as worker;
}

pub use engine::{FAKE_MODEL, FakeEngine, FakeEngineOptions, HOLD_WORD};
pub use http::Resp;
pub use network::{
    DEFAULT_CREDIT, MemoryNetwork, NetworkBuilder, NetworkError, chain_worker_config,
    gateway_config, proxy_config, start_chain_worker, worker_config,
};
pub use proxy_chain::{MemoryChain, MemoryChainState};
pub use rogue_proxy::{RogueCertificate, RogueOptions, RogueProxy};
pub use tls::TlsKit;
pub use vault_chain::VaultMemoryChain;
pub use worker_chain::WorkerMemoryChain;
