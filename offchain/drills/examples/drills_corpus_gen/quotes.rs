//! TDX quotes: mutations of the real fixture quote (`/work/shared/fixtures/attestation`). `quote`
//! cases stop at parsing; `quote_verify` cases run DCAP verification with the fixture's collateral at
//! a time inside its validity window (tests/corpus.rs); `simulated_quote` cases go to the
//! development quote parser.

use cocoon_attestation::provider::QuoteProvider;
use cocoon_attestation::provider::simulated::SimulatedProvider;

use crate::Gen;

// Offsets in a version 4 TDX quote: 48-byte header, 584-byte TD report, u32 auth data length, then
// the ECDSA signature, the attestation key and the certification data.
const REPORT: usize = 48;
const MRTD: usize = REPORT + 136;
const REPORT_DATA: usize = REPORT + 520;
const AUTH_LEN: usize = 632;
const SIGNATURE: usize = 636;
const ATTEST_KEY: usize = 700;
const CERT_DATA_LEN: usize = 766;
const QE_REPORT: usize = 770;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(cocoon_attestation::fixtures_dir().join(name)).expect("fixture quote")
}

fn with(q: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = q.to_vec();
    f(&mut out);
    out
}

pub(crate) fn generate(g: &mut Gen) {
    let q = fixture("cocoon-tdx-quote.bin");
    let (p, v) = ("quote", "quote_verify");
    let mq = "malformed_quote";
    let rej = "quote_rejected";
    g.add(
        "quotes/control_real_quote.bin",
        &q,
        v,
        "accepted",
        "control: the real TDX quote verifies with its collateral",
    );
    g.add("quotes/empty.bin", b"", p, mq, "zero bytes");
    g.add(
        "quotes/header_only_part.bin",
        &q[..20],
        p,
        mq,
        "cut inside the header",
    );
    g.add(
        "quotes/truncated_report.bin",
        &q[..600],
        p,
        mq,
        "cut inside the TD report",
    );
    g.add(
        "quotes/truncated_cert_chain.bin",
        &q[..q.len() - 100],
        p,
        mq,
        "last 100 bytes of the certificate chain missing",
    );
    g.add(
        "quotes/all_zeros.bin",
        &vec![0u8; q.len()],
        p,
        mq,
        "5,010 zero bytes",
    );
    g.add(
        "quotes/version_2.bin",
        &with(&q, |b| b[0..2].copy_from_slice(&2u16.to_le_bytes())),
        p,
        mq,
        "quote version 2",
    );
    g.add(
        "quotes/version_ffff.bin",
        &with(&q, |b| b[0..2].copy_from_slice(&0xffffu16.to_le_bytes())),
        p,
        mq,
        "quote version 65535",
    );
    g.add(
        "quotes/version_3_tdx.bin",
        &with(&q, |b| b[0..2].copy_from_slice(&3u16.to_le_bytes())),
        p,
        mq,
        "version 3 (SGX only) with a TDX TEE type",
    );
    g.add(
        "quotes/version_5_tdx.bin",
        &with(&q, |b| b[0..2].copy_from_slice(&5u16.to_le_bytes())),
        p,
        mq,
        "version 5 without the body descriptor",
    );
    g.add(
        "quotes/tee_type_42.bin",
        &with(&q, |b| b[4..8].copy_from_slice(&0x42u32.to_le_bytes())),
        p,
        mq,
        "unknown TEE type 0x42",
    );
    g.add(
        "quotes/auth_len_max.bin",
        &with(&q, |b| {
            b[AUTH_LEN..AUTH_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
        p,
        mq,
        "auth data length 4 GiB",
    );
    g.add(
        "quotes/cert_data_len_max.bin",
        &with(&q, |b| {
            b[CERT_DATA_LEN..CERT_DATA_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
        p,
        mq,
        "certification data length 4 GiB",
    );
    g.add(
        "quotes/flipped_signature.bin",
        &with(&q, |b| b[SIGNATURE + 5] ^= 0x01),
        v,
        rej,
        "a bit of the ECDSA signature flipped",
    );
    g.add(
        "quotes/flipped_attestation_key.bin",
        &with(&q, |b| b[ATTEST_KEY + 7] ^= 0x01),
        v,
        rej,
        "a bit of the attestation key flipped",
    );
    g.add(
        "quotes/flipped_report_data.bin",
        &with(&q, |b| b[REPORT_DATA + 3] ^= 0x80),
        v,
        rej,
        "a bit of report_data flipped (the key binding)",
    );
    g.add(
        "quotes/flipped_mrtd.bin",
        &with(&q, |b| b[MRTD] ^= 0x01),
        v,
        rej,
        "a bit of MRTD flipped (the image measurement)",
    );
    g.add(
        "quotes/flipped_qe_report.bin",
        &with(&q, |b| b[QE_REPORT + 10] ^= 0x01),
        v,
        rej,
        "a bit of the QE report flipped",
    );
    let begin = b"-----BEGIN CERTIFICATE-----\n";
    let leaf = q
        .windows(begin.len())
        .position(|w| w == begin)
        .expect("PEM in the quote")
        + begin.len()
        + 300;
    g.add(
        "quotes/flipped_pck_leaf.bin",
        &with(&q, |b| b[leaf] ^= 0x01),
        v,
        rej,
        "a base64 character inside the PCK certificate changed",
    );
    let root = q
        .windows(5)
        .rposition(|w| w == b"-----")
        .expect("PEM in the quote")
        - 80;
    g.add("quotes/flipped_root_copy.bin", &with(&q, |b| b[root] ^= 0x01), v, "accepted",
        "a character of the quote's own copy of the Intel root changed: the verifier trusts its pinned root, not the copy");
    g.add(
        "quotes/other_platform_quote.bin",
        &fixture("phala-tdx-quote.bin"),
        v,
        rej,
        "a real quote from another platform: this collateral does not cover it",
    );
    g.add(
        "quotes/sgx_quote.bin",
        &fixture("phala-sgx-quote.bin"),
        v,
        rej,
        "a real SGX quote checked against TDX collateral",
    );
    let sim = SimulatedProvider::new(cocoon_drills::binding::DRILL_IMAGE)
        .quote(&[7; 64])
        .expect("simulated");
    let s = "simulated_quote";
    g.add(
        "quotes/simulated_short.bin",
        &sim[..sim.len() - 1],
        s,
        mq,
        "simulated quote one byte short",
    );
    g.add(
        "quotes/simulated_bad_magic.bin",
        &with(&sim, |b| b[0] ^= 0xff),
        s,
        mq,
        "simulated quote with a bad magic",
    );
    g.add(
        "quotes/simulated_version_9.bin",
        &with(&sim, |b| b[33] = 9),
        s,
        mq,
        "simulated quote version 9",
    );
    g.add(
        "quotes/real_quote_as_simulated.bin",
        &q,
        s,
        mq,
        "a DCAP quote where a simulated one is expected",
    );
}
