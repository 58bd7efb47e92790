//! The proxy's crash-safe ledger (redb plus a write-ahead log): every charge and payout is durable
//! before the response that caused it is acknowledged (its receipt trailer is sent only after the
//! write returns).
//!
//! Writes go through one writer thread that groups concurrent charges into one log record (one
//! `fdatasync` of a preallocated file for many requests, see [`wal`]) and one non-durable redb
//! commit; a durable redb commit (a checkpoint) happens when the log is full and at close, and the
//! log is replayed at open. Each committed charge increments a global `marker`; the proxy commits
//! the marker on chain now and then, and refuses to start on a store whose marker is behind the chain's
//! (a restored backup or a rolled-back disk would otherwise sign a second history).

mod wal;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::mpsc;

use cocoon_onchain::seal::{FileKind, SealError, Sealer, new_store_id};
use cocoon_protocol::Cost;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use tokio::sync::oneshot;

pub use cocoon_onchain::seal::StorageKey;

// Format 1 (plain, client accounts keyed by TLS key): read only to migrate.
const V1_CLIENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("clients");
const V1_WORKERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workers");
const V1_META: TableDefinition<&str, u64> = TableDefinition::new("meta");

// Format 2: every value sealed (see `cocoon_onchain::seal`); client accounts keyed by escrow.
const CLIENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("clients.v2");
const WORKERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workers.v2");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta.v2");
const MARKER: &str = "marker";
const STORE_ID: &str = "id";
const HEADER: &str = "header";
/// The generation the ledger's header MAC covers (its format).
const FORMAT: u64 = 2;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption).
    #[error("store: {0}")]
    Db(String),
    /// The writer thread is gone.
    #[error("store writer stopped")]
    Closed,
    /// An amount would overflow.
    #[error("store arithmetic overflow")]
    Overflow,
    /// The store is behind the chain.
    #[error(
        "store marker {store} is behind the on-chain marker {chain}: the store was rolled back; refusing to run"
    )]
    RolledBack {
        /// Marker in the store.
        store: u64,
        /// Marker on chain.
        chain: u64,
    },
    /// A sealed record or header failed authentication (edited, foreign, spliced, another key).
    #[error(transparent)]
    Sealed(SealError),
    /// The client key has no escrow the ledger could charge.
    #[error("no escrow known for this client key")]
    UnknownAccount,
    /// A format-1 ledger could not be migrated.
    #[error("ledger migration: {0}")]
    Migration(String),
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Db(e.into().to_string())
    }
}

fn sealed(e: SealError) -> StoreError {
    StoreError::Sealed(e)
}

/// How a format-1 ledger's accounts map to format-2 accounts at migration: a client's TLS key to its
/// escrow's account id, a worker's key to its payee id. `None` refuses the migration (the account's
/// history would be stranded). Accounts that map to one id are merged (see [`merge`]).
pub struct Migration<'a> {
    /// Client TLS key → escrow account id.
    pub client: &'a dyn Fn(&[u8; 32]) -> Option<[u8; 32]>,
    /// Worker TLS key → payee id.
    pub worker: &'a dyn Fn(&[u8; 32]) -> Option<[u8; 32]>,
}

impl std::fmt::Debug for Migration<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Migration")
    }
}

/// The storage key of a proxy whose signing key is local (no key service):
/// `cocoon_daemon::keys::local_storage_key`, HKDF of the signing key. A proxy whose keys come from
/// the key service seals under the `S` it released instead (`KeyMaterial::storage`, passed to
/// [`crate::start_sealed`]); this is what [`crate::start`] uses.
pub fn storage_key(signing: &ed25519_dalek::SigningKey) -> StorageKey {
    StorageKey::from_bytes(cocoon_daemon::keys::local_storage_key(signing))
}

/// Keys every format-1 account to itself.
pub const SAME_KEYS: Migration<'static> = Migration {
    client: &|k| Some(*k),
    worker: &|k| Some(*k),
};

/// One client's ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientAccount {
    /// Cumulative charge, nanoTON.
    pub charged: u128,
    /// Charges recorded (voucher sequence number).
    pub seqno: u64,
    /// Cumulative charge the chain has accepted.
    pub settled: u128,
}

/// One worker's ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerAccount {
    /// Cumulative earnings, nanoTON.
    pub earned: u128,
    /// Charges recorded for this worker (voucher sequence number).
    pub seqno: u64,
    /// Cumulative payout the chain has accepted.
    pub paid: u128,
}

pub(crate) const ACCOUNT_LEN: usize = 16 + 8 + 16;

fn encode(a: u128, n: u64, b: u128) -> [u8; ACCOUNT_LEN] {
    let mut out = [0u8; ACCOUNT_LEN];
    out[..16].copy_from_slice(&a.to_be_bytes());
    out[16..24].copy_from_slice(&n.to_be_bytes());
    out[24..].copy_from_slice(&b.to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> (u128, u64, u128) {
    let mut buf = [0u8; ACCOUNT_LEN];
    let n = bytes.len().min(ACCOUNT_LEN);
    buf[..n].copy_from_slice(&bytes[..n]);
    let mut a = [0u8; 16];
    let mut s = [0u8; 8];
    let mut b = [0u8; 16];
    a.copy_from_slice(&buf[..16]);
    s.copy_from_slice(&buf[16..24]);
    b.copy_from_slice(&buf[24..]);
    (
        u128::from_be_bytes(a),
        u64::from_be_bytes(s),
        u128::from_be_bytes(b),
    )
}

/// Merges two format-1 accounts that now are one account (a rotated client key, two keys of one
/// payee): what is owed adds up, the sequence number is above both series, and what the chain
/// accepted is the larger (the chain accepted at most one series).
fn merge(a: (u128, u64, u128), b: (u128, u64, u128)) -> Option<(u128, u64, u128)> {
    Some((a.0.checked_add(b.0)?, a.1.checked_add(b.1)?, a.2.max(b.2)))
}

/// The sealed values of one ledger: the associated data of a value names its table and key.
#[derive(Debug, Clone)]
struct Seal {
    sealer: Sealer,
}

impl Seal {
    fn index(table: wal::Table, key: &[u8]) -> Vec<u8> {
        let mut i = vec![table as u8];
        i.extend_from_slice(key);
        i
    }

    fn account(&self, table: wal::Table, key: &[u8; 32], value: &[u8; ACCOUNT_LEN]) -> Vec<u8> {
        self.sealer.seal(&Self::index(table, key), value)
    }

    fn open_account(
        &self,
        table: wal::Table,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<(u128, u64, u128), StoreError> {
        let plain = self
            .sealer
            .open(&Self::index(table, key), sealed, || {
                format!("{} {}", table.name(), hex::encode(key))
            })
            .map_err(sealed_err)?;
        if plain.len() != ACCOUNT_LEN {
            return Err(sealed_err(SealError::Record {
                file: self.sealer.file().into(),
                record: format!("{} {}", table.name(), hex::encode(key)),
            }));
        }
        Ok(decode(&plain))
    }

    fn head(&self, head: &Head) -> Vec<u8> {
        let mut plain = [0u8; 40];
        plain[..8].copy_from_slice(&head.marker.to_be_bytes());
        plain[8..].copy_from_slice(&head.digest);
        self.sealer.seal(MARKER.as_bytes(), &plain)
    }

    fn open_head(&self, sealed: &[u8]) -> Result<Head, StoreError> {
        let refused = || {
            sealed_err(SealError::Record {
                file: self.sealer.file().into(),
                record: "meta marker".into(),
            })
        };
        let plain = self
            .sealer
            .open(MARKER.as_bytes(), sealed, || "meta marker".into())
            .map_err(sealed_err)?;
        if plain.len() != 40 {
            return Err(refused());
        }
        let mut marker = [0u8; 8];
        marker.copy_from_slice(&plain[..8]);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&plain[8..]);
        Ok(Head {
            marker: u64::from_be_bytes(marker),
            digest,
        })
    }

    /// The keyed tag of one account's content (see [`Head::digest`]).
    fn tag(&self, which: wal::Table, key: &[u8], value: &[u8; ACCOUNT_LEN]) -> [u8; 32] {
        self.sealer.tag(&[&[which as u8], key, value])
    }
}

/// The ledger's head, sealed in one record: the marker, and a digest of every account (the XOR of
/// their keyed tags). Every account value is authenticated on its own; the digest ties them to one
/// another and to the marker, so a ledger spliced from records of different copies of itself (an
/// older copy's accounts under a newer copy's marker, which would defeat the rollback check) is
/// refused at open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Head {
    marker: u64,
    digest: [u8; 32],
}

fn xor(into: &mut [u8; 32], tag: &[u8; 32]) {
    for (a, b) in into.iter_mut().zip(tag) {
        *a ^= b;
    }
}

/// Writes an account's new value, keeping the head's digest in step (the old value's tag out, the
/// new one's in).
fn put_account(
    seal: &Seal,
    table: &mut redb::Table<&[u8], &[u8]>,
    which: wal::Table,
    key: &[u8; 32],
    value: &[u8; ACCOUNT_LEN],
    head: &mut Head,
) -> Result<(), StoreError> {
    let old = table.get(key.as_slice())?.map(|v| v.value().to_vec());
    if let Some(old) = old {
        let (a, n, b) = seal.open_account(which, key, &old)?;
        xor(&mut head.digest, &seal.tag(which, key, &encode(a, n, b)));
    }
    xor(&mut head.digest, &seal.tag(which, key, value));
    table.insert(key.as_slice(), seal.account(which, key, value).as_slice())?;
    Ok(())
}

fn sealed_err(e: SealError) -> StoreError {
    sealed(e)
}

fn get_account(
    seal: &Seal,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    which: wal::Table,
    key: &[u8; 32],
) -> Result<(u128, u64, u128), StoreError> {
    match table.get(key.as_slice())? {
        Some(v) => seal.open_account(which, key, v.value()),
        None => Ok((0, 0, 0)),
    }
}

fn get_head(
    seal: &Seal,
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Head, StoreError> {
    match meta.get(MARKER)? {
        Some(v) => seal.open_head(v.value()),
        None => Ok(Head::default()),
    }
}

/// Raises an account's chain-accepted total (settled charges, paid earnings) to `cumulative`, never
/// above what the account owes and never down; returns the new record.
fn raise_accepted(
    seal: &Seal,
    table: &mut redb::Table<&[u8], &[u8]>,
    which: wal::Table,
    key: &[u8; 32],
    cumulative: u128,
    head: &mut Head,
) -> Result<[u8; ACCOUNT_LEN], StoreError> {
    let (owed, seqno, accepted) = get_account(seal, table, which, key)?;
    let record = encode(owed, seqno, accepted.max(cumulative.min(owed)));
    put_account(seal, table, which, key, &record, head)?;
    Ok(record)
}

/// The result of one committed charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeOutcome {
    /// The client's ledger after the charge.
    pub client: ClientAccount,
    /// The worker's ledger after the charge.
    pub worker: WorkerAccount,
    /// Global marker after the charge.
    pub marker: u64,
}

enum Op {
    Charge {
        client: [u8; 32],
        worker: [u8; 32],
        cost: Cost,
        reply: oneshot::Sender<Result<ChargeOutcome, StoreError>>,
    },
    Settled {
        client: [u8; 32],
        cumulative: u128,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Paid {
        worker: [u8; 32],
        cumulative: u128,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// The ledger.
#[derive(Debug, Clone)]
pub struct Store {
    db: Arc<std::sync::RwLock<Option<Arc<Database>>>>,
    seal: Arc<Seal>,
    tx: mpsc::Sender<Op>,
    /// Test seam of the log (see `fail_next_syncs`); always zero outside tests.
    #[cfg_attr(not(test), allow(dead_code))]
    sync_faults: Arc<AtomicU32>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

/// Reads (or, for a new ledger, writes) the store id and checks the header MAC.
fn store_id(
    w: &redb::WriteTransaction,
    key: &StorageKey,
    file: &str,
) -> Result<(Sealer, bool), StoreError> {
    let mut meta = w.open_table(META)?;
    let existing = meta.get(STORE_ID)?.map(|v| v.value().to_vec());
    match existing {
        Some(id) => {
            let id: [u8; 32] = id.as_slice().try_into().map_err(|_| {
                sealed(SealError::Header {
                    file: file.to_string(),
                })
            })?;
            let sealer = Sealer::new(key, FileKind::Ledger, id, file);
            let mac = meta
                .get(HEADER)?
                .map(|v| v.value().to_vec())
                .unwrap_or_default();
            sealer.check_header(FORMAT, &mac).map_err(sealed)?;
            Ok((sealer, false))
        }
        None => {
            let sealer = Sealer::new(key, FileKind::Ledger, new_store_id(), file);
            meta.insert(STORE_ID, sealer.store_id().as_slice())?;
            meta.insert(HEADER, sealer.header_mac(FORMAT).as_slice())?;
            Ok((sealer, true))
        }
    }
}

/// Authenticates every sealed value (a flipped bit anywhere is refused at open, naming the record)
/// and checks that together they are the accounts the head's digest covers.
fn verify_all(w: &redb::WriteTransaction, seal: &Seal) -> Result<(), StoreError> {
    let mut digest = [0u8; 32];
    for (def, which) in [(CLIENTS, wal::Table::Client), (WORKERS, wal::Table::Worker)] {
        let t = w.open_table(def)?;
        for item in t.iter()? {
            let (k, v) = item?;
            let (a, n, b) = seal.open_account(which, k.value(), v.value())?;
            xor(&mut digest, &seal.tag(which, k.value(), &encode(a, n, b)));
        }
    }
    let head = get_head(seal, &w.open_table(META)?)?;
    if head.digest != digest {
        return Err(sealed_err(SealError::Record {
            file: seal.sealer.file().into(),
            record: "meta marker (the accounts are not the ones it covers: records spliced from \
                     another copy of this ledger, or one deleted)"
                .into(),
        }));
    }
    Ok(())
}

/// Moves a format-1 ledger (plain values, client accounts keyed by TLS key) into format 2 inside `w`.
/// Returns whether there was one.
fn migrate_v1(
    w: &redb::WriteTransaction,
    seal: &Seal,
    log_path: &Path,
    migration: &Migration<'_>,
) -> Result<bool, StoreError> {
    let names: Vec<String> = w.list_tables()?.map(|t| t.name().to_string()).collect();
    if !names.iter().any(|n| n == V1_META.name()) {
        return Ok(false);
    }
    let io = |e: std::io::Error| StoreError::Db(format!("{}: {e}", log_path.display()));
    // What the format-1 log holds was acknowledged: replay it into the format-1 tables first.
    let records = wal::v1_records(log_path).map_err(io)?;
    let mut marker = {
        let mut clients = w.open_table(V1_CLIENTS)?;
        let mut workers = w.open_table(V1_WORKERS)?;
        let meta = w.open_table(V1_META)?;
        let mut marker = meta.get(MARKER)?.map(|v| v.value()).unwrap_or(0);
        for r in &records {
            for (table, key, value) in &r.entries {
                match table {
                    wal::Table::Client => clients.insert(key.as_slice(), value.as_slice())?,
                    wal::Table::Worker => workers.insert(key.as_slice(), value.as_slice())?,
                };
            }
            marker = marker.max(r.marker);
        }
        marker
    };
    for (def, which) in [
        (V1_CLIENTS, wal::Table::Client),
        (V1_WORKERS, wal::Table::Worker),
    ] {
        let mut merged: BTreeMap<[u8; 32], (u128, u64, u128)> = BTreeMap::new();
        {
            let t = w.open_table(def)?;
            for item in t.iter()? {
                let (k, v) = item?;
                let key: [u8; 32] = k.value().try_into().map_err(|_| {
                    StoreError::Migration(format!(
                        "{} key of {} bytes",
                        which.name(),
                        k.value().len()
                    ))
                })?;
                let map = match which {
                    wal::Table::Client => migration.client,
                    wal::Table::Worker => migration.worker,
                };
                let id = map(&key).ok_or_else(|| {
                    StoreError::Migration(format!(
                        "{} {} has no known account (its escrow or payee is unknown); its history would be stranded",
                        which.name(),
                        hex::encode(key)
                    ))
                })?;
                let value = decode(v.value());
                let next = match merged.get(&id) {
                    Some(prev) => merge(*prev, value).ok_or(StoreError::Overflow)?,
                    None => value,
                };
                merged.insert(id, next);
            }
        }
        let mut meta = w.open_table(META)?;
        let mut head = get_head(seal, &meta)?;
        let mut t = w.open_table(match which {
            wal::Table::Client => CLIENTS,
            wal::Table::Worker => WORKERS,
        })?;
        for (id, (a, n, b)) in merged {
            put_account(seal, &mut t, which, &id, &encode(a, n, b), &mut head)?;
        }
        meta.insert(MARKER, seal.head(&head).as_slice())?;
    }
    {
        let mut meta = w.open_table(META)?;
        let mut head = get_head(seal, &meta)?;
        marker = marker.max(head.marker);
        head.marker = marker;
        meta.insert(MARKER, seal.head(&head).as_slice())?;
    }
    w.delete_table(V1_CLIENTS)?;
    w.delete_table(V1_WORKERS)?;
    w.delete_table(V1_META)?;
    tracing::info!(
        records = records.len(),
        marker,
        "ledger migrated to format 2 (sealed, client accounts by escrow)"
    );
    Ok(true)
}

impl Store {
    /// Opens (or creates) the store at `path`, sealed under `key`, and starts its writer thread. A
    /// format-1 ledger is migrated keeping every account's key ([`SAME_KEYS`]).
    pub fn open(path: &Path, key: &StorageKey) -> Result<Store, StoreError> {
        Store::open_migrating(path, key, &SAME_KEYS)
    }

    /// Opens (or creates) the store at `path`, sealed under `key`; a format-1 ledger is migrated with
    /// `migration`. Every sealed value and log record is authenticated before anything is served.
    pub fn open_migrating(
        path: &Path,
        key: &StorageKey,
        migration: &Migration<'_>,
    ) -> Result<Store, StoreError> {
        let db = Arc::new(Database::create(path)?);
        let file = path.display().to_string();
        let log_path = wal::path_for(path);
        let io = |e: std::io::Error| StoreError::Db(format!("{}: {e}", log_path.display()));
        let seal = {
            let mut w = db.begin_write()?;
            let (sealer, _fresh) = store_id(&w, key, &file)?;
            let seal = Seal { sealer };
            w.open_table(CLIENTS)?;
            w.open_table(WORKERS)?;
            let migrated = migrate_v1(&w, &seal, &log_path, migration)?;
            // Durable: a new store id (or a migration) must be on disk before a log is sealed with it.
            w.set_durability(Durability::Immediate)?;
            w.commit()?;
            if migrated {
                // The format-1 log is in the ledger now.
                wal::retire_v1(&log_path).map_err(io)?;
            }
            seal
        };
        let wal_sealer = Sealer::new(
            key,
            FileKind::Wal,
            seal.sealer.store_id(),
            log_path.display().to_string(),
        );
        let sync_faults = Arc::new(AtomicU32::new(0));
        let (mut log, records) = wal::Wal::open(&log_path, wal_sealer, sync_faults.clone())
            .map_err(|e| match e {
                wal::OpenError::Io(e) => io(e),
                wal::OpenError::Sealed(e) => sealed(e),
            })?;
        {
            let w = db.begin_write()?;
            replay(&w, &seal, &records)?;
            verify_all(&w, &seal)?;
            w.commit()?;
        }
        if !records.is_empty() {
            tracing::info!(
                records = records.len(),
                "ledger log replayed after an unclean stop"
            );
        }
        {
            // The replay must be durable before the log is voided.
            let mut w = db.begin_write()?;
            w.set_durability(Durability::Immediate)?;
            w.commit()?;
        }
        log.reset().map_err(io)?;
        let seal = Arc::new(seal);
        let (tx, rx) = mpsc::channel::<Op>();
        let writer_db = db.clone();
        let writer_seal = seal.clone();
        std::thread::Builder::new()
            .name("cocoon-store".into())
            .spawn(move || writer(writer_db, writer_seal, log, rx))
            .map_err(|e| StoreError::Db(e.to_string()))?;
        Ok(Store {
            db: Arc::new(std::sync::RwLock::new(Some(db))),
            seal,
            tx,
            sync_faults,
        })
    }

    /// Test seam: the log's next `n` fdatasyncs fail.
    #[cfg(test)]
    pub(crate) fn fail_next_syncs(&self, n: u32) {
        self.sync_faults
            .store(n, std::sync::atomic::Ordering::Release);
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Closed)
    }

    /// Fails when the store is behind `chain_marker`.
    pub fn check_not_rolled_back(&self, chain_marker: u64) -> Result<(), StoreError> {
        let store = self.marker()?;
        if store < chain_marker {
            return Err(StoreError::RolledBack {
                store,
                chain: chain_marker,
            });
        }
        Ok(())
    }

    /// Global marker (number of charges ever committed).
    pub fn marker(&self) -> Result<u64, StoreError> {
        let r = self.db()?.begin_read()?;
        Ok(get_head(&self.seal, &r.open_table(META)?)?.marker)
    }

    /// A client's ledger: the account of one escrow (its account id), whichever key spent it.
    pub fn client(&self, escrow: &[u8; 32]) -> Result<ClientAccount, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(CLIENTS)?;
        let (charged, seqno, settled) = get_account(&self.seal, &t, wal::Table::Client, escrow)?;
        Ok(ClientAccount {
            charged,
            seqno,
            settled,
        })
    }

    /// Every client account (by escrow account id).
    pub fn clients(&self) -> Result<Vec<([u8; 32], ClientAccount)>, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(CLIENTS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            let Ok(key) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            let (charged, seqno, settled) =
                self.seal
                    .open_account(wal::Table::Client, &key, v.value())?;
            out.push((
                key,
                ClientAccount {
                    charged,
                    seqno,
                    settled,
                },
            ));
        }
        Ok(out)
    }

    /// A worker's ledger.
    pub fn worker(&self, key: &[u8; 32]) -> Result<WorkerAccount, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(WORKERS)?;
        let (earned, seqno, paid) = get_account(&self.seal, &t, wal::Table::Worker, key)?;
        Ok(WorkerAccount {
            earned,
            seqno,
            paid,
        })
    }

    /// Every worker's ledger.
    pub fn workers(&self) -> Result<Vec<([u8; 32], WorkerAccount)>, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(WORKERS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            let Ok(key) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            let (earned, seqno, paid) =
                self.seal
                    .open_account(wal::Table::Worker, &key, v.value())?;
            out.push((
                key,
                WorkerAccount {
                    earned,
                    seqno,
                    paid,
                },
            ));
        }
        Ok(out)
    }

    /// Records a charge to the account of `client` (its escrow's account id) durably; returns once it
    /// is on disk.
    pub async fn charge(
        &self,
        client: [u8; 32],
        worker: [u8; 32],
        cost: Cost,
    ) -> Result<ChargeOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Charge {
                client,
                worker,
                cost,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops the writer thread after everything queued before is committed, and releases its database
    /// handle (the file can be reopened once every clone of this store is dropped too).
    pub async fn close(self) {
        self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Op::Stop { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Records that the chain accepted a cumulative charge of this escrow.
    pub async fn mark_settled(&self, client: [u8; 32], cumulative: u128) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Settled {
                client,
                cumulative,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Records that the chain accepted a cumulative payout.
    pub async fn mark_paid(&self, worker: [u8; 32], cumulative: u128) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Paid {
                worker,
                cumulative,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

enum Reply {
    Charge(
        oneshot::Sender<Result<ChargeOutcome, StoreError>>,
        ChargeOutcome,
    ),
    Unit(oneshot::Sender<Result<(), StoreError>>),
}

fn writer(db: Arc<Database>, seal: Arc<Seal>, mut log: wal::Wal, rx: mpsc::Receiver<Op>) {
    let mut stop = None;
    // Set when redb and the log may disagree (a commit failed after its record was logged, or a
    // failed record could not be voided): from then on every write fails, and the next start
    // replays the log.
    let mut poisoned = false;
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(op) = next.take() {
            if let Op::Stop { reply } = op {
                stop = Some(reply);
                break;
            }
            batch.push(op);
            if batch.len() < 1024 {
                next = rx.try_recv().ok();
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let result = if poisoned {
            for op in batch {
                refuse(op, "an earlier commit failed; restart to replay the log");
            }
            Ok(())
        } else {
            apply_batch(&db, &seal, &mut log, batch, &mut replies, &mut poisoned)
        };
        match result {
            Ok(()) => {
                for r in replies {
                    match r {
                        Reply::Charge(tx, outcome) => {
                            let _ = tx.send(Ok(outcome));
                        }
                        Reply::Unit(tx) => {
                            let _ = tx.send(Ok(()));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; the batch is not recorded");
                for r in replies {
                    match r {
                        Reply::Charge(tx, _) => {
                            let _ = tx.send(Err(StoreError::Db(e.to_string())));
                        }
                        Reply::Unit(tx) => {
                            let _ = tx.send(Err(StoreError::Db(e.to_string())));
                        }
                    }
                }
            }
        }
        if stop.is_some() {
            break;
        }
    }
    if !poisoned && let Err(e) = checkpoint(&db, &mut log) {
        tracing::error!(error = %e, "final ledger checkpoint failed; the log is replayed at the next start");
    }
    drop(db);
    if let Some(reply) = stop {
        let _ = reply.send(());
    }
}

/// Answers an operation with an error without applying it.
fn refuse(op: Op, why: &str) {
    let e = || StoreError::Db(why.to_string());
    match op {
        Op::Charge { reply, .. } => {
            let _ = reply.send(Err(e()));
        }
        Op::Settled { reply, .. } | Op::Paid { reply, .. } => {
            let _ = reply.send(Err(e()));
        }
        Op::Stop { reply } => {
            let _ = reply.send(());
        }
    }
}

/// Makes everything committed so far durable in redb and voids the log.
fn checkpoint(db: &Database, log: &mut wal::Wal) -> Result<(), StoreError> {
    let mut w = db.begin_write()?;
    w.set_durability(Durability::Immediate)?;
    w.commit()?;
    log.reset()
        .map_err(|e| StoreError::Db(format!("ledger log: {e}")))
}

/// Applies the log's records (absolute account states, oldest first) inside `w`.
fn replay(
    w: &redb::WriteTransaction,
    seal: &Seal,
    records: &[wal::Record],
) -> Result<(), StoreError> {
    let mut clients = w.open_table(CLIENTS)?;
    let mut workers = w.open_table(WORKERS)?;
    let mut meta = w.open_table(META)?;
    let mut head = get_head(seal, &meta)?;
    for r in records {
        for (table, key, value) in &r.entries {
            let t = match table {
                wal::Table::Client => &mut clients,
                wal::Table::Worker => &mut workers,
            };
            put_account(seal, t, *table, key, value, &mut head)?;
        }
        head.marker = head.marker.max(r.marker);
    }
    meta.insert(MARKER, seal.head(&head).as_slice())?;
    Ok(())
}

fn apply_batch(
    db: &Database,
    seal: &Seal,
    log: &mut wal::Wal,
    batch: Vec<Op>,
    replies: &mut Vec<Reply>,
    poisoned: &mut bool,
) -> Result<(), StoreError> {
    // Each operation touches at most two accounts.
    if !log.fits(batch.len().saturating_mul(2)) {
        checkpoint(db, log)?;
    }
    let mut touched: BTreeMap<(wal::Table, [u8; 32]), [u8; ACCOUNT_LEN]> = BTreeMap::new();
    let mut w = db.begin_write()?;
    // Durability comes from the log record below; redb is made durable at checkpoints.
    w.set_durability(Durability::None)?;
    let marker = {
        let mut clients = w.open_table(CLIENTS)?;
        let mut workers = w.open_table(WORKERS)?;
        let mut meta = w.open_table(META)?;
        let mut head = get_head(seal, &meta)?;
        let mut marker = head.marker;
        for op in batch {
            match op {
                Op::Charge {
                    client,
                    worker,
                    cost,
                    reply,
                } => {
                    let (charged, seqno, settled) =
                        get_account(seal, &clients, wal::Table::Client, &client)?;
                    let (earned, wseq, paid) =
                        get_account(seal, &workers, wal::Table::Worker, &worker)?;
                    let next = (
                        charged.checked_add(cost.client),
                        seqno.checked_add(1),
                        earned.checked_add(cost.worker),
                        wseq.checked_add(1),
                        marker.checked_add(1),
                    );
                    let (Some(charged), Some(seqno), Some(earned), Some(wseq), Some(next_marker)) =
                        next
                    else {
                        // This charge alone is refused; the rest of the batch commits.
                        tracing::error!(
                            client = %hex::encode(client),
                            "charge would overflow the ledger; refused"
                        );
                        let _ = reply.send(Err(StoreError::Overflow));
                        continue;
                    };
                    let c = ClientAccount {
                        charged,
                        seqno,
                        settled,
                    };
                    let wa = WorkerAccount {
                        earned,
                        seqno: wseq,
                        paid,
                    };
                    marker = next_marker;
                    let cv = encode(c.charged, c.seqno, c.settled);
                    let wv = encode(wa.earned, wa.seqno, wa.paid);
                    put_account(
                        seal,
                        &mut clients,
                        wal::Table::Client,
                        &client,
                        &cv,
                        &mut head,
                    )?;
                    put_account(
                        seal,
                        &mut workers,
                        wal::Table::Worker,
                        &worker,
                        &wv,
                        &mut head,
                    )?;
                    touched.insert((wal::Table::Client, client), cv);
                    touched.insert((wal::Table::Worker, worker), wv);
                    replies.push(Reply::Charge(
                        reply,
                        ChargeOutcome {
                            client: c,
                            worker: wa,
                            marker,
                        },
                    ));
                }
                Op::Settled {
                    client,
                    cumulative,
                    reply,
                } => {
                    let cv = raise_accepted(
                        seal,
                        &mut clients,
                        wal::Table::Client,
                        &client,
                        cumulative,
                        &mut head,
                    )?;
                    touched.insert((wal::Table::Client, client), cv);
                    replies.push(Reply::Unit(reply));
                }
                Op::Stop { reply } => {
                    // Filtered out by the writer loop; answer anyway.
                    let _ = reply.send(());
                }
                Op::Paid {
                    worker,
                    cumulative,
                    reply,
                } => {
                    let wv = raise_accepted(
                        seal,
                        &mut workers,
                        wal::Table::Worker,
                        &worker,
                        cumulative,
                        &mut head,
                    )?;
                    touched.insert((wal::Table::Worker, worker), wv);
                    replies.push(Reply::Unit(reply));
                }
            }
        }
        head.marker = marker;
        meta.insert(MARKER, seal.head(&head).as_slice())?;
        marker
    };
    if touched.is_empty() {
        w.commit()?;
        return Ok(());
    }
    let record = wal::Record {
        marker,
        entries: touched.into_iter().map(|((t, k), v)| (t, k, v)).collect(),
    };
    // On a log error the transaction is dropped (aborted): nothing was recorded anywhere, and the
    // log voided the record it could not make durable (or is broken: then the store stops writing).
    if let Err(e) = log.append(&record) {
        if log.broken() {
            *poisoned = true;
        }
        return Err(StoreError::Db(format!("ledger log: {e}")));
    }
    if let Err(e) = w.commit() {
        *poisoned = true;
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
