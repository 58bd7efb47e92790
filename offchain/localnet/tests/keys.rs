//! The key lifecycle of a local network (docs/security.md "Keys"), on the simulated provider: the
//! proxy's key comes from the key service, is the one the root registers, and comes back only
//! through the key service when the proxy restarts in a fresh data directory; a proxy process that
//! is not attested, or whose boot key its operator never bound, gets nothing.

use std::time::Duration;

use cocoon_daemon::tls::Role;
use cocoon_daemon::tls_config::{KeySource, TlsMode};
use cocoon_localnet::localnet::{EngineChoice, Funding, LocalNet};
use cocoon_onchain::allowlist::registered_proxies;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_key_survives_a_move_only_through_the_key_service() {
    let net = LocalNet::start(EngineChoice::Fixed, Funding::default())
        .await
        .unwrap();
    let c = net.chain.as_ref();
    assert_eq!(net.configs.proxy.tls.key_source, KeySource::Kms);
    assert_eq!(net.configs.worker.tls.key_source, KeySource::Kms);
    assert!(net.configs.proxy.tls.key_file.is_empty());

    // The proxy runs with P, the key the key service releases to its operator and the root registers.
    let p = net.proxy.tls.identity().public_key;
    let released = net
        .kms
        .service
        .public_key(Role::Proxy, net.parties.proxy_operator.address())
        .unwrap();
    assert_eq!(released.public_key, hex::encode(p));
    let registered = registered_proxies(c, &net.root.address).await.unwrap();
    assert_eq!(registered.len(), 1);
    assert_eq!(
        registered[0].key, p,
        "governance registered the released key"
    );
    // The worker signs with its boot key, which its owner bound in its stake.
    let w = net.worker.tls.identity().public_key;
    assert_ne!(w, p);

    // Moved to a fresh data directory (new ledger, new binding file, new boot key): the same P.
    let moved_dir = tempfile::tempdir().unwrap();
    let mut moved = net.configs.proxy.clone();
    moved.store_path = moved_dir.path().join("ledger.redb").display().to_string();
    moved.tls.kms_binding_file = moved_dir.path().join("proxy.binding").display().to_string();
    let again = net.build_proxy(moved.clone()).await.unwrap();
    assert_eq!(
        again.tls.identity().public_key,
        p,
        "P back from the key service"
    );
    let boot_file = format!("{}.boot-key", moved.tls.kms_binding_file);
    let boot = std::fs::read_to_string(&boot_file).unwrap();
    assert_ne!(boot.trim(), hex::encode(p), "the boot key is not P");
    let restarted_key = std::fs::read_dir(moved_dir.path())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap_or_default())
        .any(|bytes| {
            let text = String::from_utf8_lossy(&bytes).to_string();
            text.contains(&hex::encode(again.tls.signing_key().to_bytes()))
        });
    assert!(!restarted_key, "P is never written to the data directory");
    cocoon_daemon::launch::Daemon::shutdown(again, Duration::from_secs(1)).await;

    // The same proxy whose operator never binds its boot key gets nothing (and says why).
    let unbound_dir = tempfile::tempdir().unwrap();
    let mut unbound = moved.clone();
    unbound.store_path = unbound_dir.path().join("ledger.redb").display().to_string();
    unbound.tls.kms_binding_file = unbound_dir
        .path()
        .join("proxy.binding")
        .display()
        .to_string();
    unbound.tls.kms_wait_ms = 1500;
    let refused = cocoon_proxy::daemon::build(
        unbound.clone(),
        &cocoon_proxy::daemon::RunOptions::default(),
    )
    .await;
    let message = format!("{:#}", refused.expect_err("no binding, no key"));
    assert!(
        message.contains("no keys from the key service"),
        "{message}"
    );
    assert!(message.contains("binding"), "{message}");

    // A proxy process that is not attested (development TLS, no quote) with its operator's binding
    // gets nothing: the key service refuses it in the handshake.
    let unattested_dir = tempfile::tempdir().unwrap();
    let mut unattested = unbound.clone();
    unattested.tls.mode = TlsMode::DevInsecure;
    unattested.store_path = unattested_dir
        .path()
        .join("ledger.redb")
        .display()
        .to_string();
    unattested.tls.kms_binding_file = unattested_dir
        .path()
        .join("proxy.binding")
        .display()
        .to_string();
    let refused = net.build_proxy(unattested).await;
    let message = format!("{}", refused.expect_err("not attested, no key"));
    assert!(
        message.contains("no keys from the key service"),
        "{message}"
    );
    assert!(message.contains("attestation it refuses"), "{message}");

    net.shutdown().await.unwrap();
}
