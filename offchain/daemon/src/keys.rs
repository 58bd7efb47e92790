//! Where a daemon's keys come from: the one seam that yields the signing key and the storage key
//! ([`key_material`] → [`KeyMaterial`]).
//!
//! Two sources (`[tls] key_source`):
//! - `local` (default): `tls.key_file` or `tls.dev_key` (both refused in `tdx` mode, labelled
//!   INSECURE where accepted), or, with neither, a fresh **boot key** made in this process's memory
//!   at every start (what a `tdx` worker runs with: its stake is bound to that key).
//! - `kms`: a fresh boot key `E` proves this TD to the key service (`tls.kms_url`) over mutual
//!   RA-TLS; the operator's wallet signs a [`BootKeyBinding`] of `E` (`cocoon kms bind`, read from
//!   `tls.kms_binding_file`); the key service checks the quote, the image (the root's allowlist for
//!   this role), the binding (the wallet's on-chain public key), and releases the keys derived for
//!   (network, root, role, wallet): a proxy's stable signing key `P` and storage key `S`, a worker's
//!   storage key (a worker keeps signing with `E`).
//!
//! The key service itself is `cocoon-kms`; its HTTP contract ([`KMS_KEYS_PATH`], [`KeyRequest`],
//! [`KeyAnswer`], [`KMS_PUBLIC_KEY_PATH`], [`KMS_MASTER_PATH`]) and the binding statement live here
//! because every daemon and the CLI speak it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cocoon_attestation as att;
use cocoon_ton::TonAddress;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::ra_tls::RaTls;
use crate::tls::{HopTls, Role};
use crate::tls_config::{KeySource, TlsMode, TlsSection, quote_provider_measured};

/// `POST`: an attested TD asks for its keys ([`KeyRequest`] → [`KeyAnswer`]).
pub const KMS_KEYS_PATH: &str = "/cocoon/v1/kms/keys";
/// `GET ?role=proxy&wallet=0:…`: the public signing key released for (role, wallet), for governance
/// to register (open to unattested clients: it is public).
pub const KMS_PUBLIC_KEY_PATH: &str = "/cocoon/v1/kms/public-key";
/// `GET`: the master key, only to a peer attested as an allowed `kms` image (replication).
pub const KMS_MASTER_PATH: &str = "/cocoon/v1/kms/master";
/// Domain of the binding statement an operator's wallet signs.
pub const BINDING_DOMAIN: &[u8] = b"cocoon-kms-boot-key-v1";
/// How long `cocoon kms bind` makes a binding valid by default.
pub const DEFAULT_BINDING_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a daemon waits for its binding and the key service before giving up.
pub const KMS_WAIT: Duration = Duration::from_secs(600);
/// Largest answer read from a key service.
const ANSWER_LIMIT: usize = 16 * 1024;

/// Errors of the key seam.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The `[tls]` section cannot yield a key.
    #[error("tls: {0}")]
    Config(String),
    /// TLS to the key service could not be set up.
    #[error("TLS to the key service: {0}")]
    Tls(String),
    /// The key service refused (status and its message).
    #[error("the key service refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The key service answered something that is not a key answer.
    #[error("the key service's answer: {0}")]
    Answer(String),
    /// Nothing usable within [`KMS_WAIT`].
    #[error("no keys from the key service within {secs}s: {last}")]
    Timeout {
        /// How long it waited.
        secs: u64,
        /// The last reason.
        last: String,
    },
    /// A binding file could not be written or read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Where this daemon's key came from (logged, and shown by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyOrigin {
    /// `tls.key_file` (INSECURE: the operator can read it).
    File,
    /// `tls.dev_key` (INSECURE: it is in the config).
    DevKey,
    /// A fresh boot key made in this process at start, never written anywhere.
    Boot,
    /// Released by a key service that attested this TD.
    Kms,
}

/// The keys a daemon runs with: the one that signs (and that its RA-TLS certificate binds) and the
/// one that seals what it persists on host disk.
#[derive(Clone)]
pub struct KeyMaterial {
    /// Signs vouchers, payouts or receipts and terminates attested TLS.
    pub signing: SigningKey,
    /// Encrypts and authenticates what the daemon persists (the proxy's ledger, WAL, bindings):
    /// `S` from the key service, or, for a local key, HKDF of the signing key ([`local_storage_key`]).
    pub storage: [u8; 32],
    /// Where they came from.
    pub origin: KeyOrigin,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field(
                "public_key",
                &hex::encode(self.signing.verifying_key().to_bytes()),
            )
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// HKDF-SHA256 (RFC 5869) of `ikm` with `salt` and `info`, 32 bytes.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    // Extract, then one Expand block (L = 32 = HashLen). HMAC takes keys of any length.
    let mut extract = <Hmac<Sha256> as Mac>::new_from_slice(salt)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    extract.update(ikm);
    let prk = extract.finalize().into_bytes();
    let mut expand = <Hmac<Sha256> as Mac>::new_from_slice(&prk)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    expand.update(info);
    expand.update(&[1]);
    expand.finalize().into_bytes().into()
}

/// The storage key of a daemon whose signing key is local: HKDF of the signing seed.
pub fn local_storage_key(signing: &SigningKey) -> [u8; 32] {
    hkdf_sha256(b"cocoon-storage-v1", &signing.to_bytes(), b"storage")
}

/// An address as `workchain (i32 BE) ‖ hash (32)`.
fn address_bytes(out: &mut Vec<u8>, a: &TonAddress) {
    out.extend_from_slice(&a.workchain.to_be_bytes());
    out.extend_from_slice(a.hash_part.as_slice());
}

/// An operator wallet's word that `boot_key` is its TD's boot key for `role` under `root`, until
/// `valid_until`: Ed25519 by the wallet's own key (the one `get_public_key` reports on chain) over
/// [`BootKeyBinding::message`]. It is public: whoever holds it gains nothing but the right to ask
/// the key service from a TD that holds `boot_key` and runs an image allowed for `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootKeyBinding {
    /// `proxy` or `worker`.
    pub role: Role,
    /// The root contract (raw `0:…`).
    pub root: String,
    /// The operator's wallet (raw `0:…`).
    pub wallet: String,
    /// The TD's boot key, hex.
    pub boot_key: String,
    /// Unix seconds after which the key service refuses it.
    pub valid_until: u64,
    /// The wallet key's signature, hex.
    pub signature: String,
}

/// What a binding's fields mean once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBinding {
    /// The role.
    pub role: Role,
    /// The root.
    pub root: TonAddress,
    /// The operator's wallet.
    pub wallet: TonAddress,
    /// The boot key.
    pub boot_key: [u8; 32],
    /// Expiry, unix seconds.
    pub valid_until: u64,
    /// Signature.
    pub signature: [u8; 64],
}

fn hex32(field: &str, text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out)
        .map_err(|_| format!("{field}: not 32 bytes of hex"))?;
    Ok(out)
}

fn parse_raw_address(field: &str, text: &str) -> Result<TonAddress, String> {
    cocoon_ton::parse_address(text).map_err(|e| format!("{field}: {e}"))
}

impl BootKeyBinding {
    /// The bytes the wallet signs: `BINDING_DOMAIN ‖ root ‖ role code ‖ wallet ‖ boot_key ‖
    /// valid_until (u64 BE)`, addresses as `workchain (i32 BE) ‖ hash`.
    pub fn message(
        role: Role,
        root: &TonAddress,
        wallet: &TonAddress,
        boot_key: &[u8; 32],
        valid_until: u64,
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(BINDING_DOMAIN.len() + 120);
        m.extend_from_slice(BINDING_DOMAIN);
        address_bytes(&mut m, root);
        m.push(role.code());
        address_bytes(&mut m, wallet);
        m.extend_from_slice(boot_key);
        m.extend_from_slice(&valid_until.to_be_bytes());
        m
    }

    /// A binding signed by `wallet_key` (the operator's wallet key).
    pub fn sign(
        wallet_key: &SigningKey,
        role: Role,
        root: &TonAddress,
        wallet: &TonAddress,
        boot_key: &[u8; 32],
        valid_until: u64,
    ) -> BootKeyBinding {
        let sig = wallet_key.sign(&BootKeyBinding::message(
            role,
            root,
            wallet,
            boot_key,
            valid_until,
        ));
        BootKeyBinding {
            role,
            root: root.to_hex(),
            wallet: wallet.to_hex(),
            boot_key: hex::encode(boot_key),
            valid_until,
            signature: hex::encode(sig.to_bytes()),
        }
    }

    /// A binding signed by `wallet`'s own key (for `wallet`'s address).
    pub fn sign_with_wallet(
        wallet: &cocoon_ton::Wallet,
        role: Role,
        root: &TonAddress,
        boot_key: &[u8; 32],
        valid_until: u64,
    ) -> Result<BootKeyBinding, KeyError> {
        let secret = &wallet.key_pair().secret_key;
        let seed: [u8; 32] = secret
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| {
                KeyError::Config("the wallet holds no secret key (watch-only)".into())
            })?;
        let key = SigningKey::from_bytes(&seed);
        Ok(BootKeyBinding::sign(
            &key,
            role,
            root,
            wallet.address(),
            boot_key,
            valid_until,
        ))
    }

    /// The fields parsed (not yet verified).
    pub fn parse(&self) -> Result<ParsedBinding, String> {
        let mut signature = [0u8; 64];
        hex::decode_to_slice(self.signature.trim(), &mut signature)
            .map_err(|_| "signature: not 64 bytes of hex".to_owned())?;
        Ok(ParsedBinding {
            role: self.role,
            root: parse_raw_address("root", &self.root)?,
            wallet: parse_raw_address("wallet", &self.wallet)?,
            boot_key: hex32("boot_key", &self.boot_key)?,
            valid_until: self.valid_until,
            signature,
        })
    }
}

impl ParsedBinding {
    /// Whether `wallet_public_key` signed this binding.
    pub fn verify(&self, wallet_public_key: &[u8; 32]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(wallet_public_key) else {
            return false;
        };
        let message = BootKeyBinding::message(
            self.role,
            &self.root,
            &self.wallet,
            &self.boot_key,
            self.valid_until,
        );
        key.verify(&message, &Signature::from_bytes(&self.signature))
            .is_ok()
    }
}

/// What a TD sends the key service (its role and boot key are those of its RA-TLS certificate).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRequest {
    /// The operator wallet's binding of this TD's boot key.
    pub binding: BootKeyBinding,
}

/// What the key service releases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyAnswer {
    /// The role the keys are for.
    pub role: Role,
    /// The operator wallet they are for (raw).
    pub wallet: String,
    /// The derivation epoch.
    pub epoch: u32,
    /// A proxy's signing seed `P` (hex); absent for a worker, which signs with its boot key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<String>,
    /// The storage key `S` (hex).
    pub storage: String,
}

/// The public answer of [`KMS_PUBLIC_KEY_PATH`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicKeyAnswer {
    /// The role.
    pub role: Role,
    /// The wallet (raw).
    pub wallet: String,
    /// The epoch.
    pub epoch: u32,
    /// The Ed25519 public key of the signing key released for (role, wallet), hex.
    pub public_key: String,
}

/// The answer of [`KMS_MASTER_PATH`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MasterAnswer {
    /// The master key, hex.
    pub master: String,
}

/// What a daemon with `key_source = "kms"` needs besides its `[tls]` section.
#[derive(Debug, Clone)]
pub struct KmsContext {
    /// The root contract (the binding names it; the key service derives under it).
    pub root: TonAddress,
    /// The operator's wallet (a proxy's operator, a worker's owner).
    pub wallet: TonAddress,
    /// The key-service images this daemon accepts (the root's `kms` allowlist).
    pub allowlist: Arc<dyn att::ImageAllowlist>,
    /// The daemon's measured configuration hash, when it has one: the boot key's quote carries
    /// it (in `simulated` mode its RTMR3 measures it), so the key service sees the measured image.
    pub config_hash: Option<[u8; 32]>,
}

/// Where a daemon waiting for its binding writes its boot key: `<kms_binding_file>.boot-key`.
pub fn boot_key_path(binding_file: &Path) -> PathBuf {
    let mut name = binding_file.as_os_str().to_owned();
    name.push(".boot-key");
    PathBuf::from(name)
}

/// The key material of a daemon of `role` from its `[tls]` section: local keys at once; with
/// `key_source = "kms"` a fresh boot key, the operator's binding of it, and the key service's
/// answer (waiting up to `tls.kms_wait_ms`, default [`KMS_WAIT`], for the binding file and the
/// service).
pub async fn key_material(
    role: Role,
    section: &TlsSection,
    kms: Option<&KmsContext>,
) -> Result<KeyMaterial, KeyError> {
    let wait = if section.kms_wait_ms == 0 {
        KMS_WAIT
    } else {
        Duration::from_millis(section.kms_wait_ms)
    };
    key_material_within(role, section, kms, wait).await
}

/// As [`key_material`], waiting at most `wait`.
pub async fn key_material_within(
    role: Role,
    section: &TlsSection,
    kms: Option<&KmsContext>,
    wait: Duration,
) -> Result<KeyMaterial, KeyError> {
    section
        .validate()
        .map_err(|e| KeyError::Config(e.to_string()))?;
    match section.key_source {
        KeySource::Local => local_keys(role, section),
        KeySource::Kms => {
            let ctx = kms.ok_or_else(|| {
                KeyError::Config(
                    "key_source = \"kms\" needs the [chain] root and the operator's wallet".into(),
                )
            })?;
            kms_keys(role, section, ctx, wait).await
        }
    }
}

fn local_keys(role: Role, section: &TlsSection) -> Result<KeyMaterial, KeyError> {
    if section.mode == TlsMode::Tdx && role == Role::Proxy {
        return Err(KeyError::Config(
            "a proxy in tdx mode takes its key from the key service (key_source = \"kms\"): \
             escrows are bound to it, so it must survive restarts without being readable"
                .into(),
        ));
    }
    let signing = section
        .signing_key()
        .map_err(|e| KeyError::Config(e.to_string()))?;
    let origin = if !section.key_file.is_empty() {
        KeyOrigin::File
    } else if !section.dev_key.is_empty() {
        KeyOrigin::DevKey
    } else {
        KeyOrigin::Boot
    };
    match origin {
        KeyOrigin::File | KeyOrigin::DevKey => tracing::warn!(
            ?role,
            origin = ?origin,
            "INSECURE: this daemon's key comes from the configuration (tls.key_file / dev_key), \
             which the operator can read; allowed in simulated and dev-insecure modes only"
        ),
        _ => tracing::info!(?role, "boot key made in memory at start (no key service)"),
    }
    Ok(KeyMaterial {
        storage: local_storage_key(&signing),
        signing,
        origin,
    })
}

/// The TLS a daemon speaks to the key service with: its boot key in an RA-TLS certificate of its
/// own role (quoted by its provider; none for `Role::Client`, e.g. the CLI asking for a public
/// key), accepting only a peer attested as an allowed `kms` image.
pub fn kms_client_tls(
    role: Role,
    section: &TlsSection,
    boot: SigningKey,
    allowlist: Arc<dyn att::ImageAllowlist>,
) -> Result<RaTls, KeyError> {
    kms_client_tls_measured(role, section, boot, allowlist, None)
}

/// As [`kms_client_tls`], the boot key quoted with the measured `config_hash`.
pub fn kms_client_tls_measured(
    role: Role,
    section: &TlsSection,
    boot: SigningKey,
    allowlist: Arc<dyn att::ImageAllowlist>,
    config_hash: Option<&[u8; 32]>,
) -> Result<RaTls, KeyError> {
    let tls = |e: crate::tls::TlsError| KeyError::Tls(e.to_string());
    match section.mode {
        TlsMode::DevInsecure => {
            RaTls::dev_insecure(role, boot, att::Policy::dev_insecure()).map_err(tls)
        }
        TlsMode::Simulated | TlsMode::Tdx => {
            let mut policy =
                crate::tls_config::peer_policy(role, section, allowlist).map_err(tls)?;
            policy.allowed_roles = vec![att::Role::Kms];
            policy.unattested_roles.clear();
            let provider = quote_provider_measured(role, section, config_hash).map_err(tls)?;
            let mut extra = std::collections::BTreeMap::new();
            if let Some(h) = config_hash {
                extra.insert(att::claims::CONFIG_HASH_KEY.to_owned(), hex::encode(h));
            }
            RaTls::with_claims(role, boot, provider, policy, extra).map_err(tls)
        }
    }
}

/// One request to the key service over `tls`.
pub async fn kms_request(
    tls: &dyn HopTls,
    url: &str,
    method: hyper::Method,
    path_and_query: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, Bytes), String> {
    let tcp = tokio::net::TcpStream::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name =
        rustls::pki_types::ServerName::try_from("kms.cocoon.invalid").map_err(|e| e.to_string())?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("RA-TLS handshake with {url}: {e}"))?;
    let peer = tls
        .peer_identity(stream.get_ref().1)
        .ok_or_else(|| format!("{url} presented no verified identity"))?;
    if peer.role != Role::Kms {
        return Err(format!("{url} is a {}, not a key service", peer.role));
    }
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/2 with {url}: {e}"))?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("https://kms.cocoon.invalid{path_and_query}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let answer = sender.send_request(request).await.map_err(|e| {
        // In TLS 1.3 the server judges the client's certificate after the client finished:
        // a refused attestation shows here, as a closed connection.
        format!(
            "request to {url}: {e} (a key service closes the connection of a peer whose \
                 attestation it refuses: no quote, or an image the root does not allow)"
        )
    })?;
    let status = answer.status().as_u16();
    let body = http_body_util::Limited::new(answer.into_body(), ANSWER_LIMIT)
        .collect()
        .await
        .map_err(|e| format!("reading {url}'s answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn read_binding(path: &Path, boot: &[u8; 32]) -> Option<BootKeyBinding> {
    let text = std::fs::read_to_string(path).ok()?;
    let binding: BootKeyBinding = serde_json::from_str(&text).ok()?;
    let parsed = binding.parse().ok()?;
    (parsed.boot_key == *boot).then_some(binding)
}

async fn kms_keys(
    role: Role,
    section: &TlsSection,
    ctx: &KmsContext,
    wait: Duration,
) -> Result<KeyMaterial, KeyError> {
    let boot = SigningKey::generate(&mut rand::rngs::OsRng);
    let boot_public = boot.verifying_key().to_bytes();
    let tls = kms_client_tls_measured(
        role,
        section,
        boot.clone(),
        ctx.allowlist.clone(),
        ctx.config_hash.as_ref(),
    )?;
    let binding_file = PathBuf::from(&section.kms_binding_file);
    let request_file = boot_key_path(&binding_file);
    std::fs::write(&request_file, format!("{}\n", hex::encode(boot_public))).map_err(|e| {
        KeyError::File {
            path: request_file.display().to_string(),
            message: e.to_string(),
        }
    })?;
    tracing::info!(
        ?role,
        boot_key = %hex::encode(boot_public),
        wallet = %ctx.wallet.to_hex(),
        binding_file = %binding_file.display(),
        "boot key made in memory; the operator's wallet must bind it: \
         `cocoon kms bind --role {role} --boot-key-file {} --out {}`",
        request_file.display(),
        binding_file.display()
    );
    let deadline = tokio::time::Instant::now() + wait;
    let mut last = "waiting for the operator's binding".to_owned();
    let mut pause = Duration::from_millis(50);
    loop {
        if let Some(binding) = read_binding(&binding_file, &boot_public) {
            let body = serde_json::to_vec(&KeyRequest { binding })
                .map_err(|e| KeyError::Answer(e.to_string()))?;
            match kms_request(
                &tls,
                &section.kms_url,
                hyper::Method::POST,
                KMS_KEYS_PATH,
                Some(body),
            )
            .await
            {
                Ok((200, body)) => return keys_from_answer(role, section, boot, &body),
                Ok((status, body)) if (400..500).contains(&status) => {
                    return Err(KeyError::Refused {
                        status,
                        message: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                Ok((status, body)) => {
                    last = format!("{status}: {}", String::from_utf8_lossy(&body));
                }
                Err(e) => last = e,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(KeyError::Timeout {
                secs: wait.as_secs(),
                last,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn keys_from_answer(
    role: Role,
    section: &TlsSection,
    boot: SigningKey,
    body: &[u8],
) -> Result<KeyMaterial, KeyError> {
    let answer: KeyAnswer =
        serde_json::from_slice(body).map_err(|e| KeyError::Answer(e.to_string()))?;
    if answer.role != role {
        return Err(KeyError::Answer(format!(
            "keys for a {}, not a {role}",
            answer.role
        )));
    }
    let storage = hex32("storage", &answer.storage).map_err(KeyError::Answer)?;
    let signing = match (&answer.signing, role) {
        (Some(seed), Role::Proxy) => {
            SigningKey::from_bytes(&hex32("signing", seed).map_err(KeyError::Answer)?)
        }
        (None, Role::Proxy) => {
            return Err(KeyError::Answer("no signing key for a proxy".into()));
        }
        // A worker signs with the boot key its stake is bound to.
        _ => boot,
    };
    if section.mode.is_insecure() {
        tracing::warn!(
            ?role,
            public_key = %hex::encode(signing.verifying_key().to_bytes()),
            epoch = answer.epoch,
            "INSECURE: keys released by a {} key service (simulated quotes, nothing backed by hardware)",
            section.mode.as_str()
        );
    } else {
        tracing::info!(
            ?role,
            public_key = %hex::encode(signing.verifying_key().to_bytes()),
            epoch = answer.epoch,
            "keys released by the key service"
        );
    }
    Ok(KeyMaterial {
        signing,
        storage,
        origin: KeyOrigin::Kms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        // RFC 5869 A.1, first 32 bytes of OKM.
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm = hkdf_sha256(&salt, &ikm, &info);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn a_binding_verifies_only_under_its_wallet_key_and_fields() {
        let wallet_key = SigningKey::from_bytes(&[7; 32]);
        let root = cocoon_ton::parse_address(&format!("0:{}", "11".repeat(32))).unwrap();
        let wallet = cocoon_ton::parse_address(&format!("0:{}", "22".repeat(32))).unwrap();
        let b = BootKeyBinding::sign(&wallet_key, Role::Proxy, &root, &wallet, &[3; 32], 99);
        let p = b.parse().unwrap();
        assert!(p.verify(&wallet_key.verifying_key().to_bytes()));
        assert!(!p.verify(&SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes()));
        let mut other = b.clone();
        other.role = Role::Worker;
        assert!(
            !other
                .parse()
                .unwrap()
                .verify(&wallet_key.verifying_key().to_bytes())
        );
        let mut later = b;
        later.valid_until = 100;
        assert!(
            !later
                .parse()
                .unwrap()
                .verify(&wallet_key.verifying_key().to_bytes())
        );
    }
}
