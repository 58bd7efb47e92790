//! Off-chain signed statements: charge and payout vouchers (signed by a proxy), serving statements
//! (signed by a worker), fault reports (signed by a registered proxy), and the slashing evidence built
//! from them. Every signature is Ed25519 over the representation hash of the statement cell.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, CellBuilder, CellParser};

use crate::codec::{Bits256, CellCodec, cell_hash};
use crate::error::CodecError;
use crate::opcodes;

tlb_struct! {
    /// `charge_voucher`: the proxy's cumulative, monotonic charge of one escrow. The escrow address
    /// commits to the root, whose address commits to the network id, so this binds channel and network.
    pub struct ChargeVoucher [opcode = opcodes::CHARGE_VOUCHER] {
        /// The escrow this charge is for.
        escrow: TonAddress => addr,
        /// Strictly increasing per escrow.
        seqno: u32 => uint(32),
        /// Cumulative nanoTON charged so far.
        charged: u128 => coins,
        /// Closes the escrow cooperatively and refunds the rest to the client.
        is_final: bool => boolean,
    }
}

tlb_struct! {
    /// `payout_voucher`: the proxy's cumulative payout of one worker from its vault.
    pub struct PayoutVoucher [opcode = opcodes::PAYOUT_VOUCHER] {
        /// The proxy's stake contract (its address commits to the root).
        vault: TonAddress => addr,
        /// Who receives the money.
        worker: TonAddress => addr,
        /// Strictly increasing per (vault, worker).
        seqno: u32 => uint(32),
        /// Cumulative nanoTON paid so far.
        paid: u128 => coins,
    }
}

tlb_struct! {
    /// `serving_statement`: a worker's on-chain summary of one response receipt.
    pub struct ServingStatement [opcode = opcodes::SERVING_STATEMENT] {
        /// The root (network).
        root: TonAddress => addr,
        /// TEE image the worker ran.
        image_hash: Bits256 => bits256,
        /// Unix time the response was served.
        served_at: u32 => uint(32),
        /// SHA-256 of the full off-chain receipt.
        receipt_hash: Bits256 => bits256,
    }
}

tlb_struct! {
    /// `fault_report`: a registered proxy's report that a worker accepted work and failed it.
    pub struct FaultReport [opcode = opcodes::FAULT_REPORT] {
        /// The root (network).
        root: TonAddress => addr,
        /// The reporting proxy (its key is looked up in the root registry).
        proxy: TonAddress => addr,
        /// The worker (stake owner) at fault.
        worker: TonAddress => addr,
        /// Unique per proxy; the evidence hash makes each report usable once.
        report_id: u64 => uint(64),
        /// Unix time of the fault.
        at: u32 => uint(32),
        /// Reason code (off-chain meaning).
        reason: u16 => uint(16),
    }
}

/// `Signed X`: a signature followed by a reference to the signed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// Ed25519 signature over the statement cell's representation hash.
    pub signature: [u8; 64],
    /// The statement.
    pub statement: T,
}

/// Signing or verification failed.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The statement could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The public key is not a valid Ed25519 point.
    #[error("invalid public key")]
    BadKey,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
}

impl<T: CellCodec> Signed<T> {
    /// Signs `statement` with `key`.
    pub fn sign(statement: T, key: &SigningKey) -> Result<Self, CodecError> {
        let hash = cell_hash(&statement.to_cell()?);
        Ok(Signed {
            signature: key.sign(&hash).to_bytes(),
            statement,
        })
    }

    /// Checks the signature against a 32-byte public key, as the contracts do.
    pub fn verify(&self, public_key: &Bits256) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::BadKey)?;
        let hash = cell_hash(&self.statement.to_cell()?);
        key.verify(&hash, &Signature::from_bytes(&self.signature))
            .map_err(|_| SignatureError::BadSignature)
    }

    /// The untyped form, as equivocation evidence carries it.
    pub fn to_signed_cell(&self) -> Result<SignedCell, CodecError> {
        Ok(SignedCell {
            signature: self.signature,
            statement: self.statement.to_arc()?,
        })
    }
}

impl<T: CellCodec> CellCodec for Signed<T> {
    fn store(&self, b: &mut CellBuilder) -> Result<(), CodecError> {
        b.store_slice(&self.signature)?;
        b.store_reference(&self.statement.to_arc()?)?;
        Ok(())
    }

    fn load(p: &mut CellParser<'_>) -> Result<Self, CodecError> {
        let signature = crate::codec::load_bits512(p)?;
        let statement = crate::codec::load_ref_as(p)?;
        Ok(Signed {
            signature,
            statement,
        })
    }
}

tlb_struct! {
    /// `Signed Cell`: a signature over any statement cell.
    pub struct SignedCell {
        /// Ed25519 signature over the statement cell's representation hash.
        signature: [u8; 64] => bits512,
        /// The statement cell.
        statement: ArcCell => cell,
    }
}

tlb_struct! {
    /// `equivocation_evidence`: two conflicting statements signed by the same proxy key.
    pub struct EquivocationEvidence {
        /// The escrow's client: the root derives the escrow from it and the accused proxy.
        client: TonAddress => addr,
        /// First statement.
        a: SignedCell => child,
        /// Second charge voucher (same escrow and seqno; different hash).
        b: SignedCell => child,
    }
}

/// `revoked_serving_evidence`: a worker-signed serving statement.
pub type RevokedServingEvidence = Signed<ServingStatement>;
tlb_struct! {
    /// `fault_evidence`: a registered proxy's signed fault report.
    pub struct FaultEvidence {
        /// Proxy signature over the report cell hash.
        signature: [u8; 64] => bits512,
        /// The report.
        report: FaultReport => child,
    }
}

impl From<Signed<FaultReport>> for FaultEvidence {
    fn from(s: Signed<FaultReport>) -> Self {
        FaultEvidence {
            signature: s.signature,
            report: s.statement,
        }
    }
}

impl FaultEvidence {
    /// The single-use key the stake records: the hash of the report cell.
    pub fn evidence_hash(&self) -> Result<Bits256, CodecError> {
        Ok(cell_hash(&self.report.to_cell()?))
    }
}
/// A proxy-signed charge voucher, as `escrow_submit_charge` carries it.
pub type SignedCharge = Signed<ChargeVoucher>;
/// A proxy-signed payout voucher, as `stake_claim_payout` carries it.
pub type SignedPayout = Signed<PayoutVoucher>;

impl ChargeVoucher {
    /// Signs the voucher with the proxy key.
    pub fn sign(self, proxy_key: &SigningKey) -> Result<SignedCharge, CodecError> {
        Signed::sign(self, proxy_key)
    }
}

impl PayoutVoucher {
    /// Signs the voucher with the proxy key.
    pub fn sign(self, proxy_key: &SigningKey) -> Result<SignedPayout, CodecError> {
        Signed::sign(self, proxy_key)
    }
}

impl SignedCharge {
    /// Verifies the signature and that the voucher is bound to this escrow (derive the escrow with
    /// [`crate::address::escrow_address`] from the expected root to bind the network too).
    pub fn verify_for(&self, proxy_key: &Bits256, escrow: &TonAddress) -> Result<(), VoucherError> {
        if &self.statement.escrow != escrow {
            return Err(VoucherError::WrongEscrow);
        }
        self.verify(proxy_key)?;
        Ok(())
    }
}

impl SignedPayout {
    /// Verifies the signature and that the voucher is drawn on this vault (whose address commits to
    /// the root; see [`crate::address::stake_address`]).
    pub fn verify_for(&self, proxy_key: &Bits256, vault: &TonAddress) -> Result<(), VoucherError> {
        if &self.statement.vault != vault {
            return Err(VoucherError::WrongVault);
        }
        self.verify(proxy_key)?;
        Ok(())
    }
}

/// A voucher is not valid for the contract it is presented to.
#[derive(Debug, thiserror::Error)]
pub enum VoucherError {
    /// The charge names another escrow.
    #[error("voucher is for another escrow")]
    WrongEscrow,
    /// The payout names another vault.
    #[error("voucher is for another vault")]
    WrongVault,
    /// Bad key or signature.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// The public key of a signing key, as the contracts store it.
pub fn public_key(key: &SigningKey) -> Bits256 {
    key.verifying_key().to_bytes()
}

impl EquivocationEvidence {
    /// Evidence from two signed charge vouchers for one escrow and seqno; `client` names the
    /// escrow's client (the root derives the escrow from it and the accused proxy).
    pub fn new<T: CellCodec>(
        client: &TonAddress,
        a: &Signed<T>,
        b: &Signed<T>,
    ) -> Result<Self, CodecError> {
        Ok(EquivocationEvidence {
            client: client.clone(),
            a: a.to_signed_cell()?,
            b: b.to_signed_cell()?,
        })
    }

    /// The offence id the stake records: the hash of (charge voucher tag, escrow, seqno), so one
    /// offence is slashed once whichever pair of vouchers proves it. Only charge vouchers are
    /// evidence (a vault pays the highest cumulative payout signed, so payout vouchers cannot
    /// conflict); a payout voucher here is a [`CodecError::WrongOpcode`].
    pub fn evidence_hash(&self) -> Result<Bits256, CodecError> {
        let v = ChargeVoucher::from_cell(&self.a.statement)?;
        let mut b = CellBuilder::new();
        b.store_u32(32, opcodes::CHARGE_VOUCHER)?;
        crate::codec::store_address(&mut b, &v.escrow)?;
        b.store_u32(32, v.seqno)?;
        Ok(cell_hash(&b.build()?))
    }
}

impl ServingStatement {
    /// The offence id the stake records for serving after revocation: one per revoked image
    /// (hash of `kind:uint8 = 2, image_hash:bits256`), however many receipts show it.
    pub fn offence_id(&self) -> Result<Bits256, CodecError> {
        let mut b = CellBuilder::new();
        b.store_u8(8, 2)?;
        b.store_slice(&self.image_hash)?;
        Ok(cell_hash(&b.build()?))
    }
}

impl<T: CellCodec> Signed<T> {
    /// The hash of the signed statement: the single-use key the stake records for fault evidence
    /// (revoked serving uses [`ServingStatement::offence_id`]).
    pub fn evidence_hash(&self) -> Result<Bits256, CodecError> {
        Ok(cell_hash(&self.statement.to_cell()?))
    }
}

/// Signs the charge of `client`'s escrow with `proxy` under `root`: derives the escrow address
/// with the embedded escrow code, so the voucher is bound to that channel and network.
pub fn sign_charge(
    root: &TonAddress,
    client: &TonAddress,
    proxy: &TonAddress,
    seqno: u32,
    charged: u128,
    is_final: bool,
    proxy_key: &SigningKey,
) -> Result<SignedCharge, CodecError> {
    let escrow = crate::address::escrow_address(root, client, proxy)?;
    ChargeVoucher {
        escrow,
        seqno,
        charged,
        is_final,
    }
    .sign(proxy_key)
}

/// Signs the cumulative payout of `worker` from the vault of `proxy` under `root`.
pub fn sign_payout(
    root: &TonAddress,
    proxy: &TonAddress,
    worker: &TonAddress,
    seqno: u32,
    paid: u128,
    proxy_key: &SigningKey,
) -> Result<SignedPayout, CodecError> {
    let vault = crate::address::vault_address(root, proxy)?;
    PayoutVoucher {
        vault,
        worker: worker.clone(),
        seqno,
        paid,
    }
    .sign(proxy_key)
}
