//! The proxy's crash-safe ledger (redb): every charge and payout is committed before the response
//! that caused it is acknowledged (its receipt trailer is sent only after the commit returns).
//!
//! Writes go through one writer thread that groups concurrent charges into a single transaction
//! (one fsync for many requests). Each committed charge increments a global `marker`; the proxy commits
//! the marker on chain now and then, and refuses to start on a store whose marker is behind the chain's
//! (a restored backup or a rolled-back disk would otherwise sign a second history).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use cocoon_protocol::Cost;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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

const ACCOUNT_LEN: usize = 16 + 8 + 16;

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
        {
            let w = db.begin_write()?;
            w.open_table(CLIENTS)?;
            w.open_table(WORKERS)?;
            w.open_table(META)?;
            w.commit()?;
        }
        let (tx, rx) = mpsc::channel::<Op>();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("cocoon-store".into())
            .spawn(move || writer(writer_db, rx))
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

    /// Records a charge durably; returns after the commit.
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

fn writer(db: Arc<Database>, rx: mpsc::Receiver<Op>) {
    let mut stop = None;
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
        let result = apply_batch(&db, batch, &mut replies);
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
    drop(db);
    if let Some(reply) = stop {
        let _ = reply.send(());
    }
}

fn apply_batch(db: &Database, batch: Vec<Op>, replies: &mut Vec<Reply>) -> Result<(), StoreError> {
    let w = db.begin_write()?;
    {
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
                    clients.insert(
                        client.as_slice(),
                        encode(c.charged, c.seqno, c.settled).as_slice(),
                    )?;
                    workers.insert(
                        worker.as_slice(),
                        encode(wa.earned, wa.seqno, wa.paid).as_slice(),
                    )?;
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
                    let (charged, seqno, settled) = clients
                        .get(client.as_slice())?
                        .map(|v| decode(v.value()))
                        .unwrap_or_default();
                    let settled = settled.max(cumulative.min(charged));
                    clients.insert(
                        client.as_slice(),
                        encode(charged, seqno, settled).as_slice(),
                    )?;
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
                    let (earned, seqno, paid) = workers
                        .get(worker.as_slice())?
                        .map(|v| decode(v.value()))
                        .unwrap_or_default();
                    let paid = paid.max(cumulative.min(earned));
                    workers.insert(worker.as_slice(), encode(earned, seqno, paid).as_slice())?;
                    replies.push(Reply::Unit(reply));
                }
            }
        }
        meta.insert(MARKER, marker)?;
    }
    w.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charges_survive_reopen_and_detect_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let cost = Cost {
            client: 100,
            worker: 90,
            proxy: 10,
        };
        {
            let store = Store::open(&path).unwrap();
            let mut handles = Vec::new();
            for _ in 0..20 {
                let s = store.clone();
                handles.push(tokio::spawn(async move {
                    s.charge([1; 32], [2; 32], cost).await.unwrap()
                }));
            }
            let mut seqnos: Vec<u64> = Vec::new();
            for h in handles {
                seqnos.push(h.await.unwrap().client.seqno);
            }
            seqnos.sort();
            assert_eq!(seqnos, (1..=20).collect::<Vec<_>>());
            store.mark_settled([1; 32], 500).await.unwrap();
            store.close().await;
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.client(&[1; 32]).unwrap(),
            ClientAccount {
                charged: 2000,
                seqno: 20,
                settled: 500
            }
        );
        assert_eq!(store.worker(&[2; 32]).unwrap().earned, 1800);
        assert_eq!(store.marker().unwrap(), 20);
        store.check_not_rolled_back(20).unwrap();
        assert!(matches!(
            store.check_not_rolled_back(21),
            Err(StoreError::RolledBack {
                store: 20,
                chain: 21
            })
        ));
    }
}
