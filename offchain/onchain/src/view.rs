//! [`OnchainView`]: the proxy's read access, answered from a cache refreshed in the background.
//! (`cocoon-proxy` implements its `ChainView` trait over it.)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use cocoon_contracts::Bits256;
use cocoon_contracts::address::{stake_address, vault_address};
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::NetworkParams;
use cocoon_contracts::state::{
    ESCROW_CLOSING, ESCROW_OPEN, EscrowStorage, ROLE_WORKER, RootStorage, StakeStorage,
};
use cocoon_protocol::PriceParams;
use cocoon_ton::{TonAddress, TonClient};

use crate::OnchainError;
use crate::binding::{BindError, BindGuard, BindPolicy};
use crate::seal::{FileKind, SealError, Sealer, StorageKey, new_store_id};
use crate::tx::fetch_state;

/// What the view reads and how often.
#[derive(Debug, Clone)]
pub struct OnchainConfig {
    /// The root contract.
    pub root: TonAddress,
    /// The proxy operator's wallet (owner of the proxy stake, the escrows' counterparty).
    pub proxy: TonAddress,
    /// How often the cache is refreshed.
    pub refresh: Duration,
    /// Accept peers without attestation (simulated TEE, development TLS) if their stake is good.
    /// INSECURE: development mode only.
    pub allow_unattested: bool,
    /// How announced wallets are checked against the chain (negative cache, lookup budget).
    pub binding: BindPolicy,
    /// Where bindings (TLS key → wallet) are kept across restarts, sealed, so that a client's
    /// unsettled charges can be settled and a worker paid after a restart before it comes back. Each
    /// start reads it back (a record that fails authentication is refused); the chain is still
    /// checked at every refresh (a key the escrow or stake does not hold gets nothing).
    pub bindings: Option<BindingsFile>,
}

/// The sealed bindings file and its key.
#[derive(Debug, Clone)]
pub struct BindingsFile {
    /// The file.
    pub path: std::path::PathBuf,
    /// The key it is sealed with (the daemon's storage key).
    pub key: StorageKey,
}

/// An escrow's lifecycle as the chain shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscrowPhase {
    /// Open: the client may spend its credit.
    Open,
    /// A unilateral close is under way: it may finish at `closing_at` (unix seconds); charges not
    /// settled by then are refunded to the client.
    Closing {
        /// When the close may finish.
        closing_at: u64,
    },
    /// Closed (or not initialised): nothing can be settled.
    Closed,
}

/// An escrow of a known client wallet, in any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowStatus {
    /// Its phase.
    pub phase: EscrowPhase,
    /// The cumulative charge it has accepted, nanoTON.
    pub settled: u128,
    /// The client key it admits now.
    pub client_key: Option<[u8; 32]>,
}

/// A client's open escrow as the chain shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowInfo {
    /// Account id of the escrow contract (vouchers are bound to it).
    pub escrow: [u8; 32],
    /// Credit the escrow guarantees now: the locked stake, net of what it holds, nanoTON.
    pub credit: u128,
    /// The cumulative charge the escrow has accepted, nanoTON.
    pub settled: u128,
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    params: PriceParams,
    network_id: i32,
    worker_images: BTreeMap<Bits256, u32>,
    /// Open escrows by the client key they hold now (a key its escrow no longer holds, or never
    /// held, has none: nothing is reserved or signed for it).
    escrows: HashMap<[u8; 32], EscrowInfo>,
    /// Every known escrow by account id, in any state (settlement follows closing escrows).
    by_escrow: HashMap<[u8; 32], EscrowStatus>,
    /// Client keys their escrow is bound to now (`client_key` on chain): these are admitted.
    admitted: HashSet<[u8; 32]>,
    /// Worker key → its stake may serve and is bound to this key.
    workers: HashMap<[u8; 32], bool>,
    /// The state marker the proxy's vault holds.
    marker: u64,
}

#[derive(Debug, Default)]
struct Directory {
    clients: HashMap<[u8; 32], TonAddress>,
    workers: HashMap<[u8; 32], TonAddress>,
    /// Escrow account id → escrow address, of every client wallet bound.
    escrows: HashMap<[u8; 32], TonAddress>,
    /// Client keys whose binding the chain confirmed (the escrow held the key when it was read, now
    /// or before it was sealed into the bindings file): only these have a ledger account.
    verified_clients: HashSet<[u8; 32]>,
    /// Worker keys whose owner's stake was seen holding the key: only these earn into the owner.
    verified_workers: HashSet<[u8; 32]>,
}

/// The bindings file as written so far.
#[derive(Debug)]
struct BindingsLog {
    sealer: Sealer,
    /// Records in the file (the next one's index).
    count: u64,
    /// Whether the header is on disk.
    started: bool,
}

const BINDINGS_MAGIC: &str = "cocoon-bindings";
const BINDINGS_FORMAT: u64 = 2;

/// The chain state a proxy needs, cached and refreshed in the background.
pub struct OnchainView {
    client: Arc<dyn TonClient>,
    config: OnchainConfig,
    vault: TonAddress,
    directory: RwLock<Directory>,
    snapshot: RwLock<Snapshot>,
    guard: BindGuard,
    bindings: std::sync::Mutex<Option<BindingsLog>>,
}

impl std::fmt::Debug for OnchainView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnchainView")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The proxy's price parameters from the root's network parameters.
pub fn price_params(version: u32, p: &NetworkParams) -> Result<PriceParams, OnchainError> {
    Ok(PriceParams {
        version,
        price_per_token: u64::try_from(p.price_per_token)
            .map_err(|_| OnchainError::Invalid("price_per_token exceeds u64".into()))?,
        prompt_multiplier: p.prompt_mult,
        cached_multiplier: p.cached_mult,
        completion_multiplier: p.completion_mult,
        reasoning_multiplier: p.reasoning_mult,
        worker_share_bps: u32::from(p.worker_share_bps),
    })
}

fn escrow_status(st: &EscrowStorage) -> EscrowStatus {
    let phase = match st.state {
        ESCROW_OPEN => EscrowPhase::Open,
        ESCROW_CLOSING => EscrowPhase::Closing {
            closing_at: u64::from(st.closing_at),
        },
        _ => EscrowPhase::Closed,
    };
    EscrowStatus {
        phase,
        settled: st.charged,
        client_key: escrow_client_key(st),
    }
}

fn escrow_escrow_info(address: &TonAddress, st: &EscrowStorage) -> Option<EscrowInfo> {
    if st.state != ESCROW_OPEN {
        return None;
    }
    Some(EscrowInfo {
        escrow: account_id(address),
        credit: st.stake.min(st.balance),
        settled: st.charged,
    })
}

/// The client key an escrow admits (set at opening, rotatable by the client).
fn escrow_client_key(st: &EscrowStorage) -> Option<Bits256> {
    st.client_key()
}

/// The state marker a proxy's vault holds.
pub(crate) fn stake_marker(st: &StakeStorage) -> u64 {
    st.marker()
}

impl OnchainView {
    /// Reads the chain once (the root must be deployed) and returns the view.
    pub async fn load(
        client: Arc<dyn TonClient>,
        config: OnchainConfig,
    ) -> Result<Arc<OnchainView>, OnchainError> {
        let vault = vault_address(&config.root, &config.proxy)?;
        let guard = BindGuard::new(config.binding);
        let view = Arc::new(OnchainView {
            client,
            config,
            vault,
            directory: RwLock::new(Directory::default()),
            snapshot: RwLock::new(Snapshot::default()),
            guard,
            bindings: std::sync::Mutex::new(None),
        });
        view.load_bindings()?;
        view.refresh().await?;
        Ok(view)
    }

    /// Reads the bindings file back (a missing file is a first start). A sealed file whose header or
    /// any complete record fails authentication is refused; a torn last line is cut; a format-1 file
    /// (plain lines, as written before sealing) is read once, its bindings unconfirmed until a refresh
    /// confirms each (then sealed into a new file); either way the chain is checked at every refresh
    /// before a binding is used.
    fn load_bindings(&self) -> Result<(), OnchainError> {
        let Some(cfg) = &self.config.bindings else {
            return Ok(());
        };
        let path = &cfg.path;
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(OnchainError::Invalid(format!("{shown}: {e}"))),
        };
        // A last line without its newline is a torn append: never acknowledged, dropped, and cut from
        // the file so that the next append starts on a line of its own.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| {
                    f.set_len(whole as u64)?;
                    f.sync_data()
                })
                .map_err(|e| OnchainError::Invalid(format!("{shown}: {e}")))?;
        }
        let text = String::from_utf8_lossy(&bytes[..whole]).into_owned();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let header = lines.first().map(|l| l.trim_end().to_string());
        let sealed = header
            .as_deref()
            .is_some_and(|h| h.starts_with(BINDINGS_MAGIC));
        let mut plain: Vec<String> = Vec::new();
        let log = if sealed {
            let h = header.unwrap_or_default();
            let parts: Vec<&str> = h.split_whitespace().collect();
            let refused = || {
                OnchainError::Sealed(SealError::Header {
                    file: shown.clone(),
                })
            };
            let [_, format, id, mac] = parts.as_slice() else {
                return Err(refused());
            };
            let mut store_id = [0u8; 32];
            let mut tag = [0u8; crate::seal::MAC_BYTES];
            if *format != BINDINGS_FORMAT.to_string()
                || hex::decode_to_slice(id, &mut store_id).is_err()
                || hex::decode_to_slice(mac, &mut tag).is_err()
            {
                return Err(refused());
            }
            let sealer = Sealer::new(&cfg.key, FileKind::Bindings, store_id, shown.clone());
            sealer
                .check_header(BINDINGS_FORMAT, &tag)
                .map_err(OnchainError::Sealed)?;
            let mut count = 0u64;
            for line in &lines[1..] {
                let refused = || {
                    OnchainError::Sealed(SealError::Record {
                        file: shown.clone(),
                        record: format!("{}", count + 1),
                    })
                };
                let bytes = hex::decode(line.trim_end()).map_err(|_| refused())?;
                let text = sealer
                    .open(&count.to_le_bytes(), &bytes, || format!("{}", count + 1))
                    .map_err(OnchainError::Sealed)?;
                plain.push(String::from_utf8(text).map_err(|_| refused())?);
                count += 1;
            }
            BindingsLog {
                sealer,
                count,
                started: true,
            }
        } else {
            plain = lines.iter().map(|l| l.trim_end().to_string()).collect();
            let sealer = Sealer::new(&cfg.key, FileKind::Bindings, new_store_id(), shown.clone());
            BindingsLog {
                sealer,
                count: 0,
                started: false,
            }
        };
        let migrate = !sealed && !plain.is_empty();
        // Sealed records were written only once the chain confirmed them; format-1 lines (plain
        // text the host could write) count only once a refresh confirms them.
        let trusted = sealed;
        let mut kept = Vec::new();
        {
            let mut dir = write(&self.directory);
            for line in &plain {
                let Some((kind, key, wallet)) = parse_binding(line) else {
                    tracing::warn!(%line, "bindings file: line skipped");
                    continue;
                };
                match kind {
                    BindingKind::Client => {
                        if let Ok(address) = self.escrow_address(&wallet) {
                            dir.escrows.insert(account_id(&address), address);
                        }
                        if dir.clients.insert(key, wallet.clone()).as_ref() != Some(&wallet) {
                            dir.verified_clients.remove(&key);
                        }
                        if trusted {
                            dir.verified_clients.insert(key);
                        }
                    }
                    BindingKind::Worker => {
                        if dir.workers.insert(key, wallet.clone()).as_ref() != Some(&wallet) {
                            dir.verified_workers.remove(&key);
                        }
                        if trusted {
                            dir.verified_workers.insert(key);
                        }
                    }
                }
                kept.push((kind, key, wallet));
            }
        }
        *self.bindings.lock().unwrap_or_else(|p| p.into_inner()) = Some(log);
        if migrate {
            // Format 1: its lines stay in memory, unconfirmed, until a refresh confirms each against
            // the chain (then it is sealed into a fresh file); the plain file is set aside.
            let old = path.with_extension("bindings.v1");
            std::fs::rename(path, &old)
                .map_err(|e| OnchainError::Invalid(format!("{shown}: {e}")))?;
            tracing::info!(bindings = kept.len(), path = %shown, kept_as = %old.display(), "format-1 bindings read; each is sealed once the chain confirms it");
        }
        Ok(())
    }

    /// Appends a new binding to the bindings file (a failure keeps it in memory only, with a warning).
    fn persist_binding(&self, kind: BindingKind, key: &[u8; 32], wallet: &TonAddress) {
        let Some(cfg) = &self.config.bindings else {
            return;
        };
        let mut guard = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        let Some(log) = guard.as_mut() else {
            return;
        };
        if let Err(e) = append_binding(&cfg.path, log, kind, key, wallet) {
            tracing::warn!(path = %cfg.path.display(), error = %e, "binding kept in memory only");
        }
    }

    /// The chain client.
    pub fn client(&self) -> &Arc<dyn TonClient> {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &OnchainConfig {
        &self.config
    }

    /// The proxy's vault (its proxy-role stake), which pays workers.
    pub fn vault(&self) -> &TonAddress {
        &self.vault
    }

    /// Binds a client's TLS key to its wallet (its escrow is derived from it) without checking the
    /// chain; admission still needs the escrow's `client_key` to be this key (read at the next
    /// refresh). [`OnchainView::bind_client`] is what the proxy calls.
    pub fn watch_client(&self, key: [u8; 32], wallet: TonAddress) {
        let mut dir = write(&self.directory);
        if let Ok(address) = self.escrow_address(&wallet) {
            dir.escrows.insert(account_id(&address), address);
        }
        if dir.clients.insert(key, wallet).is_some() {
            // Unconfirmed until the next refresh reads the escrow (and it holds this key).
            dir.verified_clients.remove(&key);
        }
    }

    /// Marks bindings the chain confirmed, sealing each one new into the bindings file.
    fn confirm(&self, clients: &[([u8; 32], TonAddress)], workers: &[([u8; 32], TonAddress)]) {
        let mut fresh = Vec::new();
        {
            let mut dir = write(&self.directory);
            for (key, wallet) in clients {
                if dir.clients.get(key) == Some(wallet) && dir.verified_clients.insert(*key) {
                    fresh.push((BindingKind::Client, *key, wallet.clone()));
                }
            }
            for (key, owner) in workers {
                if dir.workers.get(key) == Some(owner) && dir.verified_workers.insert(*key) {
                    fresh.push((BindingKind::Worker, *key, owner.clone()));
                }
            }
        }
        for (kind, key, wallet) in fresh {
            self.persist_binding(kind, &key, &wallet);
        }
    }

    /// Binds a worker's TLS key to the wallet that owns its stake and receives its payouts, without
    /// checking the chain (the next refresh checks the stake's key). [`OnchainView::bind_worker`] is
    /// what the proxy calls.
    pub fn watch_worker(&self, key: [u8; 32], owner: TonAddress) {
        let mut dir = write(&self.directory);
        if dir.workers.insert(key, owner).is_some() {
            dir.verified_workers.remove(&key);
        }
    }

    /// The wallet a client key was bound to.
    pub fn client_wallet(&self, key: &[u8; 32]) -> Option<TonAddress> {
        read(&self.directory).clients.get(key).cloned()
    }

    /// The wallet a worker key was bound to.
    pub fn worker_owner(&self, key: &[u8; 32]) -> Option<TonAddress> {
        read(&self.directory).workers.get(key).cloned()
    }

    /// The ledger account of a client key: the account id of the escrow of the wallet it was bound
    /// to (whatever the escrow's state).
    pub fn client_account(&self, key: &[u8; 32]) -> Option<[u8; 32]> {
        let wallet = {
            let dir = read(&self.directory);
            if !dir.verified_clients.contains(key) {
                return None;
            }
            dir.clients.get(key).cloned()?
        };
        self.escrow_address(&wallet).ok().map(|a| account_id(&a))
    }

    /// The address of a bound client's escrow by its account id.
    pub fn escrow_by_id(&self, escrow: &[u8; 32]) -> Option<TonAddress> {
        read(&self.directory).escrows.get(escrow).cloned()
    }

    /// The payee a worker key earns into: the account id of the owner wallet it was bound to (its
    /// stake's owner, who receives its payouts), or the key itself while unbound.
    pub fn payee(&self, key: &[u8; 32]) -> [u8; 32] {
        let dir = read(&self.directory);
        match dir.workers.get(key) {
            Some(owner) if dir.verified_workers.contains(key) => account_id(owner),
            _ => *key,
        }
    }

    /// The wallet of a payee (see [`OnchainView::payee`]); a bound worker key also names its owner.
    pub fn payee_wallet(&self, payee: &[u8; 32]) -> Option<TonAddress> {
        let dir = read(&self.directory);
        if let Some(owner) = dir.workers.get(payee) {
            return Some(owner.clone());
        }
        dir.workers
            .iter()
            .filter(|(key, _)| dir.verified_workers.contains(*key))
            .map(|(_, owner)| owner)
            .find(|owner| account_id(owner) == *payee)
            .cloned()
    }

    /// An escrow of a bound client by account id, in any state (as of the last read).
    pub fn escrow_status(&self, escrow: &[u8; 32]) -> Option<EscrowStatus> {
        read(&self.snapshot).by_escrow.get(escrow).copied()
    }

    /// The escrow of a client wallet with this proxy.
    pub fn escrow_address(&self, client_wallet: &TonAddress) -> Result<TonAddress, OnchainError> {
        Ok(cocoon_contracts::address::escrow_address(
            &self.config.root,
            client_wallet,
            &self.config.proxy,
        )?)
    }

    /// Reads everything the cache holds from the chain and swaps it in.
    pub async fn refresh(&self) -> Result<(), OnchainError> {
        let client = self.client.as_ref();
        let root: RootStorage = fetch_state(client, &self.config.root)
            .await?
            .ok_or_else(|| OnchainError::NotDeployed(self.config.root.to_hex()))?;
        let mut next = Snapshot {
            params: price_params(root.params_version, &root.params)?,
            network_id: root.network_id,
            worker_images: root.registry.worker_images.clone(),
            ..Snapshot::default()
        };
        let (clients, workers) = {
            let d = read(&self.directory);
            (d.clients.clone(), d.workers.clone())
        };
        let mut confirmed_clients = Vec::new();
        for (key, wallet) in &clients {
            let address = self.escrow_address(wallet)?;
            if let Some(st) = fetch_state::<EscrowStorage>(client, &address).await? {
                next.by_escrow
                    .insert(account_id(&address), escrow_status(&st));
                // Only the key the escrow holds gets its escrow: a binding (from the file or a
                // request) naming another wallet's escrow is never reserved, charged or signed for.
                if self.config.binding.dev_trust_client_wallet
                    || escrow_client_key(&st) == Some(*key)
                {
                    if let Some(info) = escrow_escrow_info(&address, &st) {
                        next.escrows.insert(*key, info);
                    }
                    next.admitted.insert(*key);
                    confirmed_clients.push((*key, wallet.clone()));
                }
            }
        }
        let mut confirmed_workers = Vec::new();
        for (key, owner) in &workers {
            let address = stake_address(&self.config.root, owner, ROLE_WORKER)?;
            let st = fetch_state::<StakeStorage>(client, &address).await?;
            if st.as_ref().is_some_and(|st| st.key == *key) {
                confirmed_workers.push((*key, owner.clone()));
            }
            let ok = st.is_some_and(|st| st.key == *key && st.can_serve());
            next.workers.insert(*key, ok);
        }
        next.marker = fetch_state::<StakeStorage>(client, &self.vault)
            .await?
            .map_or(0, |st| stake_marker(&st));
        let mut snap = write(&self.snapshot);
        // Keys bound while this refresh ran keep what their binding found.
        for (key, info) in &snap.escrows {
            if !clients.contains_key(key) {
                next.escrows.insert(*key, *info);
            }
        }
        for key in &snap.admitted {
            if !clients.contains_key(key) {
                next.admitted.insert(*key);
            }
        }
        for (id, status) in &snap.by_escrow {
            next.by_escrow.entry(*id).or_insert(*status);
        }
        for (key, ok) in &snap.workers {
            if !workers.contains_key(key) {
                next.workers.insert(*key, *ok);
            }
        }
        // The marker only moves up (a commit confirmed since the read started is not undone).
        next.marker = next.marker.max(snap.marker);
        *snap = next;
        drop(snap);
        self.confirm(&confirmed_clients, &confirmed_workers);
        Ok(())
    }

    /// Binds a worker's TLS key to the owner wallet it announced, after reading the owner's
    /// worker-role stake: it must be bound to this key and able to serve. Refusals are remembered
    /// for `binding.retry_after`, and lookups share one budget (see [`BindPolicy`]).
    pub async fn bind_worker(&self, key: [u8; 32], owner: &str) -> Result<TonAddress, BindError> {
        self.bind_worker_from(key, owner, None).await
    }

    /// [`OnchainView::bind_worker`] for a peer at `peer`: its lookup also takes from that peer's
    /// share of the budget (see [`BindPolicy`]).
    pub async fn bind_worker_from(
        &self,
        key: [u8; 32],
        owner: &str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<TonAddress, BindError> {
        let owner = cocoon_ton::parse_address(owner.trim()).map_err(|e| {
            BindError::NoWallet(format!("the worker announced no usable owner wallet: {e}"))
        })?;
        let bound = |view: &Self| {
            view.worker_owner(&key).as_ref() == Some(&owner)
                && read(&view.snapshot).workers.get(&key) == Some(&true)
        };
        let pair = (key, account_id(&owner));
        if bound(self) {
            return Ok(owner);
        }
        if let Some(e) = self.guard.refused(&pair) {
            return Err(e);
        }
        let _one = self.guard.lookup.lock().await;
        if bound(self) {
            return Ok(owner);
        }
        if let Some(e) = self.guard.refused(&pair) {
            return Err(e);
        }
        if !self.guard.take(peer) {
            return Err(BindError::Busy);
        }
        let address = stake_address(&self.config.root, &owner, ROLE_WORKER)
            .map_err(|e| BindError::NoWallet(e.to_string()))?;
        let st = fetch_state::<StakeStorage>(self.client.as_ref(), &address)
            .await
            .map_err(|e| BindError::Unavailable(e.to_string()))?;
        let shown = owner.to_hex();
        let refused = match st {
            None => Some(format!("{shown} has no worker stake")),
            Some(st) if st.key != key => Some(format!(
                "the worker stake of {shown} is bound to another key"
            )),
            Some(st) if !st.can_serve() => Some(format!(
                "the worker stake of {shown} may not serve (inactive or below the minimum)"
            )),
            Some(_) => None,
        };
        if let Some(reason) = refused {
            let e = BindError::Refused(reason);
            self.guard.remember(pair, e.clone());
            return Err(e);
        }
        self.watch_worker(key, owner.clone());
        self.confirm(&[], &[(key, owner.clone())]);
        write(&self.snapshot).workers.insert(key, true);
        self.guard.forget(&pair);
        Ok(owner)
    }

    /// Admits a client's TLS key: at once when its escrow is bound to it; otherwise, with the
    /// wallet the client announced, reads that wallet's escrow with this proxy and binds the key
    /// when the escrow's `client_key` is this key. Refusals are remembered for
    /// `binding.retry_after`, and lookups share one budget (see [`BindPolicy`]): no request reads the
    /// chain for a key already admitted or recently refused.
    pub async fn bind_client(&self, key: [u8; 32], wallet: Option<&str>) -> Result<(), BindError> {
        self.bind_client_from(key, wallet, None).await
    }

    /// [`OnchainView::bind_client`] for a peer at `peer`: its lookup also takes from that peer's
    /// share of the budget (see [`BindPolicy`]), so that one peer burning fresh keys cannot lock
    /// out the new keys of others.
    pub async fn bind_client_from(
        &self,
        key: [u8; 32],
        wallet: Option<&str>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<(), BindError> {
        if self.client_admitted(&key) {
            return Ok(());
        }
        if let Some(bound) = self.client_wallet(&key) {
            return Err(BindError::Refused(format!(
                "the escrow of {} is no longer bound to this client key",
                bound.to_hex()
            )));
        }
        let wallet = wallet.filter(|w| !w.trim().is_empty()).ok_or_else(|| {
            BindError::NoWallet(
                "this client key is not bound yet: send the client wallet (x-cocoon-client-wallet)"
                    .into(),
            )
        })?;
        let wallet = cocoon_ton::parse_address(wallet.trim()).map_err(|e| {
            BindError::NoWallet(format!("x-cocoon-client-wallet is not an address: {e}"))
        })?;
        let pair = (key, account_id(&wallet));
        if let Some(e) = self.guard.refused(&pair) {
            return Err(e);
        }
        let _one = self.guard.lookup.lock().await;
        if self.client_admitted(&key) {
            return Ok(());
        }
        if let Some(e) = self.guard.refused(&pair) {
            return Err(e);
        }
        if !self.guard.take(peer) {
            return Err(BindError::Busy);
        }
        let address = self
            .escrow_address(&wallet)
            .map_err(|e| BindError::NoWallet(e.to_string()))?;
        let st = fetch_state::<EscrowStorage>(self.client.as_ref(), &address)
            .await
            .map_err(|e| BindError::Unavailable(e.to_string()))?;
        let shown = wallet.to_hex();
        let trusted = self.config.binding.dev_trust_client_wallet;
        if trusted {
            tracing::warn!(wallet = %wallet.to_hex(), "INSECURE development mode: binding a client key to the wallet it names without checking the escrow's client key");
        }
        let st = match st {
            Some(st) if trusted || escrow_client_key(&st) == Some(key) => st,
            other => {
                let e = BindError::Refused(match other {
                    None => format!("{shown} has no escrow with this proxy"),
                    Some(st) if escrow_client_key(&st).is_none() => format!(
                        "the escrow of {shown} records no client key (name one: `cocoon client set-key`)"
                    ),
                    Some(_) => format!("the escrow of {shown} is bound to another client key"),
                });
                self.guard.remember(pair, e.clone());
                return Err(e);
            }
        };
        self.watch_client(key, wallet.clone());
        self.confirm(&[(key, wallet)], &[]);
        {
            let mut snap = write(&self.snapshot);
            if let Some(info) = escrow_escrow_info(&address, &st) {
                snap.escrows.insert(key, info);
            }
            snap.by_escrow
                .insert(account_id(&address), escrow_status(&st));
            snap.admitted.insert(key);
        }
        self.guard.forget(&pair);
        Ok(())
    }

    /// Whether this client key's escrow is bound to it (as of the last read).
    pub fn client_admitted(&self, key: &[u8; 32]) -> bool {
        read(&self.snapshot).admitted.contains(key)
    }

    /// The state marker the proxy's vault holds (as of the last read or confirmed commit).
    pub fn committed_marker(&self) -> u64 {
        read(&self.snapshot).marker
    }

    /// Records a marker commit the settler saw land on chain.
    pub(crate) fn note_marker(&self, marker: u64) {
        let mut snap = write(&self.snapshot);
        snap.marker = snap.marker.max(marker);
    }

    /// Refreshes every `config.refresh` until the view is dropped; failures keep the last snapshot.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<OnchainView> = Arc::downgrade(self);
        let every = self.config.refresh;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(view) = weak.upgrade() else { return };
                if let Err(e) = view.refresh().await {
                    tracing::warn!(error = %e, "chain refresh failed; keeping the last snapshot");
                }
            }
        })
    }

    /// Whether an image hash is allowed (and not revoked) for workers.
    pub fn worker_image_allowed(&self, image: &[u8; 32]) -> bool {
        read(&self.snapshot).worker_images.get(image) == Some(&0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindingKind {
    Client,
    Worker,
}

fn parse_binding(line: &str) -> Option<(BindingKind, [u8; 32], TonAddress)> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(key), Some(addr), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let mut k = [0u8; 32];
    hex::decode_to_slice(key, &mut k).ok()?;
    let wallet = TonAddress::from_hex_str(addr).ok()?;
    let kind = match kind {
        "client" => BindingKind::Client,
        "worker" => BindingKind::Worker,
        _ => return None,
    };
    Some((kind, k, wallet))
}

/// Appends one sealed binding (writing the header first on a new file) and syncs it.
fn append_binding(
    path: &std::path::Path,
    log: &mut BindingsLog,
    kind: BindingKind,
    key: &[u8; 32],
    wallet: &TonAddress,
) -> std::io::Result<()> {
    let name = match kind {
        BindingKind::Client => "client",
        BindingKind::Worker => "worker",
    };
    let line = format!("{name} {} {}", hex::encode(key), wallet.to_hex());
    let mut out = String::new();
    if !log.started {
        out.push_str(&format!(
            "{BINDINGS_MAGIC} {BINDINGS_FORMAT} {} {}\n",
            hex::encode(log.sealer.store_id()),
            hex::encode(log.sealer.header_mac(BINDINGS_FORMAT))
        ));
    }
    let sealed = log.sealer.seal(&log.count.to_le_bytes(), line.as_bytes());
    out.push_str(&hex::encode(sealed));
    out.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    std::io::Write::write_all(&mut f, out.as_bytes())?;
    f.sync_data()?;
    log.started = true;
    log.count += 1;
    Ok(())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl OnchainView {
    /// Current network price parameters.
    pub fn params(&self) -> PriceParams {
        read(&self.snapshot).params
    }

    /// The network id vouchers are bound to.
    pub fn network_id(&self) -> i32 {
        read(&self.snapshot).network_id
    }

    /// The open escrow of the client with this TLS key (after [`OnchainView::watch_client`]).
    pub fn escrow(&self, client_key: &[u8; 32]) -> Option<EscrowInfo> {
        read(&self.snapshot).escrows.get(client_key).copied()
    }

    /// Whether a worker may serve: its stake is bound to `public_key` and may serve, and its image is
    /// allowed (an unattested peer, zero image, only when `allow_unattested`, loudly).
    pub fn worker_allowed(
        &self,
        public_key: &[u8; 32],
        image_hash: &[u8; 32],
        insecure: bool,
    ) -> bool {
        let snap = read(&self.snapshot);
        let staked = snap.workers.get(public_key) == Some(&true);
        let image_ok = if insecure && *image_hash == [0; 32] {
            if self.config.allow_unattested {
                tracing::warn!("INSECURE development mode: accepting an unattested worker");
            }
            self.config.allow_unattested
        } else {
            snap.worker_images.get(image_hash) == Some(&0)
        };
        staked && image_ok
    }

    /// Account id of the contract that pays workers (the proxy's vault).
    pub fn payer(&self) -> [u8; 32] {
        account_id(&self.vault)
    }
}
