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
use std::sync::mpsc;

use cocoon_protocol::Cost;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

const CLIENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("clients");
const WORKERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workers");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const MARKER: &str = "marker";

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
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Db(e.into().to_string())
    }
}

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

/// Raises an account's chain-accepted total (settled charges, paid earnings) to `cumulative`, never
/// above what the account owes and never down; returns the new record.
fn raise_accepted(
    table: &mut redb::Table<&[u8], &[u8]>,
    key: &[u8; 32],
    cumulative: u128,
) -> Result<[u8; ACCOUNT_LEN], StoreError> {
    let (owed, seqno, accepted) = table
        .get(key.as_slice())?
        .map(|v| decode(v.value()))
        .unwrap_or_default();
    let record = encode(owed, seqno, accepted.max(cumulative.min(owed)));
    table.insert(key.as_slice(), record.as_slice())?;
    Ok(record)
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
    tx: mpsc::Sender<Op>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

impl Store {
    /// Opens (or creates) the store at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Arc::new(Database::create(path)?);
        let log_path = wal::path_for(path);
        let io = |e: std::io::Error| StoreError::Db(format!("{}: {e}", log_path.display()));
        let (mut log, records) = wal::Wal::open(&log_path).map_err(io)?;
        {
            let w = db.begin_write()?;
            w.open_table(CLIENTS)?;
            w.open_table(WORKERS)?;
            w.open_table(META)?;
            replay(&w, &records)?;
            w.commit()?;
        }
        if !records.is_empty() {
            tracing::info!(
                records = records.len(),
                "ledger log replayed after an unclean stop"
            );
        }
        log.reset().map_err(io)?;
        let (tx, rx) = mpsc::channel::<Op>();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("cocoon-store".into())
            .spawn(move || writer(writer_db, log, rx))
            .map_err(|e| StoreError::Db(e.to_string()))?;
        Ok(Store {
            db: Arc::new(std::sync::RwLock::new(Some(db))),
            tx,
        })
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
        Ok(r.open_table(META)?
            .get(MARKER)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// A client's ledger.
    pub fn client(&self, key: &[u8; 32]) -> Result<ClientAccount, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(CLIENTS)?;
        Ok(t.get(key.as_slice())?
            .map(|v| {
                let (charged, seqno, settled) = decode(v.value());
                ClientAccount {
                    charged,
                    seqno,
                    settled,
                }
            })
            .unwrap_or_default())
    }

    /// A worker's ledger.
    pub fn worker(&self, key: &[u8; 32]) -> Result<WorkerAccount, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(WORKERS)?;
        Ok(t.get(key.as_slice())?
            .map(|v| {
                let (earned, seqno, paid) = decode(v.value());
                WorkerAccount {
                    earned,
                    seqno,
                    paid,
                }
            })
            .unwrap_or_default())
    }

    /// Every worker's ledger.
    pub fn workers(&self) -> Result<Vec<([u8; 32], WorkerAccount)>, StoreError> {
        let r = self.db()?.begin_read()?;
        let t = r.open_table(WORKERS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            let mut key = [0u8; 32];
            if k.value().len() == 32 {
                key.copy_from_slice(k.value());
            }
            let (earned, seqno, paid) = decode(v.value());
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

    /// Records a charge durably; returns once it is on disk.
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

    /// Records that the chain accepted a cumulative charge.
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

fn writer(db: Arc<Database>, mut log: wal::Wal, rx: mpsc::Receiver<Op>) {
    let mut stop = None;
    // Set when redb and the log may disagree (a commit failed after its record was logged): from
    // then on every write fails, and the next start replays the log.
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
            Err(StoreError::Db(
                "an earlier commit failed; restart to replay the log".into(),
            ))
        } else {
            apply_batch(&db, &mut log, batch, &mut replies, &mut poisoned)
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

/// Makes everything committed so far durable in redb and voids the log.
fn checkpoint(db: &Database, log: &mut wal::Wal) -> Result<(), StoreError> {
    let mut w = db.begin_write()?;
    w.set_durability(Durability::Immediate)?;
    w.commit()?;
    log.reset()
        .map_err(|e| StoreError::Db(format!("ledger log: {e}")))
}

/// Applies the log's records (absolute account states, oldest first) inside `w`.
fn replay(w: &redb::WriteTransaction, records: &[wal::Record]) -> Result<(), StoreError> {
    let mut clients = w.open_table(CLIENTS)?;
    let mut workers = w.open_table(WORKERS)?;
    let mut meta = w.open_table(META)?;
    let mut marker = meta.get(MARKER)?.map(|v| v.value()).unwrap_or(0);
    for r in records {
        for (table, key, value) in &r.entries {
            match table {
                wal::Table::Client => clients.insert(key.as_slice(), value.as_slice())?,
                wal::Table::Worker => workers.insert(key.as_slice(), value.as_slice())?,
            };
        }
        marker = marker.max(r.marker);
    }
    meta.insert(MARKER, marker)?;
    Ok(())
}

fn apply_batch(
    db: &Database,
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
        let mut marker = meta.get(MARKER)?.map(|v| v.value()).unwrap_or(0);
        for op in batch {
            match op {
                Op::Charge {
                    client,
                    worker,
                    cost,
                    reply,
                } => {
                    let (charged, seqno, settled) = clients
                        .get(client.as_slice())?
                        .map(|v| decode(v.value()))
                        .unwrap_or_default();
                    let (earned, wseq, paid) = workers
                        .get(worker.as_slice())?
                        .map(|v| decode(v.value()))
                        .unwrap_or_default();
                    let c = ClientAccount {
                        charged: charged
                            .checked_add(cost.client)
                            .ok_or(StoreError::Overflow)?,
                        seqno: seqno + 1,
                        settled,
                    };
                    let wa = WorkerAccount {
                        earned: earned
                            .checked_add(cost.worker)
                            .ok_or(StoreError::Overflow)?,
                        seqno: wseq + 1,
                        paid,
                    };
                    marker += 1;
                    let cv = encode(c.charged, c.seqno, c.settled);
                    let wv = encode(wa.earned, wa.seqno, wa.paid);
                    clients.insert(client.as_slice(), cv.as_slice())?;
                    workers.insert(worker.as_slice(), wv.as_slice())?;
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
                    let cv = raise_accepted(&mut clients, &client, cumulative)?;
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
                    let wv = raise_accepted(&mut workers, &worker, cumulative)?;
                    touched.insert((wal::Table::Worker, worker), wv);
                    replies.push(Reply::Unit(reply));
                }
            }
        }
        meta.insert(MARKER, marker)?;
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
    // On a log error the transaction is dropped (aborted): nothing was recorded anywhere.
    log.append(&record)
        .map_err(|e| StoreError::Db(format!("ledger log: {e}")))?;
    if let Err(e) = w.commit() {
        *poisoned = true;
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
