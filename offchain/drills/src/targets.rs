//! Fuzz and corpus entry points: each takes untrusted bytes, runs the real SDK parser (and, where the
//! input carries a signature, the real verification against [`Binding`]), and returns `Ok(())` or a
//! [`Rejection`] naming the error class. None of them may panic, whatever the input.

use cocoon_attestation::AttestError;
use cocoon_contracts::CellCodec;
use cocoon_contracts::error::CodecError;
use cocoon_contracts::registry::{DecodeError, decode_by_opcode, decode_named};
use cocoon_contracts::statements::{SignedCharge, SignedPayout, VoucherError};
use cocoon_protocol::api::{Endpoint, RequestLimits, parse_request};
use cocoon_protocol::receipt::{ReceiptError, SignedReceipt};
use cocoon_protocol::voucher::{self, SignedVoucher};
use cocoon_ton::tonlib::cell::{ArcCell, TonCellError};

use crate::binding::Binding;

/// Why an input was refused: a stable class (what the corpus manifest expects) and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct Rejection {
    /// Stable error class, e.g. `boc`, `wrong_opcode`, `malformed_certificate`, `invalid_json`.
    pub class: &'static str,
    /// The parser's own message.
    pub message: String,
}

impl Rejection {
    /// A rejection of `class` with the error's message.
    pub fn new(class: &'static str, message: impl std::fmt::Display) -> Self {
        Rejection {
            class,
            message: message.to_string(),
        }
    }
}

/// Every target name [`run`] knows, except the per-type `message:<Type>` ones
/// (see [`cocoon_contracts::registry::TYPE_NAMES`]).
pub const TARGETS: &[&str] = &[
    "boc",
    "message:any",
    "signed_charge",
    "signed_payout",
    "certificate",
    "quote",
    "simulated_quote",
    "claims",
    "receipt_wire",
    "receipt_json",
    "protocol_charge",
    "protocol_payout",
    "openai_chat",
    "openai_completion",
];

/// Runs the entry point called `target` on `data`.
pub fn run(target: &str, data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    match target {
        "boc" => boc(data),
        "message:any" => contract_by_opcode(data),
        "signed_charge" => signed_charge(data, binding),
        "signed_payout" => signed_payout(data, binding),
        "certificate" => certificate(data),
        "quote" => quote(data),
        "simulated_quote" => simulated_quote(data),
        "claims" => claims(data),
        "receipt_wire" => receipt_wire(data, binding),
        "receipt_json" => receipt_json(data, binding),
        "protocol_charge" => protocol_charge(data, binding),
        "protocol_payout" => protocol_payout(data, binding),
        "openai_chat" => openai_request(Endpoint::ChatCompletions, data),
        "openai_completion" => openai_request(Endpoint::Completions, data),
        other => match other.strip_prefix("message:") {
            Some(name) => contract_message(name, data),
            None => Err(Rejection::new("unknown_target", other)),
        },
    }
}

/// The class of a contract codec error.
pub fn codec_class(e: &CodecError) -> &'static str {
    match e {
        CodecError::Cell(TonCellError::BagOfCellsDeserializationError(_)) => "boc",
        CodecError::Cell(_) => "cell",
        CodecError::WrongOpcode { .. } => "wrong_opcode",
        CodecError::InvalidValue { .. } => "invalid_value",
        CodecError::Trailing { .. } => "trailing",
        CodecError::CoinsOverflow(_) => "coins",
        CodecError::UnsupportedAddress(_) => "address",
        CodecError::Embedded(_) => "embedded",
        CodecError::Hex(_) => "hex",
        CodecError::Utf8 => "utf8",
    }
}

/// The class of an attestation error.
pub fn attest_class(e: &AttestError) -> &'static str {
    match e {
        AttestError::MalformedQuote(_) => "malformed_quote",
        AttestError::QuoteRejected(_) => "quote_rejected",
        AttestError::RootKeyMismatch { .. } => "root_key_mismatch",
        AttestError::TcbStatusRejected { .. } => "tcb_rejected",
        AttestError::UnsupportedTee(_) => "unsupported_tee",
        AttestError::Collateral(_) | AttestError::CollateralUnavailable { .. } => "collateral",
        AttestError::MalformedCertificate(_) => "malformed_certificate",
        AttestError::MalformedClaims(_) => "malformed_claims",
        AttestError::CertificateExpired { .. } => "certificate_expired",
        AttestError::CertificateLifetimeTooLong { .. } => "lifetime_too_long",
        AttestError::CertificateStale { .. } => "certificate_stale",
        AttestError::ClaimsValidityMismatch { .. } => "claims_validity_mismatch",
        AttestError::ClaimsKeyMismatch => "claims_key_mismatch",
        AttestError::ReportDataMismatch => "report_data_mismatch",
        AttestError::SimulatedRefused => "simulated_refused",
        AttestError::MissingEvidence(_) => "missing_evidence",
        AttestError::UnexpectedPeerKey(_) => "unexpected_peer_key",
        AttestError::RoleNotAllowed(_) => "role_not_allowed",
        AttestError::ImageNotAllowed { .. } => "image_not_allowed",
        AttestError::ImageRevoked { .. } => "image_revoked",
        _ => "attest_other",
    }
}

fn codec(e: CodecError) -> Rejection {
    Rejection::new(codec_class(&e), e)
}

fn attest(e: AttestError) -> Rejection {
    Rejection::new(attest_class(&e), e)
}

/// The root cell, read the way the SDK reads BoCs (`cocoon_ton::boc::boc_to_cell`).
fn parse_root(data: &[u8]) -> Result<ArcCell, Rejection> {
    cocoon_ton::boc::boc_to_cell(data).map_err(|e| Rejection::new("boc", e))
}

/// A single-root bag of cells (`cocoon_ton::boc::boc_to_cell`).
pub fn boc(data: &[u8]) -> Result<(), Rejection> {
    cocoon_ton::boc::boc_to_cell(data)
        .map(|_| ())
        .map_err(|e| Rejection::new("boc", e))
}

/// A BoC decoded as the schema type `name` (`cocoon_contracts::registry::decode_named`).
pub fn contract_message(name: &str, data: &[u8]) -> Result<(), Rejection> {
    let cell = parse_root(data)?;
    decode_named(name, &cell).map(|_| ()).map_err(decode_error)
}

/// A BoC decoded by its leading opcode (`cocoon_contracts::registry::decode_by_opcode`).
pub fn contract_by_opcode(data: &[u8]) -> Result<(), Rejection> {
    let cell = parse_root(data)?;
    decode_by_opcode(&cell).map(|_| ()).map_err(decode_error)
}

fn decode_error(e: DecodeError) -> Rejection {
    match e {
        DecodeError::Codec(c) => codec(c),
        DecodeError::UnknownOpcode(_) => Rejection::new("unknown_opcode", e),
        DecodeError::UnknownType(_) => Rejection::new("unknown_type", e),
    }
}

fn voucher_error(e: VoucherError) -> Rejection {
    use cocoon_contracts::statements::SignatureError;
    match e {
        VoucherError::WrongEscrow => Rejection::new("wrong_escrow", e),
        VoucherError::WrongVault => Rejection::new("wrong_vault", e),
        VoucherError::Signature(SignatureError::Codec(c)) => codec(c),
        VoucherError::Signature(SignatureError::BadKey) => Rejection::new("bad_key", e),
        VoucherError::Signature(SignatureError::BadSignature) => Rejection::new("bad_signature", e),
    }
}

/// A signed charge voucher (BoC of `Signed ChargeVoucher`) checked for the drill escrow and proxy key.
pub fn signed_charge(data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    let signed = SignedCharge::from_boc(data).map_err(codec)?;
    signed
        .verify_for(&binding.proxy_public(), &binding.escrow)
        .map_err(voucher_error)
}

/// A signed payout voucher (BoC of `Signed PayoutVoucher`) checked for the drill vault and proxy key.
pub fn signed_payout(data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    let signed = SignedPayout::from_boc(data).map_err(codec)?;
    signed
        .verify_for(&binding.proxy_public(), &binding.vault)
        .map_err(voucher_error)
}

/// An RA-TLS certificate, DER (`cocoon_attestation::cert::parse_certificate`: syntax, extensions,
/// claims, self-signature; the evidence is judged by the peer verifier, not here).
pub fn certificate(data: &[u8]) -> Result<(), Rejection> {
    cocoon_attestation::cert::parse_certificate(data)
        .map(|_| ())
        .map_err(attest)
}

/// A DCAP quote, parsed only (`cocoon_attestation::dcap::parse_quote`).
pub fn quote(data: &[u8]) -> Result<(), Rejection> {
    cocoon_attestation::dcap::parse_quote(data)
        .map(|_| ())
        .map_err(attest)
}

/// A simulated (development) quote.
pub fn simulated_quote(data: &[u8]) -> Result<(), Rejection> {
    cocoon_attestation::provider::simulated::SimulatedQuote::parse(data)
        .map(|_| ())
        .map_err(attest)
}

/// The claims encoding carried in RA-TLS certificates.
pub fn claims(data: &[u8]) -> Result<(), Rejection> {
    cocoon_attestation::Claims::decode(data)
        .map(|_| ())
        .map_err(attest)
}

fn receipt_error(e: ReceiptError) -> Rejection {
    let class = match e {
        ReceiptError::Malformed(_) => "malformed",
        ReceiptError::BadSignature => "bad_signature",
        ReceiptError::WrongWorker => "wrong_worker",
        ReceiptError::RequestMismatch => "request_mismatch",
        ReceiptError::ResponseMismatch => "response_mismatch",
    };
    Rejection::new(class, e)
}

fn check_receipt(r: &SignedReceipt, binding: &Binding) -> Result<(), Rejection> {
    r.verify_for(
        &binding.worker_public(),
        &crate::binding::REQUEST_SHA256,
        &crate::binding::RESPONSE_SHA256,
    )
    .map_err(receipt_error)
}

/// A receipt as the `x-cocoon-receipt` trailer carries it, verified as a gateway does.
pub fn receipt_wire(data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    let r = SignedReceipt::from_wire(data).map_err(receipt_error)?;
    check_receipt(&r, binding)
}

/// A receipt in its JSON form (the gateway's proof bundle), verified as a gateway does.
pub fn receipt_json(data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    let r: SignedReceipt = serde_json::from_slice(data).map_err(|e| Rejection::new("json", e))?;
    check_receipt(&r, binding)
}

fn protocol_voucher_error(e: voucher::VoucherError) -> Rejection {
    match e {
        voucher::VoucherError::BadSignature => Rejection::new("bad_signature", e),
        voucher::VoucherError::BadKey => Rejection::new("bad_key", e),
    }
}

/// An off-chain charge voucher (JSON, as the proxy persists it), verified under the drill proxy key.
pub fn protocol_charge(data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    let v: SignedVoucher<voucher::ChargeVoucher> =
        serde_json::from_slice(data).map_err(|e| Rejection::new("json", e))?;
    v.verify(&binding.proxy_public())
        .map_err(protocol_voucher_error)
}

/// An off-chain payout voucher (JSON), verified under the drill proxy key.
pub fn protocol_payout(data: &[u8], binding: &Binding) -> Result<(), Rejection> {
    let v: SignedVoucher<voucher::PayoutVoucher> =
        serde_json::from_slice(data).map_err(|e| Rejection::new("json", e))?;
    v.verify(&binding.proxy_public())
        .map_err(protocol_voucher_error)
}

/// An OpenAI request body as the gateway and the proxy check it (`cocoon_protocol::api`).
pub fn openai_request(endpoint: Endpoint, data: &[u8]) -> Result<(), Rejection> {
    parse_request(endpoint, data, &RequestLimits::default())
        .map(|_| ())
        .map_err(|e| Rejection::new(e.code.as_str(), e))
}
