//! The demo's one request and its summary: chat through the gateway, check the receipt, settle,
//! and compare the ledger with the chain.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::LocalnetError;
use crate::localnet::{Balances, LocalNet};

/// One chat completion through the whole path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChatResult {
    /// The assistant's answer.
    pub answer: String,
    /// Usage as the engine reported it.
    pub usage: serde_json::Value,
    /// The gateway's receipt verdict (`verified` or why not).
    pub receipt_status: String,
    /// The receipt's hashes equal the request and response bytes as the app saw them.
    pub receipt_matches_bytes: bool,
    /// What the proxy said it charged, nanoTON.
    pub charged_nano: Option<String>,
}

/// Everything `cocoon demo` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The request and its answer.
    pub chat: ChatResult,
    /// Money after settlement, ledger and chain.
    pub balances: Balances,
    /// The gateway's OpenAI base URL.
    pub gateway: String,
    /// The root contract (user-friendly).
    pub root: String,
    /// What attests the daemons: always the simulated TEE here (INSECURE).
    pub tee: String,
    /// Where the daemons' keys came from: the simulated key service here (INSECURE).
    pub keys: String,
}

fn daemon(step: &'static str, e: impl fmt::Display) -> LocalnetError {
    LocalnetError::Daemon {
        step,
        message: e.to_string(),
    }
}

/// Sends one non-streamed chat completion to the gateway and checks its receipt.
pub async fn chat(
    net: &LocalNet,
    prompt: &str,
    max_tokens: u32,
) -> Result<ChatResult, LocalnetError> {
    let body = serde_json::json!({
        "model": net.model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": prompt}],
    })
    .to_string();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/chat/completions", net.gateway_url()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| daemon("sending the chat completion", e))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| daemon("reading the answer", e))?;
    if !status.is_success() {
        return Err(daemon(
            "chat completion",
            format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
        ));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| daemon("decoding the answer", e))?;
    let answer = json
        .pointer("/choices/0/message/content")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let record = net
        .gateway
        .handle
        .gateway
        .receipts()
        .pop()
        .ok_or_else(|| daemon("checking the receipt", "no receipt recorded"))?;
    let matches = record.receipt.as_ref().is_some_and(|r| {
        r.receipt.request_sha256 == <[u8; 32]>::from(Sha256::digest(body.as_bytes()))
            && r.receipt.response_sha256 == <[u8; 32]>::from(Sha256::digest(&bytes))
    });
    Ok(ChatResult {
        answer,
        usage: json.get("usage").cloned().unwrap_or_default(),
        receipt_status: record.status.to_string(),
        receipt_matches_bytes: matches,
        charged_nano: record.charged_nano,
    })
}

/// The demo flow on a started network: one request, forced settlement, the summary.
pub async fn run(net: &LocalNet, prompt: &str, max_tokens: u32) -> Result<Summary, LocalnetError> {
    let chat = chat(net, prompt, max_tokens).await?;
    net.settle().await?;
    let balances = net.balances().await?;
    Ok(Summary {
        chat,
        balances,
        gateway: net.gateway_url(),
        root: cocoon_ton::to_friendly(&net.root.address, true, cocoon_ton::Network::Testnet),
        tee: crate::localnet::TEE_NOTICE.to_owned(),
        keys: format!(
            "{} (at {}): the proxy's key and both storage keys released to TDs whose boot keys \
             the operators' wallets bound; the worker signs with its boot key, bound in its stake",
            crate::localnet::KEYS_NOTICE,
            net.kms.addr
        ),
    })
}

fn ton(nano: u128) -> String {
    cocoon_ton::format_ton(nano)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.balances;
        writeln!(f, "answer: {}", self.chat.answer.trim())?;
        writeln!(f, "usage: {}", self.chat.usage)?;
        let receipt = if self.chat.receipt_status == "verified" && self.chat.receipt_matches_bytes {
            "verified (worker signature, attestation key, request and response hashes)".to_owned()
        } else {
            format!("NOT verified: {}", self.chat.receipt_status)
        };
        writeln!(f, "receipt: {receipt}")?;
        writeln!(
            f,
            "attestation: RA-TLS on every hop, {} (quotes made up in software)",
            self.tee
        )?;
        writeln!(f, "keys: {}", self.keys)?;
        writeln!(f, "root: {}", self.root)?;
        writeln!(
            f,
            "client paid:   {} TON (ledger {} nanoTON, escrow on chain {} nanoTON)",
            ton(b.chain_escrow_charged),
            b.ledger_client_charged,
            b.chain_escrow_charged
        )?;
        writeln!(
            f,
            "worker earned: {} TON (ledger {} nanoTON, paid on chain {} nanoTON)",
            ton(b.chain_worker_paid),
            b.ledger_worker_earned,
            b.chain_worker_paid
        )?;
        writeln!(
            f,
            "proxy kept:    {} TON (ledger {} nanoTON, left in its vault {} nanoTON)",
            ton(b.chain_proxy_kept),
            b.ledger_proxy_kept,
            b.chain_proxy_kept
        )?;
        writeln!(
            f,
            "on-chain: setup {} transactions ({} TON fees); settlement {} transactions ({} TON fees)",
            b.setup_transactions,
            ton(b.setup_fees),
            b.settlement_transactions,
            ton(b.settlement_fees)
        )?;
        let agree = b.ledger_client_charged == b.chain_escrow_charged
            && b.ledger_worker_earned == b.chain_worker_paid;
        write!(
            f,
            "ledger and chain agree: {}",
            if agree { "yes" } else { "NO" }
        )
    }
}
