//! Exit codes and the error type that carries one.
//!
//! Commands return `anyhow::Result`; an error that should end with a specific exit code wraps a
//! [`CliError`] somewhere in its chain. Errors from the TON client are classified here too, so
//! commands rarely need to choose a code themselves.

use std::fmt;
use std::process::ExitCode;

use cocoon_ton::{ClientError, SendError};

/// The exit codes of `cocoon`, as `cocoon --help` documents them.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error (anything not listed below)
  2  usage: bad arguments or input (address, amount, mnemonic, parameters file)
  3  not found: keystore file, account or contract not deployed, no local devnet
  4  insufficient funds: the message says how much is missing and which address to fund
  5  chain: the API is unreachable or refused the request, or a transaction did not appear in time
  6  refused by a contract: the transaction ran and failed (e.g. not the owner)
  7  keystore: wrong passphrase or a damaged keystore file
  8  not yet available in this build
  9  a receipt or proof bundle does not verify (the output names each failed check)
  10 a proof bundle verifies only under simulated or absent attestation (INSECURE); see --allow-insecure";

/// What kind of failure ended the command; each kind has one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitKind {
    /// 1: anything else.
    Error,
    /// 2: bad arguments or input.
    Usage,
    /// 3: something that should exist does not.
    NotFound,
    /// 4: not enough TON.
    InsufficientFunds,
    /// 5: the chain API failed or timed out.
    Chain,
    /// 6: a contract refused the message.
    Refused,
    /// 7: the keystore could not be opened.
    Keystore,
    /// 8: the command exists but is not implemented yet.
    #[allow(dead_code)]
    NotYetAvailable,
    /// 9: a receipt or proof bundle failed verification.
    NotVerified,
    /// 10: a proof bundle verified, but its attestation is simulated or absent.
    Insecure,
}

impl ExitKind {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            ExitKind::Error => 1,
            ExitKind::Usage => 2,
            ExitKind::NotFound => 3,
            ExitKind::InsufficientFunds => 4,
            ExitKind::Chain => 5,
            ExitKind::Refused => 6,
            ExitKind::Keystore => 7,
            ExitKind::NotYetAvailable => 8,
            ExitKind::NotVerified => 9,
            ExitKind::Insecure => 10,
        }
    }
}

/// An error with a chosen exit code and a message that says what to do.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The exit code's kind.
    pub(crate) kind: ExitKind,
    /// What happened and what to do about it.
    pub(crate) message: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Builds an `anyhow::Error` carrying `kind`.
pub(crate) fn fail(kind: ExitKind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError {
        kind,
        message: message.into(),
    })
}

/// The exit kind of an error: the first [`CliError`] in its chain, else a classified client error.
pub(crate) fn kind_of(err: &anyhow::Error) -> ExitKind {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.kind;
        }
        if cause.downcast_ref::<ClientError>().is_some() {
            return ExitKind::Chain;
        }
        if let Some(e) = cause.downcast_ref::<SendError>() {
            return match e {
                SendError::Build(_) => ExitKind::Error,
                SendError::Client(_) | SendError::Seqno { .. } => ExitKind::Chain,
            };
        }
        if cause.downcast_ref::<cocoon_ton::AmountError>().is_some() {
            return ExitKind::Usage;
        }
    }
    ExitKind::Error
}

/// Prints the error (with its causes) on stderr and returns the exit code.
pub(crate) fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let kind = kind_of(&err);
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(kind.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_are_distinct_and_documented() {
        let kinds = [
            ExitKind::Error,
            ExitKind::Usage,
            ExitKind::NotFound,
            ExitKind::InsufficientFunds,
            ExitKind::Chain,
            ExitKind::Refused,
            ExitKind::Keystore,
            ExitKind::NotYetAvailable,
            ExitKind::NotVerified,
            ExitKind::Insecure,
        ];
        let codes: std::collections::BTreeSet<u8> = kinds.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), kinds.len());
        for code in codes {
            assert!(
                EXIT_CODES_HELP.contains(&format!("\n  {code:<2} ")),
                "exit code {code} is not documented"
            );
        }
    }

    #[test]
    fn the_first_cli_error_in_the_chain_decides() {
        let err = Err::<(), _>(fail(ExitKind::InsufficientFunds, "short"))
            .context("sending")
            .expect_err("error");
        assert_eq!(kind_of(&err), ExitKind::InsufficientFunds);
        let timeout = anyhow::Error::new(ClientError::Timeout {
            method: "wait".to_string(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(kind_of(&timeout), ExitKind::Chain);
        assert_eq!(kind_of(&anyhow::anyhow!("plain")), ExitKind::Error);
    }
}
