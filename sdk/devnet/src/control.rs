//! The devnet's test-only routes under `/devnet/` (fund, time, status) and a masterchain probe.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::DevnetError;

/// A client for one devnet's test-only routes.
#[derive(Debug, Clone)]
pub struct DevnetControl {
    url: String,
    http: reqwest::Client,
}

/// What `/devnet/status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DevnetInfo {
    /// the pseudo masterchain seqno (one block per state change)
    pub seqno: u64,
    /// chain time, unix seconds
    pub now: u64,
    /// current logical time
    pub lt: String,
    /// transactions recorded since genesis
    pub transactions: u64,
    /// where the state is persisted, if anywhere
    pub state_file: Option<String>,
    /// the server's PID
    pub pid: i32,
}

/// What `/devnet/fund` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundReceipt {
    /// the funded address, user-friendly
    pub address: String,
    /// its balance afterwards, nanotons
    pub balance: u128,
    /// logical time of the crediting transaction, if one was recorded on the account
    pub lt: Option<u64>,
}

impl DevnetControl {
    /// A control client for the devnet at `url` (e.g. `http://127.0.0.1:41305`).
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            // Below the server's 120 s keep-alive, so a pooled connection is never reused as it closes.
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self { url, http }
    }

    /// The devnet's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call(&self, route: &str, body: Option<Value>) -> Result<Value, DevnetError> {
        let url = format!("{}{route}", self.url);
        let http_err = |source| DevnetError::Http {
            route: route.to_string(),
            source,
        };
        let req = match body {
            Some(b) => self.http.post(&url).json(&b),
            None => self.http.get(&url),
        };
        let envelope: Value = req
            .send()
            .await
            .map_err(http_err)?
            .json()
            .await
            .map_err(http_err)?;
        if envelope.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(envelope.get("result").cloned().unwrap_or(Value::Null));
        }
        Err(DevnetError::Refused {
            route: route.to_string(),
            code: envelope.get("code").and_then(Value::as_i64).unwrap_or(0),
            error: envelope
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error text")
                .to_string(),
        })
    }

    fn bad(route: &str, detail: impl Into<String>) -> DevnetError {
        DevnetError::BadAnswer {
            route: route.to_string(),
            detail: detail.into(),
        }
    }

    /// Sends `nanotons` from the treasury to `address` (works for undeployed addresses).
    pub async fn fund(
        &self,
        address: impl std::fmt::Display,
        nanotons: u128,
    ) -> Result<FundReceipt, DevnetError> {
        const ROUTE: &str = "/devnet/fund";
        let r = self
            .call(
                ROUTE,
                Some(json!({"address": address.to_string(), "amount": nanotons.to_string()})),
            )
            .await?;
        let balance = r
            .get("balance")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u128>().ok())
            .ok_or_else(|| Self::bad(ROUTE, "no balance"))?;
        let lt = r
            .pointer("/transaction_id/lt")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        Ok(FundReceipt {
            address: r
                .get("address")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            balance,
            lt,
        })
    }

    async fn time(&self, body: Value) -> Result<u64, DevnetError> {
        const ROUTE: &str = "/devnet/time";
        self.call(ROUTE, Some(body))
            .await?
            .get("now")
            .and_then(Value::as_u64)
            .ok_or_else(|| Self::bad(ROUTE, "no `now`"))
    }

    /// Sets chain time to `unix` seconds (never backwards). Returns the new chain time.
    pub async fn set_time(&self, unix: u64) -> Result<u64, DevnetError> {
        self.time(json!({ "unix": unix })).await
    }

    /// Moves chain time forward by `secs`. Returns the new chain time.
    pub async fn advance_time(&self, secs: u64) -> Result<u64, DevnetError> {
        self.time(json!({ "advance": secs })).await
    }

    /// `/devnet/status`.
    pub async fn status(&self) -> Result<DevnetInfo, DevnetError> {
        const ROUTE: &str = "/devnet/status";
        let v = self.call(ROUTE, None).await?;
        serde_json::from_value(v).map_err(|e| Self::bad(ROUTE, e.to_string()))
    }

    /// The masterchain seqno from `getMasterchainInfo`, the way any toncenter client sees it.
    pub async fn masterchain_seqno(&self) -> Result<u64, DevnetError> {
        const ROUTE: &str = "/api/v2/getMasterchainInfo";
        self.call(ROUTE, None)
            .await?
            .pointer("/last/seqno")
            .and_then(Value::as_u64)
            .ok_or_else(|| Self::bad(ROUTE, "no last.seqno"))
    }
}
