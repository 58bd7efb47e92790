//! The key service at its real port on a devnet root: who gets which keys, and who gets nothing.
//!
//! Every TD here is simulated (software quotes): the allowlists are the root's, read from the
//! devnet, and the boot-key bindings are signed by operator wallet keys.

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation as att;
use cocoon_contracts::chain::RootHandle;
use cocoon_contracts::state::{ROLE_KMS, ROLE_PROXY, ROLE_WORKER};
use cocoon_daemon::chain_endpoint::ChainEndpoint;
use cocoon_daemon::keys::{
    BootKeyBinding, KMS_KEYS_PATH, KMS_MASTER_PATH, KMS_PUBLIC_KEY_PATH, KeyError, KeyOrigin,
    KeyRequest, KmsContext, PublicKeyAnswer, boot_key_path, key_material_within, kms_client_tls,
    kms_request,
};
use cocoon_daemon::ra_tls::RaTls;
use cocoon_daemon::tls::{HopTls, Role};
use cocoon_daemon::tls_config::{KeySource, TlsMode, TlsSection};
use cocoon_devnet::{Devnet, DevnetOptions};
use cocoon_kms::daemon::{BuildOptions, KmsDaemon};
use cocoon_kms::{KmsConfig, MemoryWalletKeys};
use cocoon_onchain::bootstrap::{dev_params, wallet_for_key};
use cocoon_ton::{Network, TonAddress};
use ed25519_dalek::SigningKey;

const TON: u128 = 1_000_000_000;

fn sim(label: &str) -> TlsSection {
    TlsSection {
        mode: TlsMode::Simulated,
        image_label: label.into(),
        ..TlsSection::default()
    }
}

struct Net {
    _devnet: Devnet,
    url: String,
    root: TonAddress,
    wallets: MemoryWalletKeys,
    kms_images: Arc<dyn att::ImageAllowlist>,
}

/// A devnet root allowing the `proxy-good` and `worker-good` images and the `kms` image.
async fn network() -> Net {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .expect("devnet");
    let client = ChainEndpoint::new(devnet.url(), Network::Testnet)
        .client()
        .expect("client");
    let gov = wallet_for_key(&SigningKey::from_bytes(&[9; 32]), Network::Testnet).unwrap();
    devnet
        .fund(gov.address_friendly(), 100 * TON)
        .await
        .unwrap();
    let (root, _) = RootHandle::deploy(
        client.as_ref(),
        &gov,
        cocoon_devnet::GLOBAL_ID,
        dev_params(),
        TON,
    )
    .await
    .expect("root");
    for (role, label) in [
        (ROLE_PROXY, "proxy-good"),
        (ROLE_WORKER, "worker-good"),
        (ROLE_KMS, "kms"),
    ] {
        root.set_image(
            client.as_ref(),
            &gov,
            role,
            sim(label).simulated_image_hash(),
            true,
        )
        .await
        .expect("allow image");
    }
    let kms_images = att::InMemoryAllowlist::new();
    kms_images.allow(att::Role::Kms, sim("kms").simulated_image_hash());
    Net {
        url: devnet.url().to_owned(),
        _devnet: devnet,
        root: root.address,
        wallets: MemoryWalletKeys::new(),
        kms_images: Arc::new(kms_images),
    }
}

async fn start_kms(net: &Net, label: &str, replicate_from: &str) -> anyhow::Result<KmsDaemon> {
    let mut config = KmsConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        replicate_from: replicate_from.into(),
        tls: sim(label),
        ..KmsConfig::default()
    };
    config.chain.endpoint = ChainEndpoint::new(&net.url, Network::Testnet);
    config.chain.root = net.root.to_hex();
    let options = BuildOptions {
        insecure_dev_tls: false,
        wallets: Some(Arc::new(net.wallets.clone())),
    };
    cocoon_kms::daemon::build(config, &options).await
}

struct Operator {
    key: SigningKey,
    wallet: TonAddress,
}

fn operator(net: &Net, seed: u8) -> Operator {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let wallet = wallet_for_key(&key, Network::Testnet)
        .unwrap()
        .address()
        .clone();
    net.wallets.insert(&wallet, key.verifying_key().to_bytes());
    Operator { key, wallet }
}

fn kms_section(label: &str, kms: &KmsDaemon, dir: &Path) -> TlsSection {
    TlsSection {
        key_source: KeySource::Kms,
        kms_url: kms.addr.to_string(),
        kms_binding_file: dir.join("binding.json").display().to_string(),
        ..sim(label)
    }
}

/// Plays the operator: waits for the TD's boot key file and writes the binding `signer` signs for
/// `wallet` (normally the operator's own key and wallet).
fn bind_when_asked(
    dir: &Path,
    role: Role,
    root: &TonAddress,
    wallet: &TonAddress,
    signer: &SigningKey,
) -> tokio::task::JoinHandle<()> {
    let binding_file = dir.join("binding.json");
    let (root, wallet, signer) = (root.clone(), wallet.clone(), signer.clone());
    tokio::spawn(async move {
        let request = boot_key_path(&binding_file);
        for _ in 0..400 {
            if let Ok(text) = std::fs::read_to_string(&request) {
                let mut boot = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut boot).expect("boot key hex");
                let b = BootKeyBinding::sign(&signer, role, &root, &wallet, &boot, u64::MAX / 2);
                std::fs::write(&binding_file, serde_json::to_vec(&b).unwrap()).unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the TD never wrote its boot key");
    })
}

async fn td_keys(
    net: &Net,
    kms: &KmsDaemon,
    role: Role,
    label: &str,
    wallet: &TonAddress,
    signer: &SigningKey,
) -> Result<cocoon_daemon::keys::KeyMaterial, KeyError> {
    let dir = tempfile::tempdir().unwrap();
    let section = kms_section(label, kms, dir.path());
    let ctx = KmsContext {
        root: net.root.clone(),
        wallet: wallet.clone(),
        allowlist: net.kms_images.clone(),
        config_hash: None,
    };
    let binder = bind_when_asked(dir.path(), role, &net.root, wallet, signer);
    let got = key_material_within(role, &section, Some(&ctx), Duration::from_secs(8)).await;
    binder.abort();
    got
}

/// A TD of `role` with image `label` presenting `boot` (simulated quote), accepting allowed kms
/// images only.
fn td_tls(net: &Net, role: Role, label: &str, boot: &SigningKey) -> RaTls {
    let section = sim(label);
    let mut policy =
        cocoon_daemon::tls_config::peer_policy(role, &section, net.kms_images.clone()).unwrap();
    policy.allowed_roles = vec![att::Role::Kms];
    let provider = cocoon_daemon::tls_config::quote_provider(role, &section).unwrap();
    RaTls::new(role, boot.clone(), provider, policy).unwrap()
}

async fn ask(
    tls: &dyn HopTls,
    kms: &KmsDaemon,
    binding: BootKeyBinding,
) -> Result<(u16, String), String> {
    let body = serde_json::to_vec(&KeyRequest { binding }).unwrap();
    let (status, body) = kms_request(
        tls,
        &kms.addr.to_string(),
        hyper::Method::POST,
        KMS_KEYS_PATH,
        Some(body),
    )
    .await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn the_key_service_releases_a_stable_proxy_key_only_to_attested_bound_tds() {
    let net = network().await;
    let kms = start_kms(&net, "kms", "").await.expect("kms");
    assert!(kms.generated_master);
    let a = operator(&net, 1);
    let b = operator(&net, 2);

    // A proxy TD of operator A, an allowed image, bound by A's wallet: gets P and S.
    let first = td_keys(&net, &kms, Role::Proxy, "proxy-good", &a.wallet, &a.key)
        .await
        .expect("keys for A's proxy");
    assert_eq!(first.origin, KeyOrigin::Kms);
    // Restarted in a fresh data directory, with a new boot key: the same P and S, only from the
    // key service.
    let again = td_keys(&net, &kms, Role::Proxy, "proxy-good", &a.wallet, &a.key)
        .await
        .expect("keys after a restart");
    assert_eq!(
        first.signing.to_bytes(),
        again.signing.to_bytes(),
        "same P after a restart"
    );
    assert_eq!(first.storage, again.storage, "same S after a restart");
    // What governance registers is that very key.
    let client = kms_client_tls(
        Role::Client,
        &sim(""),
        SigningKey::from_bytes(&[0x55; 32]),
        net.kms_images.clone(),
    )
    .unwrap();
    let query = format!(
        "{KMS_PUBLIC_KEY_PATH}?role=proxy&wallet={}",
        a.wallet.to_hex()
    );
    let (status, body) = kms_request(
        &client,
        &kms.addr.to_string(),
        hyper::Method::GET,
        &query,
        None,
    )
    .await
    .expect("public key");
    assert_eq!(status, 200);
    let public: PublicKeyAnswer = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        public.public_key,
        hex::encode(first.signing.verifying_key().to_bytes())
    );
    // An unattested client gets no keys and no master key.
    let (status, _) = kms_request(
        &client,
        &kms.addr.to_string(),
        hyper::Method::GET,
        KMS_MASTER_PATH,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "a client is no replica");

    // Operator B's proxy gets another key.
    let theirs = td_keys(&net, &kms, Role::Proxy, "proxy-good", &b.wallet, &b.key)
        .await
        .expect("keys for B's proxy");
    assert_ne!(theirs.signing.to_bytes(), first.signing.to_bytes());
    assert_ne!(theirs.storage, first.storage);

    // Operator A's allowed image cannot get B's key: A's TD names B's wallet, but B never bound
    // A's boot key (A signs the binding itself).
    let stolen = td_keys(&net, &kms, Role::Proxy, "proxy-good", &b.wallet, &a.key).await;
    assert!(
        matches!(&stolen, Err(KeyError::Refused { status: 403, message }) if message.contains("not bound")),
        "{stolen:?}"
    );

    // B's genuine binding, replayed from another TD (A's boot key), is for another boot key.
    let boot_b = SigningKey::from_bytes(&[0x42; 32]);
    let boot_a = SigningKey::from_bytes(&[0x43; 32]);
    let b_binding = BootKeyBinding::sign(
        &b.key,
        Role::Proxy,
        &net.root,
        &b.wallet,
        &boot_b.verifying_key().to_bytes(),
        u64::MAX / 2,
    );
    let tls_a = td_tls(&net, Role::Proxy, "proxy-good", &boot_a);
    let (status, body) = ask(&tls_a, &kms, b_binding.clone()).await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another boot key"), "{body}");

    // A process that is not attested gets nothing: no quote (development TLS) ...
    let no_quote = cocoon_daemon::tls::DevTls::with_key(Role::Proxy, boot_b.clone()).unwrap();
    assert!(
        ask(&no_quote, &kms, b_binding.clone()).await.is_err(),
        "a peer without a quote is refused in the handshake"
    );
    // ... or an image the root does not allow for proxies.
    let evil = td_tls(&net, Role::Proxy, "proxy-evil", &boot_b);
    assert!(
        ask(&evil, &kms, b_binding.clone()).await.is_err(),
        "a disallowed image is refused in the handshake"
    );
    // ... or the right image whose binding has expired.
    let expired = BootKeyBinding::sign(
        &b.key,
        Role::Proxy,
        &net.root,
        &b.wallet,
        &boot_b.verifying_key().to_bytes(),
        1,
    );
    let good_b = td_tls(&net, Role::Proxy, "proxy-good", &boot_b);
    let (status, body) = ask(&good_b, &kms, expired).await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
    // The same TD with B's valid binding gets B's key: the refusals above were the binding's.
    let (status, _) = ask(&good_b, &kms, b_binding).await.unwrap();
    assert_eq!(status, 200);

    // A worker gets a storage key and keeps signing with its boot key.
    let worker = td_keys(&net, &kms, Role::Worker, "worker-good", &b.wallet, &b.key)
        .await
        .expect("worker keys");
    assert_ne!(worker.storage, theirs.storage);

    // A second instance copies M from the first over mutual RA-TLS and releases the same keys.
    let replica = start_kms(&net, "kms", &kms.addr.to_string())
        .await
        .expect("replica");
    assert!(!replica.generated_master);
    let from_replica = td_keys(&net, &replica, Role::Proxy, "proxy-good", &a.wallet, &a.key)
        .await
        .expect("keys from the replica");
    assert_eq!(
        from_replica.signing.to_bytes(),
        first.signing.to_bytes(),
        "replicas derive the same P"
    );
    // A key service on an image the root does not allow for kms gets no master key.
    let rogue = start_kms(&net, "kms-evil", &kms.addr.to_string()).await;
    assert!(rogue.is_err(), "a disallowed kms image cannot replicate");
}

#[test]
fn key_file_and_dev_key_are_refused_in_tdx_mode() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("proxy.key");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    let collateral = att::fixtures_dir()
        .join("cocoon-tdx-quote.collateral.json")
        .display()
        .to_string();
    let with_file = TlsSection {
        mode: TlsMode::Tdx,
        key_file: key.display().to_string(),
        collateral_file: collateral.clone(),
        ..TlsSection::default()
    };
    let err = with_file.validate().unwrap_err().to_string();
    assert!(err.contains("tls.key_file") && err.contains("tdx"), "{err}");
    let with_dev = TlsSection {
        mode: TlsMode::Tdx,
        dev_key: "11".repeat(32),
        collateral_file: collateral,
        ..TlsSection::default()
    };
    assert!(with_dev.validate().is_err());
    // The same file is accepted (and labelled INSECURE) in simulated mode.
    let simulated = TlsSection {
        mode: TlsMode::Simulated,
        key_file: key.display().to_string(),
        ..TlsSection::default()
    };
    assert!(simulated.validate().is_ok());
}
