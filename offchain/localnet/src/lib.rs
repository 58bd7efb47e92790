//! The whole cocoon network in one process on a local devnet: wallets, contracts, engine, worker,
//! proxy and gateway ([`localnet::LocalNet`]), and the demo's request and summary ([`flow`]). What
//! `cocoon demo` runs; the in-process end-to-end tests drive it too.

pub mod flow;
pub mod localnet;
