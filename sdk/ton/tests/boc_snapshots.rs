//! Every BoC the SDK builds, with fixed keys, seqno and valid_until, so any change is visible.

use cocoon_ton::{
    CellBuilder, Network, Transfer, Wallet, WalletVersion, boc, parse_address, parse_ton,
};

const MNEMONIC: &str = "mouse absent grunt buzz prefer twin feel success rapid empty assume kit notable embrace any excite silly current chase book phone view stove project";
const DEST: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";
const VALID_UNTIL: u32 = 1_800_000_000;

fn describe(version: WalletVersion, network: Network) -> String {
    let w = Wallet::from_mnemonic(MNEMONIC, version, network).expect("wallet");
    let dest = parse_address(DEST).expect("dest");
    let comment = CellBuilder::new()
        .store_u32(32, 0)
        .and_then(|b| b.store_string("cocoon"))
        .and_then(|b| b.build())
        .expect("comment");
    let deploy = w
        .transfer_message(
            0,
            VALID_UNTIL,
            &[Transfer::new(dest.clone(), parse_ton("1.5").expect("amount")).with_bounce(false)],
        )
        .expect("deploy");
    let transfer = w
        .transfer_message(
            5,
            VALID_UNTIL,
            &[
                Transfer::new(dest.clone(), 1).with_body(comment),
                Transfer::new(dest, parse_ton("0.25").expect("amount")).with_mode(1),
            ],
        )
        .expect("transfer");
    let state_init = boc::cell_to_boc(&w.state_init().expect("state init")).expect("boc");
    format!(
        "address raw: {}\naddress friendly: {}\nwallet id: {}\npublic key: {}\nstate init: {}\n\
         deploy (seqno 0): {}\ndeploy hash: {}\ndeploy hash_norm: {}\n\
         transfer (seqno 5, 2 messages): {}\ntransfer hash: {}\ntransfer hash_norm: {}\n",
        cocoon_ton::to_raw(w.address()),
        w.address_friendly(),
        w.wallet_id(),
        hex::encode(w.public_key()),
        hex::encode(state_init),
        hex::encode(&deploy.boc),
        deploy.hash,
        deploy.hash_norm,
        hex::encode(&transfer.boc),
        transfer.hash,
        transfer.hash_norm,
    )
}

#[test]
fn wallet_v4r2_messages() {
    insta::assert_snapshot!(describe(WalletVersion::V4R2, Network::Mainnet));
}

#[test]
fn wallet_v5r1_messages_mainnet() {
    insta::assert_snapshot!(describe(WalletVersion::V5R1, Network::Mainnet));
}

#[test]
fn wallet_v5r1_messages_testnet() {
    insta::assert_snapshot!(describe(WalletVersion::V5R1, Network::Testnet));
}
