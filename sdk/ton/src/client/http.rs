//! [`HttpTonClient`]: toncenter API v2 over JSON-RPC, with API key, timeout, retries and rate limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tonlib_core::{TonAddress, TonHash};

use super::{
    AddressInformation, ClientError, FeeEstimate, FeeQuery, GetMethodResult, MasterchainInfo,
    StackEntry, TonClient, Transaction, TxId, WalletInformation, decode, is_rejection_text,
};

/// Longest response body quoted in an error.
const BODY_IN_ERROR: usize = 512;

/// How to reach toncenter (or a compatible server such as the devnet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TonClientConfig {
    /// Base URL; `{base_url}/jsonRPC` is called (e.g. `https://toncenter.com/api/v2` or the devnet URL).
    pub base_url: String,
    /// Sent as `X-API-Key` if set.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and network errors.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry.
    pub backoff_initial: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// Minimum spacing between requests (toncenter allows 1 rps without a key, 10 with one).
    pub min_interval: Option<Duration>,
    /// How often `wait_for_transaction` polls.
    pub poll_interval: Duration,
}

impl TonClientConfig {
    /// Defaults for `base_url`: 20 s timeout, 5 retries from 250 ms up to 8 s, no rate limit.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: None,
            timeout: Duration::from_secs(20),
            max_retries: 5,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            min_interval: None,
            poll_interval: Duration::from_millis(250),
        }
    }

    /// toncenter mainnet, rate-limited to its keyless 1 request per second.
    pub fn toncenter_mainnet() -> Self {
        Self {
            min_interval: Some(Duration::from_millis(1100)),
            ..Self::new("https://toncenter.com/api/v2")
        }
    }

    /// toncenter testnet, rate-limited to its keyless 1 request per second.
    pub fn toncenter_testnet() -> Self {
        Self {
            min_interval: Some(Duration::from_millis(1100)),
            ..Self::new("https://testnet.toncenter.com/api/v2")
        }
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
}

/// A toncenter API v2 client over HTTP (JSON-RPC endpoint).
#[derive(Debug)]
pub struct HttpTonClient {
    config: TonClientConfig,
    http: reqwest::Client,
    next_id: AtomicU64,
    last_request: Mutex<Option<Instant>>,
}

enum Attempt {
    Done(Value),
    Retry(ClientError, Option<Duration>),
    Fail(ClientError),
}

impl HttpTonClient {
    /// A client for `config`.
    pub fn new(config: TonClientConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ClientError::Network {
                method: "client".to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            config,
            http,
            next_id: AtomicU64::new(1),
            last_request: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TonClientConfig {
        &self.config
    }

    async fn pace(&self) {
        let Some(gap) = self.config.min_interval else {
            return;
        };
        let mut last = self.last_request.lock().await;
        if let Some(at) = *last {
            let ready = at + gap;
            let now = Instant::now();
            if ready > now {
                tokio::time::sleep(ready - now).await;
            }
        }
        *last = Some(Instant::now());
    }

    async fn attempt(&self, method: &str, body: &Value) -> Attempt {
        self.pace().await;
        let url = format!("{}/jsonRPC", self.config.base_url);
        let mut req = self.http.post(&url).json(body);
        if let Some(key) = &self.config.api_key {
            req = req.header("X-API-Key", key);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(
                    ClientError::Timeout {
                        method: method.to_string(),
                        after: self.config.timeout,
                    },
                    None,
                );
            }
            Err(e) => {
                return Attempt::Retry(
                    ClientError::Network {
                        method: method.to_string(),
                        message: e.to_string(),
                    },
                    None,
                );
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                let err = ClientError::Network {
                    method: method.to_string(),
                    message: e.to_string(),
                };
                return Attempt::Retry(err, None);
            }
        };
        let transient = status == 429 || status >= 500;
        let envelope = serde_json::from_str::<Value>(&text).ok();
        match envelope {
            Some(env) if env.get("ok").and_then(Value::as_bool) == Some(true) && status < 300 => {
                Attempt::Done(env.get("result").cloned().unwrap_or(Value::Null))
            }
            Some(env) if env.get("ok").and_then(Value::as_bool) == Some(false) => {
                let message = env
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no error text")
                    .to_string();
                let code = env
                    .get("code")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::from(status));
                // A refused external is a final answer even though toncenter sends it as a 500.
                let retry = transient && !is_rejection_text(&message);
                let err = ClientError::Api {
                    method: method.to_string(),
                    code,
                    message,
                };
                if retry {
                    Attempt::Retry(err, retry_after)
                } else {
                    Attempt::Fail(err)
                }
            }
            _ => {
                let mut body: String = text.chars().take(BODY_IN_ERROR).collect();
                if body.len() < text.len() {
                    body.push('…');
                }
                if status < 300 {
                    return Attempt::Fail(ClientError::Decode {
                        method: method.to_string(),
                        detail: format!("not a toncenter envelope: {body}"),
                    });
                }
                let err = ClientError::Http {
                    method: method.to_string(),
                    status,
                    body,
                };
                if transient {
                    Attempt::Retry(err, retry_after)
                } else {
                    Attempt::Fail(err)
                }
            }
        }
    }

    /// Calls a toncenter method through `/jsonRPC` and returns its `result`, retrying transient failures.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut delay = self.config.backoff_initial;
        let mut attempt = 0u32;
        loop {
            match self.attempt(method, &body).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, retry_after) => {
                    if attempt >= self.config.max_retries {
                        return Err(e);
                    }
                    let wait = retry_after.map_or(delay, |ra| ra.max(delay));
                    let wait = wait.min(self.config.backoff_max);
                    tracing::debug!(method, attempt, ?wait, error = %e, "toncenter: retrying");
                    tokio::time::sleep(wait).await;
                    delay = delay.saturating_mul(2).min(self.config.backoff_max);
                    attempt += 1;
                }
            }
        }
    }

    async fn call_decode<T>(
        &self,
        method: &str,
        params: Value,
        decode: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<T, ClientError> {
        let v = self.call(method, params).await?;
        decode(&v).map_err(|detail| ClientError::Decode {
            method: method.to_string(),
            detail,
        })
    }
}

fn addr(a: &TonAddress) -> String {
    a.to_base64_url()
}

#[async_trait]
impl TonClient for HttpTonClient {
    async fn get_masterchain_info(&self) -> Result<MasterchainInfo, ClientError> {
        self.call_decode("getMasterchainInfo", json!({}), decode::masterchain_info)
            .await
    }

    async fn get_address_information(
        &self,
        address: &TonAddress,
    ) -> Result<AddressInformation, ClientError> {
        let params = json!({"address": addr(address)});
        self.call_decode("getAddressInformation", params, decode::address_information)
            .await
    }

    async fn get_address_balance(&self, address: &TonAddress) -> Result<u128, ClientError> {
        let params = json!({"address": addr(address)});
        self.call_decode("getAddressBalance", params, |v| match v {
            Value::String(s) => s.parse().map_err(|_| format!("balance {s:?}")),
            Value::Number(n) => n.as_u64().map(u128::from).ok_or(format!("balance {n}")),
            other => Err(format!("balance is not a number: {other}")),
        })
        .await
    }

    async fn get_wallet_information(
        &self,
        address: &TonAddress,
    ) -> Result<WalletInformation, ClientError> {
        let params = json!({"address": addr(address)});
        self.call_decode("getWalletInformation", params, decode::wallet_information)
            .await
    }

    async fn run_get_method(
        &self,
        address: &TonAddress,
        method: &str,
        stack: &[StackEntry],
    ) -> Result<GetMethodResult, ClientError> {
        let stack = stack
            .iter()
            .map(StackEntry::to_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::InvalidArgument {
                method: "runGetMethod".to_string(),
                detail: e.to_string(),
            })?;
        let params = json!({"address": addr(address), "method": method, "stack": stack});
        self.call_decode("runGetMethod", params, decode::get_method_result)
            .await
    }

    async fn send_boc(&self, boc: &[u8]) -> Result<(), ClientError> {
        self.call("sendBoc", json!({"boc": STANDARD.encode(boc)}))
            .await
            .map(|_| ())
    }

    async fn send_boc_return_hash(&self, boc: &[u8]) -> Result<TonHash, ClientError> {
        let params = json!({"boc": STANDARD.encode(boc)});
        self.call_decode("sendBocReturnHash", params, decode::ext_message_hash)
            .await
    }

    async fn get_transactions(
        &self,
        address: &TonAddress,
        limit: u32,
        from: Option<&TxId>,
    ) -> Result<Vec<Transaction>, ClientError> {
        let mut params = json!({"address": addr(address), "limit": limit, "archival": true});
        if let Some(from) = from {
            params["lt"] = json!(from.lt.to_string());
            params["hash"] = json!(STANDARD.encode(from.hash.as_slice()));
        }
        self.call_decode("getTransactions", params, decode::transactions)
            .await
    }

    async fn estimate_fee(&self, query: FeeQuery<'_>) -> Result<FeeEstimate, ClientError> {
        let mut params = json!({
            "address": addr(query.address),
            "body": STANDARD.encode(query.body),
            "ignore_chksig": true,
        });
        if let Some((code, data)) = query.init {
            params["init_code"] = json!(STANDARD.encode(code));
            params["init_data"] = json!(STANDARD.encode(data));
        }
        self.call_decode("estimateFee", params, decode::fee_estimate)
            .await
    }

    fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }
}
