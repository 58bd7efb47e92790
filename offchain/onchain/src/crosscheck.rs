//! [`CrossCheckedClient`]: a [`TonClient`] that reads contract state through two independent
//! providers and refuses what they disagree on.
//!
//! Every read that decides admission or an allowlist is a read of contract state: the root's
//! registry (image and model allowlists, registered proxies, parameters), stakes (worker binding,
//! vault keys, markers) and escrows (client keys, balances). Those go through
//! `getAddressInformation` (code and data cells) and `runGetMethod`, and both are made through the
//! primary and the second provider concurrently. The answers must agree on the account state and
//! the code and data cell hashes (or on the get-method's exit code and stack); balances, sync times
//! and last-transaction ids are not compared (providers a block apart differ on them harmlessly).
//! A disagreement is retried once after [`CrossCheckedClient::retry_after`] (a provider one block
//! behind catches up); if it persists the read fails with [`ClientError::Disagreement`], logged
//! with both answers, so the caller refuses (the proxy does not admit, the worker does not serve)
//! rather than trusting either side.
//!
//! Not cross-checked: sends, transaction lists and fee estimates (the contracts themselves check
//! every signature, and the tracer follows the primary's transactions), balances and wallet
//! information (they decide no admission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cocoon_ton::{
    AddressInformation, ArcCell, ClientError, FeeEstimate, FeeQuery, GetMethodResult,
    MasterchainInfo, StackEntry, TonAddress, TonClient, TonHash, Transaction, TxId,
    WalletInformation,
};

/// One provider's answer to a read, boxed.
type Read<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ClientError>> + Send + 'a>>;

/// Reads through two providers; see the module documentation.
pub struct CrossCheckedClient {
    primary: Arc<dyn TonClient>,
    secondary: Arc<dyn TonClient>,
    retry_after: Duration,
    disagreements: AtomicU64,
}

impl std::fmt::Debug for CrossCheckedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossCheckedClient")
            .field("retry_after", &self.retry_after)
            .field("disagreements", &self.disagreements())
            .finish_non_exhaustive()
    }
}

/// What two answers to `getAddressInformation` must agree on.
fn account_view(a: &AddressInformation) -> String {
    let hash = |c: &Option<ArcCell>| {
        c.as_ref().map_or_else(
            || "none".to_owned(),
            |c| hex::encode(c.cell_hash().as_slice()),
        )
    };
    format!(
        "state {:?}, code {}, data {}",
        a.state,
        hash(&a.code),
        hash(&a.data)
    )
}

/// What two answers to `runGetMethod` must agree on.
fn get_method_view(r: &GetMethodResult) -> String {
    format!("exit code {}, stack {:?}", r.exit_code, r.stack)
}

impl CrossCheckedClient {
    /// Reads through `primary` and `secondary`, sends through `primary`.
    pub fn new(primary: Arc<dyn TonClient>, secondary: Arc<dyn TonClient>) -> Self {
        CrossCheckedClient {
            primary,
            secondary,
            retry_after: Duration::from_secs(2),
            disagreements: AtomicU64::new(0),
        }
    }

    /// How long to wait before the one retry of a disagreeing read (default 2 s).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    /// How many reads failed because the providers disagreed.
    pub fn disagreements(&self) -> u64 {
        self.disagreements.load(Ordering::Relaxed)
    }

    /// Runs `read` on both providers (concurrently), compares `view`s, retries once on a
    /// disagreement; the primary's answer when they agree.
    async fn checked<'a, T, F, V>(
        &'a self,
        method: &str,
        subject: &str,
        read: F,
        view: V,
    ) -> Result<T, ClientError>
    where
        F: Fn(&'a dyn TonClient) -> Read<'a, T>,
        V: Fn(&T) -> String,
    {
        let mut attempt = 0;
        loop {
            let (a, b) = tokio::join!(read(self.primary.as_ref()), read(self.secondary.as_ref()));
            let a = a?;
            let b = b.map_err(|e| ClientError::Disagreement {
                method: method.to_owned(),
                detail: format!("the cross-check provider failed for {subject}: {e}"),
            })?;
            let (va, vb) = (view(&a), view(&b));
            if va == vb {
                return Ok(a);
            }
            attempt += 1;
            if attempt > 1 {
                self.disagreements.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    method,
                    subject,
                    primary = %va,
                    cross_check = %vb,
                    "chain providers disagree: refusing the read (is one of them lying or stale?)"
                );
                return Err(ClientError::Disagreement {
                    method: method.to_owned(),
                    detail: format!("{subject}: primary says {va}; cross-check says {vb}"),
                });
            }
            tracing::warn!(method, subject, "chain providers disagree; retrying once");
            tokio::time::sleep(self.retry_after).await;
        }
    }
}

#[async_trait]
impl TonClient for CrossCheckedClient {
    async fn get_masterchain_info(&self) -> Result<MasterchainInfo, ClientError> {
        self.primary.get_masterchain_info().await
    }

    async fn get_address_information(
        &self,
        address: &TonAddress,
    ) -> Result<AddressInformation, ClientError> {
        let subject = address.to_hex();
        self.checked(
            "getAddressInformation",
            &subject,
            |c| Box::pin(c.get_address_information(address)),
            account_view,
        )
        .await
    }

    async fn get_address_balance(&self, address: &TonAddress) -> Result<u128, ClientError> {
        self.primary.get_address_balance(address).await
    }

    async fn get_wallet_information(
        &self,
        address: &TonAddress,
    ) -> Result<WalletInformation, ClientError> {
        self.primary.get_wallet_information(address).await
    }

    async fn run_get_method(
        &self,
        address: &TonAddress,
        method: &str,
        stack: &[StackEntry],
    ) -> Result<GetMethodResult, ClientError> {
        let subject = format!("{} {method}", address.to_hex());
        self.checked(
            "runGetMethod",
            &subject,
            |c| Box::pin(c.run_get_method(address, method, stack)),
            get_method_view,
        )
        .await
    }

    async fn send_boc(&self, boc: &[u8]) -> Result<(), ClientError> {
        self.primary.send_boc(boc).await
    }

    async fn send_boc_return_hash(&self, boc: &[u8]) -> Result<TonHash, ClientError> {
        self.primary.send_boc_return_hash(boc).await
    }

    async fn get_transactions(
        &self,
        address: &TonAddress,
        limit: u32,
        from: Option<&TxId>,
    ) -> Result<Vec<Transaction>, ClientError> {
        self.primary.get_transactions(address, limit, from).await
    }

    async fn estimate_fee(&self, query: FeeQuery<'_>) -> Result<FeeEstimate, ClientError> {
        self.primary.estimate_fee(query).await
    }

    fn poll_interval(&self) -> Duration {
        self.primary.poll_interval()
    }
}
