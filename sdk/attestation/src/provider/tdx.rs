//! Intel TDX quotes through the Linux configfs-tsm report interface.
//!
//! The kernel ABI (Documentation/ABI/testing/configfs-tsm): creating a directory under
//! `/sys/kernel/config/tsm/report` makes a report entry; writing up to 64 bytes to its `inblob`
//! sets report_data; reading `outblob` returns the quote for the last `inblob`; `generation` counts
//! writes, so a reader can tell whether someone else wrote in between; `provider` names the TEE
//! (`tdx_guest`). We create one entry per request and remove it afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{EvidenceKind, QuoteProvider};
use crate::{AttestError, Result};

/// Where the kernel mounts configfs-tsm reports.
pub const DEFAULT_TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";

/// Quotes from the TDX module via configfs-tsm.
#[derive(Debug)]
pub struct TdxProvider {
    report_dir: PathBuf,
    counter: AtomicU64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AttestError + '_ {
    move |source| AttestError::TsmIo {
        path: path.to_path_buf(),
        source,
    }
}

fn read_generation(entry: &Path) -> Result<u64> {
    let path = entry.join("generation");
    let text = fs::read_to_string(&path).map_err(io_err(&path))?;
    text.trim().parse::<u64>().map_err(|e| {
        AttestError::ProviderUnavailable(format!("{}: not a number: {e}", path.display()))
    })
}

/// Removes the report entry when the request ends, whatever happened.
struct EntryGuard(PathBuf);

impl Drop for EntryGuard {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir(&self.0) {
            tracing::debug!(entry = %self.0.display(), error = %e, "removing configfs-tsm entry");
        }
    }
}

impl TdxProvider {
    /// A provider over `report_dir`; fails if the directory does not exist (no configfs-tsm, or
    /// not inside a TD).
    pub fn new(report_dir: PathBuf) -> Result<Self> {
        if !report_dir.is_dir() {
            return Err(AttestError::ProviderUnavailable(format!(
                "{} does not exist: not a TDX guest with configfs-tsm (kernel 6.7+), or configfs not mounted",
                report_dir.display()
            )));
        }
        Ok(TdxProvider {
            report_dir,
            counter: AtomicU64::new(0),
        })
    }

    fn entry_name(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("cocoon-{}-{n}", std::process::id())
    }
}

impl QuoteProvider for TdxProvider {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::Dcap
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        let entry = self.report_dir.join(self.entry_name());
        fs::create_dir(&entry).map_err(io_err(&entry))?;
        let _guard = EntryGuard(entry.clone());
        let provider_path = entry.join("provider");
        if let Ok(name) = fs::read_to_string(&provider_path) {
            let name = name.trim();
            if name != "tdx_guest" {
                return Err(AttestError::ProviderUnavailable(format!(
                    "configfs-tsm provider is {name:?}, not tdx_guest"
                )));
            }
        }
        let before = read_generation(&entry)?;
        let inblob = entry.join("inblob");
        fs::write(&inblob, report_data).map_err(io_err(&inblob))?;
        let outblob = entry.join("outblob");
        let quote = fs::read(&outblob).map_err(io_err(&outblob))?;
        let after = read_generation(&entry)?;
        let expected = before.saturating_add(1);
        if after != expected {
            return Err(AttestError::TsmGenerationMismatch {
                expected,
                actual: after,
            });
        }
        if quote.is_empty() {
            return Err(AttestError::MalformedQuote(
                "configfs-tsm returned an empty quote".into(),
            ));
        }
        Ok(quote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_configfs_is_a_clear_error() {
        let err =
            TdxProvider::new(PathBuf::from("/nonexistent/tsm/report")).expect_err("must fail");
        assert!(matches!(err, AttestError::ProviderUnavailable(_)), "{err}");
    }

    #[test]
    fn a_report_dir_that_is_not_configfs_fails_without_leaving_entries() {
        // A plain directory accepts mkdir but has no generation file: the request must fail with an
        // I/O error naming the file, and the entry must be removed.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = TdxProvider::new(dir.path().to_path_buf()).expect("dir exists");
        let err = p.quote(&[1; 64]).expect_err("no kernel behind it");
        assert!(matches!(err, AttestError::TsmIo { .. }), "{err}");
        assert_eq!(fs::read_dir(dir.path()).expect("read").count(), 0);
    }
}
