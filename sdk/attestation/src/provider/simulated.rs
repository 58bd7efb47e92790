//! Simulated quotes: well-formed, bind report_data, and prove nothing.
//!
//! Layout (338 bytes):
//! ```text
//! magic        32  "COCOON-SIMULATED-QUOTE-INSECURE!"
//! version       2  u16 big-endian, 1
//! mrtd         48  SHA-384("cocoon simulated MRTD" || label)
//! rtmr0..3  4 x 48 SHA-384("cocoon simulated RTMRi" || label), i = 0..3
//! report_data  64  the claims hash, as for a real quote
//! ```
//! Anyone can write such bytes; a verifier accepts them only under a policy that allows insecure
//! development mode, and says so each time.

use sha2::{Digest, Sha384};

use super::{EvidenceKind, QuoteProvider};
use crate::dcap::TdMeasurements;
use crate::{AttestError, Result};

/// Magic prefix of every simulated quote.
pub const MAGIC: &[u8; 32] = b"COCOON-SIMULATED-QUOTE-INSECURE!";
/// Simulated quote format version.
pub const VERSION: u16 = 1;
/// Length of a simulated quote.
pub const LEN: usize = 32 + 2 + 5 * 48 + 64;
/// The label used when none is configured.
pub const DEFAULT_IMAGE_LABEL: &str = "cocoon-dev";

/// A parsed simulated quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedQuote {
    /// Fake TD measurements.
    pub measurements: TdMeasurements,
    /// The bound report_data.
    pub report_data: [u8; 64],
}

impl SimulatedQuote {
    /// Serialises to the layout above.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.measurements.mrtd);
        for r in &self.measurements.rtmr {
            out.extend_from_slice(r);
        }
        out.extend_from_slice(&self.report_data);
        out
    }

    /// Parses the layout above, refusing any other length, magic or version.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| AttestError::MalformedQuote(format!("simulated quote: {m}"));
        if bytes.len() != LEN {
            return Err(bad(&format!("length {} instead of {LEN}", bytes.len())));
        }
        let (magic, rest) = bytes.split_at(32);
        if magic != MAGIC {
            return Err(bad("bad magic"));
        }
        let (version, rest) = rest.split_at(2);
        if version != VERSION.to_be_bytes() {
            return Err(bad("unsupported version"));
        }
        let take48 = |b: &[u8]| -> [u8; 48] {
            let mut a = [0u8; 48];
            a.copy_from_slice(b);
            a
        };
        let mut chunks = rest.chunks_exact(48);
        let mut next = || chunks.next().map(take48).ok_or_else(|| bad("truncated"));
        let mrtd = next()?;
        let rtmr = [next()?, next()?, next()?, next()?];
        let rd = &rest[5 * 48..];
        let report_data: [u8; 64] = rd.try_into().map_err(|_| bad("report_data length"))?;
        Ok(SimulatedQuote {
            measurements: TdMeasurements { mrtd, rtmr },
            report_data,
        })
    }
}

/// Produces simulated quotes with measurements derived from a label.
#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    measurements: TdMeasurements,
}

impl SimulatedProvider {
    /// A provider whose fake measurements derive from `image_label`.
    pub fn new(image_label: &str) -> Self {
        let m = |name: &str| -> [u8; 48] {
            let mut h = Sha384::new();
            h.update(b"cocoon simulated ");
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(image_label.as_bytes());
            h.finalize().into()
        };
        let measurements = TdMeasurements {
            mrtd: m("MRTD"),
            rtmr: [m("RTMR0"), m("RTMR1"), m("RTMR2"), m("RTMR3")],
        };
        SimulatedProvider { measurements }
    }

    /// The fake measurements this provider reports.
    pub fn measurements(&self) -> &TdMeasurements {
        &self.measurements
    }

    /// The image hash of this provider's quotes (what a dev allowlist must contain).
    pub fn image_hash(&self) -> [u8; 32] {
        self.measurements.image_hash()
    }
}

impl Default for SimulatedProvider {
    fn default() -> Self {
        SimulatedProvider::new(DEFAULT_IMAGE_LABEL)
    }
}

impl QuoteProvider for SimulatedProvider {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::Simulated
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        Ok(SimulatedQuote {
            measurements: self.measurements.clone(),
            report_data: *report_data,
        }
        .to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_binds_report_data_and_round_trips() {
        let p = SimulatedProvider::new("x");
        let q = p.quote(&[9; 64]).expect("quote");
        assert!(q.starts_with(MAGIC));
        let parsed = SimulatedQuote::parse(&q).expect("parse");
        assert_eq!(parsed.report_data, [9; 64]);
        assert_eq!(&parsed.measurements, p.measurements());
        assert_ne!(SimulatedProvider::new("y").image_hash(), p.image_hash());
        assert!(SimulatedQuote::parse(&q[1..]).is_err());
    }
}
