//! Auditing cocoon responses without running a daemon: the proof-bundle format a client gateway
//! exports, which records a bundle selects, and the offline verifier that re-derives every claim from
//! the signed receipts, the bytes and the workers' quotes.
//!
//! - [`bundle`]: the format ([`ProofBundle`] and its parts);
//! - [`hex32`]: hashes and keys held as bytes, written as hex ([`Hex32`]);
//! - [`selection`]: the export query ([`Selection`]) and the request-id rule;
//! - [`report`]: what the verifier is asked and answers ([`VerifyOptions`], [`BundleReport`]);
//! - [`verify_bundle`]: the verifier (receipt and body checks here, worker evidence in `evidence`).
//!
//! The gateway builds bundles (its `GET /cocoon/v1/bundle`); `cocoon receipt` and `cocoon audit`
//! verify them with this crate alone.

pub mod bundle;
mod evidence;
pub mod hex32;
pub mod report;
pub mod selection;
mod verify;

pub use bundle::{
    BUNDLE_FORMAT, BUNDLE_VERSION, BodyEvidence, ChargeEvidence, Forwarded, ProofBundle,
    ResponseEvidence, WorkerEvidence,
};
pub use hex32::{Hex32, NotHex32};
pub use report::{BundleReport, Check, CheckResult, ResponseReport, Verdict, VerifyOptions};
pub use selection::{Selection, SelectionError, is_sane_request_id};
pub use verify::verify_bundle;
