//! toncenter v2 JSON results to typed values. Numbers may come as strings or integers.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::Value;
use tonlib_core::cell::ArcCell;
use tonlib_core::{TonAddress, TonHash};

use super::stack::entry_from_json;
use super::{
    AccountState, AddressInformation, FeeEstimate, GetMethodResult, MasterchainInfo, Transaction,
    TxId, TxMessage, WalletInformation,
};
use crate::{boc, parse_address};

type R<T> = Result<T, String>;

fn field<'a>(v: &'a Value, key: &str) -> R<&'a Value> {
    v.get(key).ok_or_else(|| format!("missing field `{key}`"))
}

pub(crate) fn u128_of(v: &Value, key: &str) -> R<u128> {
    match field(v, key)? {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("`{key}` is not a u128: {s:?}")),
        Value::Number(n) => n
            .as_u64()
            .map(u128::from)
            .ok_or_else(|| format!("`{key}` is not a u128: {n}")),
        other => Err(format!("`{key}` is not a number: {other}")),
    }
}

fn u128_or_zero(v: &Value, key: &str) -> R<u128> {
    if v.get(key).is_none() {
        return Ok(0);
    }
    u128_of(v, key)
}

fn u64_of(v: &Value, key: &str) -> R<u64> {
    u128_of(v, key).and_then(|n| u64::try_from(n).map_err(|_| format!("`{key}` too large")))
}

fn i64_of(v: &Value, key: &str) -> R<i64> {
    match field(v, key)? {
        Value::String(s) => s.parse().map_err(|_| format!("`{key}` is not an integer")),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("`{key}` is not an integer")),
        other => Err(format!("`{key}` is not a number: {other}")),
    }
}

fn bool_or(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// A 32-byte hash in standard or url-safe base64, or hex.
pub(crate) fn hash_of(s: &str) -> R<TonHash> {
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(s).map_err(|e| e.to_string())?
    } else {
        STANDARD
            .decode(s)
            .or_else(|_| URL_SAFE.decode(s))
            .map_err(|e| format!("hash is not base64: {e}"))?
    };
    TonHash::try_from(bytes.as_slice()).map_err(|_| format!("hash is not 32 bytes: {s:?}"))
}

fn opt_boc(v: &Value, key: &str) -> R<Option<ArcCell>> {
    match v.get(key).and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(b64) => boc::boc_b64_to_cell(b64)
            .map(Some)
            .map_err(|e| format!("`{key}`: {e}")),
    }
}

fn opt_address(v: &Value, key: &str) -> R<Option<TonAddress>> {
    let s = match v.get(key) {
        Some(Value::String(s)) => s.as_str(),
        // Newer toncenter versions wrap addresses: {"@type":"accountAddress","account_address":".."}
        Some(Value::Object(o)) => o
            .get("account_address")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        _ => "",
    };
    if s.is_empty() {
        return Ok(None);
    }
    parse_address(s)
        .map(Some)
        .map_err(|e| format!("`{key}`: {e}"))
}

pub(crate) fn tx_id(v: Option<&Value>) -> R<Option<TxId>> {
    let Some(v) = v.filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let lt = u64_of(v, "lt")?;
    if lt == 0 {
        return Ok(None);
    }
    let hash = hash_of(field(v, "hash")?.as_str().unwrap_or_default())?;
    Ok(Some(TxId { lt, hash }))
}

fn state_of(s: &str) -> R<AccountState> {
    match s {
        "active" => Ok(AccountState::Active),
        "uninitialized" | "uninit" | "nonexist" => Ok(AccountState::Uninitialized),
        "frozen" => Ok(AccountState::Frozen),
        other => Err(format!("unknown account state {other:?}")),
    }
}

pub(crate) fn masterchain_info(v: &Value) -> R<MasterchainInfo> {
    let last = field(v, "last")?;
    Ok(MasterchainInfo {
        seqno: u64_of(last, "seqno")?,
        root_hash: last
            .get("root_hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

pub(crate) fn address_information(v: &Value) -> R<AddressInformation> {
    Ok(AddressInformation {
        balance: u128_of(v, "balance")?,
        state: state_of(field(v, "state")?.as_str().unwrap_or_default())?,
        code: opt_boc(v, "code")?,
        data: opt_boc(v, "data")?,
        last_transaction_id: tx_id(v.get("last_transaction_id"))?,
        sync_utime: v.get("sync_utime").and_then(Value::as_u64).unwrap_or(0),
    })
}

pub(crate) fn wallet_information(v: &Value) -> R<WalletInformation> {
    let seqno = match v.get("seqno") {
        Some(Value::Null) | None => None,
        Some(_) => {
            Some(u32::try_from(u64_of(v, "seqno")?).map_err(|_| "`seqno` too large".to_string())?)
        }
    };
    Ok(WalletInformation {
        wallet: bool_or(v, "wallet", false),
        balance: u128_of(v, "balance")?,
        state: state_of(field(v, "account_state")?.as_str().unwrap_or_default())?,
        wallet_type: v
            .get("wallet_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        seqno,
        wallet_id: match v.get("wallet_id") {
            Some(Value::Null) | None => None,
            Some(_) => Some(i64_of(v, "wallet_id")?),
        },
        last_transaction_id: tx_id(v.get("last_transaction_id"))?,
    })
}

pub(crate) fn get_method_result(v: &Value) -> R<GetMethodResult> {
    let stack = field(v, "stack")?
        .as_array()
        .ok_or("`stack` is not an array")?
        .iter()
        .map(entry_from_json)
        .collect::<R<Vec<_>>>()?;
    Ok(GetMethodResult {
        exit_code: i32::try_from(i64_of(v, "exit_code")?)
            .map_err(|_| "`exit_code` out of range".to_string())?,
        gas_used: v.get("gas_used").and_then(Value::as_u64).unwrap_or(0),
        stack,
    })
}

fn tx_message(v: &Value) -> R<TxMessage> {
    let data = v.get("msg_data").unwrap_or(&Value::Null);
    let raw = data.get("@type").and_then(Value::as_str) == Some("msg.dataRaw");
    Ok(TxMessage {
        hash: hash_of(field(v, "hash")?.as_str().unwrap_or_default())?,
        hash_norm: match v.get("hash_norm").and_then(Value::as_str) {
            Some(h) if !h.is_empty() => Some(hash_of(h)?),
            _ => None,
        },
        source: opt_address(v, "source")?,
        destination: opt_address(v, "destination")?,
        value: u128_or_zero(v, "value")?,
        fwd_fee: u128_or_zero(v, "fwd_fee")?,
        created_lt: u128_or_zero(v, "created_lt")
            .and_then(|n| u64::try_from(n).map_err(|_| "`created_lt` too large".to_string()))?,
        bounce: bool_or(v, "bounce", false),
        bounced: bool_or(v, "bounced", false),
        body: if raw { opt_boc(data, "body")? } else { None },
        init_state: if raw {
            opt_boc(data, "init_state")?
        } else {
            None
        },
    })
}

pub(crate) fn transaction(v: &Value) -> R<Transaction> {
    let id = tx_id(v.get("transaction_id"))?.ok_or("transaction without id")?;
    let in_msg = match v.get("in_msg") {
        Some(m) if m.is_object() => Some(tx_message(m)?),
        _ => None,
    };
    let out_msgs = match v.get("out_msgs") {
        Some(Value::Array(a)) => a.iter().map(tx_message).collect::<R<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok(Transaction {
        account: opt_address(v, "address")?,
        id,
        utime: v.get("utime").and_then(Value::as_u64).unwrap_or(0),
        fee: u128_or_zero(v, "fee")?,
        storage_fee: u128_or_zero(v, "storage_fee")?,
        other_fee: u128_or_zero(v, "other_fee")?,
        in_msg,
        out_msgs,
        data: v
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        aborted: v.get("aborted").and_then(Value::as_bool),
        compute_exit_code: v
            .get("compute_exit_code")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok()),
    })
}

pub(crate) fn transactions(v: &Value) -> R<Vec<Transaction>> {
    v.as_array()
        .ok_or("result is not an array")?
        .iter()
        .map(transaction)
        .collect()
}

pub(crate) fn ext_message_hash(v: &Value) -> R<TonHash> {
    hash_of(field(v, "hash")?.as_str().unwrap_or_default())
}

pub(crate) fn fee_estimate(v: &Value) -> R<FeeEstimate> {
    let f = field(v, "source_fees")?;
    Ok(FeeEstimate {
        in_fwd_fee: u128_or_zero(f, "in_fwd_fee")?,
        storage_fee: u128_or_zero(f, "storage_fee")?,
        gas_fee: u128_or_zero(f, "gas_fee")?,
        fwd_fee: u128_or_zero(f, "fwd_fee")?,
    })
}
