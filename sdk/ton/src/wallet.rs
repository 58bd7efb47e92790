//! Standard wallets (v4r2, v5r1): keys from 24-word mnemonics, addresses, signed external transfers.

use std::str::FromStr;
use std::sync::Arc;

use num_bigint::BigUint;
use tonlib_core::cell::{ArcCell, Cell, CellBuilder};
use tonlib_core::message::{CommonMsgInfo, InternalMessage, TonMessage, TransferMessage};
use tonlib_core::tlb_types::tlb::TLB;
use tonlib_core::wallet::mnemonic::{KeyPair, Mnemonic};
use tonlib_core::wallet::ton_wallet::TonWallet;
use tonlib_core::wallet::version_helper::VersionHelper;
use tonlib_core::wallet::versioned::v4::WalletExtMsgBodyV4;
use tonlib_core::wallet::versioned::v5::WalletExtMsgBodyV5;
use tonlib_core::wallet::versioned::{
    DEFAULT_WALLET_ID, DEFAULT_WALLET_ID_V5R1, DEFAULT_WALLET_ID_V5R1_TESTNET,
};
use tonlib_core::wallet::wallet_version::WalletVersion as TonlibVersion;
use tonlib_core::{TonAddress, TonHash};

use crate::{Network, TonError, boc, to_friendly};

/// Words in a TON mnemonic.
pub const MNEMONIC_WORDS: usize = 24;

/// Send mode used unless a transfer says otherwise: pay fees separately (1) + ignore errors (2).
pub const DEFAULT_SEND_MODE: u8 = 3;

/// The wallet contracts we sign for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletVersion {
    /// wallet v4r2 (up to 4 messages per external)
    V4R2,
    /// wallet v5r1 ("W5", up to 255 messages per external)
    V5R1,
}

impl WalletVersion {
    fn tonlib(self) -> TonlibVersion {
        match self {
            WalletVersion::V4R2 => TonlibVersion::V4R2,
            WalletVersion::V5R1 => TonlibVersion::V5R1,
        }
    }

    /// How many internal messages one external may carry.
    pub fn max_messages(self) -> usize {
        match self {
            WalletVersion::V4R2 => 4,
            WalletVersion::V5R1 => 255,
        }
    }

    /// The wallet id (subwallet id) a wallet of this version uses by default on `network`.
    pub fn default_wallet_id(self, network: Network) -> i32 {
        match (self, network) {
            (WalletVersion::V4R2, _) => DEFAULT_WALLET_ID,
            (WalletVersion::V5R1, Network::Mainnet) => DEFAULT_WALLET_ID_V5R1,
            (WalletVersion::V5R1, Network::Testnet) => DEFAULT_WALLET_ID_V5R1_TESTNET,
        }
    }
}

impl FromStr for WalletVersion {
    type Err = TonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace([' ', '_', '-'], "").as_str() {
            "v4r2" | "walletv4r2" => Ok(WalletVersion::V4R2),
            "v5r1" | "walletv5r1" | "w5" => Ok(WalletVersion::V5R1),
            other => Err(TonError::InvalidArgument(format!(
                "unknown wallet version {other:?} (v4r2, v5r1)"
            ))),
        }
    }
}

/// Derives the Ed25519 key pair of a 24-word TON mnemonic (no password).
pub fn keypair_from_mnemonic(phrase: &str) -> Result<KeyPair, TonError> {
    let words: Vec<&str> = phrase.split_whitespace().collect();
    if words.len() != MNEMONIC_WORDS {
        return Err(TonError::Mnemonic(format!(
            "expected {MNEMONIC_WORDS} words, got {}",
            words.len()
        )));
    }
    let mnemonic = Mnemonic::new(words, &None).map_err(|e| TonError::Mnemonic(e.to_string()))?;
    mnemonic
        .to_key_pair()
        .map_err(|e| TonError::Mnemonic(e.to_string()))
}

/// One internal message a wallet sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// destination
    pub dest: TonAddress,
    /// value in nanotons
    pub amount: u128,
    /// bounce if the destination fails (use false for undeployed destinations)
    pub bounce: bool,
    /// message body; empty cell if `None`
    pub body: Option<ArcCell>,
    /// state init to deploy the destination
    pub state_init: Option<ArcCell>,
    /// send mode ([`DEFAULT_SEND_MODE`] unless changed)
    pub mode: u8,
}

impl Transfer {
    /// A bounceable transfer of `amount` nanotons with an empty body and mode 3.
    pub fn new(dest: TonAddress, amount: u128) -> Self {
        Self {
            dest,
            amount,
            bounce: true,
            body: None,
            state_init: None,
            mode: DEFAULT_SEND_MODE,
        }
    }

    /// Sets the bounce flag.
    pub fn with_bounce(mut self, bounce: bool) -> Self {
        self.bounce = bounce;
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<ArcCell>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the destination's state init (deploys it).
    pub fn with_state_init(mut self, state_init: impl Into<ArcCell>) -> Self {
        self.state_init = Some(state_init.into());
        self
    }

    /// Sets the send mode.
    pub fn with_mode(mut self, mode: u8) -> Self {
        self.mode = mode;
        self
    }

    /// The internal message cell (`int_msg_info`, src addr_none, body and state init in refs).
    pub fn to_cell(&self) -> Result<Cell, TonError> {
        let info = CommonMsgInfo::InternalMessage(InternalMessage {
            ihr_disabled: true,
            bounce: self.bounce,
            bounced: false,
            src: TonAddress::NULL,
            dest: self.dest.clone(),
            value: BigUint::from(self.amount),
            ihr_fee: BigUint::ZERO,
            fwd_fee: BigUint::ZERO,
            created_lt: 0,
            created_at: 0,
        });
        let body = match &self.body {
            Some(b) => b.clone(),
            None => Cell::default().to_arc(),
        };
        let mut msg = TransferMessage::new(info, body);
        if let Some(init) = &self.state_init {
            msg.with_state_init_ref(init);
        }
        Ok(msg.build()?)
    }
}

/// A signed inbound external message, ready for `sendBoc`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalMessage {
    /// the message cell
    pub cell: ArcCell,
    /// its BoC
    pub boc: Vec<u8>,
    /// its cell hash (toncenter's `in_msg.hash` for the transaction it starts)
    pub hash: TonHash,
    /// its normalized hash (TEP-467: independent of src, import fee, init and body layout)
    pub hash_norm: TonHash,
}

impl ExternalMessage {
    /// The signed body (what `estimateFee` takes).
    pub fn body(&self) -> Result<ArcCell, TonError> {
        split_external(&self.cell).map(|(_, body)| body)
    }

    /// Wraps an external message cell, computing its hashes.
    pub fn from_cell(cell: ArcCell) -> Result<Self, TonError> {
        let boc = boc::cell_to_boc(&cell)?;
        let hash = Cell::cell_hash(&cell);
        let hash_norm = normalized_hash(&cell)?;
        Ok(Self {
            cell,
            boc,
            hash,
            hash_norm,
        })
    }
}

/// The normalized hash of an inbound external message cell: `ext_in_msg_info$10 src:addr_none
/// dest import_fee:0`, no init, body as a reference.
pub fn normalized_hash(message: &Cell) -> Result<TonHash, TonError> {
    let (dest, body) = split_external(message)?;
    let norm = CellBuilder::new()
        .store_u8(2, 0b10)?
        .store_u8(2, 0)?
        .store_address(&dest)?
        .store_coins(&BigUint::ZERO)?
        .store_bit(false)?
        .store_bit(true)?
        .store_reference(&body)?
        .build()?;
    Ok(norm.cell_hash())
}

/// The destination and body of an inbound external message cell.
pub fn split_external(message: &Cell) -> Result<(TonAddress, ArcCell), TonError> {
    let mut parser = message.parser();
    let tag = parser.load_u8(2)?;
    if tag != 0b10 {
        return Err(TonError::Message(
            "not an inbound external message".to_string(),
        ));
    }
    let _src = parser.load_msg_address()?;
    let dest = parser.load_address()?;
    let _import_fee = parser.load_coins()?;
    if parser.load_bit()? {
        // init: Maybe (Either StateInit ^StateInit)
        if parser.load_bit()? {
            parser.next_reference()?;
        } else {
            tonlib_core::tlb_types::block::state_init::StateInit::read(&mut parser)?;
        }
    }
    let body = parser.load_either_cell_or_cell_ref()?;
    Ok((dest, body))
}

/// A v4r2 or v5r1 wallet: its keys, address and network.
#[derive(Debug, Clone)]
pub struct Wallet {
    inner: TonWallet,
    version: WalletVersion,
    network: Network,
}

impl Wallet {
    /// The wallet of a 24-word mnemonic, workchain 0, default wallet id for `network`.
    pub fn from_mnemonic(
        phrase: &str,
        version: WalletVersion,
        network: Network,
    ) -> Result<Self, TonError> {
        Self::from_key_pair(keypair_from_mnemonic(phrase)?, version, network)
    }

    /// The wallet of a key pair, workchain 0, default wallet id for `network`.
    pub fn from_key_pair(
        key_pair: KeyPair,
        version: WalletVersion,
        network: Network,
    ) -> Result<Self, TonError> {
        let wallet_id = version.default_wallet_id(network);
        let inner = TonWallet::new_with_params(version.tonlib(), key_pair, 0, wallet_id)?;
        Ok(Self {
            inner,
            version,
            network,
        })
    }

    /// The wallet's address.
    pub fn address(&self) -> &TonAddress {
        &self.inner.address
    }

    /// The address in user-friendly form, non-bounceable (the convention for wallets).
    pub fn address_friendly(&self) -> String {
        to_friendly(&self.inner.address, false, self.network)
    }

    /// The contract version.
    pub fn version(&self) -> WalletVersion {
        self.version
    }

    /// The network whose conventions (wallet id, address flag) the wallet follows.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The wallet id stored in the contract data.
    pub fn wallet_id(&self) -> i32 {
        self.inner.wallet_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        &self.inner.key_pair.public_key
    }

    /// The key pair (the secret key signs everything this wallet sends).
    pub fn key_pair(&self) -> &KeyPair {
        &self.inner.key_pair
    }

    /// The state init (code + initial data) that deploys this wallet.
    pub fn state_init(&self) -> Result<Cell, TonError> {
        let code = VersionHelper::get_code(self.version.tonlib())?.clone();
        let data = VersionHelper::get_data(
            self.version.tonlib(),
            &self.inner.key_pair,
            self.inner.wallet_id,
        )?
        .to_arc();
        let mut b = CellBuilder::new();
        // split_depth:none special:none code:^Cell data:^Cell library:none
        b.store_bit(false)?
            .store_bit(false)?
            .store_bit(true)?
            .store_reference(&code)?
            .store_bit(true)?
            .store_reference(&data)?
            .store_bit(false)?;
        Ok(b.build()?)
    }

    /// A signed external message that makes the wallet send `transfers`.
    ///
    /// `seqno` is the wallet's current seqno (0 for an undeployed wallet, in which case the wallet's
    /// state init is attached so the first message deploys it); `valid_until` is a unix time after
    /// which the wallet refuses the message.
    pub fn transfer_message(
        &self,
        seqno: u32,
        valid_until: u32,
        transfers: &[Transfer],
    ) -> Result<ExternalMessage, TonError> {
        if transfers.len() > self.version.max_messages() {
            return Err(TonError::InvalidArgument(format!(
                "{:?} sends at most {} messages per external, got {}",
                self.version,
                self.version.max_messages(),
                transfers.len()
            )));
        }
        let msgs = transfers
            .iter()
            .map(|t| t.to_cell().map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let modes = transfers.iter().map(|t| t.mode).collect::<Vec<_>>();
        let body = match self.version {
            WalletVersion::V4R2 => WalletExtMsgBodyV4 {
                subwallet_id: self.inner.wallet_id,
                valid_until,
                msg_seqno: seqno,
                opcode: 0,
                msgs_modes: modes,
                msgs,
            }
            .to_cell()?,
            WalletVersion::V5R1 => WalletExtMsgBodyV5 {
                wallet_id: self.inner.wallet_id,
                valid_until,
                msg_seqno: seqno,
                msgs_modes: modes,
                msgs,
            }
            .to_cell()?,
        };
        let signed = self.inner.sign_external_body(&body)?;
        let cell = self.inner.wrap_signed_body(signed, seqno == 0)?;
        ExternalMessage::from_cell(cell.to_arc())
    }

    /// One transfer: `amount` nanotons to `dest`, optional body and destination state init.
    #[allow(clippy::too_many_arguments)]
    pub fn transfer_one(
        &self,
        seqno: u32,
        valid_until: u32,
        dest: &TonAddress,
        amount: u128,
        bounce: bool,
        body: Option<ArcCell>,
        state_init: Option<ArcCell>,
    ) -> Result<ExternalMessage, TonError> {
        let mut t = Transfer::new(dest.clone(), amount).with_bounce(bounce);
        t.body = body;
        t.state_init = state_init;
        self.transfer_message(seqno, valid_until, &[t])
    }
}
