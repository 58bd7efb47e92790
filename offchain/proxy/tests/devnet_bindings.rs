//! On the devnet, issue 15 item 3: the bindings the proxy keeps on host disk (TLS key → wallet) decide
//! which escrow the TD charges for a key. The operator appends `client <own key> <victim wallet>`
//! to the file (or feeds the view such a binding) so that its own key's charges are signed against
//! the victim's escrow. Sealed, the edited file is refused at open; and whatever binding the view
//! holds, a key gets an escrow (and a ledger account) only once the escrow's `client_key` on chain is
//! that key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

use cocoon_contracts::address::escrow_address;
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::codec::account_id;
use cocoon_contracts::messages::ProxyInfo;
use cocoon_contracts::state::ROLE_PROXY;
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_onchain::seal::{SealError, StorageKey};
use cocoon_onchain::{BindPolicy, BindingsFile, OnchainConfig, OnchainError, OnchainView};
use cocoon_ton::Network;
use ed25519_dalek::SigningKey;

const TON: u128 = 1_000_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_client_binding_gets_no_escrow_and_an_edited_bindings_file_is_refused() {
    let (devnet, client) = cocoon_testkit::devnet::start_devnet(1).await;
    let c = client.as_ref();
    let gov = wallet_for_key(&key(31), Network::Testnet).unwrap();
    let operator = wallet_for_key(&key(32), Network::Testnet).unwrap();
    let victim = wallet_for_key(&key(33), Network::Testnet).unwrap();
    for w in [&gov, &operator, &victim] {
        devnet.fund(w.address_friendly(), 100 * TON).await.unwrap();
    }
    let proxy_pub = key(41).verifying_key().to_bytes();
    let (own_key, victim_key) = ([0x0au8; 32], [0x0bu8; 32]);
    let (root, _) = RootHandle::deploy(c, &gov, -239, dev_params(), TON)
        .await
        .unwrap();
    let info = ProxyInfo {
        key: proxy_pub,
        endpoints: "127.0.0.1:1".into(),
    };
    root.set_proxy(c, &gov, operator.address(), Some(info))
        .await
        .unwrap();
    root.open_stake(c, &operator, ROLE_PROXY, proxy_pub, 2 * TON)
        .await
        .unwrap();
    // The operator is also a client of its own proxy (its own key), and so is the victim.
    for (wallet, k) in [(&operator, own_key), (&victim, victim_key)] {
        root.open_escrow(c, wallet, operator.address(), 3 * TON, k, 5 * TON)
            .await
            .unwrap();
    }
    let victim_escrow =
        account_id(&escrow_address(&root.address, victim.address(), operator.address()).unwrap());
    let own_escrow =
        account_id(&escrow_address(&root.address, operator.address(), operator.address()).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb.bindings");
    let storage = StorageKey::derive(&key(41).to_bytes(), "storage");
    let config = OnchainConfig {
        root: root.address.clone(),
        proxy: operator.address().clone(),
        refresh: Duration::from_secs(3600),
        allow_unattested: false,
        binding: BindPolicy::default(),
        bindings: Some(BindingsFile {
            path: path.clone(),
            key: storage.clone(),
        }),
    };
    let view = OnchainView::load(client.clone(), config.clone())
        .await
        .unwrap();
    view.bind_client(own_key, Some(&operator.address().to_hex()))
        .await
        .unwrap();
    view.bind_client(victim_key, Some(&victim.address().to_hex()))
        .await
        .unwrap();
    assert_eq!(view.client_account(&own_key), Some(own_escrow));
    assert_eq!(view.client_account(&victim_key), Some(victim_escrow));

    // The view is handed a binding of the operator's key to the victim's wallet (before the fix the
    // refresh then gave that key the victim's escrow, which settlement signed against).
    view.watch_client(own_key, victim.address().clone());
    view.refresh().await.unwrap();
    assert_eq!(
        view.escrow(&own_key),
        None,
        "no escrow for a key it does not hold"
    );
    assert_eq!(
        view.client_account(&own_key),
        None,
        "no ledger account either"
    );
    assert!(!view.client_admitted(&own_key));
    assert_eq!(
        view.escrow(&victim_key).map(|e| e.escrow),
        Some(victim_escrow)
    );
    drop(view);

    // The file holds no key or wallet in clear.
    let sealed = std::fs::read_to_string(&path).unwrap();
    assert!(sealed.starts_with("cocoon-bindings 2 "), "{sealed}");
    assert!(!sealed.contains(&hex::encode(own_key)));
    assert!(!sealed.contains(&victim.address().to_hex()));

    // The operator appends the line the old plain file took: refused at open, naming the record.
    let forged = format!(
        "client {} {}\n",
        hex::encode(own_key),
        victim.address().to_hex()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(forged.as_bytes())
        .unwrap();
    let err = OnchainView::load(client.clone(), config.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnchainError::Sealed(SealError::Record { file, record }) if file == &path.display().to_string() && record == "3"),
        "{err:?}"
    );
    // A flipped bit in an authentic record, or two records swapped: refused too.
    let mut lines: Vec<String> = sealed.lines().map(str::to_string).collect();
    let mut edited = lines.clone();
    let flip = edited[1].pop().unwrap();
    edited[1].push(if flip == '0' { '1' } else { '0' });
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    assert!(matches!(
        OnchainView::load(client.clone(), config.clone()).await,
        Err(OnchainError::Sealed(SealError::Record { .. }))
    ));
    lines.swap(1, 2);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    assert!(matches!(
        OnchainView::load(client.clone(), config.clone()).await,
        Err(OnchainError::Sealed(SealError::Record { .. }))
    ));
    // Under another key (another proxy's file): the header is refused.
    std::fs::write(&path, &sealed).unwrap();
    let mut other = config.clone();
    other.bindings = Some(BindingsFile {
        path: path.clone(),
        key: StorageKey::derive(b"another", "storage"),
    });
    assert!(matches!(
        OnchainView::load(client.clone(), other).await,
        Err(OnchainError::Sealed(SealError::Header { .. }))
    ));
    // The authentic file with a torn last append (a crash mid-write) opens and restores both
    // bindings; the torn bytes are cut so that the next append starts a line of its own.
    std::fs::write(&path, format!("{sealed}a1b2c3")).unwrap();
    let view = OnchainView::load(client.clone(), config.clone())
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), sealed);
    assert_eq!(view.client_account(&own_key), Some(own_escrow));
    assert_eq!(view.client_account(&victim_key), Some(victim_escrow));
    drop(view);

    // A format-1 (plain) file with the forged line: read once, and only what the chain confirms is
    // kept (and sealed); the forged binding gets nothing.
    std::fs::write(
        &path,
        format!(
            "client {} {}\n{forged}",
            hex::encode(victim_key),
            victim.address().to_hex()
        ),
    )
    .unwrap();
    let view = OnchainView::load(client.clone(), config.clone())
        .await
        .unwrap();
    assert_eq!(view.client_account(&victim_key), Some(victim_escrow));
    assert_eq!(view.client_account(&own_key), None);
    assert_eq!(view.escrow(&own_key), None);
    drop(view);
    let resealed = std::fs::read_to_string(&path).unwrap();
    assert!(resealed.starts_with("cocoon-bindings 2 "), "{resealed}");
    assert_eq!(
        resealed.lines().count(),
        2,
        "header and the confirmed binding"
    );
    let view = OnchainView::load(client.clone(), config).await.unwrap();
    assert_eq!(view.client_account(&own_key), None);
    assert_eq!(view.client_account(&victim_key), Some(victim_escrow));

    devnet.stop().await.unwrap();
}
