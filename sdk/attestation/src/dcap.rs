//! Intel DCAP quote verification, offline, at an explicit time, against the pinned Intel root key.
//!
//! dcap-qvl (pure Rust, default features off, so it never fetches collateral) checks the quote's
//! signature chain: the attestation key signed the report, the QE report binds the attestation key,
//! the PCK certificate signed the QE report, and the PCK chain, TCB info, QE identity and CRLs chain
//! to Intel's SGX root CA and are all valid at the given time. We then check that the root it used is
//! the one we pin, and extract what the rest of cocoon needs.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{AttestError, Result};

pub use dcap_qvl::QuoteCollateralV3;
pub use dcap_qvl::TcbStatus;

/// SHA-384 of the raw public key of Intel's SGX Root CA ("Intel SGX Root CA", P-256). Every accepted
/// DCAP quote must chain to this key, independently of the root certificate dcap-qvl embeds.
pub const INTEL_ROOT_KEY_ID: &str = "46e403bd34f05a3f2817ab9badcaacc7ffc98e0f261008cd30dae936cace18d5dcf58eef31463613de1570d516200993";

/// The TEE behind a piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TeeKind {
    /// Intel TDX (quote TEE type 0x81).
    Tdx,
    /// Intel SGX (quote TEE type 0).
    Sgx,
    /// A simulated quote: no hardware, insecure.
    Simulated,
    /// No evidence at all (a client without a TEE).
    None,
}

impl TeeKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TeeKind::Tdx => "tdx",
            TeeKind::Sgx => "sgx",
            TeeKind::Simulated => "simulated",
            TeeKind::None => "none",
        }
    }
}

impl std::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TD measurements an image hash is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdMeasurements {
    /// MRTD: the initial TD contents (firmware).
    pub mrtd: [u8; 48],
    /// RTMR0..3: runtime measurement registers (firmware config, kernel, command line, application).
    pub rtmr: [[u8; 48]; 4],
}

impl TdMeasurements {
    /// `SHA-256(MRTD || RTMR0 || RTMR1 || RTMR2 || RTMR3)` over the raw 48-byte registers;
    /// report_data is not part of it.
    pub fn image_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.mrtd);
        for r in &self.rtmr {
            h.update(r);
        }
        h.finalize().into()
    }
}

/// Measurements of the attested software.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measurements {
    /// A TDX trust domain.
    Td(TdMeasurements),
    /// An SGX enclave.
    Sgx {
        /// MRENCLAVE.
        mr_enclave: [u8; 32],
        /// MRSIGNER.
        mr_signer: [u8; 32],
    },
}

/// What a verified DCAP quote says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteReport {
    /// TDX or SGX.
    pub tee: TeeKind,
    /// Quote format version (4 or 5).
    pub quote_version: u16,
    /// Raw TEE type from the header (0x81 TDX, 0 SGX).
    pub tee_type: u32,
    /// The measurements.
    pub measurements: Measurements,
    /// The 64 bytes the quoted software chose.
    pub report_data: [u8; 64],
    /// The platform's FMSPC (family-model-stepping-platform-customSKU).
    pub fmspc: [u8; 6],
    /// Converged TCB status of platform and QE.
    pub tcb_status: TcbStatus,
    /// Intel security advisories that apply.
    pub advisories: Vec<String>,
    /// Image hash for TDX quotes (see [`TdMeasurements::image_hash`]); `None` for SGX.
    pub image_hash: Option<[u8; 32]>,
}

/// Accepts every TCB verdict: our own [`crate::TcbPolicy`] decides afterwards, so that a rejection
/// says which status it was. (dcap-qvl's policy trait speaks anyhow; nothing of it leaks out.)
struct RecordOnly;

impl dcap_qvl::Policy for RecordOnly {
    fn validate(&self, _claims: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Parses a DCAP quote without verifying it: header, measurements and report_data.
pub fn parse_quote(quote: &[u8]) -> Result<(u16, u32, Measurements, [u8; 64])> {
    let parsed = dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| AttestError::MalformedQuote(format!("{e:#}")))?;
    let (measurements, report_data) = measurements_of(&parsed.report);
    Ok((
        parsed.header.version,
        parsed.header.tee_type,
        measurements,
        report_data,
    ))
}

fn measurements_of(report: &dcap_qvl::quote::Report) -> (Measurements, [u8; 64]) {
    use dcap_qvl::quote::Report;
    let td = |r: &dcap_qvl::quote::TDReport10| {
        (
            Measurements::Td(TdMeasurements {
                mrtd: r.mr_td,
                rtmr: [r.rt_mr0, r.rt_mr1, r.rt_mr2, r.rt_mr3],
            }),
            r.report_data,
        )
    };
    match report {
        Report::SgxEnclave(e) => (
            Measurements::Sgx {
                mr_enclave: e.mr_enclave,
                mr_signer: e.mr_signer,
            },
            e.report_data,
        ),
        Report::TD10(r) => td(r),
        Report::TD15(r) => td(&r.base),
        Report::TD15Ex(r) => td(&r.base.base),
    }
}

/// Verifies a DCAP quote against `collateral` at `at_unix` (seconds) and checks the Intel root pin.
///
/// The TCB status is reported, not judged: apply a [`crate::TcbPolicy`] to the result.
pub fn verify_quote(
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    at_unix: u64,
) -> Result<QuoteReport> {
    // Parse first so that garbage is "malformed", not "rejected".
    dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| AttestError::MalformedQuote(format!("{e:#}")))?;
    let verifier = dcap_qvl::verify::QuoteVerifier::new_prod();
    let claims = verifier
        .verify_with_policy(quote, collateral, at_unix, &RecordOnly)
        .map_err(|e| AttestError::QuoteRejected(format!("{e:#}")))?;
    let root_key_id = hex::encode(&claims.platform.root_key_id);
    if root_key_id != INTEL_ROOT_KEY_ID {
        return Err(AttestError::RootKeyMismatch {
            actual: root_key_id,
        });
    }
    let tee = match claims.tee_type {
        0x81 => TeeKind::Tdx,
        0 => TeeKind::Sgx,
        other => return Err(AttestError::UnsupportedTee(format!("TEE type {other:#x}"))),
    };
    let (measurements, report_data) = measurements_of(&claims.report);
    let image_hash = match &measurements {
        Measurements::Td(m) => Some(m.image_hash()),
        Measurements::Sgx { .. } => None,
    };
    Ok(QuoteReport {
        tee,
        quote_version: claims.header.version,
        tee_type: claims.tee_type,
        measurements,
        report_data,
        fmspc: claims.platform.pck.fmspc,
        tcb_status: claims.tcb.status,
        advisories: claims.tcb.advisory_ids.clone(),
        image_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_hash_is_sha256_of_the_concatenated_registers() {
        let m = TdMeasurements {
            mrtd: [1; 48],
            rtmr: [[2; 48], [3; 48], [4; 48], [5; 48]],
        };
        let mut all = Vec::new();
        for b in 1u8..=5 {
            all.extend_from_slice(&[b; 48]);
        }
        let expected: [u8; 32] = Sha256::digest(&all).into();
        assert_eq!(m.image_hash(), expected);
    }

    #[test]
    fn garbage_is_malformed_not_rejected() {
        let err = parse_quote(&[0u8; 10]).expect_err("garbage");
        assert!(matches!(err, AttestError::MalformedQuote(_)));
    }
}
