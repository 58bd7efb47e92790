//! Worker receipts: the `x-cocoon-receipt` trailer form (`receipt_wire`) and the JSON proof-bundle
//! form (`receipt_json`), both verified as the gateway does against the drill worker key and the
//! drill request and response hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cocoon_drills::binding::{REQUEST_SHA256, RESPONSE_SHA256};
use cocoon_protocol::Usage;
use cocoon_protocol::receipt::Receipt;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::Gen;

fn receipt(worker: &SigningKey) -> Receipt {
    Receipt {
        request_sha256: REQUEST_SHA256,
        response_sha256: RESPONSE_SHA256,
        model: "drill-model".into(),
        model_hash: [3; 32],
        usage: Usage {
            prompt: 5,
            cached: 0,
            completion: 7,
            reasoning: 0,
        },
        coefficient: 1000,
        price_per_token: 1000,
        cost_nano: 12_000,
        timestamp: 1_772_323_200,
        image_hash: [4; 32],
        worker_key: worker.verifying_key().to_bytes(),
    }
}

fn wire(bytes: &[u8]) -> Vec<u8> {
    URL_SAFE_NO_PAD.encode(bytes).into_bytes()
}

pub(crate) fn generate(g: &mut Gen) {
    let worker = g.binding.worker_key.clone();
    let stranger = g.binding.stranger_key.clone();
    let good = receipt(&worker).sign(&worker);
    let mut raw = good.receipt.encode();
    raw.extend_from_slice(&good.signature);
    let w = "receipt_wire";
    g.add(
        "receipts/control.b64",
        good.to_wire().as_bytes(),
        w,
        "accepted",
        "control: a receipt signed by the drill worker for the drill request",
    );
    g.add("receipts/empty.b64", b"", w, "malformed", "zero bytes");
    g.add(
        "receipts/not_base64url.b64",
        b"@@not+base64/==",
        w,
        "malformed",
        "standard-base64 and junk characters",
    );
    g.add(
        "receipts/padded_base64.b64",
        format!("{}=", good.to_wire()).as_bytes(),
        w,
        "malformed",
        "padding on unpadded base64url",
    );
    g.add(
        "receipts/too_short.b64",
        &wire(&raw[..40]),
        w,
        "malformed",
        "40 bytes: shorter than a signature",
    );
    let mut tag = raw.clone();
    tag[15] = b'9';
    g.add(
        "receipts/wrong_tag.b64",
        &wire(&tag),
        w,
        "malformed",
        "format tag cocoon-receipt-9",
    );
    let mut cut = good.receipt.encode();
    cut.truncate(cut.len() - 10);
    cut.extend_from_slice(&good.signature);
    g.add(
        "receipts/truncated_body.b64",
        &wire(&cut),
        w,
        "malformed",
        "last 10 bytes of the body missing",
    );
    let mut extra = good.receipt.encode();
    extra.push(0);
    extra.extend_from_slice(&good.signature);
    g.add(
        "receipts/trailing_byte.b64",
        &wire(&extra),
        w,
        "malformed",
        "a byte between the body and the signature",
    );
    let mut long = raw.clone();
    let len_at = 16 + 64;
    long[len_at..len_at + 2].copy_from_slice(&300u16.to_be_bytes());
    g.add(
        "receipts/model_len_300.b64",
        &wire(&long),
        w,
        "malformed",
        "model name length 300 (at most 256)",
    );
    let mut utf = raw.clone();
    utf[len_at + 2] = 0xff;
    g.add(
        "receipts/model_not_utf8.b64",
        &wire(&utf),
        w,
        "malformed",
        "model name is not UTF-8",
    );
    let mut sig = raw.clone();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    g.add(
        "receipts/flipped_signature.b64",
        &wire(&sig),
        w,
        "bad_signature",
        "one signature bit flipped",
    );
    let mut cheaper = good.clone();
    cheaper.receipt.cost_nano = 1;
    g.add(
        "receipts/tampered_cost.b64",
        cheaper.to_wire().as_bytes(),
        w,
        "bad_signature",
        "cost changed after signing",
    );
    let impostor = receipt(&stranger).sign(&stranger);
    g.add(
        "receipts/other_worker.b64",
        impostor.to_wire().as_bytes(),
        w,
        "wrong_worker",
        "validly signed by a worker that is not the attested one",
    );
    let not_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| VerifyingKey::from_bytes(k).is_err())
        .expect("some byte pattern is not a curve point");
    let mut bad_key = good.clone();
    bad_key.receipt.worker_key = not_point;
    g.add(
        "receipts/worker_key_not_a_point.b64",
        bad_key.to_wire().as_bytes(),
        w,
        "malformed",
        "worker key is not an Ed25519 point",
    );
    let mut req = receipt(&worker);
    req.request_sha256 = [0xee; 32];
    g.add(
        "receipts/other_request.b64",
        req.sign(&worker).to_wire().as_bytes(),
        w,
        "request_mismatch",
        "a genuine receipt for another request",
    );
    let mut resp = receipt(&worker);
    resp.response_sha256 = [0xee; 32];
    g.add(
        "receipts/other_response.b64",
        resp.sign(&worker).to_wire().as_bytes(),
        w,
        "response_mismatch",
        "a genuine receipt for another response",
    );
    // A model name of 256 bytes whose last byte starts a two-byte character, signed as is: what an
    // encoder that cuts names by bytes produced before receipt.rs cut at character boundaries.
    let mut cut = receipt(&worker);
    cut.model = format!("a{}b", "é".repeat(127));
    let mut bytes = cut.encode();
    let model_end = 16 + 64 + 2 + 256;
    bytes[model_end - 1] = 0xc3;
    let signature = ed25519_dalek::Signer::sign(&worker, &bytes).to_bytes();
    bytes.extend_from_slice(&signature);
    g.add(
        "receipts/model_cut_mid_character.b64",
        &wire(&bytes),
        w,
        "malformed",
        "a signed receipt whose model name ends inside a UTF-8 character",
    );
    let j = "receipt_json";
    g.add(
        "receipts/control.json",
        &serde_json::to_vec_pretty(&good).expect("json"),
        j,
        "accepted",
        "control: the JSON form of the control receipt",
    );
    g.add(
        "receipts/not_json.json",
        b"{\"receipt\":{",
        j,
        "json",
        "truncated JSON",
    );
    let mut odd = serde_json::to_value(&good).expect("json");
    odd["signature"] = serde_json::json!("abc");
    g.add(
        "receipts/signature_odd_hex.json",
        &serde_json::to_vec(&odd).expect("json"),
        j,
        "json",
        "signature of 3 hex digits",
    );
    let mut usage = serde_json::to_value(&good).expect("json");
    usage["receipt"]["usage"]["completion"] = serde_json::json!(-1);
    g.add(
        "receipts/negative_usage.json",
        &serde_json::to_vec(&usage).expect("json"),
        j,
        "json",
        "negative completion tokens",
    );
    g.add(
        "receipts/tampered_cost.json",
        &serde_json::to_vec(&cheaper).expect("json"),
        j,
        "bad_signature",
        "cost changed after signing (JSON)",
    );
}
