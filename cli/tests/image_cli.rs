//! `cocoon image replay|measure` on the cocoon-measure fixtures (insta), and their failures.

use std::process::{Command, Output};

fn fixture(path: &str) -> String {
    format!(
        "{}/../sdk/measure/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn cocoon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(args)
        .env_remove("COCOON_ROOT")
        .output()
        .expect("run cocoon")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn replay_explains_the_cos_log_and_matches_its_quote() {
    let o = cocoon(&[
        "image",
        "replay",
        "--event-log",
        &fixture("go-tdx-guest/ccel_data.dat"),
        "--ccel-table",
        &fixture("go-tdx-guest/ccel_table.dat"),
        "--quote",
        &fixture("go-tdx-guest/cos-113-tdx-quote.dat"),
        "--rtmr",
        "0,1,2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    insta::assert_snapshot!("replay_cos_text", stdout(&o));
}

#[test]
fn replay_of_a_dstack_response_as_json() {
    let o = cocoon(&[
        "image",
        "replay",
        "--event-log",
        &fixture("dstack/quote-report.json"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        v["registers"]
            .as_array()
            .expect("registers")
            .iter()
            .all(|r| r["matches"] == true)
    );
    insta::assert_snapshot!("replay_dstack_json", stdout(&o));
}

#[test]
fn a_reordered_log_exits_9_naming_the_event() {
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("dstack/quote-report.json")).expect("read"))
            .expect("json");
    let mut events: Vec<serde_json::Value> =
        serde_json::from_str(raw["event_log"].as_str().expect("event_log")).expect("events");
    events.swap(3, 4);
    let mut doc = raw.clone();
    doc["event_log"] = serde_json::Value::String(serde_json::to_string(&events).expect("ser"));
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("reordered.json");
    std::fs::write(&path, serde_json::to_vec(&doc).expect("ser")).expect("write");
    let o = cocoon(&[
        "image",
        "replay",
        "--event-log",
        path.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(9));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RTMR0 differs") && err.contains("event 4"),
        "{err}"
    );
}

#[test]
fn measure_from_an_event_log_gives_the_quotes_image_hash() {
    let bytes = std::fs::read(fixture("dstack/quote-report.json")).expect("read");
    let raw: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let quote = hex::decode(raw["quote"].as_str().expect("quote")).expect("hex");
    let (_, _, m, _) = cocoon_attestation::dcap::parse_quote(&quote).expect("parse");
    let cocoon_attestation::dcap::Measurements::Td(td) = m else {
        panic!("not TDX")
    };
    let o = cocoon(&[
        "image",
        "measure",
        "--event-log",
        &fixture("dstack/quote-report.json"),
        "--mrtd",
        &hex::encode(td.mrtd),
        "--memory",
        "64G",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["image_hash"], hex::encode(td.image_hash()));
    assert_eq!(v["sources"]["rtmr0"], "event log");
    let text = cocoon(&[
        "image",
        "measure",
        "--event-log",
        &fixture("dstack/quote-report.json"),
        "--memory",
        "64G",
    ]);
    insta::assert_snapshot!("measure_from_log_text", stdout(&text));
}

#[test]
fn measure_without_inputs_prints_unknown_registers_and_bad_sizes_are_usage_errors() {
    let o = cocoon(&["image", "measure", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["mrtd"].is_null() && v["image_hash"].is_null());
    assert_eq!(v["rtmr3"], "0".repeat(96));
    let o = cocoon(&["image", "measure", "--memory", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    let o = cocoon(&["image", "measure", "--firmware", &fixture("dstack/NOTICE")]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
