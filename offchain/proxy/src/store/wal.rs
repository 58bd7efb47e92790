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
//! Layout: a 64-byte header `{magic, epoch, checksum}`, then records
//! `{payload_len: u32, epoch: u64, checksum: u64, payload}`; a record whose epoch or checksum does not
//! match ends the log (a torn write at the tail, or an older epoch's leftovers). A log whose header is
//! not valid is refused rather than guessed at.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size the log is preallocated to.
pub(crate) const LOG_BYTES: u64 = 2 << 20;
const HEADER_BYTES: u64 = 64;
const RECORD_HEADER: usize = 4 + 8 + 8;
const MAGIC: &[u8; 16] = b"cocoon-ledger-wl";
/// Bytes of one account's state in a record: tag, key, value.
pub(crate) const ENTRY_BYTES: usize = 1 + 32 + super::ACCOUNT_LEN;

/// 64-bit FNV-1a: detects torn or stale records (not an adversary: the file is the proxy's own).
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

/// The open log.
#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    epoch: u64,
    offset: u64,
}

/// The log file of the ledger at `store_path`.
pub(crate) fn path_for(store_path: &Path) -> PathBuf {
    let mut name = store_path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

fn header(epoch: u64) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    h[..16].copy_from_slice(MAGIC);
    h[16..24].copy_from_slice(&epoch.to_le_bytes());
    let sum = checksum(&[&h[..24]]);
    h[24..32].copy_from_slice(&sum.to_le_bytes());
    h
}

impl Wal {
    /// Opens (creating and zero-filling if needed) the log and returns the records of its current
    /// epoch, oldest first.
    pub(crate) fn open(path: &Path) -> std::io::Result<(Wal, Vec<Record>)> {
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
            file.write_all_at(&header(1), 0)?;
            file.sync_all()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        let mut h = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut h, 0)?;
        let valid = &h[..16] == MAGIC
            && u64::from_le_bytes(h[24..32].try_into().unwrap_or_default())
                == checksum(&[&h[..24]]);
        if !valid {
            // Guessing an epoch could replay an old epoch's records over newer state.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a ledger log (bad header)", path.display()),
            ));
        }
        let epoch = u64::from_le_bytes(h[16..24].try_into().unwrap_or_default());
        let mut wal = Wal {
            file,
            epoch,
            offset: HEADER_BYTES,
        };
        let records = wal.scan()?;
        Ok((wal, records))
    }

    fn scan(&mut self) -> std::io::Result<Vec<Record>> {
        let mut records = Vec::new();
        let mut head = [0u8; RECORD_HEADER];
        while self.offset + RECORD_HEADER as u64 <= LOG_BYTES {
            self.file.read_exact_at(&mut head, self.offset)?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
            let epoch = u64::from_le_bytes(head[4..12].try_into().unwrap_or_default());
            let sum = u64::from_le_bytes(head[12..20].try_into().unwrap_or_default());
            let end = self.offset + RECORD_HEADER as u64 + len;
            if len == 0 || epoch != self.epoch || end > LOG_BYTES {
                break;
            }
            let mut payload = vec![0u8; len as usize];
            self.file
                .read_exact_at(&mut payload, self.offset + RECORD_HEADER as u64)?;
            if checksum(&[&head[..12], &payload]) != sum {
                break;
            }
            let Some(record) = Record::decode(&payload) else {
                break;
            };
            records.push(record);
            self.offset = end;
        }
        Ok(records)
    }

    /// Whether a record with `entries` accounts fits before the end of the log.
    pub(crate) fn fits(&self, entries: usize) -> bool {
        let len = (RECORD_HEADER + 12 + entries.saturating_mul(ENTRY_BYTES)) as u64;
        self.offset.saturating_add(len) <= LOG_BYTES
    }

    /// Appends `record` and waits until it is on disk. On error nothing is considered written (the
    /// next append overwrites the same place).
    pub(crate) fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let payload = record.encode();
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
        self.file.write_all_at(&buf, self.offset)?;
        self.file.sync_data()?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Starts a new epoch: every record so far is void. Call only after a durable redb commit that
    /// contains them.
    pub(crate) fn reset(&mut self) -> std::io::Result<()> {
        if self.offset == HEADER_BYTES {
            return Ok(());
        }
        let next = self.epoch.wrapping_add(1);
        self.file.write_all_at(&header(next), 0)?;
        self.file.sync_data()?;
        self.epoch = next;
        self.offset = HEADER_BYTES;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let (mut wal, records) = Wal::open(&path).unwrap();
            assert!(records.is_empty());
            wal.append(&record(1, 2)).unwrap();
            wal.append(&record(2, 3)).unwrap();
            wal.append(&record(3, 1)).unwrap();
        }
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![record(1, 2), record(2, 3), record(3, 1)]);

        // Tear the last record: one flipped payload byte ends the log before it.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let last = HEADER_BYTES as usize
            + 2 * RECORD_HEADER
            + 2 * 12
            + 5 * ENTRY_BYTES
            + RECORD_HEADER
            + 3;
        file.write_all_at(&[0xff], last as u64).unwrap();
        let (mut wal, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![record(1, 2), record(2, 3)]);

        // A new epoch voids the old records even though their bytes are still there.
        wal.reset().unwrap();
        wal.append(&record(9, 1)).unwrap();
        drop(wal);
        let (wal, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![record(9, 1)]);
        assert!(wal.fits(10));
        assert!(!wal.fits((LOG_BYTES as usize) / ENTRY_BYTES));
    }
}
