//! What the key service releases to whom, independent of HTTP: [`KmsService::release`] (a TD's
//! keys), [`KmsService::public_key`] (what governance registers), [`KmsService::master_for`]
//! (replication).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use cocoon_attestation as att;
use cocoon_daemon::keys::{BootKeyBinding, KeyAnswer, KeyRequest, PublicKeyAnswer, hkdf_sha256};
use cocoon_daemon::tls::{PeerIdentity, Role};
use cocoon_ton::{StackEntry, TonAddress, TonClient};
use ed25519_dalek::SigningKey;

use crate::Master;

/// A boxed future (no async-trait dependency).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who keys are derived for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The chain's global id (the root's `network_id`).
    pub network_id: i32,
    /// The root contract.
    pub root: TonAddress,
    /// The role.
    pub role: Role,
    /// The operator's wallet.
    pub wallet: TonAddress,
    /// The derivation epoch (bumped only to rotate every key at once).
    pub epoch: u32,
}

fn address_bytes(out: &mut Vec<u8>, a: &TonAddress) {
    out.extend_from_slice(&a.workchain.to_be_bytes());
    out.extend_from_slice(a.hash_part.as_slice());
}

/// `HKDF-SHA256(salt "cocoon-kms-v1", M, network_id ‖ root ‖ role ‖ wallet ‖ len ‖ purpose ‖
/// epoch)`: integers big-endian, addresses `workchain (i32) ‖ hash`, `len` one byte.
pub fn derive(master: &Master, scope: &Scope, purpose: &str) -> [u8; 32] {
    let mut info = Vec::with_capacity(120);
    info.extend_from_slice(&scope.network_id.to_be_bytes());
    address_bytes(&mut info, &scope.root);
    info.push(scope.role.code());
    address_bytes(&mut info, &scope.wallet);
    let purpose = purpose.as_bytes();
    info.push(u8::try_from(purpose.len()).unwrap_or(u8::MAX));
    info.extend_from_slice(purpose);
    info.extend_from_slice(&scope.epoch.to_be_bytes());
    hkdf_sha256(b"cocoon-kms-v1", master.expose(), &info)
}

/// The public key of an operator's wallet, as the chain reports it (`get_public_key`).
pub trait WalletKeys: Send + Sync + std::fmt::Debug {
    /// `Ok(None)`: the wallet is not deployed or has no such get-method.
    fn public_key<'a>(
        &'a self,
        wallet: &'a TonAddress,
    ) -> BoxFuture<'a, Result<Option<[u8; 32]>, String>>;
}

/// [`WalletKeys`] read from the chain.
#[derive(Clone)]
pub struct ChainWalletKeys {
    client: Arc<dyn TonClient>,
}

impl std::fmt::Debug for ChainWalletKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainWalletKeys")
    }
}

impl ChainWalletKeys {
    /// Reads wallets through `client`.
    pub fn new(client: Arc<dyn TonClient>) -> ChainWalletKeys {
        ChainWalletKeys { client }
    }
}

impl WalletKeys for ChainWalletKeys {
    fn public_key<'a>(
        &'a self,
        wallet: &'a TonAddress,
    ) -> BoxFuture<'a, Result<Option<[u8; 32]>, String>> {
        Box::pin(async move {
            let result = match self
                .client
                .run_get_method(wallet, "get_public_key", &[])
                .await
            {
                Ok(r) => r,
                Err(e) => return Err(e.to_string()),
            };
            if !result.success() {
                return Ok(None);
            }
            let Some(StackEntry::Num(n)) = result.stack.first() else {
                return Ok(None);
            };
            let (sign, bytes) = n.to_bytes_be();
            if sign == num_bigint::Sign::Minus || bytes.len() > 32 {
                return Ok(None);
            }
            let mut key = [0u8; 32];
            key[32 - bytes.len()..].copy_from_slice(&bytes);
            Ok(Some(key))
        })
    }
}

/// [`WalletKeys`] from a table (tests, and networks built in memory).
#[derive(Debug, Clone, Default)]
pub struct MemoryWalletKeys {
    keys: Arc<RwLock<HashMap<String, [u8; 32]>>>,
}

impl MemoryWalletKeys {
    /// An empty table.
    pub fn new() -> MemoryWalletKeys {
        MemoryWalletKeys::default()
    }

    /// `wallet`'s key is `key`.
    pub fn insert(&self, wallet: &TonAddress, key: [u8; 32]) {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(wallet.to_hex(), key);
    }
}

impl WalletKeys for MemoryWalletKeys {
    fn public_key<'a>(
        &'a self,
        wallet: &'a TonAddress,
    ) -> BoxFuture<'a, Result<Option<[u8; 32]>, String>> {
        let found = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&wallet.to_hex())
            .copied();
        Box::pin(async move { Ok(found) })
    }
}

/// Why nothing was released, as the peer is told (HTTP status and message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer's role gets no keys here.
    #[error("a {0} gets no keys from the key service")]
    Role(Role),
    /// The binding does not parse.
    #[error("malformed binding: {0}")]
    Malformed(String),
    /// The binding names another role, root or boot key than the peer's.
    #[error("the binding is for {0}, not for this TD")]
    NotThisTd(&'static str),
    /// The binding expired.
    #[error("the binding expired at {0}")]
    Expired(u64),
    /// The wallet's public key cannot be read now.
    #[error("the operator wallet cannot be read now: {0}")]
    ChainUnavailable(String),
    /// The wallet has no public key on chain.
    #[error("the operator wallet {0} has no public key on chain")]
    NoWalletKey(String),
    /// The wallet's key did not sign the binding.
    #[error("the boot key is not bound by the operator wallet {0}")]
    NotBound(String),
    /// Only a key-service replica gets the master key.
    #[error("only an attested key service gets the master key")]
    NotAReplica,
}

impl Refusal {
    /// The HTTP status the peer sees.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::ChainUnavailable(_) => 503,
            Refusal::Malformed(_) => 400,
            _ => 403,
        }
    }
}

/// The key service's state: the master key and what it derives under.
pub struct KmsService {
    master: Master,
    network_id: i32,
    root: TonAddress,
    epoch: u32,
    wallets: Arc<dyn WalletKeys>,
    clock: Arc<dyn att::Clock>,
}

impl std::fmt::Debug for KmsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsService")
            .field("network_id", &self.network_id)
            .field("root", &self.root.to_hex())
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl KmsService {
    /// A service holding `master` for the network of `root` (`network_id`), deriving at `epoch`.
    pub fn new(
        master: Master,
        network_id: i32,
        root: TonAddress,
        epoch: u32,
        wallets: Arc<dyn WalletKeys>,
        clock: Arc<dyn att::Clock>,
    ) -> KmsService {
        KmsService {
            master,
            network_id,
            root,
            epoch,
            wallets,
            clock,
        }
    }

    fn scope(&self, role: Role, wallet: &TonAddress) -> Scope {
        Scope {
            network_id: self.network_id,
            root: self.root.clone(),
            role,
            wallet: wallet.clone(),
            epoch: self.epoch,
        }
    }

    /// The signing seed released for (role, wallet): a proxy's `P`.
    fn signing_seed(&self, role: Role, wallet: &TonAddress) -> [u8; 32] {
        derive(&self.master, &self.scope(role, wallet), "signing")
    }

    /// The public key of the signing key released to `wallet`'s proxy (what governance registers).
    pub fn public_key(&self, role: Role, wallet: &TonAddress) -> Result<PublicKeyAnswer, Refusal> {
        if role != Role::Proxy {
            return Err(Refusal::Role(role));
        }
        let key = SigningKey::from_bytes(&self.signing_seed(role, wallet));
        Ok(PublicKeyAnswer {
            role,
            wallet: wallet.to_hex(),
            epoch: self.epoch,
            public_key: hex::encode(key.verifying_key().to_bytes()),
        })
    }

    /// The keys for `peer` (verified by the RA-TLS policy: quote, TCB, image allowed for its role)
    /// if the binding in `request` is the operator wallet's word for this very TD.
    pub async fn release(
        &self,
        peer: &PeerIdentity,
        request: &KeyRequest,
    ) -> Result<KeyAnswer, Refusal> {
        if !matches!(peer.role, Role::Proxy | Role::Worker) {
            return Err(Refusal::Role(peer.role));
        }
        let binding = request.binding.parse().map_err(Refusal::Malformed)?;
        if binding.role != peer.role {
            return Err(Refusal::NotThisTd("another role"));
        }
        if binding.boot_key != peer.public_key {
            return Err(Refusal::NotThisTd("another boot key"));
        }
        if binding.root != self.root {
            return Err(Refusal::NotThisTd("another root"));
        }
        let now = u64::try_from(self.clock.now_unix()).unwrap_or(0);
        if binding.valid_until < now {
            return Err(Refusal::Expired(binding.valid_until));
        }
        let wallet_key = self
            .wallets
            .public_key(&binding.wallet)
            .await
            .map_err(Refusal::ChainUnavailable)?
            .ok_or_else(|| Refusal::NoWalletKey(binding.wallet.to_hex()))?;
        if !binding.verify(&wallet_key) {
            return Err(Refusal::NotBound(binding.wallet.to_hex()));
        }
        let scope = self.scope(peer.role, &binding.wallet);
        let signing = (peer.role == Role::Proxy)
            .then(|| hex::encode(derive(&self.master, &scope, "signing")));
        tracing::info!(
            role = %peer.role,
            wallet = %binding.wallet.to_hex(),
            boot_key = %hex::encode(peer.public_key),
            image_hash = %hex::encode(peer.image_hash),
            insecure = peer.insecure,
            "keys released"
        );
        Ok(KeyAnswer {
            role: peer.role,
            wallet: binding.wallet.to_hex(),
            epoch: self.epoch,
            signing,
            storage: hex::encode(derive(&self.master, &scope, "storage")),
        })
    }

    /// The master key, for a peer attested as an allowed key-service image.
    pub fn master_for(&self, peer: &PeerIdentity) -> Result<String, Refusal> {
        if peer.role != Role::Kms {
            return Err(Refusal::NotAReplica);
        }
        tracing::info!(
            boot_key = %hex::encode(peer.public_key),
            image_hash = %hex::encode(peer.image_hash),
            insecure = peer.insecure,
            "master key sent to a key-service replica"
        );
        Ok(hex::encode(self.master.expose()))
    }

    /// Parses a binding file's text (what `cocoon kms bind` writes).
    pub fn parse_binding(text: &str) -> Result<BootKeyBinding, Refusal> {
        serde_json::from_str(text).map_err(|e| Refusal::Malformed(e.to_string()))
    }
}
