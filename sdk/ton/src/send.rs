//! Sending from a wallet and waiting for the transaction: the path most callers need.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::TonError;
use crate::client::{AccountState, ClientError, FeeEstimate, FeeQuery, TonClient, Transaction};
use crate::wallet::{ExternalMessage, Transfer, Wallet};

/// How long a wallet message stays valid after the chain time it was built at.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(120);

/// Building or sending a wallet message failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message could not be built.
    #[error(transparent)]
    Build(#[from] TonError),
    /// The chain refused it, or did not show its transaction in time.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The wallet's seqno get-method failed.
    #[error("wallet {address}: seqno get-method failed with exit code {exit_code}")]
    Seqno {
        /// the wallet
        address: String,
        /// TVM exit code
        exit_code: i32,
    },
}

/// A sent external message and the wallet transaction it produced.
#[derive(Debug, Clone)]
pub struct Sent {
    /// what was sent
    pub message: ExternalMessage,
    /// the wallet's transaction for it
    pub transaction: Transaction,
}

impl Wallet {
    /// The wallet's current seqno (0 while it is not deployed) and the chain time of that view.
    pub async fn seqno(&self, client: &dyn TonClient) -> Result<(u32, u64), SendError> {
        let info = client.get_address_information(self.address()).await?;
        let now = if info.sync_utime > 0 {
            info.sync_utime
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        if info.state != AccountState::Active {
            return Ok((0, now));
        }
        let r = client.run_get_method(self.address(), "seqno", &[]).await?;
        let seqno = r
            .stack
            .first()
            .and_then(|e| e.as_u64())
            .and_then(|s| u32::try_from(s).ok());
        match seqno {
            Some(s) if r.success() => Ok((s, now)),
            _ => Err(SendError::Seqno {
                address: self.address_friendly(),
                exit_code: r.exit_code,
            }),
        }
    }

    /// What sending `transfers` now would cost this wallet (`estimateFee` on the signed body; the
    /// wallet's state init is included while it is undeployed).
    pub async fn estimate_fee(
        &self,
        client: &dyn TonClient,
        transfers: &[Transfer],
    ) -> Result<FeeEstimate, SendError> {
        let (seqno, now) = self.seqno(client).await?;
        let valid_until = u32::try_from(now.saturating_add(DEFAULT_VALIDITY.as_secs()))
            .map_err(|_| TonError::InvalidArgument("chain time beyond 2106".to_string()))?;
        let message = self.transfer_message(seqno, valid_until, transfers)?;
        let body = crate::boc::cell_to_boc(message.body()?.as_ref())?;
        // While undeployed the wallet's state init is priced too.
        let init = if seqno == 0 {
            let init = self.state_init()?;
            let code = crate::boc::cell_to_boc(init.reference(0).map_err(TonError::from)?)?;
            let data = crate::boc::cell_to_boc(init.reference(1).map_err(TonError::from)?)?;
            Some((code, data))
        } else {
            None
        };
        let query = FeeQuery {
            address: self.address(),
            body: &body,
            init: init.as_ref().map(|(c, d)| (c.as_slice(), d.as_slice())),
        };
        Ok(client.estimate_fee(query).await?)
    }

    /// Signs `transfers` with the current seqno (deploying the wallet on first use), sends the
    /// external message and waits up to `timeout` for the wallet's transaction.
    pub async fn send_and_wait(
        &self,
        client: &dyn TonClient,
        transfers: &[Transfer],
        timeout: Duration,
    ) -> Result<Sent, SendError> {
        let (seqno, now) = self.seqno(client).await?;
        let valid_until = u32::try_from(now.saturating_add(DEFAULT_VALIDITY.as_secs()))
            .map_err(|_| TonError::InvalidArgument("chain time beyond 2106".to_string()))?;
        let message = self.transfer_message(seqno, valid_until, transfers)?;
        client.send_boc(&message.boc).await?;
        let transaction = client
            .wait_for_transaction(self.address(), &message.hash, Instant::now() + timeout)
            .await?;
        Ok(Sent {
            message,
            transaction,
        })
    }
}
