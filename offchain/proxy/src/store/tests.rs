//! Ledger tests: group commit, reopen, rollback detection, crash recovery through the log.

use std::path::Path;

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
    store.close().await;
    // A clean close leaves everything in redb: the log holds nothing to replay.
    let (_, records) = wal::Wal::open(&wal::path_for(&path)).unwrap();
    assert!(records.is_empty());
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
    r.open_table(META)
        .unwrap()
        .get(MARKER)
        .unwrap()
        .map(|v| v.value())
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
    let store = Store::open(&path).unwrap();
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
    let (_, records) = wal::Wal::open(&wal::path_for(&crashed)).unwrap();
    assert_eq!(records.len(), 32);
    let store = Store::open(&crashed).unwrap();
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
    let store = Store::open(&again).unwrap();
    assert_eq!(store.marker().unwrap(), 31);
    assert_eq!(store.worker(&[9; 32]).unwrap().earned, 186);
    store.close().await;

    // A log whose header is damaged is refused, not guessed at.
    let log = wal::path_for(&again);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(&log, bytes).unwrap();
    assert!(matches!(Store::open(&again), Err(StoreError::Db(_))));
}
