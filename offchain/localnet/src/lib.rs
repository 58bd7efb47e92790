//! The whole cocoon network in one process on a local devnet: wallets, contracts, engine, worker,
//! proxy and gateway ([`localnet::LocalNet`]), and the demo's request and summary ([`flow`]). What
//! `cocoon demo` runs; the in-process end-to-end tests drive it too. The daemons are built from
//! their configs ([`daemons`]) by the functions their binaries run, over RA-TLS with the simulated
//! TEE provider: INSECURE, development only.

pub mod daemons;
pub mod error;
pub mod flow;
pub mod localnet;
