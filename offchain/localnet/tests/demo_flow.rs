//! The demo flow in process with the fixed engine: one request through gateway → proxy → worker,
//! forced settlement on the devnet, and the summary's balances equal to the on-chain state.

use cocoon_contracts::address::{escrow_address, vault_address};
use cocoon_contracts::codec::account_id;
use cocoon_contracts::state::{EscrowStorage, StakeStorage};
use cocoon_localnet::flow;
use cocoon_localnet::localnet::{EngineChoice, Funding, LocalNet};
use cocoon_onchain::tx::fetch_state;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_settles_what_the_ledger_charged() {
    let funding = Funding::default();
    let net = LocalNet::start(EngineChoice::Fixed, funding).await.unwrap();
    let summary = flow::run(&net, "hello from the demo test", 8)
        .await
        .unwrap();

    assert_eq!(summary.chat.receipt_status, "verified");
    assert!(
        summary.keys.contains("INSECURE simulated key service"),
        "{}",
        summary.keys
    );
    assert!(
        summary
            .to_string()
            .contains("keys: INSECURE simulated key service")
    );
    assert!(summary.chat.receipt_matches_bytes);
    assert!(!summary.chat.answer.is_empty());
    let b = summary.balances;
    assert!(b.ledger_client_charged > 0);
    assert_eq!(
        summary.chat.charged_nano.as_deref(),
        Some(b.ledger_client_charged.to_string().as_str())
    );

    // The summary's chain figures are the chain's state.
    let c = net.chain.as_ref();
    let escrow = escrow_address(
        &net.root.address,
        net.parties.client.address(),
        net.parties.proxy_operator.address(),
    )
    .unwrap();
    let es: EscrowStorage = fetch_state(c, &escrow).await.unwrap().unwrap();
    assert_eq!(es.charged, b.ledger_client_charged);
    assert_eq!(b.chain_escrow_charged, es.charged);
    assert_eq!(es.balance, b.chain_escrow_balance);
    let vault = vault_address(&net.root.address, net.parties.proxy_operator.address()).unwrap();
    let vs: StakeStorage = fetch_state(c, &vault).await.unwrap().unwrap();
    let paid = vs
        .payouts
        .get(&account_id(net.parties.gpu_owner.address()))
        .unwrap()
        .paid;
    assert_eq!(paid, b.ledger_worker_earned);
    assert_eq!(b.chain_worker_paid, paid);
    assert_eq!(
        b.ledger_proxy_kept,
        b.ledger_client_charged - b.ledger_worker_earned
    );
    assert_eq!(b.chain_proxy_kept, b.ledger_proxy_kept);
    assert!(b.settlement_transactions >= 4 && b.settlement_fees > 0);

    // The ledger recorded the settlement; settling again sends nothing.
    let store = &net.proxy.handle.proxy;
    assert_eq!(
        store.client_ledger(&net.client_key).unwrap().settled,
        es.charged
    );
    let sent = net.settler.records().len();
    net.settle().await.unwrap();
    assert_eq!(net.settler.records().len(), sent);
    let text = summary.to_string();
    assert!(text.contains("ledger and chain agree: yes"), "{text}");
    net.shutdown().await.unwrap();
}
