//! RA-TLS certificates. `certificate` cases stop at parsing (syntax, extensions, claims,
//! self-signature); `peer_certificate` cases run the whole peer verification under the drill policy
//! (tests/corpus.rs: roles worker and proxy, simulated evidence allowed for the image labelled
//! `drill-image`, the real TDX collateral, clock at `ISSUED + 3600`); `peer_certificate_strict` the
//! same without simulated evidence. Claims encodings alone go to `claims`.

use std::collections::BTreeMap;

use cocoon_attestation::provider::QuoteProvider;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_attestation::{Claims, Role};
use ed25519_dalek::SigningKey;
use rustls::pki_types::PrivatePkcs8KeyDer;

use crate::Gen;

use cocoon_drills::binding::{DRILL_IMAGE, ISSUED_AT as ISSUED};
const DAY: i64 = 86_400;
const EVIDENCE: &[u64] = &[1, 3, 6, 1, 4, 1, 59765, 1, 1];
const CLAIMS: &[u64] = &[1, 3, 6, 1, 4, 1, 59765, 1, 2];

fn octet_string(content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![0x04];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = (len as u32)
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn pkcs8(key: &SigningKey) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    out.extend_from_slice(key.as_bytes());
    out
}

struct Spec {
    signer: Option<SigningKey>,
    claims_ext: Option<Vec<u8>>,
    evidence_ext: Option<Vec<u8>>,
    extra_ext: Vec<(&'static [u64], Vec<u8>, bool)>,
    not_before: i64,
    not_after: i64,
}

impl Spec {
    fn new(claims: &Claims) -> Spec {
        Spec {
            signer: None,
            claims_ext: Some(octet_string(&claims.encode().expect("claims"))),
            evidence_ext: None,
            extra_ext: Vec::new(),
            not_before: ISSUED - 300,
            not_after: ISSUED + DAY,
        }
    }

    fn evidence(mut self, kind: u8, quote: &[u8]) -> Spec {
        let mut body = vec![kind];
        body.extend_from_slice(quote);
        self.evidence_ext = Some(octet_string(&body));
        self
    }

    /// Signs with `signer` (Ed25519), or with a fresh P-256 key when `None`.
    fn der(self, signer: Option<&SigningKey>) -> Vec<u8> {
        let key = match signer.or(self.signer.as_ref()) {
            Some(k) => rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(pkcs8(k)),
                &rcgen::PKCS_ED25519,
            )
            .expect("ed25519 key"),
            None => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p256 key"),
        };
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cocoon drill");
        params.not_before =
            time::OffsetDateTime::from_unix_timestamp(self.not_before).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(self.not_after).expect("time");
        let mut push = |oid: &[u64], content: Vec<u8>, critical: bool| {
            let mut e = rcgen::CustomExtension::from_oid_content(oid, content);
            e.set_criticality(critical);
            params.custom_extensions.push(e);
        };
        if let Some(c) = self.claims_ext {
            push(CLAIMS, c, true);
        }
        if let Some(e) = self.evidence_ext {
            push(EVIDENCE, e, true);
        }
        for (oid, content, critical) in self.extra_ext {
            push(oid, content, critical);
        }
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }
}

/// Claims vouching for the default validity of [`Spec::new`] (`ISSUED - 300 .. ISSUED + DAY`).
fn claims_for(role: Role, key: &SigningKey) -> Claims {
    Claims::new(role, key.verifying_key().to_bytes(), ISSUED as u64)
        .with_validity((ISSUED - 300) as u64, (ISSUED + DAY) as u64)
}

fn simulated(label: &str, claims: &Claims) -> Vec<u8> {
    SimulatedProvider::new(label)
        .quote(&claims.report_data().expect("report data"))
        .expect("simulated quote")
}

pub(crate) fn generate(g: &mut Gen) {
    let worker = g.binding.worker_key.clone();
    let stranger = g.binding.stranger_key.clone();
    let wc = claims_for(Role::Worker, &worker);
    let good = Spec::new(&wc)
        .evidence(2, &simulated(DRILL_IMAGE, &wc))
        .der(Some(&worker));
    let (c, p, s) = ("certificate", "peer_certificate", "peer_certificate_strict");
    let mc = "malformed_certificate";
    g.add(
        "certs/control_valid_simulated.der",
        &good,
        p,
        "accepted",
        "control: a well-formed worker certificate with simulated evidence for an allowed image",
    );
    g.add(
        "certs/garbage.der",
        b"\x30\x82\x01\x00this is not a certificate",
        c,
        mc,
        "a SEQUENCE header then text",
    );
    g.add("certs/empty.der", b"", c, mc, "zero bytes");
    g.add(
        "certs/truncated.der",
        &good[..good.len() / 2],
        c,
        mc,
        "cut in half",
    );
    let mut trailing = good.clone();
    trailing.push(0);
    g.add(
        "certs/trailing_byte.der",
        &trailing,
        c,
        mc,
        "a byte after the certificate",
    );
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        hex::encode(&good[..64])
    );
    g.add(
        "certs/pem_not_der.der",
        pem.as_bytes(),
        c,
        mc,
        "PEM text where DER is expected",
    );
    g.add(
        "certs/p256_key.der",
        &Spec::new(&wc).der(None),
        c,
        mc,
        "ECDSA P-256 key: RA-TLS keys are Ed25519",
    );
    let mut flipped_sig = good.clone();
    let last = flipped_sig.len() - 1;
    flipped_sig[last] ^= 0x01;
    g.add(
        "certs/flipped_signature.der",
        &flipped_sig,
        c,
        mc,
        "last signature byte flipped: the self-signature fails",
    );
    let mut flipped_tbs = good.clone();
    let at = flipped_tbs
        .windows(8)
        .position(|w| w == &wc.public_key[..8])
        .expect("key in tbs");
    flipped_tbs[at + 40] ^= 0x01;
    g.add(
        "certs/flipped_tbs_byte.der",
        &flipped_tbs,
        c,
        mc,
        "one byte of the signed part flipped",
    );
    let mut no_claims = Spec::new(&wc);
    no_claims.claims_ext = None;
    g.add(
        "certs/no_claims_extension.der",
        &no_claims.der(Some(&worker)),
        c,
        mc,
        "an Ed25519 certificate without the claims extension",
    );
    let mut unknown_critical = Spec::new(&wc);
    unknown_critical
        .extra_ext
        .push((&[1, 3, 6, 1, 4, 1, 59765, 1, 9], octet_string(b"?"), true));
    g.add(
        "certs/unknown_critical_extension.der",
        &unknown_critical.der(Some(&worker)),
        c,
        mc,
        "an unknown critical extension",
    );
    let mut raw_claims = Spec::new(&wc);
    raw_claims.claims_ext = Some(wc.encode().expect("claims"));
    g.add(
        "certs/claims_not_octet_string.der",
        &raw_claims.der(Some(&worker)),
        c,
        mc,
        "claims bytes without their OCTET STRING",
    );
    let mut garbage_claims = Spec::new(&wc);
    garbage_claims.claims_ext = Some(octet_string(b"\x01\x01\x00"));
    g.add(
        "certs/claims_truncated_in_cert.der",
        &garbage_claims.der(Some(&worker)),
        c,
        "malformed_claims",
        "claims that stop after the role header",
    );
    let mut v3 = wc.encode().expect("claims");
    v3[0] = 3;
    let mut v3_spec = Spec::new(&wc);
    v3_spec.claims_ext = Some(octet_string(&v3));
    g.add(
        "certs/claims_version_3.der",
        &v3_spec.der(Some(&worker)),
        c,
        "malformed_claims",
        "claims version 3 (unknown)",
    );
    let mut v1_with_validity = wc.encode().expect("claims");
    v1_with_validity[0] = 1;
    let mut v1_spec = Spec::new(&wc);
    v1_spec.claims_ext = Some(octet_string(&v1_with_validity));
    g.add(
        "certs/claims_version_1_with_validity.der",
        &v1_spec.der(Some(&worker)),
        c,
        "malformed_claims",
        "version-1 claims carrying the version-2 validity fields",
    );
    g.add(
        "certs/evidence_kind_9.der",
        &Spec::new(&wc).evidence(9, b"quote").der(Some(&worker)),
        c,
        mc,
        "evidence of unknown kind 9",
    );
    let mut empty_ev = Spec::new(&wc);
    empty_ev.evidence_ext = Some(octet_string(b""));
    g.add(
        "certs/evidence_empty.der",
        &empty_ev.der(Some(&worker)),
        c,
        mc,
        "an empty evidence extension",
    );
    // Verification failures.
    let sc = claims_for(Role::Worker, &stranger);
    g.add(
        "certs/claims_key_mismatch.der",
        &Spec::new(&sc)
            .evidence(2, &simulated(DRILL_IMAGE, &sc))
            .der(Some(&worker)),
        p,
        "claims_key_mismatch",
        "signed by the worker key, claims name another key",
    );
    let other = {
        let mut o = wc.clone();
        o.issued_at += 1;
        o
    };
    g.add(
        "certs/simulated_for_other_claims.der",
        &Spec::new(&wc)
            .evidence(2, &simulated(DRILL_IMAGE, &other))
            .der(Some(&worker)),
        p,
        "report_data_mismatch",
        "a simulated quote made for other claims",
    );
    let real = std::fs::read(cocoon_attestation::fixtures_dir().join("cocoon-tdx-quote.bin"))
        .expect("fixture quote");
    g.add(
        "certs/real_quote_replayed.der",
        &Spec::new(&wc).evidence(1, &real).der(Some(&worker)),
        p,
        "report_data_mismatch",
        "a real TDX quote copied into a new certificate: its report_data binds another key",
    );
    let mut expired = Spec::new(&wc).evidence(2, &simulated(DRILL_IMAGE, &wc));
    expired.not_before = ISSUED - 10 * DAY;
    expired.not_after = ISSUED - 9 * DAY;
    g.add(
        "certs/expired.der",
        &expired.der(Some(&worker)),
        p,
        "certificate_expired",
        "valid for a day, ten days ago",
    );
    let mut future = Spec::new(&wc).evidence(2, &simulated(DRILL_IMAGE, &wc));
    future.not_before = ISSUED + 10 * DAY;
    future.not_after = ISSUED + 11 * DAY;
    g.add(
        "certs/not_yet_valid.der",
        &future.der(Some(&worker)),
        p,
        "certificate_expired",
        "valid from ten days ahead",
    );
    let mut long = Spec::new(&wc).evidence(2, &simulated(DRILL_IMAGE, &wc));
    long.not_after = ISSUED + 30 * DAY;
    g.add(
        "certs/lifetime_30_days.der",
        &long.der(Some(&worker)),
        p,
        "lifetime_too_long",
        "30-day lifetime (policy: 24 h)",
    );
    let mut shorter = Spec::new(&wc).evidence(2, &simulated(DRILL_IMAGE, &wc));
    shorter.not_after = ISSUED + DAY / 2;
    g.add(
        "certs/quoted_validity_differs.der",
        &shorter.der(Some(&worker)),
        p,
        "claims_validity_mismatch",
        "the quoted claims vouch for other dates than the certificate's",
    );
    let v1 = Claims::new(
        Role::Worker,
        worker.verifying_key().to_bytes(),
        ISSUED as u64,
    );
    g.add(
        "certs/validity_not_quoted.der",
        &Spec::new(&v1)
            .evidence(2, &simulated(DRILL_IMAGE, &v1))
            .der(Some(&worker)),
        p,
        "claims_validity_mismatch",
        "version-1 claims: the quote vouches for no dates at all",
    );
    g.add(
        "certs/no_evidence_worker.der",
        &Spec::new(&wc).der(Some(&worker)),
        p,
        "missing_evidence",
        "a worker without attestation evidence",
    );
    let client = claims_for(Role::Client, &worker);
    g.add(
        "certs/client_role.der",
        &Spec::new(&client).der(Some(&worker)),
        p,
        "role_not_allowed",
        "a client certificate where workers and proxies are expected",
    );
    g.add(
        "certs/simulated_under_strict.der",
        &good,
        s,
        "simulated_refused",
        "simulated evidence under a policy that requires hardware",
    );
    g.add(
        "certs/image_not_allowed.der",
        &Spec::new(&wc)
            .evidence(2, &simulated("rogue-image", &wc))
            .der(Some(&worker)),
        p,
        "image_not_allowed",
        "simulated evidence for an image not in the allowlist",
    );
    g.add(
        "certs/simulated_quote_short.der",
        &Spec::new(&wc).evidence(2, b"short").der(Some(&worker)),
        p,
        "malformed_quote",
        "a simulated quote of 5 bytes",
    );
    // Claims encodings on their own.
    let bytes = {
        let mut c = wc.clone();
        c.extra = BTreeMap::from([("model".to_owned(), "m".to_owned())]);
        c.encode().expect("claims")
    };
    g.add(
        "certs/claims_truncated.bin",
        &bytes[..bytes.len() - 1],
        "claims",
        "malformed_claims",
        "last byte missing",
    );
    let mut role9 = bytes.clone();
    role9[4] = 9;
    g.add(
        "certs/claims_unknown_role.bin",
        &role9,
        "claims",
        "malformed_claims",
        "role code 9",
    );
    let mut bad_utf8 = bytes.clone();
    let last = bad_utf8.len() - 1;
    bad_utf8[last] = 0xff;
    g.add(
        "certs/claims_extra_not_utf8.bin",
        &bad_utf8,
        "claims",
        "malformed_claims",
        "extra value is not UTF-8",
    );
    let mut trailing_field = bytes.clone();
    trailing_field.extend([9, 0, 0]);
    g.add(
        "certs/claims_unknown_tag.bin",
        &trailing_field,
        "claims",
        "malformed_claims",
        "a field with unknown tag 9",
    );
}
