//! HttpTonClient against a scripted in-test HTTP server: toncenter's response shapes, its errors,
//! retries with backoff on 429/5xx, no retry on final answers, API key header, timeouts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cocoon_ton::{
    AccountState, ClientError, HttpTonClient, StackEntry, TonClient, TonClientConfig, TxId,
    parse_address,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ADDR: &str = "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3";
// An empty cell and a cell with 32 bits, as standard base64 BoCs.
const EMPTY_CELL: &str = "te6cckEBAQEAAgAAAEysuc0=";
const HASH_B64: &str = "uZj7WCM8jssJUYrp/9BYzTlfRECfx/CQJKLf2uJFlsg=";

/// One scripted answer: status, body, and whether to hang instead of answering.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    hang: bool,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: body.to_string(),
        hang: false,
    }
}

fn ok(result: Value) -> Reply {
    reply(
        200,
        json!({"ok": true, "result": result, "@extra": "1.2.3"}),
    )
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, Value)>,
}

/// Serves the scripted replies in order (the last one repeats), recording headers and bodies.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen2);
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_string(), body.to_string());
                        }
                    }
                };
                let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                seen.lock().expect("lock").requests.push((head, json));
                let r = {
                    let mut q = queue.lock().expect("lock");
                    if q.len() > 1 {
                        q.pop_front()
                    } else {
                        q.front().cloned()
                    }
                };
                let Some(r) = r else { return };
                if r.hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let resp = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    r.status,
                    r.body.len(),
                    r.body
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

fn client(url: &str) -> HttpTonClient {
    let mut cfg = TonClientConfig::new(url).with_api_key("secret-key");
    cfg.backoff_initial = Duration::from_millis(5);
    cfg.backoff_max = Duration::from_millis(20);
    cfg.max_retries = 3;
    cfg.timeout = Duration::from_millis(500);
    HttpTonClient::new(cfg).expect("client")
}

fn addr() -> cocoon_ton::TonAddress {
    parse_address(ADDR).expect("address")
}

#[tokio::test]
async fn retries_429_and_5xx_then_succeeds_with_api_key() {
    let (url, seen) = serve(vec![
        reply(
            429,
            json!({"ok": false, "error": "Ratelimit exceed", "code": 429}),
        ),
        Reply {
            status: 502,
            body: "<html>bad gateway</html>".into(),
            hang: false,
        },
        ok(json!("123456789")),
    ])
    .await;
    let balance = client(&url)
        .get_address_balance(&addr())
        .await
        .expect("balance");
    assert_eq!(balance, 123_456_789);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.requests.len(), 3);
    for (head, body) in &seen.requests {
        assert!(head.starts_with("POST /jsonRPC "), "{head}");
        assert!(head.to_ascii_lowercase().contains("x-api-key: secret-key"));
        assert_eq!(body["method"], "getAddressBalance");
        assert_eq!(body["params"]["address"], ADDR);
    }
}

#[tokio::test]
async fn gives_up_after_max_retries_naming_method_and_status() {
    let (url, seen) = serve(vec![reply(
        503,
        json!({"ok": false, "error": "LITE_SERVER_NETWORK timeout", "code": 503}),
    )])
    .await;
    let err = client(&url)
        .get_masterchain_info()
        .await
        .expect_err("must fail");
    match &err {
        ClientError::Api { method, code, .. } => {
            assert_eq!(method, "getMasterchainInfo");
            assert_eq!(*code, 503);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("LITE_SERVER_NETWORK"));
    assert_eq!(
        seen.lock().expect("lock").requests.len(),
        4,
        "1 + 3 retries"
    );
}

#[tokio::test]
async fn refused_external_is_final_not_retried() {
    let (url, seen) = serve(vec![reply(
        500,
        json!({"ok": false, "code": 500, "error": "LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\nCannot run message on account: inbound external message rejected by transaction 0:83: exitcode=33, steps=32, gas_used=0"}),
    )])
    .await;
    let err = client(&url)
        .send_boc(&[1, 2, 3])
        .await
        .expect_err("refused");
    assert!(err.is_external_rejected(), "{err}");
    assert_eq!(err.method(), "sendBoc");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.requests.len(), 1);
    assert_eq!(seen.requests[0].1["params"]["boc"], "AQID");
}

#[tokio::test]
async fn client_errors_and_garbage_are_typed() {
    let (url, seen) = serve(vec![reply(
        416,
        json!({"ok": false, "error": "Incorrect address", "code": 416}),
    )])
    .await;
    let err = client(&url)
        .get_address_information(&addr())
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, ClientError::Api { code: 416, .. }),
        "{err:?}"
    );
    assert_eq!(seen.lock().expect("lock").requests.len(), 1, "4xx is final");

    let (url, _) = serve(vec![Reply {
        status: 200,
        body: "not json".into(),
        hang: false,
    }])
    .await;
    let err = client(&url)
        .get_masterchain_info()
        .await
        .expect_err("garbage");
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");

    let (url, _) = serve(vec![ok(json!({"last": {"seqno": "x"}}))]).await;
    let err = client(&url)
        .get_masterchain_info()
        .await
        .expect_err("bad shape");
    assert!(
        err.to_string()
            .starts_with("getMasterchainInfo: cannot decode"),
        "{err}"
    );
}

#[tokio::test]
async fn timeouts_and_refused_connections() {
    let (url, seen) = serve(vec![Reply {
        status: 200,
        body: String::new(),
        hang: true,
    }])
    .await;
    let err = client(&url).get_masterchain_info().await.expect_err("hang");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_eq!(seen.lock().expect("lock").requests.len(), 4);

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let err = client(&format!("http://127.0.0.1:{port}"))
        .get_masterchain_info()
        .await
        .expect_err("refused");
    assert!(matches!(err, ClientError::Network { .. }), "{err:?}");
}

#[tokio::test]
async fn decodes_recorded_toncenter_shapes() {
    let tx_id =
        json!({"@type": "internal.transactionId", "lt": "47000000000003", "hash": HASH_B64});
    let (url, seen) = serve(vec![
        ok(json!({
            "@type": "raw.fullAccountState", "balance": "5000000000", "extra_currencies": [],
            "code": "", "data": "", "last_transaction_id": tx_id, "frozen_hash": "",
            "block_id": {"@type": "ton.blockIdExt", "workchain": -1, "shard": "-9223372036854775808", "seqno": 10, "root_hash": HASH_B64, "file_hash": HASH_B64},
            "sync_utime": 1700000000, "state": "uninitialized"
        })),
        ok(json!({
            "wallet": true, "balance": "4000000000", "account_state": "active",
            "wallet_type": "wallet v4 r2", "seqno": 7, "wallet_id": 698983191,
            "last_transaction_id": tx_id
        })),
        ok(json!({
            "@type": "smc.runResult", "gas_used": 512, "exit_code": 0,
            "stack": [["num", "0x7"], ["num", "-0x1"], ["cell", {"bytes": EMPTY_CELL, "object": {}}],
                      ["tuple", {"@type": "tvm.tuple", "elements": [
                          {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal", "number": "42"}}]}]]
        })),
        ok(json!([{
            "@type": "raw.transaction", "utime": 1700000001, "data": "",
            "address": {"@type": "accountAddress", "account_address": ADDR},
            "transaction_id": tx_id, "fee": "2755614", "storage_fee": "14", "other_fee": "2755600",
            "in_msg": {"@type": "raw.message", "hash": HASH_B64, "source": "", "destination": ADDR,
                "value": "0", "fwd_fee": "0", "ihr_fee": "0", "created_lt": "0", "body_hash": HASH_B64,
                "msg_data": {"@type": "msg.dataRaw", "body": EMPTY_CELL, "init_state": ""}, "message": ""},
            "out_msgs": [{"@type": "raw.message", "hash": HASH_B64, "source": ADDR, "destination": ADDR,
                "value": "1500000000", "fwd_fee": "266669", "ihr_fee": "0", "created_lt": "47000000000004",
                "body_hash": HASH_B64, "msg_data": {"@type": "msg.dataText", "text": "aGk="}, "message": "hi"}]
        }])),
    ])
    .await;
    let c = client(&url);
    let info = c.get_address_information(&addr()).await.expect("info");
    assert_eq!(info.balance, 5_000_000_000);
    assert_eq!(info.state, AccountState::Uninitialized);
    assert!(info.code.is_none());
    assert_eq!(info.sync_utime, 1_700_000_000);
    let id = info.last_transaction_id.expect("tx id");
    assert_eq!(id.lt, 47_000_000_000_003);

    let w = c.get_wallet_information(&addr()).await.expect("wallet");
    assert!(w.wallet);
    assert_eq!(w.seqno, Some(7));
    assert_eq!(w.wallet_id, Some(698_983_191));

    let r = c
        .run_get_method(
            &addr(),
            "get_stuff",
            &[
                StackEntry::num(-5),
                StackEntry::address(&addr()).expect("slice"),
            ],
        )
        .await
        .expect("get method");
    assert!(r.success());
    assert_eq!(r.stack[0].as_u128(), Some(7));
    assert_eq!(r.stack[1].as_i128(), Some(-1));
    assert!(r.stack[2].as_cell().is_some());
    assert_eq!(r.stack[3].as_tuple().map(|t| t[0].as_u64()), Some(Some(42)));

    let txs = c
        .get_transactions(
            &addr(),
            5,
            Some(&TxId {
                lt: id.lt,
                hash: id.hash.clone(),
            }),
        )
        .await
        .expect("txs");
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.fee, 2_755_614);
    let in_msg = tx.in_msg.as_ref().expect("in");
    assert!(in_msg.source.is_none());
    assert!(in_msg.body.is_some());
    assert!(tx.has_in_msg_hash(&in_msg.hash));
    assert_eq!(tx.out_msgs[0].value, 1_500_000_000);
    assert!(
        tx.out_msgs[0].body.is_none(),
        "text bodies are not raw cells"
    );

    let seen = seen.lock().expect("lock");
    let get = &seen.requests[2].1;
    assert_eq!(get["params"]["method"], "get_stuff");
    assert_eq!(get["params"]["stack"][0], json!(["num", "-0x5"]));
    assert_eq!(get["params"]["stack"][1][0], "tvm.Slice");
    let txq = &seen.requests[3].1["params"];
    assert_eq!(txq["lt"], "47000000000003");
    assert_eq!(txq["hash"], HASH_B64);
    assert_eq!(txq["limit"], 5);
}
