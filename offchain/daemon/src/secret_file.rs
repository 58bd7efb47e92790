//! Files that hold keys, mnemonics, prompts or answers (issue 16, finding 6): created readable by
//! their owner only (0600, directories 0700), and refused when group or others may read them, so
//! that another user of the machine never sees a key or a prompt. Secrets read from them are held
//! in zeroised buffers.

use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Mode of a secret file.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a directory of secret files.
pub const DIR_MODE: u32 = 0o700;

/// A secret file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Group or others may read (or write) it.
    #[error(
        "{path} is accessible by group or others (mode {mode:04o}); it holds secrets: run \
         `chmod 600 {path}` (or `chmod 700` for a directory)"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Refuses `path` when group or others have any access to it.
pub fn check_private(path: &Path) -> Result<(), SecretFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a secret file after [`check_private`]; the text is wiped from memory when dropped.
pub fn read_secret(path: &Path) -> Result<Zeroizing<String>, SecretFileError> {
    check_private(path)?;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io(path))?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(e) => Err(SecretFileError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
    }
}

/// Options that create a file 0600 (an existing file keeps its mode: check it).
pub fn private_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Writes `bytes` to a new or truncated file that only its owner can read (an existing file is
/// set to 0600 first).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let mut f = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io(path))?;
    set_private(path)?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Sets `path` to 0600 (0700 for a directory).
pub fn set_private(path: &Path) -> Result<(), SecretFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if path.is_dir() { DIR_MODE } else { FILE_MODE };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates `dir` (and missing parents) 0700; an existing directory is set to 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), SecretFileError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir).map_err(io(dir))?;
    set_private(dir)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_are_written_0600_and_open_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        create_private_dir(&keys).unwrap();
        assert_eq!(mode(&keys), 0o700);
        let path = keys.join("seed");
        write_private(&path, b"00").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read_secret(&path).unwrap().as_str(), "00");
        for open in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
            let e = read_secret(&path).unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        // Rewriting tightens it again.
        write_private(&path, b"11").unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(check_private(&path).is_ok());
    }
}
