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
//!
//! A provider made [`SimulatedProvider::with_config`] extends its RTMR3 with the measured
//! configuration hash as a real TD's boot would (`RTMR3 = SHA-384(RTMR3 || digest)`, the digest of a
//! dstack-style runtime event, [`config_event_digest`]), so the image hash of such a TD covers its
//! configuration and `cocoon-measure`'s replay reproduces the register.

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

/// The runtime event type dstack uses for events extended into RTMR3.
pub const RUNTIME_EVENT_TYPE: u32 = 0x0800_0001;
/// The name of the event that measures a daemon's configuration into RTMR3.
pub const CONFIG_EVENT_NAME: &str = "cocoon-config";

/// The digest a TD extends into RTMR3 for configuration hash `config_hash`:
/// `SHA-384(le32(RUNTIME_EVENT_TYPE) || ":" || "cocoon-config" || ":" || config_hash)`, dstack's
/// runtime-event form (`cocoon_measure::dstack::runtime_event_digest`).
pub fn config_event_digest(config_hash: &[u8; 32]) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(RUNTIME_EVENT_TYPE.to_le_bytes());
    h.update(b":");
    h.update(CONFIG_EVENT_NAME.as_bytes());
    h.update(b":");
    h.update(config_hash);
    h.finalize().into()
}

/// `register = SHA-384(register || digest)`, the TDX RTMR extend operation.
pub fn extend_rtmr(register: &mut [u8; 48], digest: &[u8; 48]) {
    let mut h = Sha384::new();
    h.update(*register);
    h.update(digest);
    *register = h.finalize().into();
}

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

    /// A provider for `image_label` whose RTMR3 was extended at "boot" with the configuration event
    /// of `config_hash` ([`config_event_digest`]), as a real TD measuring its configuration would.
    pub fn with_config(image_label: &str, config_hash: &[u8; 32]) -> Self {
        let mut p = SimulatedProvider::new(image_label);
        extend_rtmr(
            &mut p.measurements.rtmr[3],
            &config_event_digest(config_hash),
        );
        p
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

    #[test]
    fn a_measured_configuration_moves_rtmr3_and_the_image_hash_only() {
        let base = SimulatedProvider::new("x");
        let a = SimulatedProvider::with_config("x", &[1; 32]);
        let b = SimulatedProvider::with_config("x", &[2; 32]);
        assert_eq!(a.measurements().mrtd, base.measurements().mrtd);
        assert_eq!(a.measurements().rtmr[..3], base.measurements().rtmr[..3]);
        assert_ne!(a.measurements().rtmr[3], base.measurements().rtmr[3]);
        assert_ne!(a.image_hash(), base.image_hash());
        assert_ne!(a.image_hash(), b.image_hash());
        let mut expected = base.measurements().rtmr[3];
        extend_rtmr(&mut expected, &config_event_digest(&[1; 32]));
        assert_eq!(a.measurements().rtmr[3], expected);
    }
}
