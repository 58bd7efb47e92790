//! Quote providers: where the evidence for a certificate comes from.
//!
//! - [`tdx::TdxProvider`]: a real Intel TDX quote through the Linux configfs-tsm interface;
//! - [`simulated::SimulatedProvider`]: a software quote for machines without a TEE, marked insecure.

pub mod simulated;
pub mod tdx;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Result;

/// What kind of evidence a provider produces; stored in the certificate next to the quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// An Intel DCAP quote (TDX or SGX), verified against Intel collateral.
    Dcap,
    /// A simulated quote: no hardware behind it, accepted only in insecure development mode.
    Simulated,
}

impl EvidenceKind {
    /// The one-byte code stored in the evidence extension.
    pub fn code(self) -> u8 {
        match self {
            EvidenceKind::Dcap => 1,
            EvidenceKind::Simulated => 2,
        }
    }

    /// The kind for an evidence code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(EvidenceKind::Dcap),
            2 => Some(EvidenceKind::Simulated),
            _ => None,
        }
    }
}

/// Produces a quote whose report_data is exactly the 64 bytes given.
pub trait QuoteProvider: Send + Sync + std::fmt::Debug {
    /// The kind of evidence this provider produces.
    fn kind(&self) -> EvidenceKind;

    /// A fresh quote binding `report_data`.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>>;
}

/// Which provider to use; the form it takes in daemon config files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// Intel TDX via configfs-tsm.
    Tdx {
        /// The configfs-tsm report directory; default `/sys/kernel/config/tsm/report`.
        #[serde(default)]
        tsm_dir: Option<PathBuf>,
    },
    /// Simulated, insecure: for development and CI only.
    Simulated {
        /// A label the fake measurements derive from, so different dev images hash differently.
        #[serde(default)]
        image_label: Option<String>,
    },
}

impl ProviderConfig {
    /// Builds the configured provider. For `tdx`, checks that configfs-tsm is present.
    pub fn build(&self) -> Result<std::sync::Arc<dyn QuoteProvider>> {
        Ok(match self {
            ProviderConfig::Tdx { tsm_dir } => {
                let dir = tsm_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(tdx::DEFAULT_TSM_REPORT_DIR));
                std::sync::Arc::new(tdx::TdxProvider::new(dir)?)
            }
            ProviderConfig::Simulated { image_label } => {
                let label = image_label
                    .as_deref()
                    .unwrap_or(simulated::DEFAULT_IMAGE_LABEL);
                std::sync::Arc::new(simulated::SimulatedProvider::new(label))
            }
        })
    }
}
