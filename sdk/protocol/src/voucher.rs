//! Signed cumulative charges (proxy → client escrow) and payouts (proxy → worker).
//!
//! **PLACEHOLDER FORMAT.** These are the off-chain shapes the proxy persists and signs today. The
//! on-chain formats are defined by `contracts/schema/*.tlb` (and the `cocoon-contracts` crate); once those
//! land, [`ChargeVoucher::signing_bytes`] and [`PayoutVoucher::signing_bytes`] switch to the contract's
//! cell hash and these types become thin wrappers. Until then a voucher signed here is not accepted by
//! any contract. Both are bound to the network and to the contract address, and are cumulative and
//! monotonic in `seqno`, so a replayed or older voucher is worth nothing.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::receipt::{hex32, hex64};

/// A cumulative charge against one client escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeVoucher {
    /// Global id of the network (−239 mainnet, −3 testnet, anything else for devnets).
    pub network_id: i32,
    /// Account id (hash part) of the escrow contract.
    #[serde(with = "hex32")]
    pub escrow: [u8; 32],
    /// Sequence number, +1 per voucher of this escrow.
    pub seqno: u64,
    /// Total charged since the escrow opened, nanoTON.
    pub cumulative_nano: u128,
}

/// A cumulative payout to one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutVoucher {
    /// Global id of the network.
    pub network_id: i32,
    /// Account id (hash part) of the contract that pays (the proxy's stake/payout contract).
    #[serde(with = "hex32")]
    pub payer: [u8; 32],
    /// The worker's key.
    #[serde(with = "hex32")]
    pub worker_key: [u8; 32],
    /// Sequence number, +1 per voucher for this worker.
    pub seqno: u64,
    /// Total earned since the worker started serving this proxy, nanoTON.
    pub cumulative_nano: u128,
}

/// A voucher and the proxy's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVoucher<T> {
    /// The statement.
    pub voucher: T,
    /// Ed25519 over the voucher's signing bytes.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// Voucher failures.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VoucherError {
    /// The signature does not verify.
    #[error("voucher signature does not verify")]
    BadSignature,
    /// The key is not a valid Ed25519 point.
    #[error("invalid proxy key")]
    BadKey,
}

/// Something a proxy signs.
pub trait Voucher {
    /// The bytes under the signature.
    fn signing_bytes(&self) -> Vec<u8>;
}

impl Voucher for ChargeVoucher {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut out = b"cocoon-charge-placeholder-1".to_vec();
        out.extend_from_slice(&self.network_id.to_be_bytes());
        out.extend_from_slice(&self.escrow);
        out.extend_from_slice(&self.seqno.to_be_bytes());
        out.extend_from_slice(&self.cumulative_nano.to_be_bytes());
        out
    }
}

impl Voucher for PayoutVoucher {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut out = b"cocoon-payout-placeholder-1".to_vec();
        out.extend_from_slice(&self.network_id.to_be_bytes());
        out.extend_from_slice(&self.payer);
        out.extend_from_slice(&self.worker_key);
        out.extend_from_slice(&self.seqno.to_be_bytes());
        out.extend_from_slice(&self.cumulative_nano.to_be_bytes());
        out
    }
}

impl<T: Voucher> SignedVoucher<T> {
    /// Signs `voucher` with the proxy key.
    pub fn sign(voucher: T, key: &SigningKey) -> Self {
        let signature = key.sign(&voucher.signing_bytes()).to_bytes();
        SignedVoucher { voucher, signature }
    }

    /// Verifies under the proxy's public key.
    pub fn verify(&self, proxy_key: &[u8; 32]) -> Result<(), VoucherError> {
        let key = VerifyingKey::from_bytes(proxy_key).map_err(|_| VoucherError::BadKey)?;
        key.verify(
            &self.voucher.signing_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| VoucherError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vouchers_bind_every_field() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pk = key.verifying_key().to_bytes();
        let v = ChargeVoucher {
            network_id: -3,
            escrow: [5; 32],
            seqno: 7,
            cumulative_nano: 1_000,
        };
        let signed = SignedVoucher::sign(v.clone(), &key);
        signed.verify(&pk).unwrap();
        for changed in [
            ChargeVoucher {
                network_id: -239,
                ..v.clone()
            },
            ChargeVoucher {
                escrow: [6; 32],
                ..v.clone()
            },
            ChargeVoucher {
                seqno: 8,
                ..v.clone()
            },
            ChargeVoucher {
                cumulative_nano: 1_001,
                ..v.clone()
            },
        ] {
            let forged = SignedVoucher {
                voucher: changed,
                signature: signed.signature,
            };
            assert_eq!(forged.verify(&pk), Err(VoucherError::BadSignature));
        }
        let p = PayoutVoucher {
            network_id: -3,
            payer: [1; 32],
            worker_key: [2; 32],
            seqno: 1,
            cumulative_nano: 9,
        };
        let sp = SignedVoucher::sign(p, &key);
        sp.verify(&pk).unwrap();
        // A charge signature never verifies as a payout (distinct domain tags).
        assert_ne!(
            signed.voucher.signing_bytes()[..20],
            sp.voucher.signing_bytes()[..20]
        );
    }
}
