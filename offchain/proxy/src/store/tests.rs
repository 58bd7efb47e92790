//! Ledger tests: group commit, reopen, rollback detection, crash recovery through the log.

use std::path::Path;

use super::*;

fn key() -> StorageKey {
    StorageKey::derive(b"test signing key", "storage")
}

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
        let store = Store::open(&path, &key()).unwrap();
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
    let store = Store::open(&path, &key()).unwrap();
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
    store.close().await;
    // A clean close leaves everything in redb: the log holds nothing to replay.
    assert!(wal_records(&path).is_empty());
}

/// The files as `kill -9` would leave them: copied while the store is still open (the page cache
/// survives a process crash; a clean close would checkpoint).
fn crash_copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    std::fs::copy(wal::path_for(from), wal::path_for(to)).unwrap();
}

fn durable_marker(path: &Path) -> Option<u64> {
    let db = Database::create(path).unwrap();
    let r = db.begin_read().unwrap();
    let meta = r.open_table(META).unwrap();
    let id: [u8; 32] = meta.get(STORE_ID).unwrap()?.value().try_into().unwrap();
    let seal = Seal {
        sealer: Sealer::new(&key(), FileKind::Ledger, id, "t"),
    };
    let v = meta.get(MARKER).unwrap()?;
    Some(seal.open_head(v.value()).unwrap().marker)
}

fn wal_records(path: &Path) -> Vec<wal::Record> {
    let db = Database::create(path).unwrap();
    let r = db.begin_read().unwrap();
    let id: [u8; 32] = r
        .open_table(META)
        .unwrap()
        .get(STORE_ID)
        .unwrap()
        .unwrap()
        .value()
        .try_into()
        .unwrap();
    drop(r);
    drop(db);
    let log = wal::path_for(path);
    let sealer = Sealer::new(&key(), FileKind::Wal, id, log.display().to_string());
    let (_, records) = wal::Wal::open(&log, sealer, Arc::new(AtomicU32::new(0))).unwrap();
    records
}

#[tokio::test]
async fn acknowledged_writes_survive_a_crash_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let crashed = dir.path().join("crashed.redb");
    let cost = Cost {
        client: 7,
        worker: 6,
        proxy: 1,
    };
    let store = Store::open(&path, &key()).unwrap();
    for i in 0..30u8 {
        store.charge([i % 3; 32], [9; 32], cost).await.unwrap();
    }
    store.mark_settled([0; 32], 21).await.unwrap();
    store.mark_paid([9; 32], 60).await.unwrap();
    let expected = (
        store.client(&[0; 32]).unwrap(),
        store.client(&[2; 32]).unwrap(),
        store.worker(&[9; 32]).unwrap(),
        store.marker().unwrap(),
    );
    crash_copy(&path, &crashed);
    store.close().await;

    // redb alone has only its last durable commit; the log has every acknowledged write.
    assert_eq!(durable_marker(&crashed), Some(0));
    assert_eq!(wal_records(&crashed).len(), 32);
    let store = Store::open(&crashed, &key()).unwrap();
    let got = (
        store.client(&[0; 32]).unwrap(),
        store.client(&[2; 32]).unwrap(),
        store.worker(&[9; 32]).unwrap(),
        store.marker().unwrap(),
    );
    assert_eq!(got, expected);
    assert_eq!(
        got.0,
        ClientAccount {
            charged: 70,
            seqno: 10,
            settled: 21
        }
    );
    assert_eq!(got.2.paid, 60);
    assert_eq!(got.3, 30);

    // Opening made the replay durable and voided the log: crashing again right away loses nothing.
    store.charge([5; 32], [9; 32], cost).await.unwrap();
    let again = dir.path().join("again.redb");
    crash_copy(&crashed, &again);
    store.close().await;
    assert_eq!(durable_marker(&again), Some(30));
    let store = Store::open(&again, &key()).unwrap();
    assert_eq!(store.marker().unwrap(), 31);
    assert_eq!(store.worker(&[9; 32]).unwrap().earned, 186);
    store.close().await;

    // A log whose header is damaged is refused, not guessed at.
    let log = wal::path_for(&again);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(&log, bytes).unwrap();
    assert!(matches!(
        Store::open(&again, &key()),
        Err(StoreError::Db(_) | StoreError::Sealed(_))
    ));
}

const COST: Cost = Cost {
    client: 7,
    worker: 6,
    proxy: 1,
};

/// Issue 14 item 7: a log record whose fdatasync failed was answered as an error, but its bytes
/// stayed in the page cache and a crash then replayed it as a charge nobody acknowledged.
#[tokio::test]
async fn a_record_whose_fdatasync_failed_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let crashed = dir.path().join("crashed.redb");
    let store = Store::open(&path, &key()).unwrap();
    store.charge([1; 32], [9; 32], COST).await.unwrap();
    store.fail_next_syncs(1);
    let refused = store.charge([1; 32], [9; 32], COST).await;
    assert!(matches!(refused, Err(StoreError::Db(_))), "{refused:?}");
    // Nothing of it is visible, and the files as a crash leaves them replay only the first charge.
    assert_eq!(store.client(&[1; 32]).unwrap().seqno, 1);
    crash_copy(&path, &crashed);
    let reopened = Store::open(&crashed, &key()).unwrap();
    assert_eq!(
        reopened.client(&[1; 32]).unwrap(),
        ClientAccount {
            charged: 7,
            seqno: 1,
            settled: 0
        }
    );
    assert_eq!(reopened.marker().unwrap(), 1);
    reopened.close().await;
    // The store goes on: the next charge takes the failed one's place in the log.
    let next = store.charge([1; 32], [9; 32], COST).await.unwrap();
    assert_eq!((next.client.seqno, next.marker), (2, 2));
    crash_copy(&path, &crashed);
    store.close().await;
    let reopened = Store::open(&crashed, &key()).unwrap();
    assert_eq!(reopened.client(&[1; 32]).unwrap().charged, 14);
    reopened.close().await;
}

/// A failed record whose voiding fails too leaves the log broken: the store takes no more writes
/// (a restart replays what was acknowledged).
#[tokio::test]
async fn a_log_that_cannot_void_a_failed_record_stops_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let store = Store::open(&path, &key()).unwrap();
    store.charge([1; 32], [9; 32], COST).await.unwrap();
    store.fail_next_syncs(2);
    assert!(store.charge([1; 32], [9; 32], COST).await.is_err());
    assert!(store.charge([1; 32], [9; 32], COST).await.is_err());
    assert!(store.mark_settled([1; 32], 7).await.is_err());
    assert_eq!(store.client(&[1; 32]).unwrap().seqno, 1);
}

/// Issue 14 item 7: one charge that would overflow aborted every other charge of its group commit.
#[test]
fn one_overflowing_charge_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let store = Store::open(&path, &key()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let huge = Cost {
        client: u128::MAX - 5,
        worker: 1,
        proxy: 0,
    };
    rt.block_on(store.charge([1; 32], [9; 32], huge)).unwrap();
    rt.block_on(store.close());
    // One group: an honest charge, the overflowing one, another honest one.
    let db = Database::create(&path).unwrap();
    let (id, log_path) = {
        let r = db.begin_read().unwrap();
        let id: [u8; 32] = r
            .open_table(META)
            .unwrap()
            .get(STORE_ID)
            .unwrap()
            .unwrap()
            .value()
            .try_into()
            .unwrap();
        (id, wal::path_for(&path))
    };
    let seal = Seal {
        sealer: Sealer::new(&key(), FileKind::Ledger, id, "t"),
    };
    let wal_sealer = Sealer::new(&key(), FileKind::Wal, id, "t.wal");
    let (mut log, _) = wal::Wal::open(&log_path, wal_sealer, Arc::new(AtomicU32::new(0))).unwrap();
    let mut answers = Vec::new();
    let mut batch = Vec::new();
    for (client, cost) in [([2; 32], COST), ([1; 32], COST), ([3; 32], COST)] {
        let (reply, rx) = oneshot::channel();
        batch.push(Op::Charge {
            client,
            worker: [9; 32],
            cost,
            reply,
        });
        answers.push(rx);
    }
    let mut replies = Vec::new();
    let mut poisoned = false;
    apply_batch(&db, &seal, &mut log, batch, &mut replies, &mut poisoned).unwrap();
    assert!(!poisoned);
    // The overflowing charge was answered at once with its own error; the two others commit.
    assert_eq!(replies.len(), 2);
    let mut answers = answers.into_iter();
    let (a, b, c) = (
        answers.next().unwrap(),
        answers.next().unwrap(),
        answers.next().unwrap(),
    );
    drop((a, c));
    assert!(matches!(rt.block_on(b).unwrap(), Err(StoreError::Overflow)));
    let r = db.begin_read().unwrap();
    let clients = r.open_table(CLIENTS).unwrap();
    assert_eq!(
        get_account(&seal, &clients, wal::Table::Client, &[2; 32]).unwrap(),
        (7, 1, 0)
    );
    assert_eq!(
        get_account(&seal, &clients, wal::Table::Client, &[3; 32]).unwrap(),
        (7, 1, 0)
    );
    assert_eq!(
        get_account(&seal, &clients, wal::Table::Client, &[1; 32]).unwrap(),
        (u128::MAX - 5, 1, 0)
    );
    let meta = r.open_table(META).unwrap();
    assert_eq!(get_head(&seal, &meta).unwrap().marker, 3);
}

fn tamper(path: &Path, edit: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
    let db = Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(CLIENTS).unwrap();
        edit(&mut t);
    }
    w.commit().unwrap();
}

fn value_of(path: &Path, key: [u8; 32]) -> Vec<u8> {
    let db = Database::create(path).unwrap();
    let r = db.begin_read().unwrap();
    r.open_table(CLIENTS)
        .unwrap()
        .get(key.as_slice())
        .unwrap()
        .unwrap()
        .value()
        .to_vec()
}

fn refused_naming(result: Result<Store, StoreError>, file: &Path, record: &str) {
    match result {
        Err(StoreError::Sealed(e)) => {
            let shown = e.to_string();
            assert!(shown.contains(&file.display().to_string()), "{shown}");
            assert!(shown.contains(record), "{shown}");
        }
        Err(e) => panic!("expected a sealed-state refusal, got {e}"),
        Ok(_) => panic!("expected a sealed-state refusal, the store opened"),
    }
}

/// Issue 15 item 3: the ledger on host disk could be edited by the operator (raise a charge, move an
/// account, lower what is settled). Every value is sealed; an edit is refused at open, naming it.
#[tokio::test]
async fn an_edited_ledger_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let store = Store::open(&path, &key()).unwrap();
    store.charge([1; 32], [9; 32], COST).await.unwrap();
    store.charge([2; 32], [9; 32], COST).await.unwrap();
    store.close().await;
    let good = std::fs::read(&path).unwrap();
    let restore = || std::fs::write(&path, &good).unwrap();

    // A flipped bit in one account's value.
    let mut v = value_of(&path, [1; 32]);
    let last = v.len() - 1;
    v[last] ^= 1;
    tamper(&path, |t| {
        t.insert([1u8; 32].as_slice(), v.as_slice()).unwrap();
    });
    refused_naming(
        Store::open(&path, &key()),
        &path,
        &format!("clients {}", hex::encode([1u8; 32])),
    );
    // An authentic value moved to another account (a foreign record).
    restore();
    let v = value_of(&path, [1; 32]);
    tamper(&path, |t| {
        t.insert([2u8; 32].as_slice(), v.as_slice()).unwrap();
    });
    refused_naming(
        Store::open(&path, &key()),
        &path,
        &format!("clients {}", hex::encode([2u8; 32])),
    );
    // A plaintext account written by hand (as the format-1 ledger held them).
    restore();
    tamper(&path, |t| {
        t.insert([5u8; 32].as_slice(), encode(1, 1, 0).as_slice())
            .unwrap();
    });
    refused_naming(Store::open(&path, &key()), &path, "clients 0505");
    // Another key (another proxy's, or a guess): the header MAC fails.
    restore();
    let other = StorageKey::derive(b"another key", "storage");
    assert!(matches!(
        Store::open(&path, &other),
        Err(StoreError::Sealed(SealError::Header { .. }))
    ));
    // Untouched, it opens with what was charged.
    restore();
    let store = Store::open(&path, &key()).unwrap();
    assert_eq!(store.client(&[2; 32]).unwrap().charged, 7);
    assert_eq!(store.marker().unwrap(), 2);
    store.close().await;
}

/// Issue 15 item 3: the WAL of one store spliced into another (or an edited record) is refused.
#[tokio::test]
async fn a_foreign_or_edited_log_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.redb");
    let b = dir.path().join("b.redb");
    let crashed = dir.path().join("crashed.redb");
    let sa = Store::open(&a, &key()).unwrap();
    let sb = Store::open(&b, &key()).unwrap();
    sa.charge([1; 32], [9; 32], COST).await.unwrap();
    sb.charge([1; 32], [9; 32], COST).await.unwrap();
    sb.charge([1; 32], [9; 32], COST).await.unwrap();
    crash_copy(&a, &crashed);
    // b's log next to a's ledger: same key, another store id.
    std::fs::copy(wal::path_for(&b), wal::path_for(&crashed)).unwrap();
    sa.close().await;
    sb.close().await;
    let log = wal::path_for(&crashed);
    assert!(matches!(
        Store::open(&crashed, &key()),
        Err(StoreError::Sealed(SealError::Header { file })) if file == log.display().to_string()
    ));
}

/// An account's (owed, seqno, accepted).
type Account = (u128, u64, u128);

/// Writes a format-1 ledger (plain values keyed by client TLS key) and its format-1 log, as the
/// previous release left them after a crash.
fn write_v1(path: &Path, clients: &[([u8; 32], Account)], marker: u64, log: &[wal::Record]) {
    let db = Database::create(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut c = w.open_table(V1_CLIENTS).unwrap();
        for (k, (a, n, b)) in clients {
            c.insert(k.as_slice(), encode(*a, *n, *b).as_slice())
                .unwrap();
        }
        let mut wk = w.open_table(V1_WORKERS).unwrap();
        wk.insert([9u8; 32].as_slice(), encode(50, 4, 20).as_slice())
            .unwrap();
        let mut m = w.open_table(V1_META).unwrap();
        m.insert(MARKER, marker).unwrap();
    }
    w.commit().unwrap();
    drop(db);
    wal::write_v1_for_tests(&wal::path_for(path), log);
}

/// Issue 14 finding 4: client accounts move from per-key to per-escrow. An old ledger opens and
/// migrates: keys of one escrow merge into one series above both, the format-1 log is replayed
/// first, and a key without a known escrow refuses the migration rather than strand its charges.
#[tokio::test]
async fn a_format_1_ledger_migrates_to_accounts_by_escrow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let (old_key, new_key, other_key) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let (escrow, other_escrow) = ([0xe1u8; 32], [0xe3u8; 32]);
    // The old key's series was settled up to 100 (seqno 5 on chain); the rotated key started a
    // second series (30, seqno 2) the escrow refused. The log holds one more charge of the old key.
    let logged = wal::Record {
        marker: 8,
        entries: vec![(wal::Table::Client, old_key, encode(110, 6, 100))],
    };
    write_v1(
        &path,
        &[
            (old_key, (100, 5, 100)),
            (new_key, (30, 2, 0)),
            (other_key, (40, 1, 0)),
        ],
        7,
        &[logged],
    );
    let map = |k: &[u8; 32]| match *k {
        k if k == old_key || k == new_key => Some(escrow),
        k if k == other_key => Some(other_escrow),
        _ => None,
    };
    // Without a mapping for one key, nothing migrates.
    let partial = |k: &[u8; 32]| (*k != other_key).then_some(escrow);
    let refused = Store::open_migrating(
        &path,
        &key(),
        &Migration {
            client: &partial,
            worker: &|k| Some(*k),
        },
    );
    assert!(
        matches!(&refused, Err(StoreError::Migration(m)) if m.contains(&hex::encode(other_key))),
        "{refused:?}"
    );
    let store = Store::open_migrating(
        &path,
        &key(),
        &Migration {
            client: &map,
            worker: &|k| Some(*k),
        },
    )
    .unwrap();
    assert_eq!(
        store.client(&escrow).unwrap(),
        ClientAccount {
            charged: 140,
            seqno: 8,
            settled: 100
        }
    );
    assert_eq!(store.client(&other_escrow).unwrap().charged, 40);
    assert_eq!(store.client(&old_key).unwrap(), ClientAccount::default());
    assert_eq!(
        store.worker(&[9; 32]).unwrap(),
        WorkerAccount {
            earned: 50,
            seqno: 4,
            paid: 20
        }
    );
    assert_eq!(store.marker().unwrap(), 8);
    // The next charge continues the escrow's one series.
    let next = store.charge(escrow, [9; 32], COST).await.unwrap();
    assert_eq!((next.client.charged, next.client.seqno), (147, 9));
    store.close().await;
    // Reopened: format 2 now, sealed; nothing left of format 1.
    let store = Store::open(&path, &key()).unwrap();
    assert_eq!(store.client(&escrow).unwrap().seqno, 9);
    assert_eq!(store.marker().unwrap(), 9);
    store.close().await;
    let db = Database::create(&path).unwrap();
    let r = db.begin_read().unwrap();
    let names: Vec<String> = r
        .list_tables()
        .unwrap()
        .map(|t| t.name().to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n == "clients" || n == "meta"),
        "{names:?}"
    );
}

fn meta_value(path: &Path, name: &str) -> Vec<u8> {
    let db = Database::create(path).unwrap();
    let r = db.begin_read().unwrap();
    r.open_table(META)
        .unwrap()
        .get(name)
        .unwrap()
        .unwrap()
        .value()
        .to_vec()
}

/// Rollback through the seal: an older copy of the ledger (fewer charges) under the authentic
/// marker record of a newer copy of the same ledger would pass the on-chain marker check. The
/// head's digest ties the accounts to the marker: refused at open. Deleting an account is refused
/// the same way.
#[tokio::test]
async fn an_older_copy_under_a_newer_marker_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let old = dir.path().join("old.redb");
    let store = Store::open(&path, &key()).unwrap();
    store.charge([1; 32], [9; 32], COST).await.unwrap();
    store.charge([2; 32], [9; 32], COST).await.unwrap();
    store.close().await;
    std::fs::copy(&path, &old).unwrap();
    let store = Store::open(&path, &key()).unwrap();
    for _ in 0..3 {
        store.charge([1; 32], [9; 32], COST).await.unwrap();
    }
    store.close().await;
    let newer_marker = meta_value(&path, MARKER);
    {
        let db = Database::create(&old).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(META)
            .unwrap()
            .insert(MARKER, newer_marker.as_slice())
            .unwrap();
        w.commit().unwrap();
    }
    refused_naming(Store::open(&old, &key()), &old, "meta marker");
    // An account deleted from the current copy.
    let good = std::fs::read(&path).unwrap();
    tamper(&path, |t| {
        t.remove([2u8; 32].as_slice()).unwrap();
    });
    refused_naming(Store::open(&path, &key()), &path, "meta marker");
    std::fs::write(&path, &good).unwrap();
    let store = Store::open(&path, &key()).unwrap();
    assert_eq!(store.marker().unwrap(), 5);
    assert_eq!(store.client(&[1; 32]).unwrap().seqno, 4);
    store.close().await;
}
