//! The receipts journal: every receipt the gateway keeps is appended to a file, so a restart keeps
//! them (`receipts_path`). The file starts with [`MAGIC`]; each record is its length (u32 LE), the
//! first 8 bytes of the SHA-256 of the payload, and the payload (JSON: the record and its bodies).
//!
//! Durability: a record is written (to the page cache) before the gateway moves on, so a killed
//! process loses nothing; the file is `fdatasync`ed at most a second later by the gateway's flush
//! task, which bounds what a power cut can take. A torn or corrupt tail (a crash in the middle of a
//! write) is cut off at open with a warning; a file that is not a journal is refused. When the file
//! passes `max_bytes` it is rewritten from what the gateway keeps in memory (bounded by
//! `receipts_kept` and the body budget), with a log line saying how many records were dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ReceiptRecord;
use crate::receipts::Kept;

/// First bytes of a receipts journal.
pub const MAGIC: &[u8; 10] = b"COCOONRJ1\n";
/// Largest record accepted when reading (a record holds two bodies of at most 8 MiB, base64).
const MAX_RECORD_BYTES: usize = 32 << 20;

/// A journal could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// File system error.
    #[error("receipts journal {path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists but is not a receipts journal.
    #[error("{0} is not a cocoon receipts journal (wrong header); refusing to overwrite it")]
    NotAJournal(PathBuf),
    /// The journal (every prompt and answer) is readable by group or others.
    #[error("receipts journal: {0}")]
    Permissions(#[from] cocoon_daemon::secret_file::SecretFileError),
}

#[derive(Serialize, Deserialize)]
struct Entry {
    record: ReceiptRecord,
    #[serde(default)]
    request_b64: Option<String>,
    #[serde(default)]
    response_b64: Option<String>,
}

/// The open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
    /// Records in the file.
    records: usize,
    dirty: bool,
    max_bytes: u64,
    /// Compact past this: `max_bytes`, or twice the size after the last compaction when what is kept
    /// in memory is itself larger (so compaction never runs on every append).
    compact_at: u64,
}

fn encode(kept: &Kept) -> Vec<u8> {
    let entry = Entry {
        record: kept.record.clone(),
        request_b64: kept.request.as_ref().map(|b| B64.encode(b)),
        response_b64: kept.response.as_ref().map(|b| B64.encode(b)),
    };
    let payload = serde_json::to_vec(&entry).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&Sha256::digest(&payload)[..8]);
    out.extend_from_slice(&payload);
    out
}

fn decode(payload: &[u8]) -> Option<Kept> {
    let entry: Entry = serde_json::from_slice(payload).ok()?;
    let body = |b: Option<String>| -> Option<Option<Bytes>> {
        match b {
            None => Some(None),
            Some(s) => B64.decode(s).ok().map(|v| Some(Bytes::from(v))),
        }
    };
    Some(Kept {
        record: entry.record,
        request: body(entry.request_b64)?,
        response: body(entry.response_b64)?,
    })
}

/// Reads every whole, intact record after the header; returns them and where the good part ends.
fn read_records(bytes: &[u8]) -> (Vec<Kept>, usize) {
    let mut out = Vec::new();
    let mut at = MAGIC.len();
    while let Some(head) = bytes.get(at..at + 12) {
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[..4]);
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD_BYTES {
            break;
        }
        let Some(payload) = bytes.get(at + 12..at + 12 + len) else {
            break;
        };
        if Sha256::digest(payload)[..8] != head[4..12] {
            break;
        }
        let Some(kept) = decode(payload) else {
            break;
        };
        out.push(kept);
        at += 12 + len;
    }
    (out, at)
}

impl Journal {
    /// Opens (or creates) the journal at `path`; returns it and the records it holds, oldest first.
    pub(crate) fn open(path: &Path, max_bytes: u64) -> Result<(Journal, Vec<Kept>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        // Every prompt and answer is in this file: created 0600, refused when others may read it.
        let mut file = cocoon_daemon::secret_file::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let ours = bytes.starts_with(MAGIC) || MAGIC.starts_with(&bytes);
        if !ours {
            return Err(JournalError::NotAJournal(path.to_owned()));
        }
        cocoon_daemon::secret_file::check_private(path)?;
        let (records, good) = if bytes.is_empty() {
            file.write_all(MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            (Vec::new(), MAGIC.len())
        } else if bytes.len() < MAGIC.len() && MAGIC.starts_with(&bytes) {
            // A crash while the header itself was written.
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(MAGIC).map_err(io)?;
            (Vec::new(), MAGIC.len())
        } else if !bytes.starts_with(MAGIC) {
            return Err(JournalError::NotAJournal(path.to_owned()));
        } else {
            read_records(&bytes)
        };
        if good < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = records.len(),
                dropped_bytes = bytes.len() - good,
                "receipts journal had a torn or corrupt tail (a crash mid-write); cut it off"
            );
            file.set_len(good as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(good as u64)).map_err(io)?;
        Ok((
            Journal {
                path: path.to_owned(),
                file,
                len: good as u64,
                records: records.len(),
                dirty: false,
                max_bytes,
                compact_at: max_bytes,
            },
            records,
        ))
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one record (written before this returns; synced by [`Journal::sync`]).
    pub(crate) fn append(&mut self, kept: &Kept) -> Result<(), JournalError> {
        let bytes = encode(kept);
        self.file.write_all(&bytes).map_err(|e| self.io(e))?;
        self.len += bytes.len() as u64;
        self.records += 1;
        self.dirty = true;
        Ok(())
    }

    /// How many records the file holds.
    pub(crate) fn records(&self) -> usize {
        self.records
    }

    /// Whether the file passed its size limit and should be rewritten from memory.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.len > self.compact_at
    }

    /// Makes what was appended durable.
    pub(crate) fn sync(&mut self) -> Result<(), JournalError> {
        if self.dirty {
            self.file.sync_data().map_err(|e| self.io(e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Rewrites the journal with exactly `records` (atomically: a new file renamed over the old).
    pub(crate) fn compact<'a>(
        &mut self,
        records: impl Iterator<Item = &'a Kept>,
    ) -> Result<usize, JournalError> {
        let tmp = self.path.with_extension("compacting");
        let mut out = Vec::from(&MAGIC[..]);
        let mut n = 0;
        for kept in records {
            out.extend_from_slice(&encode(kept));
            n += 1;
        }
        let write = || -> std::io::Result<File> {
            let mut f = cocoon_daemon::secret_file::private_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            // The rename itself is durable only once the directory is synced.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            let mut f = OpenOptions::new().read(true).write(true).open(&self.path)?;
            f.seek(SeekFrom::End(0))?;
            Ok(f)
        };
        self.file = write().map_err(|e| self.io(e))?;
        self.len = out.len() as u64;
        self.records = n;
        self.dirty = false;
        self.compact_at = self.max_bytes.max(self.len.saturating_mul(2));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(id: u64, body: &[u8]) -> Kept {
        Kept {
            record: ReceiptRecord {
                id,
                status: "verified".into(),
                endpoint: format!("/v1/req-{id}"),
                ..ReceiptRecord::default()
            },
            request: Some(Bytes::copy_from_slice(body)),
            response: None,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipts.journal");
        let (mut j, old) = Journal::open(&path, u64::MAX).unwrap();
        assert!(old.is_empty());
        j.append(&kept(1, b"first")).unwrap();
        j.append(&kept(2, b"second")).unwrap();
        j.sync().unwrap();
        drop(j);
        // A crash in the middle of the third record's write.
        let whole = encode(&kept(3, b"third"));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&whole[..whole.len() / 2]).unwrap();
        drop(f);
        let (mut j, back) = Journal::open(&path, u64::MAX).unwrap();
        let ids: Vec<u64> = back.iter().map(|k| k.record.id).collect();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(back[1].request.as_deref(), Some(&b"second"[..]));
        assert_eq!(back[0].record.endpoint, "/v1/req-1");
        // Appending after the cut continues a valid file.
        j.append(&kept(3, b"third")).unwrap();
        drop(j);
        let (_, back) = Journal::open(&path, u64::MAX).unwrap();
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn a_flipped_byte_ends_the_good_part_and_another_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipts.journal");
        let (mut j, _) = Journal::open(&path, u64::MAX).unwrap();
        j.append(&kept(1, b"one")).unwrap();
        j.append(&kept(2, b"two")).unwrap();
        drop(j);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (_, back) = Journal::open(&path, u64::MAX).unwrap();
        assert_eq!(back.len(), 1, "the corrupt second record is dropped");

        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "my notes").unwrap();
        assert!(matches!(
            Journal::open(&other, u64::MAX),
            Err(JournalError::NotAJournal(_))
        ));
        assert_eq!(std::fs::read(&other).unwrap(), b"my notes", "left alone");
    }

    #[cfg(unix)]
    #[test]
    fn the_journal_is_private_and_an_open_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipts.journal");
        let (mut j, _) = Journal::open(&path, 5_000).unwrap();
        assert_eq!(mode(&path), 0o600);
        let all: Vec<Kept> = (1..=20).map(|i| kept(i, &[7u8; 100])).collect();
        for k in &all {
            j.append(k).unwrap();
        }
        j.compact(all[15..].iter()).unwrap();
        assert_eq!(mode(&path), 0o600, "the compacted file too");
        drop(j);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Journal::open(&path, 5_000).unwrap_err();
        assert!(matches!(e, JournalError::Permissions(_)), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn compaction_rewrites_the_file_with_what_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipts.journal");
        let (mut j, _) = Journal::open(&path, 5_000).unwrap();
        let all: Vec<Kept> = (1..=20).map(|i| kept(i, &[7u8; 100])).collect();
        for k in &all {
            j.append(k).unwrap();
        }
        assert!(j.wants_compaction());
        assert_eq!(j.records(), 20);
        let n = j.compact(all[15..].iter()).unwrap();
        assert_eq!((n, j.records()), (5, 5));
        assert!(!j.wants_compaction());
        j.append(&kept(21, b"after")).unwrap();
        drop(j);
        let (_, back) = Journal::open(&path, 5_000).unwrap();
        let ids: Vec<u64> = back.iter().map(|k| k.record.id).collect();
        assert_eq!(ids, vec![16, 17, 18, 19, 20, 21]);
    }
}
