//! The malformed-input corpus: `corpus/manifest.toml` lists every case file, the entry point or
//! endpoint it goes to, and the error class it must be refused with.
//!
//! Categories are the first directory of a case file: `api`, `cells`, `certs`, `quotes`,
//! `vouchers`, `receipts`. The files are written by `examples/drills_corpus_gen.rs` (deterministic
//! keys, see [`crate::binding`]) and committed; the expectations are written by hand in the
//! generator, never by running the parsers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Every case.
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

/// One malformed input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Path under `corpus/`.
    pub file: String,
    /// The entry point ([`crate::targets::run`] names, or `http`, `peer_certificate`,
    /// `quote_verify`, `charge_sequence`, `payout_sequence` which the tests drive).
    pub target: String,
    /// The error class. For `http` cases: the `error.code` the gateway and the proxy answer with.
    pub expect: String,
    /// `http` cases: the engine's `error.code` for the same body, or `ok` when the engine serves it
    /// (it sits behind the proxy's allowlist); absent when the body is not sent to the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_engine: Option<String>,
    /// `http` cases: the request path (default `/v1/chat/completions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `http` cases: the method (default `POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `http` cases: extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Pad the file with spaces to this many bytes before sending (huge bodies are not committed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<usize>,
    /// The outcome a known, reported bug produces instead of [`Case::expect`] (`panic`, `abort`,
    /// `accepted`); the corpus test accepts either while the fix is pending, and says which it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_bug: Option<String>,
    /// What is wrong with the input.
    pub why: String,
}

/// The corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the expected shape.
    #[error("manifest: {0}")]
    Toml(#[from] toml::de::Error),
}

/// `offchain/drills/corpus`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

impl Manifest {
    /// Reads `corpus/manifest.toml`.
    pub fn load() -> Result<Manifest, ManifestError> {
        let path = corpus_dir().join("manifest.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(toml::from_str(&text)?)
    }

    /// The cases of one category.
    pub fn category<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Case> + 'a {
        self.cases.iter().filter(move |c| c.category() == name)
    }
}

impl Case {
    /// The category: the first directory of the file.
    pub fn category(&self) -> &str {
        self.file.split('/').next().unwrap_or_default()
    }

    /// The input bytes (padded to [`Case::pad_to`] when set).
    pub fn bytes(&self) -> Result<Vec<u8>, ManifestError> {
        let path = corpus_dir().join(&self.file);
        let mut data = std::fs::read(&path).map_err(|source| ManifestError::Io { path, source })?;
        if let Some(n) = self.pad_to {
            data.resize(n.max(data.len()), b' ');
        }
        Ok(data)
    }
}
