//! Reliability drills for cocoon (BRIEF §9, issue #7 item 3).
//!
//! - [`targets`]: small `pub fn` entry points, one per parser a peer or user can feed bytes to (BoCs,
//!   every contract message and state decoder, RA-TLS certificates, TDX quotes, receipts, vouchers,
//!   OpenAI request bodies). Each returns `Ok` or a [`Rejection`] naming the error class; the
//!   cargo-fuzz targets in `fuzz/` and the stable smoke run call exactly these.
//! - [`binding`]: the fixed keys, addresses and hashes the corpus is bound to (deterministic seeds).
//! - [`manifest`]: the malformed-input corpus (`corpus/manifest.toml` and the case files).
//! - [`mutate`]: a seeded PRNG and a tiny bit-flip / splice / truncate mutator for the smoke run.
//!
//! The corpus test (`tests/corpus.rs`), the HTTP drill (`tests/api_corpus.rs`), the smoke run
//! (`tests/smoke.rs`) and the kill -9 proxy drill (`tests/kill9.rs`, `make drills`) drive them.

pub mod binding;
pub mod manifest;
pub mod mutate;
pub mod targets;

pub use targets::Rejection;
