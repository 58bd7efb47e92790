//! Collateral for DCAP verification: from a file, or from the operator's PCCS with a disk cache.
//!
//! Nothing here contacts a third party on its own: the PCCS URL is whatever the operator configured,
//! and verification itself (see [`crate::dcap`]) never fetches anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dcap_qvl::QuoteCollateralV3;
use serde::Deserialize;

use crate::{AttestError, Result};

/// Reads dcap-qvl's `QuoteCollateralV3` JSON from a file.
pub fn load_collateral_file(path: &Path) -> Result<QuoteCollateralV3> {
    let bytes = std::fs::read(path)
        .map_err(|e| AttestError::Collateral(format!("reading {}: {e}", path.display())))?;
    parse_collateral_json(&bytes)
}

/// Parses dcap-qvl's `QuoteCollateralV3` JSON.
pub fn parse_collateral_json(bytes: &[u8]) -> Result<QuoteCollateralV3> {
    serde_json::from_slice(bytes)
        .map_err(|e| AttestError::Collateral(format!("not QuoteCollateralV3 JSON: {e}")))
}

/// Which collateral a quote needs: TEE, platform FMSPC and the CA that issued its PCK certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlatformKey {
    /// `tdx` or `sgx`.
    pub tee: &'static str,
    /// FMSPC, lower-case hex.
    pub fmspc: String,
    /// `processor` or `platform`.
    pub ca: &'static str,
}

impl PlatformKey {
    /// Reads the key from a quote's embedded PCK certificate chain (certification data type 5).
    pub fn of_quote(quote: &[u8]) -> Result<Self> {
        let parsed = dcap_qvl::quote::Quote::parse(quote)
            .map_err(|e| AttestError::MalformedQuote(format!("{e:#}")))?;
        let chain = parsed.raw_cert_chain().map_err(|e| {
            AttestError::MalformedQuote(format!("no PCK certificate chain in the quote: {e:#}"))
        })?;
        let leaf = x509_parser::pem::Pem::iter_from_buffer(chain)
            .next()
            .ok_or_else(|| AttestError::MalformedQuote("empty PCK certificate chain".into()))?
            .map_err(|e| AttestError::MalformedQuote(format!("PCK chain PEM: {e}")))?;
        let ext = dcap_qvl::intel::parse_pck_extension(&leaf.contents).map_err(|e| {
            AttestError::MalformedQuote(format!("PCK certificate extension: {e:#}"))
        })?;
        let cert = leaf
            .parse_x509()
            .map_err(|e| AttestError::MalformedQuote(format!("PCK certificate: {e}")))?;
        let issuer = cert.issuer().to_string();
        let ca = if issuer.contains("Platform CA") {
            "platform"
        } else {
            "processor"
        };
        let tee = if parsed.header.tee_type == 0x81 {
            "tdx"
        } else {
            "sgx"
        };
        Ok(PlatformKey {
            tee,
            fmspc: hex::encode(ext.fmspc),
            ca,
        })
    }

    fn file_name(&self) -> String {
        format!("{}-{}-{}.json", self.tee, self.fmspc, self.ca)
    }

    /// The key a cache file was written under (`tdx-90c06f000000-platform.json`), if it is one.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".json")?;
        let mut parts = stem.splitn(3, '-');
        let tee = match parts.next()? {
            "tdx" => "tdx",
            "sgx" => "sgx",
            _ => return None,
        };
        let fmspc = parts.next()?;
        let ca = match parts.next()? {
            "processor" => "processor",
            "platform" => "platform",
            _ => return None,
        };
        let hex_ok = fmspc.len() == 12
            && fmspc
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex_ok.then(|| PlatformKey {
            tee,
            fmspc: fmspc.to_owned(),
            ca,
        })
    }
}

/// Supplies collateral for a quote during peer verification (synchronously: TLS verifiers are sync).
pub trait CollateralSource: Send + Sync + std::fmt::Debug {
    /// Collateral for `quote`, or [`AttestError::CollateralUnavailable`].
    fn collateral_for(&self, quote: &[u8]) -> Result<Arc<QuoteCollateralV3>>;
}

/// In-memory collateral by platform, with an optional fallback used for every platform (tests, CLI).
#[derive(Debug, Default)]
pub struct CollateralStore {
    by_platform: RwLock<HashMap<PlatformKey, Arc<QuoteCollateralV3>>>,
    fallback: Option<Arc<QuoteCollateralV3>>,
}

impl CollateralStore {
    /// An empty store: every DCAP quote fails with `CollateralUnavailable` until collateral is added.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that answers every quote with `collateral`.
    pub fn fixed(collateral: QuoteCollateralV3) -> Self {
        CollateralStore {
            by_platform: RwLock::default(),
            fallback: Some(Arc::new(collateral)),
        }
    }

    /// Adds or replaces the collateral for a platform.
    pub fn insert(&self, key: PlatformKey, collateral: QuoteCollateralV3) {
        let mut map = self
            .by_platform
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.insert(key, Arc::new(collateral));
    }

    /// The collateral held for a platform (the fallback not consulted).
    pub fn get(&self, key: &PlatformKey) -> Option<Arc<QuoteCollateralV3>> {
        self.by_platform
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .cloned()
    }

    /// Forgets the collateral of a platform.
    pub fn remove(&self, key: &PlatformKey) {
        self.by_platform
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

impl CollateralSource for CollateralStore {
    fn collateral_for(&self, quote: &[u8]) -> Result<Arc<QuoteCollateralV3>> {
        let key = PlatformKey::of_quote(quote);
        if let Ok(key) = &key {
            let map = self
                .by_platform
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(c) = map.get(key) {
                return Ok(Arc::clone(c));
            }
        }
        if let Some(c) = &self.fallback {
            return Ok(Arc::clone(c));
        }
        let key = key?;
        Err(AttestError::CollateralUnavailable { fmspc: key.fmspc })
    }
}

/// A client for the operator's PCCS (Intel's v4 API) with a disk cache.
#[derive(Debug, Clone)]
pub struct PccsClient {
    base_url: String,
    cache_dir: PathBuf,
    http: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoResponse<'a> {
    #[serde(borrow)]
    tcb_info: &'a serde_json::value::RawValue,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentityResponse<'a> {
    #[serde(borrow)]
    enclave_identity: &'a serde_json::value::RawValue,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextUpdate {
    next_update: String,
}

/// When collateral stops being usable: the TCB info's `nextUpdate`, unix seconds.
pub fn collateral_next_update(collateral: &QuoteCollateralV3) -> Result<i64> {
    let n: NextUpdate = serde_json::from_str(&collateral.tcb_info)
        .map_err(|e| AttestError::Collateral(format!("TCB info without nextUpdate: {e}")))?;
    let t = time::OffsetDateTime::parse(
        &n.next_update,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| {
        AttestError::Collateral(format!("TCB info nextUpdate {:?}: {e}", n.next_update))
    })?;
    Ok(t.unix_timestamp())
}

impl PccsClient {
    /// A client for the PCCS at `base_url` (e.g. `https://pccs.internal:8081`), caching in `cache_dir`.
    pub fn new(base_url: &str, cache_dir: PathBuf) -> Result<Self> {
        let base_url = base_url
            .trim_end_matches('/')
            .trim_end_matches("/sgx/certification/v4")
            .trim_end_matches("/tdx/certification/v4")
            .to_owned();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(AttestError::Collateral(format!(
                "PCCS URL {base_url:?} is not http(s)"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AttestError::Collateral(format!("HTTP client: {e}")))?;
        Ok(PccsClient {
            base_url,
            cache_dir,
            http,
        })
    }

    /// Collateral for `quote`: from the disk cache if it is still valid at `now_unix`, otherwise from
    /// the PCCS (then written to the cache).
    pub async fn collateral_for(
        &self,
        quote: &[u8],
        now_unix: i64,
    ) -> Result<(PlatformKey, QuoteCollateralV3)> {
        let key = PlatformKey::of_quote(quote)?;
        let collateral = self.collateral_for_platform(&key, now_unix).await?;
        Ok((key, collateral))
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Collateral for a platform: from the disk cache if it is still valid at `now_unix`, otherwise
    /// from the PCCS (then written to the cache).
    pub async fn collateral_for_platform(
        &self,
        key: &PlatformKey,
        now_unix: i64,
    ) -> Result<QuoteCollateralV3> {
        let path = self.cache_dir.join(key.file_name());
        if let Ok(cached) = load_collateral_file(&path)
            && collateral_next_update(&cached).is_ok_and(|next| next > now_unix)
        {
            return Ok(cached);
        }
        self.refresh_platform(key).await
    }

    /// Collateral for a platform from the PCCS, whatever the cache holds (then written to the cache).
    pub async fn refresh_platform(&self, key: &PlatformKey) -> Result<QuoteCollateralV3> {
        let path = self.cache_dir.join(key.file_name());
        let fresh = self.fetch(key).await?;
        let json = serde_json::to_vec(&fresh)
            .map_err(|e| AttestError::Collateral(format!("serialising: {e}")))?;
        std::fs::create_dir_all(&self.cache_dir).map_err(|e| {
            AttestError::Collateral(format!("creating {}: {e}", self.cache_dir.display()))
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| AttestError::Collateral(format!("writing {}: {e}", path.display())))?;
        Ok(fresh)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response> {
        let pccs = |reason: String| AttestError::Pccs {
            url: url.to_owned(),
            reason,
        };
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| pccs(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(pccs(format!("HTTP {}", resp.status())));
        }
        Ok(resp)
    }

    fn header(resp: &reqwest::Response, names: &[&str], url: &str) -> Result<String> {
        for name in names {
            if let Some(v) = resp.headers().get(*name).and_then(|v| v.to_str().ok()) {
                return Ok(percent_decode(v));
            }
        }
        Err(AttestError::Pccs {
            url: url.to_owned(),
            reason: format!("missing header {}", names.join(" / ")),
        })
    }

    async fn fetch(&self, key: &PlatformKey) -> Result<QuoteCollateralV3> {
        let b = &self.base_url;
        let bad = |url: &str, reason: String| AttestError::Pccs {
            url: url.to_owned(),
            reason,
        };
        let crl_url = format!("{b}/sgx/certification/v4/pckcrl?ca={}&encoding=der", key.ca);
        let resp = self.get(&crl_url).await?;
        let pck_crl_issuer_chain = Self::header(&resp, &["SGX-PCK-CRL-Issuer-Chain"], &crl_url)?;
        let pck_crl = resp
            .bytes()
            .await
            .map_err(|e| bad(&crl_url, e.to_string()))?
            .to_vec();

        let tcb_url = format!(
            "{b}/{}/certification/v4/tcb?fmspc={}",
            key.tee,
            key.fmspc.to_uppercase()
        );
        let resp = self.get(&tcb_url).await?;
        let tcb_info_issuer_chain = Self::header(
            &resp,
            &["SGX-TCB-Info-Issuer-Chain", "TCB-Info-Issuer-Chain"],
            &tcb_url,
        )?;
        let body = resp
            .text()
            .await
            .map_err(|e| bad(&tcb_url, e.to_string()))?;
        let tcb: TcbInfoResponse<'_> =
            serde_json::from_str(&body).map_err(|e| bad(&tcb_url, e.to_string()))?;
        let tcb_info_signature =
            hex::decode(&tcb.signature).map_err(|e| bad(&tcb_url, e.to_string()))?;
        let tcb_info = tcb.tcb_info.get().to_owned();

        let qe_url = format!("{b}/{}/certification/v4/qe/identity", key.tee);
        let resp = self.get(&qe_url).await?;
        let qe_identity_issuer_chain =
            Self::header(&resp, &["SGX-Enclave-Identity-Issuer-Chain"], &qe_url)?;
        let body = resp.text().await.map_err(|e| bad(&qe_url, e.to_string()))?;
        let qe: QeIdentityResponse<'_> =
            serde_json::from_str(&body).map_err(|e| bad(&qe_url, e.to_string()))?;
        let qe_identity_signature =
            hex::decode(&qe.signature).map_err(|e| bad(&qe_url, e.to_string()))?;
        let qe_identity = qe.enclave_identity.get().to_owned();

        // A PCCS serves the root CA CRL hex-encoded.
        let root_url = format!("{b}/sgx/certification/v4/rootcacrl");
        let text = self
            .get(&root_url)
            .await?
            .text()
            .await
            .map_err(|e| bad(&root_url, e.to_string()))?;
        let root_ca_crl =
            hex::decode(text.trim()).map_err(|e| bad(&root_url, format!("not hex: {e}")))?;

        Ok(QuoteCollateralV3 {
            pck_crl_issuer_chain,
            root_ca_crl,
            pck_crl,
            tcb_info_issuer_chain,
            tcb_info,
            tcb_info_signature,
            qe_identity_issuer_chain,
            qe_identity,
            qe_identity_signature,
            pck_certificate_chain: None,
        })
    }
}

/// Decodes `%XX` escapes (PCCS URL-encodes the PEM chains in headers).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(v) = escaped {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_escapes_and_stray_percent() {
        assert_eq!(
            percent_decode("-----BEGIN%20CERT%0A%"),
            "-----BEGIN CERT\n%"
        );
    }

    #[test]
    fn pccs_url_must_be_http() {
        assert!(PccsClient::new("file:///etc", PathBuf::from("/tmp/x")).is_err());
        assert!(
            PccsClient::new(
                "https://pccs.local/sgx/certification/v4/",
                PathBuf::from("/tmp/x")
            )
            .is_ok()
        );
    }
}
