//! The ledger's write-ahead log: what makes a charge durable before its receipt is forwarded.
//!
//! A redb commit with `Durability::Immediate` rewrites pages and the file's metadata and then fsyncs,
//! which on ext4 waits for a journal commit (and for whatever else the machine is writing). The log
//! instead overwrites blocks of a file that was zero-filled and synced once, so `fdatasync` only
//! flushes those data blocks. Each group of ledger operations appends one record holding the
//! *absolute* new state of every account it touched plus the marker; redb gets the same changes as a
//! non-durable commit (visible to readers at once). When the log is full the writer makes a durable
//! redb commit instead (a checkpoint) and starts a new epoch. At open, records of the current epoch are
//! replayed in order (absolute states, so replaying already-checkpointed records is harmless).
//!
//! Layout (format 2): a 64-byte header `{magic, epoch, mac}` (the MAC over kind, store id and epoch,
//! see `cocoon_onchain::seal`), then records `{payload_len: u32, epoch: u64, checksum: u64, payload}`
//! where the payload is sealed with the record's epoch and position as associated data. A record of
//! another epoch ends the log (an older epoch's leftovers); a wrong checksum ends it too when nothing
//! authentic follows (a torn write at the tail). A record with a right checksum that fails
//! authentication, or a torn one followed by an authentic one, is an edit, a foreign record or a
//! reordering: refused at open. A log whose header is not valid is refused rather than guessed at.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use cocoon_onchain::seal::{MAC_BYTES, SealError, Sealer};

/// Size the log is preallocated to.
pub(crate) const LOG_BYTES: u64 = 2 << 20;
const HEADER_BYTES: u64 = 64;
const RECORD_HEADER: usize = 4 + 8 + 8;
/// Format 1 (plain records): read only to migrate.
const MAGIC_V1: &[u8; 16] = b"cocoon-ledger-wl";
/// Format 2: sealed records, header MAC.
const MAGIC: &[u8; 16] = b"cocoon-ledger-w2";
/// Bytes of one account's state in a record: tag, key, value.
pub(crate) const ENTRY_BYTES: usize = 1 + 32 + super::ACCOUNT_LEN;
/// Bytes a sealed payload adds.
const SEAL_BYTES: usize = cocoon_onchain::seal::SEAL_OVERHEAD;

/// 64-bit FNV-1a: tells a torn write at the tail (checksum wrong) from an edited record (checksum
/// right, authentication wrong). Not what protects the records: the seal does.
fn checksum(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Which table an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Table {
    /// `clients`.
    Client = 0,
    /// `workers`.
    Worker = 1,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Client => "clients",
            Table::Worker => "workers",
        }
    }
}

/// One record: the marker and the absolute state of each account touched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Record {
    pub(crate) marker: u64,
    pub(crate) entries: Vec<(Table, [u8; 32], [u8; super::ACCOUNT_LEN])>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.entries.len() * ENTRY_BYTES);
        out.extend_from_slice(&self.marker.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.entries.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for (table, key, value) in &self.entries {
            out.push(*table as u8);
            out.extend_from_slice(key);
            out.extend_from_slice(value);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Record> {
        let marker = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let count = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
        let body = bytes.get(12..)?;
        if body.len() != count.checked_mul(ENTRY_BYTES)? {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for e in body.chunks_exact(ENTRY_BYTES) {
            let table = match e[0] {
                0 => Table::Client,
                1 => Table::Worker,
                _ => return None,
            };
            entries.push((table, e[1..33].try_into().ok()?, e[33..].try_into().ok()?));
        }
        Some(Record { marker, entries })
    }
}

/// Why the log could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The header or a record failed authentication.
    Sealed(SealError),
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// The open log.
#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    sealer: Sealer,
    epoch: u64,
    offset: u64,
    /// Records in the current epoch (their position is sealed into each).
    count: u64,
    /// A record could not be made durable nor voided: nothing more may be written.
    broken: bool,
    /// Test seam: this many next `fdatasync`s fail.
    sync_faults: Arc<AtomicU32>,
}

/// The log file of the ledger at `store_path`.
pub(crate) fn path_for(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

fn header(sealer: &Sealer, epoch: u64) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    h[..16].copy_from_slice(MAGIC);
    h[16..24].copy_from_slice(&epoch.to_le_bytes());
    h[24..24 + MAC_BYTES].copy_from_slice(&sealer.header_mac(epoch));
    h
}

fn record_index(epoch: u64, position: u64) -> [u8; 16] {
    let mut i = [0u8; 16];
    i[..8].copy_from_slice(&epoch.to_le_bytes());
    i[8..].copy_from_slice(&position.to_le_bytes());
    i
}

fn v1_header_ok(h: &[u8]) -> bool {
    h.len() >= 32
        && &h[..16] == MAGIC_V1
        && u64::from_le_bytes(h[24..32].try_into().unwrap_or_default()) == checksum(&[&h[..24]])
}

/// The records of a format-1 log's current epoch (none when there is no format-1 log).
pub(crate) fn v1_records(path: &Path) -> std::io::Result<Vec<Record>> {
    let Ok(file) = File::open(path) else {
        return Ok(Vec::new());
    };
    let mut h = [0u8; HEADER_BYTES as usize];
    if file.read_exact_at(&mut h, 0).is_err() || !v1_header_ok(&h) {
        return Ok(Vec::new());
    }
    let epoch = u64::from_le_bytes(h[16..24].try_into().unwrap_or_default());
    let mut records = Vec::new();
    let mut offset = HEADER_BYTES;
    let mut head = [0u8; RECORD_HEADER];
    while offset + RECORD_HEADER as u64 <= LOG_BYTES {
        file.read_exact_at(&mut head, offset)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let e = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
        let sum = u64::from_le_bytes(head[12..20].try_into().unwrap_or_default());
        let end = offset + RECORD_HEADER as u64 + len;
        if len == 0 || e != epoch || end > LOG_BYTES {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        file.read_exact_at(&mut payload, offset + RECORD_HEADER as u64)?;
        if checksum(&[&head[..12], &payload]) != sum {
            break;
        }
        let Some(record) = Record::decode(&payload) else {
            break;
        };
        records.push(record);
        offset = end;
    }
    Ok(records)
}

/// Writes a format-1 log holding `records` (the previous release's layout), for migration tests.
#[cfg(test)]
pub(crate) fn write_v1_for_tests(path: &Path, records: &[Record]) {
    let mut bytes = vec![0u8; LOG_BYTES as usize];
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(MAGIC_V1);
    h[16..24].copy_from_slice(&1u64.to_le_bytes());
    let sum = checksum(&[&h[..24]]);
    h[24..32].copy_from_slice(&sum.to_le_bytes());
    bytes[..32].copy_from_slice(&h);
    let mut at = HEADER_BYTES as usize;
    for r in records {
        let payload = r.encode();
        let mut head = Vec::new();
        head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        head.extend_from_slice(&1u64.to_le_bytes());
        let sum = checksum(&[&head, &payload]);
        head.extend_from_slice(&sum.to_le_bytes());
        bytes[at..at + head.len()].copy_from_slice(&head);
        at += head.len();
        bytes[at..at + payload.len()].copy_from_slice(&payload);
        at += payload.len();
    }
    std::fs::write(path, bytes).unwrap_or_default();
}

/// Removes a format-1 log (after its records were migrated into the ledger).
pub(crate) fn retire_v1(path: &Path) -> std::io::Result<()> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let mut h = [0u8; HEADER_BYTES as usize];
    if file.read_exact_at(&mut h, 0).is_ok() && v1_header_ok(&h) {
        drop(file);
        std::fs::remove_file(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// What the slot at `offset` holds.
enum Slot {
    /// Nothing of this epoch (zeros, an older epoch's leftovers, the end of the file).
    End,
    /// A record whose checksum is wrong: a torn write.
    Torn { end: u64 },
    /// A record with a right checksum.
    Whole { end: u64, payload: Vec<u8> },
}

impl Wal {
    /// Opens (creating and zero-filling if needed) the log and returns the records of its current
    /// epoch, oldest first. A header or record that fails authentication is refused, naming it.
    pub(crate) fn open(
        path: &Path,
        sealer: Sealer,
        sync_faults: Arc<AtomicU32>,
    ) -> Result<(Wal, Vec<Record>), OpenError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() < LOG_BYTES {
            // Written zeros, not a sparse file: later fdatasyncs then change no block mapping.
            let zeros = vec![0u8; 1 << 20];
            let mut at = 0;
            while at < LOG_BYTES {
                file.write_all_at(&zeros, at)?;
                at += zeros.len() as u64;
            }
            file.write_all_at(&header(&sealer, 1), 0)?;
            file.sync_all()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        let mut h = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut h, 0)?;
        let epoch = u64::from_le_bytes(h[16..24].try_into().unwrap_or_default());
        if &h[..16] != MAGIC {
            // Guessing an epoch could replay an old epoch's records over newer state.
            return Err(OpenError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a ledger log (bad header)", path.display()),
            )));
        }
        sealer
            .check_header(epoch, &h[24..24 + MAC_BYTES])
            .map_err(OpenError::Sealed)?;
        let mut wal = Wal {
            file,
            sealer,
            epoch,
            offset: HEADER_BYTES,
            count: 0,
            broken: false,
            sync_faults,
        };
        let records = wal.scan()?;
        Ok((wal, records))
    }

    fn slot(&self, offset: u64) -> std::io::Result<Slot> {
        let mut head = [0u8; RECORD_HEADER];
        if offset + RECORD_HEADER as u64 > LOG_BYTES {
            return Ok(Slot::End);
        }
        self.file.read_exact_at(&mut head, offset)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let epoch = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
        let sum = u64::from_le_bytes(head[12..20].try_into().unwrap_or_default());
        let end = offset + RECORD_HEADER as u64 + len;
        if len == 0 || epoch != self.epoch || end > LOG_BYTES {
            return Ok(Slot::End);
        }
        let mut payload = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut payload, offset + RECORD_HEADER as u64)?;
        if checksum(&[&head[..12], &payload]) != sum {
            return Ok(Slot::Torn { end });
        }
        Ok(Slot::Whole { end, payload })
    }

    fn open_record(&self, position: u64, payload: &[u8]) -> Result<Record, SealError> {
        let describe = || format!("{position} of epoch {}", self.epoch);
        let plain = self
            .sealer
            .open(&record_index(self.epoch, position), payload, describe)?;
        Record::decode(&plain).ok_or_else(|| SealError::Record {
            file: self.sealer.file().into(),
            record: describe(),
        })
    }

    fn scan(&mut self) -> Result<Vec<Record>, OpenError> {
        let mut records = Vec::new();
        loop {
            match self.slot(self.offset)? {
                Slot::End => break,
                Slot::Whole { end, payload } => {
                    // A right checksum and a failed authentication is an edit, not a torn write.
                    let record = self
                        .open_record(self.count, &payload)
                        .map_err(OpenError::Sealed)?;
                    records.push(record);
                    self.offset = end;
                    self.count += 1;
                }
                Slot::Torn { end } => {
                    // A torn write is the last thing in the log: an authentic record after it
                    // means this one was edited.
                    if let Slot::Whole { payload, .. } = self.slot(end)?
                        && self.open_record(self.count + 1, &payload).is_ok()
                    {
                        return Err(OpenError::Sealed(SealError::Record {
                            file: self.sealer.file().into(),
                            record: format!("{} of epoch {}", self.count, self.epoch),
                        }));
                    }
                    break;
                }
            }
        }
        Ok(records)
    }

    /// Whether a record with `entries` accounts fits before the end of the log.
    pub(crate) fn fits(&self, entries: usize) -> bool {
        let len = (RECORD_HEADER + SEAL_BYTES + 12 + entries.saturating_mul(ENTRY_BYTES)) as u64;
        self.offset.saturating_add(len) <= LOG_BYTES
    }

    /// Whether a failed record could not be voided (nothing more may be written).
    pub(crate) fn broken(&self) -> bool {
        self.broken
    }

    fn sync(&self) -> std::io::Result<()> {
        let faults = self.sync_faults.load(Ordering::Acquire);
        if faults > 0 {
            self.sync_faults.store(faults - 1, Ordering::Release);
            return Err(std::io::Error::other("injected fdatasync failure"));
        }
        self.file.sync_data()
    }

    /// Appends `record` and waits until it is on disk. On error nothing is written: a record whose
    /// `fdatasync` failed may still reach the disk later, so it is overwritten with zeros (and that
    /// synced) before the error is returned; if even that fails the log is broken and takes no more
    /// records. Either way the record is never replayed as a charge nobody acknowledged.
    pub(crate) fn append(&mut self, record: &Record) -> std::io::Result<()> {
        if self.broken {
            return Err(std::io::Error::other(
                "ledger log broken by an earlier failed write",
            ));
        }
        let payload = self
            .sealer
            .seal(&record_index(self.epoch, self.count), &record.encode());
        let mut buf = Vec::with_capacity(RECORD_HEADER + payload.len());
        buf.extend_from_slice(
            &u32::try_from(payload.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        buf.extend_from_slice(&self.epoch.to_le_bytes());
        let sum = checksum(&[&buf[..12], &payload]);
        buf.extend_from_slice(&sum.to_le_bytes());
        buf.extend_from_slice(&payload);
        if self.offset + buf.len() as u64 > LOG_BYTES {
            return Err(std::io::Error::other("ledger log full"));
        }
        let written = self
            .file
            .write_all_at(&buf, self.offset)
            .and_then(|()| self.sync());
        if let Err(e) = written {
            let zeros = vec![0u8; buf.len()];
            let voided = self
                .file
                .write_all_at(&zeros, self.offset)
                .and_then(|()| self.sync());
            if let Err(v) = voided {
                tracing::error!(error = %v, "a failed ledger log record could not be voided; the ledger stops writing");
                self.broken = true;
            }
            return Err(e);
        }
        self.offset += buf.len() as u64;
        self.count += 1;
        Ok(())
    }

    /// Starts a new epoch: every record so far is void. Call only after a durable redb commit that
    /// contains them.
    pub(crate) fn reset(&mut self) -> std::io::Result<()> {
        if self.offset == HEADER_BYTES {
            return Ok(());
        }
        let next = self.epoch.wrapping_add(1);
        self.file.write_all_at(&header(&self.sealer, next), 0)?;
        self.sync()?;
        self.epoch = next;
        self.offset = HEADER_BYTES;
        self.count = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_onchain::seal::{FileKind, StorageKey};

    fn sealer(id: u8) -> Sealer {
        Sealer::new(
            &StorageKey::derive(b"k", "storage"),
            FileKind::Wal,
            [id; 32],
            "l.wal",
        )
    }

    fn open(path: &Path) -> Result<(Wal, Vec<Record>), OpenError> {
        Wal::open(path, sealer(1), Arc::new(AtomicU32::new(0)))
    }

    fn record(marker: u64, n: u8) -> Record {
        Record {
            marker,
            entries: (0..n)
                .map(|i| {
                    let t = if i % 2 == 0 {
                        Table::Client
                    } else {
                        Table::Worker
                    };
                    (t, [i; 32], [marker as u8; super::super::ACCOUNT_LEN])
                })
                .collect(),
        }
    }

    #[test]
    fn records_replay_until_a_torn_tail_and_reset_voids_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.wal");
        {
            let (mut wal, records) = open(&path).unwrap();
            assert!(records.is_empty());
            wal.append(&record(1, 2)).unwrap();
            wal.append(&record(2, 3)).unwrap();
            wal.append(&record(3, 1)).unwrap();
        }
        let (_, records) = open(&path).unwrap();
        assert_eq!(records, vec![record(1, 2), record(2, 3), record(3, 1)]);

        // Tear the last record: one flipped payload byte ends the log before it.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let last = HEADER_BYTES as usize
            + 2 * (RECORD_HEADER + SEAL_BYTES)
            + 2 * 12
            + 5 * ENTRY_BYTES
            + RECORD_HEADER
            + 30;
        file.write_all_at(&[0xff], last as u64).unwrap();
        let (mut wal, records) = open(&path).unwrap();
        assert_eq!(records, vec![record(1, 2), record(2, 3)]);

        // A new epoch voids the old records even though their bytes are still there.
        wal.reset().unwrap();
        wal.append(&record(9, 1)).unwrap();
        drop(wal);
        let (wal, records) = open(&path).unwrap();
        assert_eq!(records, vec![record(9, 1)]);
        assert!(wal.fits(10));
        assert!(!wal.fits((LOG_BYTES as usize) / ENTRY_BYTES));
    }

    fn record_span(path: &Path, n: usize) -> (usize, usize) {
        // Offsets of the n-th record (header included) by walking the lengths.
        let bytes = std::fs::read(path).unwrap();
        let mut at = HEADER_BYTES as usize;
        for i in 0.. {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let end = at + RECORD_HEADER + len;
            if i == n {
                return (at, end);
            }
            at = end;
        }
        unreachable!()
    }

    fn expect_refused(path: &Path, what: &str) {
        match open(path) {
            Err(OpenError::Sealed(e)) => {
                assert!(e.to_string().contains("l.wal"), "{what}: {e}");
            }
            other => panic!("{what}: expected a sealed-record refusal, got {other:?}"),
        }
    }

    fn fix_checksum(bytes: &mut [u8], at: usize, end: usize) {
        let sum = checksum(&[&bytes[at..at + 12], &bytes[at + RECORD_HEADER..end]]);
        bytes[at + 12..at + 20].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn edited_foreign_and_reordered_records_are_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.wal");
        {
            let (mut wal, _) = open(&path).unwrap();
            for m in 1..=3 {
                wal.append(&record(m, 2)).unwrap();
            }
        }
        let good = std::fs::read(&path).unwrap();
        // A flipped ciphertext bit in the middle record with its checksum fixed up: an edit.
        let (at, end) = record_span(&path, 1);
        let mut bytes = good.clone();
        bytes[at + RECORD_HEADER + 40] ^= 1;
        fix_checksum(&mut bytes, at, end);
        std::fs::write(&path, &bytes).unwrap();
        expect_refused(&path, "edited record");
        // The same flip without the checksum: not a torn tail, since authentic records follow.
        let mut bytes = good.clone();
        bytes[at + RECORD_HEADER + 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        expect_refused(&path, "flipped bit in the middle");
        // Two records swapped (same lengths): each fails at the other's position.
        let (a0, e0) = record_span(&path, 0);
        let mut bytes = good.clone();
        let first = good[a0..e0].to_vec();
        let second = good[e0..e0 + (e0 - a0)].to_vec();
        bytes[a0..e0].copy_from_slice(&second);
        bytes[e0..e0 + (e0 - a0)].copy_from_slice(&first);
        std::fs::write(&path, &bytes).unwrap();
        expect_refused(&path, "reordered records");
        // A record of another store's log, spliced in (its header written over ours).
        std::fs::write(&path, &good).unwrap();
        let other = dir.path().join("o.wal");
        {
            let (mut wal, _) = Wal::open(&other, sealer(2), Arc::new(AtomicU32::new(0))).unwrap();
            wal.append(&record(7, 2)).unwrap();
        }
        let foreign = std::fs::read(&other).unwrap();
        let mut bytes = good.clone();
        bytes[a0..e0].copy_from_slice(&foreign[a0..e0]);
        std::fs::write(&path, &bytes).unwrap();
        expect_refused(&path, "foreign record");
        // Another store's whole log: its header MAC names another store.
        assert!(matches!(
            open(&other),
            Err(OpenError::Sealed(SealError::Header { .. }))
        ));
        std::fs::write(&path, &good).unwrap();
        assert_eq!(open(&path).unwrap().1.len(), 3);
    }
}
