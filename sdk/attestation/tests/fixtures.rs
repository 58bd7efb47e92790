//! DCAP verification of the real quotes in the shared fixtures, at fixed times (fixtures README).

use cocoon_attestation::collateral::load_collateral_file;
use cocoon_attestation::dcap::{Measurements, QuoteCollateralV3, TcbStatus, verify_quote};
use cocoon_attestation::{AttestError, TcbPolicy, TeeKind, fixtures_dir};
use sha2::{Digest, Sha256};
use time::macros::datetime;

fn quote(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture quote (set COCOON_FIXTURES_DIR?)")
}

fn collateral(name: &str) -> QuoteCollateralV3 {
    load_collateral_file(&fixtures_dir().join(name)).expect("fixture collateral")
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).expect("hex").try_into().expect("length")
}

// Window of cocoon-tdx-quote.collateral.json, per the fixtures README.
const COCOON_FROM: i64 = datetime!(2026-02-18 10:58:51 UTC).unix_timestamp();
const COCOON_UNTIL: i64 = datetime!(2026-03-20 10:58:51 UTC).unix_timestamp();
const COCOON_AT: i64 = datetime!(2026-03-01 00:00 UTC).unix_timestamp();

fn at(t: i64) -> u64 {
    u64::try_from(t).expect("after 1970")
}

#[test]
fn cocoon_quote_verifies_with_the_readme_measurements() {
    let report = verify_quote(
        &quote("cocoon-tdx-quote.bin"),
        &collateral("cocoon-tdx-quote.collateral.json"),
        at(COCOON_AT),
    )
    .expect("verifies inside its window");
    assert_eq!(report.tee, TeeKind::Tdx);
    assert_eq!(report.tee_type, 0x81);
    assert_eq!(report.quote_version, 4);
    assert_eq!(hex::encode(report.fmspc), "90c06f000000");
    assert_eq!(report.tcb_status, TcbStatus::UpToDate);
    assert!(report.advisories.is_empty());
    let mrtd: [u8; 48] = unhex(
        "7357a10d2e2724dffe68813e3cc4cfcde6814d749f2fb62e3953e54f6e0b50a219786afe2cd478f684b52c61837e1114",
    );
    let rtmr: [[u8; 48]; 4] = [
        unhex(
            "251a7f3cfc68006349444307c686485986beea461740437dae618e22a7aaac4ec0233ae0190eb1ce92ab8e9966563acc",
        ),
        unhex(
            "7a6eb32a914226f429922564bb0ae0a7c7c413ba5a8ef055b481f6328108da335013b79c391dcc237f7e563674ce7787",
        ),
        unhex(
            "aaccda38cf2bdee9965664d6793c9eaa93349564a052f36db45da5db656abe7b909d92cad5a29287f2bb78761771fec4",
        ),
        [0u8; 48],
    ];
    let Measurements::Td(m) = &report.measurements else {
        panic!("TDX quote without TD measurements")
    };
    assert_eq!(m.mrtd, mrtd);
    assert_eq!(m.rtmr, rtmr);
    let rd: [u8; 64] = unhex(
        "d21efaa8d7de2b0f5601df8b24cfbca690c5231e677d0fe35954c8be00614bd27f467a5624a6667aa74506cb14c271a48894c3ef11d2d26b269a2926fc74f87b",
    );
    assert_eq!(report.report_data, rd);
    let mut h = Sha256::new();
    h.update(mrtd);
    rtmr.iter().for_each(|r| h.update(r));
    let expected: [u8; 32] = h.finalize().into();
    assert_eq!(report.image_hash, Some(expected));
    assert!(
        TcbPolicy::strict()
            .check(report.tcb_status, &report.advisories)
            .is_ok()
    );
}

#[test]
fn cocoon_quote_window_edges() {
    let (q, c) = (
        quote("cocoon-tdx-quote.bin"),
        collateral("cocoon-tdx-quote.collateral.json"),
    );
    assert!(
        verify_quote(&q, &c, at(COCOON_FROM)).is_ok(),
        "first second of the window"
    );
    // The README's end is the TCB info's nextUpdate; the QE identity and a CRL lapse about 17
    // minutes earlier, so the usable window ends a little before it.
    assert!(
        verify_quote(&q, &c, at(COCOON_UNTIL - 3600)).is_ok(),
        "last hour of the window"
    );
    for t in [
        COCOON_FROM - 1,
        COCOON_UNTIL,
        COCOON_FROM - 86_400,
        COCOON_UNTIL + 86_400,
    ] {
        let err = verify_quote(&q, &c, at(t)).expect_err("outside the collateral window");
        assert!(
            matches!(err, AttestError::QuoteRejected(_)),
            "at {t}: {err}"
        );
    }
}

#[test]
fn cocoon_quote_with_the_wrong_collateral_is_rejected() {
    let err = verify_quote(
        &quote("cocoon-tdx-quote.bin"),
        &collateral("phala-tdx-quote.collateral.json"),
        at(COCOON_AT),
    )
    .expect_err("PCK certificate newer than that collateral");
    assert!(matches!(err, AttestError::QuoteRejected(_)), "{err}");
}

#[test]
fn tampered_quotes_are_rejected() {
    let (q, c) = (
        quote("cocoon-tdx-quote.bin"),
        collateral("cocoon-tdx-quote.collateral.json"),
    );
    // Header (48) + TD report: report_data is its last 64 bytes (offset 520), MRTD at offset 136.
    for offset in [48 + 520, 48 + 520 + 63, 48 + 136, 48 + 400] {
        let mut t = q.clone();
        t[offset] ^= 0x01;
        let err = verify_quote(&t, &c, at(COCOON_AT)).expect_err("tampered");
        assert!(
            matches!(err, AttestError::QuoteRejected(_)),
            "byte {offset}: {err}"
        );
    }
    let err = verify_quote(&q[..600], &c, at(COCOON_AT)).expect_err("truncated");
    assert!(matches!(err, AttestError::MalformedQuote(_)), "{err}");
}

#[test]
fn phala_tdx_quote_verifies_in_its_window_and_not_after() {
    let (q, c) = (
        quote("phala-tdx-quote.bin"),
        collateral("phala-tdx-quote.collateral.json"),
    );
    let report = verify_quote(&q, &c, at(datetime!(2025-07-01 00:00 UTC).unix_timestamp()))
        .expect("in window");
    assert_eq!(report.tcb_status, TcbStatus::UpToDate);
    let Measurements::Td(m) = &report.measurements else {
        panic!("not TD")
    };
    assert_eq!(
        hex::encode(m.mrtd),
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    let err = verify_quote(&q, &c, at(datetime!(2026-11-22 00:00 UTC).unix_timestamp()))
        .expect_err("CRL expired");
    assert!(matches!(err, AttestError::QuoteRejected(_)), "{err}");
}

#[test]
fn phala_sgx_quote_reports_status_and_advisories_and_policy_judges_them() {
    let (q, c) = (
        quote("phala-sgx-quote.bin"),
        collateral("phala-sgx-quote.collateral.json"),
    );
    let report = verify_quote(&q, &c, at(datetime!(2025-07-04 00:00 UTC).unix_timestamp()))
        .expect("verifies");
    assert_eq!(report.tee, TeeKind::Sgx);
    assert_eq!(
        report.tcb_status,
        TcbStatus::ConfigurationAndSWHardeningNeeded
    );
    let mut adv = report.advisories.clone();
    adv.sort();
    assert_eq!(adv, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert_eq!(
        report.image_hash, None,
        "image hashes are defined for TDX only"
    );
    let err = TcbPolicy::strict()
        .check(report.tcb_status, &report.advisories)
        .expect_err("strict");
    assert!(
        matches!(err, AttestError::TcbStatusRejected { .. }),
        "{err}"
    );
    let lenient = TcbPolicy::strict().allow(TcbStatus::ConfigurationAndSWHardeningNeeded);
    assert!(lenient.check(report.tcb_status, &report.advisories).is_ok());
    assert!(
        lenient
            .reject_advisory("INTEL-SA-00615")
            .check(report.tcb_status, &report.advisories)
            .is_err()
    );
}
