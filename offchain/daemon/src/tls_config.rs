//! The `[tls]` section every daemon shares, and the builder that turns it into a [`HopTls`].
//!
//! Three modes:
//! - `tdx`: RA-TLS with Intel TDX quotes from configfs-tsm; peers' DCAP quotes are verified against
//!   the collateral file and the image allowlist. Fails with a clear error when this machine has no TDX
//!   device (checked before any port is bound).
//! - `simulated`: RA-TLS with software quotes (`cocoon-attestation`'s simulated provider). Peers must
//!   still present a quote whose image hash is on the allowlist, but nothing is backed by hardware: a
//!   loud INSECURE warning is logged and every peer is marked insecure.
//! - `dev-insecure`: no attestation at all: an unattested RA-TLS certificate, and peers accepted
//!   under [`att::Policy::dev_insecure`] (any role, evidence not verified), every one marked insecure.
//!
//! A client gateway has no TEE: in `tdx` and `simulated` modes it presents an unattested certificate
//! and verifies the proxy's quote under the same policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cocoon_attestation as att;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, invalid};
use crate::ra_tls::RaTls;
use crate::tls::{HopTls, Role, TlsError};

/// How a daemon attests itself and checks its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Intel TDX quotes through configfs-tsm; peers verified with DCAP (production).
    #[default]
    Tdx,
    /// Software quotes, no hardware: INSECURE, development and CI only.
    Simulated,
    /// No attestation at all: INSECURE, development only.
    DevInsecure,
}

impl TlsMode {
    /// The mode's name as written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Tdx => "tdx",
            TlsMode::Simulated => "simulated",
            TlsMode::DevInsecure => "dev-insecure",
        }
    }

    /// True for the modes that accept peers without hardware-backed attestation.
    pub fn is_insecure(self) -> bool {
        !matches!(self, TlsMode::Tdx)
    }
}

/// Where a daemon's keys come from (see [`crate::keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// `key_file` / `dev_key` (refused in `tdx` mode), or with neither a fresh boot key in memory.
    #[default]
    Local,
    /// Released by a key service (`kms_url`) to this attested TD, whose boot key the operator's
    /// wallet bound (`kms_binding_file`).
    Kms,
}

impl KeySource {
    /// The source's name as written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Local => "local",
            KeySource::Kms => "kms",
        }
    }
}

/// The `[tls]` config section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// `tdx` (default), `simulated` or `dev-insecure`.
    pub mode: TlsMode,
    /// `local` (default) or `kms`.
    pub key_source: KeySource,
    /// `key_source = "kms"`: the key service, `host:port` (mutual RA-TLS).
    pub kms_url: String,
    /// `key_source = "kms"`: where the operator puts its wallet's binding of this TD's boot key
    /// (`cocoon kms bind --out`); the daemon writes the boot key to `<this file>.boot-key`.
    pub kms_binding_file: String,
    /// `key_source = "kms"`: how long to wait for the binding and the key service at start, ms
    /// (0: the default, 10 minutes).
    pub kms_wait_ms: u64,
    /// File holding this daemon's Ed25519 key as 64 hex characters (a 32-byte seed). Empty, with
    /// `dev_key` empty too: a fresh key at every start. Refused in `tdx` mode (the operator can
    /// read the file); INSECURE, simulated and dev-insecure modes only.
    pub key_file: String,
    /// The key inline, 64 hex characters (development only; refused in `tdx` mode).
    pub dev_key: String,
    /// `simulated` mode: the label the fake measurements (and so the image hash) derive from.
    pub image_label: String,
    /// `tdx` mode: the configfs-tsm report directory (default `/sys/kernel/config/tsm/report`).
    pub tsm_dir: String,
    /// `tdx` mode: Intel collateral (dcap-qvl's `QuoteCollateralV3` JSON) used to verify peers' DCAP
    /// quotes; with `pccs_url` too, used for platforms the PCCS cannot serve. `tdx` mode needs this
    /// or `pccs_url`.
    pub collateral_file: String,
    /// `tdx` mode: the operator's PCCS (Intel's v4 API), e.g. `https://pccs.internal:8081`. Collateral
    /// for each peer platform is fetched on first contact, cached on disk and refetched before its
    /// `nextUpdate`.
    pub pccs_url: String,
    /// `tdx` mode with `pccs_url`: where fetched collateral is cached (default
    /// `$XDG_CACHE_HOME/cocoon/collateral`, else `$HOME/.cache/cocoon/collateral`).
    pub collateral_cache_dir: String,
    /// Oldest peer certificate accepted, seconds since its quoted `issued_at` (0: the default,
    /// 24 h); also the longest validity accepted and this daemon's own certificate lifetime. A live
    /// connection whose peer's certificate gets older is closed at its next re-verification.
    pub max_cert_age_secs: u64,
    /// Optional configuration allowlist: the measured configuration hashes (`config_hash` claim,
    /// 64 hex digits each) an attested peer must carry. Empty: any configuration.
    pub peer_config_hashes: Vec<String>,
}

fn parse_seed(text: &str) -> Option<SigningKey> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).ok()?;
    Some(SigningKey::from_bytes(&seed))
}

/// Reads a key file: 64 hex characters (surrounding whitespace ignored).
pub fn read_key_file(path: &Path) -> Result<SigningKey, TlsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TlsError::Certificate(format!("reading key file {}: {e}", path.display())))?;
    parse_seed(&text).ok_or_else(|| {
        TlsError::Certificate(format!(
            "key file {} must hold 64 hex characters (a 32-byte Ed25519 seed)",
            path.display()
        ))
    })
}

impl TlsSection {
    /// A section for `mode` with every other setting at its default.
    pub fn with_mode(mode: TlsMode) -> TlsSection {
        TlsSection {
            mode,
            ..TlsSection::default()
        }
    }

    /// The label simulated quotes derive from (default: the provider's).
    pub fn simulated_label(&self) -> &str {
        if self.image_label.is_empty() {
            att::provider::simulated::DEFAULT_IMAGE_LABEL
        } else {
            &self.image_label
        }
    }

    /// The image hash this daemon's simulated quotes carry (what a dev allowlist must contain).
    pub fn simulated_image_hash(&self) -> [u8; 32] {
        att::provider::simulated::SimulatedProvider::new(self.simulated_label()).image_hash()
    }

    /// The image hash of a daemon whose simulated RTMR3 measured `config_hash` (what a dev
    /// allowlist must contain for a daemon built with [`build_hop_tls_measured`]).
    pub fn simulated_image_hash_measured(&self, config_hash: &[u8; 32]) -> [u8; 32] {
        att::provider::simulated::SimulatedProvider::with_config(
            self.simulated_label(),
            config_hash,
        )
        .image_hash()
    }

    /// The configuration allowlist ([`TlsSection::peer_config_hashes`]) as bytes.
    pub fn peer_config_hashes(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        self.peer_config_hashes
            .iter()
            .map(|text| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut out).map_err(|_| {
                    invalid(
                        "tls.peer_config_hashes",
                        format!("`{text}`: need 64 hex digits"),
                    )
                })?;
                Ok(out)
            })
            .collect()
    }

    /// Checks the section without binding anything: the key parses, the files exist, the mode's
    /// requirements are met. The TDX device itself is checked by [`build_hop_tls`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.key_file.is_empty() && !self.dev_key.is_empty() {
            return Err(invalid("tls.key_file", "set key_file or dev_key, not both"));
        }
        if self.mode == TlsMode::Tdx && !self.key_file.is_empty() {
            return Err(invalid(
                "tls.key_file",
                "a key file is readable by the operator, so the TD's attestation would vouch for a                  key the operator holds; not allowed in tdx mode: use key_source = \"kms\" (a proxy) \
                 or no key (a worker's boot key, made in the TD at start)",
            ));
        }
        match self.key_source {
            KeySource::Kms => {
                if !self.key_file.is_empty() || !self.dev_key.is_empty() {
                    return Err(invalid(
                        "tls.key_source",
                        "key_source = \"kms\" makes its own boot key: remove key_file / dev_key",
                    ));
                }
                if self.kms_url.is_empty() {
                    return Err(invalid(
                        "tls.kms_url",
                        "key_source = \"kms\" needs the key service's host:port",
                    ));
                }
                if self.kms_binding_file.is_empty() {
                    return Err(invalid(
                        "tls.kms_binding_file",
                        "key_source = \"kms\" needs the file the operator's binding is put in",
                    ));
                }
            }
            KeySource::Local => {
                if !self.kms_url.is_empty()
                    || !self.kms_binding_file.is_empty()
                    || self.kms_wait_ms != 0
                {
                    return Err(invalid(
                        "tls.kms_url",
                        "kms_url, kms_binding_file and kms_wait_ms apply to key_source = \"kms\" only",
                    ));
                }
            }
        }
        if !self.dev_key.is_empty() {
            if self.mode == TlsMode::Tdx {
                return Err(invalid(
                    "tls.dev_key",
                    "an inline key is known outside the TEE; not allowed in tdx mode (use key_source = \"kms\" or none)",
                ));
            }
            if parse_seed(&self.dev_key).is_none() {
                return Err(invalid(
                    "tls.dev_key",
                    "must be 64 hex characters (a 32-byte Ed25519 seed)",
                ));
            }
        }
        if !self.key_file.is_empty() {
            read_key_file(Path::new(&self.key_file))
                .map_err(|e| invalid("tls.key_file", e.to_string()))?;
        }
        if self.mode == TlsMode::Tdx {
            if self.collateral_file.is_empty() && self.pccs_url.is_empty() {
                return Err(invalid(
                    "tls.collateral_file",
                    "tdx mode verifies peers' DCAP quotes and needs Intel collateral: set pccs_url \
                     (the operator's PCCS) or collateral_file (a JSON file of collateral)",
                ));
            }
            if !self.collateral_file.is_empty() {
                att::collateral::load_collateral_file(Path::new(&self.collateral_file))
                    .map_err(|e| invalid("tls.collateral_file", e.to_string()))?;
            }
            if !self.pccs_url.is_empty() {
                att::collateral::PccsClient::new(&self.pccs_url, self.cache_dir()?)
                    .map_err(|e| invalid("tls.pccs_url", e.to_string()))?;
            } else if !self.collateral_cache_dir.is_empty() {
                return Err(invalid(
                    "tls.collateral_cache_dir",
                    "collateral_cache_dir applies with pccs_url only",
                ));
            }
        } else if !self.collateral_file.is_empty()
            || !self.tsm_dir.is_empty()
            || !self.pccs_url.is_empty()
            || !self.collateral_cache_dir.is_empty()
        {
            return Err(invalid(
                "tls.collateral_file",
                "collateral_file, pccs_url, collateral_cache_dir and tsm_dir apply to tdx mode only",
            ));
        }
        if self.max_cert_age_secs != 0 && self.max_cert_age_secs < 600 {
            return Err(invalid(
                "tls.max_cert_age_secs",
                "at least 600 seconds (certificates are renewed a quarter of their life before expiry), or 0 for the default of 24 h",
            ));
        }
        let pinned = self.peer_config_hashes()?;
        if !pinned.is_empty() && self.mode == TlsMode::DevInsecure {
            return Err(invalid(
                "tls.peer_config_hashes",
                "development TLS verifies nothing about peers; pin configurations in tdx or simulated mode",
            ));
        }
        if self.mode != TlsMode::Simulated && !self.image_label.is_empty() {
            return Err(invalid(
                "tls.image_label",
                "image_label applies to simulated mode only",
            ));
        }
        Ok(())
    }

    /// Where PCCS collateral is cached: `collateral_cache_dir`, or the user's cache directory.
    pub fn cache_dir(&self) -> Result<PathBuf, ConfigError> {
        if !self.collateral_cache_dir.is_empty() {
            return Ok(PathBuf::from(&self.collateral_cache_dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .ok_or_else(|| {
                invalid(
                    "tls.collateral_cache_dir",
                    "neither XDG_CACHE_HOME nor HOME is set: set collateral_cache_dir",
                )
            })?;
        Ok(base.join("cocoon").join("collateral"))
    }

    /// This daemon's local key: from `key_file`, `dev_key`, or fresh (a boot key). With
    /// `key_source = "kms"` the key comes from [`crate::keys::key_material`] instead.
    pub fn signing_key(&self) -> Result<SigningKey, TlsError> {
        if self.key_source == KeySource::Kms {
            return Err(TlsError::Certificate(
                "key_source = \"kms\": the key comes from the key service (keys::key_material)"
                    .into(),
            ));
        }
        if !self.key_file.is_empty() {
            return read_key_file(Path::new(&self.key_file));
        }
        if !self.dev_key.is_empty() {
            return parse_seed(&self.dev_key).ok_or(TlsError::DevKey);
        }
        Ok(SigningKey::generate(&mut rand::rngs::OsRng))
    }
}

fn attest(e: att::AttestError) -> TlsError {
    TlsError::Certificate(e.to_string())
}

/// What a daemon of `role` requires of its peers under `section`: a proxy accepts attested workers and
/// unattested clients; workers and clients accept attested proxies. Images must be on `allowlist`;
/// simulated quotes are accepted only in `simulated` mode. In `dev-insecure` mode nothing is
/// required ([`att::Policy::dev_insecure`]).
pub fn peer_policy(
    role: Role,
    section: &TlsSection,
    allowlist: Arc<dyn att::ImageAllowlist>,
) -> Result<att::Policy, TlsError> {
    let policy = peer_policy_for_mode(role, section, allowlist)?;
    Ok(if section.max_cert_age_secs == 0 {
        policy
    } else {
        policy.with_max_cert_age(std::time::Duration::from_secs(section.max_cert_age_secs))
    })
}

fn peer_policy_for_mode(
    role: Role,
    section: &TlsSection,
    allowlist: Arc<dyn att::ImageAllowlist>,
) -> Result<att::Policy, TlsError> {
    if section.mode == TlsMode::DevInsecure {
        return Ok(att::Policy::dev_insecure());
    }
    let (mut policy, attested) = match role {
        Role::Proxy => (
            att::Policy::strict(&[att::Role::Client, att::Role::Worker], allowlist)
                .accept_unattested(att::Role::Client),
            att::Role::Worker,
        ),
        Role::Worker | Role::Client => (
            att::Policy::strict(&[att::Role::Proxy], allowlist),
            att::Role::Proxy,
        ),
        // A key service serves attested proxies, workers and its replicas, and answers public
        // questions (a released public key) to anyone.
        Role::Kms => (
            att::Policy::strict(
                &[
                    att::Role::Proxy,
                    att::Role::Worker,
                    att::Role::Kms,
                    att::Role::Client,
                ],
                allowlist,
            )
            .accept_unattested(att::Role::Client),
            att::Role::Kms,
        ),
    };
    let pinned = section
        .peer_config_hashes()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if !pinned.is_empty() {
        policy = policy.require_configs(attested, pinned);
    }
    match section.mode {
        TlsMode::Simulated => policy = policy.insecure_dev(),
        TlsMode::Tdx => policy = policy.with_collateral(collateral_source(section)?),
        TlsMode::DevInsecure => {}
    }
    Ok(policy)
}

/// Where a `tdx` daemon gets the collateral for its peers' quotes: the operator's PCCS (with the file,
/// if any, for platforms the PCCS cannot serve) or the file alone.
fn collateral_source(
    section: &TlsSection,
) -> Result<Arc<dyn att::collateral::CollateralSource>, TlsError> {
    let file = if section.collateral_file.is_empty() {
        None
    } else {
        Some(
            att::collateral::load_collateral_file(Path::new(&section.collateral_file))
                .map_err(attest)?,
        )
    };
    if section.pccs_url.is_empty() {
        let Some(file) = file else {
            return Err(TlsError::Certificate(
                "tdx mode needs tls.pccs_url or tls.collateral_file".into(),
            ));
        };
        return Ok(Arc::new(att::collateral::CollateralStore::fixed(file)));
    }
    let cache = section
        .cache_dir()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let client = att::collateral::PccsClient::new(&section.pccs_url, cache).map_err(attest)?;
    let source = att::pccs_source::PccsCollateral::start(
        client,
        file,
        Arc::new(att::SystemClock),
        att::pccs_source::PccsOptions::default(),
    )
    .map_err(attest)?;
    Ok(Arc::new(source))
}

/// Builds the TLS of a daemon of `role` from its `[tls]` section, verifying peers against `allowlist`.
pub fn build_hop_tls(
    role: Role,
    section: &TlsSection,
    allowlist: Arc<dyn att::ImageAllowlist>,
) -> Result<Arc<dyn HopTls>, TlsError> {
    let policy = peer_policy(role, section, allowlist)?;
    build_hop_tls_with_policy(role, section, policy)
}

/// As [`build_hop_tls`], with a caller-adjusted policy from [`peer_policy`] (e.g. a gateway pinning
/// the proxy keys registered on chain with [`att::Policy::expect_peer_keys`]).
pub fn build_hop_tls_with_policy(
    role: Role,
    section: &TlsSection,
    policy: att::Policy,
) -> Result<Arc<dyn HopTls>, TlsError> {
    section
        .validate()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let key = section.signing_key()?;
    build_hop_tls_inner(role, section, policy, key, None)
}

/// As [`build_hop_tls`] for a daemon whose configuration was measured into `config_hash`
/// (`cocoon_daemon::measured::config_hash`): every certificate's claims carry it as
/// `config_hash`, and in `simulated` mode the simulated RTMR3 is extended with it as a real TD's
/// boot would (so the simulated image hash is [`TlsSection::simulated_image_hash_measured`]). In
/// `tdx` mode the image's boot is what extends RTMR3; the claim is carried either way.
pub fn build_hop_tls_measured(
    role: Role,
    section: &TlsSection,
    allowlist: Arc<dyn att::ImageAllowlist>,
    config_hash: &[u8; 32],
) -> Result<Arc<dyn HopTls>, TlsError> {
    section
        .validate()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let policy = peer_policy(role, section, allowlist)?;
    let key = section.signing_key()?;
    build_hop_tls_inner(role, section, policy, key, Some(config_hash))
}

/// As [`build_hop_tls`], presenting `keys` (from [`crate::keys::key_material`]), measured as
/// [`build_hop_tls_measured`] when `config_hash` is given.
pub fn build_hop_tls_keyed(
    role: Role,
    section: &TlsSection,
    allowlist: Arc<dyn att::ImageAllowlist>,
    keys: &crate::keys::KeyMaterial,
    config_hash: Option<&[u8; 32]>,
) -> Result<Arc<dyn HopTls>, TlsError> {
    section
        .validate()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let policy = peer_policy(role, section, allowlist)?;
    build_hop_tls_inner(role, section, policy, keys.signing.clone(), config_hash)
}

/// The TLS of a daemon of `role` presenting `key`, judging peers by `policy`.
pub fn build_hop_tls_with_key(
    role: Role,
    section: &TlsSection,
    policy: att::Policy,
    key: SigningKey,
) -> Result<Arc<dyn HopTls>, TlsError> {
    build_hop_tls_inner(role, section, policy, key, None)
}

/// The quote provider of a daemon of `role` under `section`: `None` for a client gateway (no TEE)
/// and in `dev-insecure` mode.
pub fn quote_provider(
    role: Role,
    section: &TlsSection,
) -> Result<Option<Arc<dyn att::QuoteProvider>>, TlsError> {
    quote_provider_measured(role, section, None)
}

/// As [`quote_provider`]; in `simulated` mode with `config_hash` the simulated RTMR3 measures it
/// (see [`build_hop_tls_measured`]).
pub fn quote_provider_measured(
    role: Role,
    section: &TlsSection,
    config_hash: Option<&[u8; 32]>,
) -> Result<Option<Arc<dyn att::QuoteProvider>>, TlsError> {
    Ok(match (section.mode, role) {
        (TlsMode::DevInsecure, _) | (_, Role::Client) => None,
        (TlsMode::Simulated, _) => Some(match config_hash {
            Some(h) => Arc::new(att::provider::simulated::SimulatedProvider::with_config(
                section.simulated_label(),
                h,
            )),
            None => att::ProviderConfig::Simulated {
                image_label: Some(section.simulated_label().to_owned()),
            }
            .build()
            .map_err(attest)?,
        }),
        (TlsMode::Tdx, _) => Some(
            att::ProviderConfig::Tdx {
                tsm_dir: (!section.tsm_dir.is_empty()).then(|| PathBuf::from(&section.tsm_dir)),
            }
            .build()
            .map_err(|e| {
                TlsError::Certificate(format!(
                    "tls.mode = \"tdx\" but no TDX quote provider on this machine: {e}; \
                     on a machine without a TEE use mode = \"simulated\" (INSECURE, development only)"
                ))
            })?,
        ),
    })
}

fn build_hop_tls_inner(
    role: Role,
    section: &TlsSection,
    policy: att::Policy,
    key: SigningKey,
    config_hash: Option<&[u8; 32]>,
) -> Result<Arc<dyn HopTls>, TlsError> {
    let mut extra = std::collections::BTreeMap::new();
    if let Some(h) = config_hash {
        extra.insert(att::claims::CONFIG_HASH_KEY.to_owned(), hex::encode(h));
    }
    if section.mode == TlsMode::DevInsecure {
        if extra.is_empty() {
            return Ok(Arc::new(RaTls::dev_insecure(role, key, policy)?));
        }
        tracing::warn!(
            ?role,
            "INSECURE development TLS: no attestation, every peer is accepted as insecure"
        );
    }
    let provider = quote_provider_measured(role, section, config_hash)?;
    if section.mode == TlsMode::Simulated {
        let image_hash = match config_hash {
            Some(h) => section.simulated_image_hash_measured(h),
            None => section.simulated_image_hash(),
        };
        tracing::warn!(
            ?role,
            image_hash = %hex::encode(image_hash),
            "INSECURE: simulated TEE — quotes are software-made, nothing is backed by hardware; \
             peers with simulated quotes are accepted and marked insecure. Development and CI only."
        );
    }
    Ok(Arc::new(RaTls::with_claims(
        role, key, provider, policy, extra,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Arc<dyn att::ImageAllowlist> {
        Arc::new(att::InMemoryAllowlist::new())
    }

    #[test]
    fn simulated_mode_builds_attested_insecure_identities() {
        let section = TlsSection {
            mode: TlsMode::Simulated,
            image_label: "test-image".into(),
            dev_key: "11".repeat(32),
            ..Default::default()
        };
        let tls = build_hop_tls(Role::Worker, &section, empty()).unwrap();
        let id = tls.identity();
        assert_eq!(id.tee, att::TeeKind::Simulated);
        assert!(id.insecure);
        assert_eq!(id.image_hash, section.simulated_image_hash());
        assert_eq!(
            id.public_key,
            SigningKey::from_bytes(&[0x11; 32])
                .verifying_key()
                .to_bytes()
        );
        let client = build_hop_tls(Role::Client, &section, empty()).unwrap();
        assert_eq!(client.identity().image_hash, [0; 32]);
    }

    #[test]
    fn tdx_without_a_device_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let collateral = att::fixtures_dir().join("cocoon-tdx-quote.collateral.json");
        let section = TlsSection {
            mode: TlsMode::Tdx,
            tsm_dir: dir.path().join("no-tsm").display().to_string(),
            collateral_file: collateral.display().to_string(),
            ..Default::default()
        };
        section
            .validate()
            .expect("fixture collateral (set COCOON_FIXTURES_DIR?)");
        let err = build_hop_tls(Role::Proxy, &section, empty())
            .err()
            .expect("no TDX device here");
        let msg = err.to_string();
        assert!(msg.contains("no TDX quote provider"), "{msg}");
        assert!(msg.contains("simulated"), "{msg}");
    }

    #[test]
    fn validation_refuses_inconsistent_sections() {
        let tdx_no_collateral = TlsSection::with_mode(TlsMode::Tdx);
        assert!(matches!(
            tdx_no_collateral.validate(),
            Err(ConfigError::Invalid {
                field: "tls.collateral_file",
                ..
            })
        ));
        let bad_key = TlsSection {
            mode: TlsMode::Simulated,
            dev_key: "zz".into(),
            ..Default::default()
        };
        assert!(bad_key.validate().is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "not hex").unwrap();
        let bad_file = TlsSection {
            mode: TlsMode::Simulated,
            key_file: path.display().to_string(),
            ..Default::default()
        };
        assert!(matches!(
            bad_file.validate(),
            Err(ConfigError::Invalid {
                field: "tls.key_file",
                ..
            })
        ));
        std::fs::write(&path, format!("{}\n", "22".repeat(32))).unwrap();
        assert!(bad_file.validate().is_ok());
        assert_eq!(
            bad_file.signing_key().unwrap().to_bytes(),
            [0x22; 32],
            "key file read with trailing newline"
        );
        let pccs_only = TlsSection {
            mode: TlsMode::Tdx,
            pccs_url: "https://pccs.example:8081".into(),
            collateral_cache_dir: "/tmp/cocoon-collateral-test".into(),
            ..Default::default()
        };
        assert!(pccs_only.validate().is_ok(), "a PCCS alone is enough");
        let bad_url = TlsSection {
            pccs_url: "ftp://pccs".into(),
            ..pccs_only.clone()
        };
        assert!(matches!(
            bad_url.validate(),
            Err(ConfigError::Invalid {
                field: "tls.pccs_url",
                ..
            })
        ));
        let pccs_in_simulated = TlsSection {
            mode: TlsMode::Simulated,
            ..pccs_only.clone()
        };
        assert!(pccs_in_simulated.validate().is_err());
        let cache_without_pccs = TlsSection {
            pccs_url: String::new(),
            collateral_file: att::fixtures_dir()
                .join("cocoon-tdx-quote.collateral.json")
                .display()
                .to_string(),
            ..pccs_only
        };
        assert!(matches!(
            cache_without_pccs.validate(),
            Err(ConfigError::Invalid {
                field: "tls.collateral_cache_dir",
                ..
            })
        ));
        let label_in_dev = TlsSection {
            mode: TlsMode::DevInsecure,
            image_label: "x".into(),
            ..Default::default()
        };
        assert!(label_in_dev.validate().is_err());
    }

    /// A mutual handshake of `client` to `server` over an in-memory pipe; the server's view of the
    /// client on success.
    async fn handshake(
        server: &Arc<dyn HopTls>,
        client: &Arc<dyn HopTls>,
    ) -> Result<crate::tls::PeerIdentity, String> {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(server.server_config());
        let connector = tokio_rustls::TlsConnector::from(client.client_config());
        let name = rustls::pki_types::ServerName::try_from("peer.cocoon.invalid").unwrap();
        let (accepted, connected) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
        let accepted = accepted.map_err(|e| e.to_string())?;
        connected.map_err(|e| e.to_string())?;
        server
            .peer_identity(accepted.get_ref().1)
            .ok_or_else(|| "no peer identity".to_owned())
    }

    #[tokio::test]
    async fn peers_must_run_an_allowed_image_and_simulated_is_refused_outside_simulated_mode() {
        let sim = |label: &str| TlsSection {
            mode: TlsMode::Simulated,
            image_label: label.into(),
            ..Default::default()
        };
        let list = att::InMemoryAllowlist::new();
        list.allow(att::Role::Worker, sim("good").simulated_image_hash());
        list.allow(att::Role::Proxy, sim("proxy").simulated_image_hash());
        let list: Arc<dyn att::ImageAllowlist> = Arc::new(list);
        let proxy = build_hop_tls(Role::Proxy, &sim("proxy"), list.clone()).unwrap();

        let good = build_hop_tls(Role::Worker, &sim("good"), list.clone()).unwrap();
        let seen = handshake(&proxy, &good).await.unwrap();
        assert_eq!(seen.role, Role::Worker);
        assert_eq!(seen.tee, att::TeeKind::Simulated);
        assert!(seen.insecure);
        assert_eq!(seen.image_hash, sim("good").simulated_image_hash());

        let other = build_hop_tls(Role::Worker, &sim("other"), list.clone()).unwrap();
        assert!(
            handshake(&proxy, &other).await.is_err(),
            "an image not on the allowlist is refused"
        );

        // A client gateway has no TEE: its unattested certificate is accepted by the proxy.
        let client = build_hop_tls(Role::Client, &sim(""), list.clone()).unwrap();
        let seen = handshake(&proxy, &client).await.unwrap();
        assert_eq!(seen.role, Role::Client);

        // In tdx mode the same simulated proxy is refused.
        let strict = TlsSection {
            mode: TlsMode::Tdx,
            collateral_file: att::fixtures_dir()
                .join("cocoon-tdx-quote.collateral.json")
                .display()
                .to_string(),
            ..Default::default()
        };
        let strict_client = build_hop_tls(Role::Client, &strict, list).unwrap();
        assert!(
            handshake(&proxy, &strict_client).await.is_err(),
            "simulated quotes are accepted only in simulated mode"
        );
    }

    #[tokio::test]
    async fn a_measured_worker_shows_its_config_hash_and_a_pinning_proxy_refuses_others() {
        let sim = TlsSection {
            mode: TlsMode::Simulated,
            image_label: "measured".into(),
            ..Default::default()
        };
        let (good_cfg, other_cfg) = ([0x61; 32], [0x62; 32]);
        let list = att::InMemoryAllowlist::new();
        list.allow(
            att::Role::Worker,
            sim.simulated_image_hash_measured(&good_cfg),
        );
        list.allow(
            att::Role::Worker,
            sim.simulated_image_hash_measured(&other_cfg),
        );
        list.allow(att::Role::Proxy, sim.simulated_image_hash());
        let list: Arc<dyn att::ImageAllowlist> = Arc::new(list);

        let good = build_hop_tls_measured(Role::Worker, &sim, list.clone(), &good_cfg).unwrap();
        let other = build_hop_tls_measured(Role::Worker, &sim, list.clone(), &other_cfg).unwrap();
        let own = good.identity();
        assert_eq!(own.claims.config_hash().unwrap(), Some(good_cfg));
        assert_eq!(own.image_hash, sim.simulated_image_hash_measured(&good_cfg));
        assert_ne!(
            own.image_hash,
            sim.simulated_image_hash(),
            "RTMR3 measured it"
        );

        // A proxy without a configuration allowlist sees each worker's configuration.
        let open = build_hop_tls(Role::Proxy, &sim, list.clone()).unwrap();
        let seen = handshake(&open, &other).await.unwrap();
        assert_eq!(seen.claims.config_hash().unwrap(), Some(other_cfg));

        // A proxy pinning the good configuration refuses the other one.
        let pinning = TlsSection {
            peer_config_hashes: vec![hex::encode(good_cfg)],
            ..sim.clone()
        };
        let pinned = build_hop_tls(Role::Proxy, &pinning, list.clone()).unwrap();
        let seen = handshake(&pinned, &good).await.unwrap();
        assert_eq!(seen.claims.config_hash().unwrap(), Some(good_cfg));
        assert!(
            handshake(&pinned, &other).await.is_err(),
            "a configuration not on the allowlist is refused"
        );
        let bad = TlsSection {
            peer_config_hashes: vec!["zz".into()],
            ..sim
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::Invalid {
                field: "tls.peer_config_hashes",
                ..
            })
        ));
    }

    #[test]
    fn tdx_peers_are_checked_with_collateral_from_the_pccs_cache() {
        let quote = std::fs::read(att::fixtures_dir().join("cocoon-tdx-quote.bin")).unwrap();
        let cache = tempfile::tempdir().unwrap();
        // Nobody listens on port 9 here: only what the cache holds can answer.
        let section = TlsSection {
            mode: TlsMode::Tdx,
            pccs_url: "http://127.0.0.1:9".into(),
            collateral_cache_dir: cache.path().display().to_string(),
            ..Default::default()
        };
        section.validate().unwrap();
        let policy = peer_policy(Role::Client, &section, empty()).unwrap();
        assert!(
            matches!(
                policy.collateral.collateral_for(&quote),
                Err(att::AttestError::CollateralUnavailable { .. })
            ),
            "no PCCS and an empty cache: nothing to verify with"
        );
        std::fs::copy(
            att::fixtures_dir().join("cocoon-tdx-quote.collateral.json"),
            cache.path().join("tdx-90c06f000000-platform.json"),
        )
        .unwrap();
        let policy = peer_policy(Role::Client, &section, empty()).unwrap();
        let collateral = policy.collateral.collateral_for(&quote).unwrap();
        let at = 1_772_323_200; // 2026-03-01, inside the fixture collateral's window
        att::dcap::verify_quote(&quote, &collateral, at).unwrap();
    }

    #[test]
    fn mode_names_round_trip_through_toml() {
        for mode in [TlsMode::Tdx, TlsMode::Simulated, TlsMode::DevInsecure] {
            let text = format!("mode = \"{}\"\n", mode.as_str());
            let s: TlsSection = toml::from_str(&text).unwrap();
            assert_eq!(s.mode, mode);
        }
        assert!(toml::from_str::<TlsSection>("mode = \"sev\"\n").is_err());
    }
}
