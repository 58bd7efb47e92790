//! The key-service daemon: [`build`] assembles it from its config exactly as `cocoon-kms`,
//! `cocoon kms run` and the local network run it; [`run`] is the binary's whole life.
//!
//! Build order: read the root (network id, image allowlists incl. `kms` images), make this TD's
//! boot key and RA-TLS (`Role::Kms`), get the master key (fresh, or from `replicate_from` over mutual
//! RA-TLS), then serve [`KMS_KEYS_PATH`], [`KMS_PUBLIC_KEY_PATH`] and [`KMS_MASTER_PATH`] through
//! `cocoon_daemon::serve`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use cocoon_attestation as att;
use cocoon_daemon::admin::{AdminEndpoint, StatusFn};
use cocoon_daemon::config::Validate;
use cocoon_daemon::http::{Body, json_response, read_limited};
use cocoon_daemon::keys::{
    KMS_KEYS_PATH, KMS_MASTER_PATH, KMS_PUBLIC_KEY_PATH, KeyRequest, MasterAnswer, kms_request,
};
use cocoon_daemon::launch::{Daemon, DaemonArgs, effective_tls, identity_banner};
use cocoon_daemon::metrics::Registry;
use cocoon_daemon::serve::{HttpVersion, ServeOptions, serve};
use cocoon_daemon::shutdown::{Shutdown, os_signal};
use cocoon_daemon::tls::{HopTls, PeerIdentity, Role};
use cocoon_daemon::tls_config::{TlsMode, build_hop_tls};
use cocoon_onchain::allowlist::{RootAllowlist, root_state};
use hyper::{Method, Request, Response};

use crate::service::{ChainWalletKeys, KmsService, Refusal, WalletKeys};
use crate::{KmsConfig, Master};

/// Largest request body.
const REQUEST_LIMIT: usize = 16 * 1024;

/// What the command line (or an embedding network) adds to the config.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--insecure-dev-tls`.
    pub insecure_dev_tls: bool,
    /// Where wallets' public keys come from (`None`: the chain, `get_public_key`).
    pub wallets: Option<Arc<dyn WalletKeys>>,
}

/// A running key service.
pub struct KmsDaemon {
    /// Where TDs reach it.
    pub addr: std::net::SocketAddr,
    /// Its admin endpoint.
    pub admin: AdminEndpoint,
    /// Its TLS (its own boot key, role `kms`).
    pub tls: Arc<dyn HopTls>,
    /// What it releases.
    pub service: Arc<KmsService>,
    /// Whether the master key was made here (`false`: copied from a replica).
    pub generated_master: bool,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for KmsDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsDaemon")
            .field("addr", &self.addr)
            .field("generated_master", &self.generated_master)
            .finish_non_exhaustive()
    }
}

impl Daemon for KmsDaemon {
    fn banner(&self) -> serde_json::Value {
        let mut fields = serde_json::Map::new();
        fields.insert("listen".into(), serde_json::json!(self.addr));
        fields.insert("admin_addr".into(), serde_json::json!(self.admin.addr));
        fields.insert(
            "master".into(),
            if self.generated_master {
                "generated"
            } else {
                "replicated"
            }
            .into(),
        );
        identity_banner(self.tls.as_ref(), fields)
    }

    async fn shutdown(self, grace: Duration) {
        self.shutdown.trigger();
        let _ = self.shutdown.drained(grace).await;
        for t in self.tasks {
            t.abort();
        }
        self.admin.stop();
    }
}

fn refusal(r: &Refusal) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": "kms_refused", "message": r.to_string() } });
    json_response(r.status(), body.to_string().into_bytes())
}

fn answer<T: serde::Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_response(200, bytes),
        Err(e) => refusal(&Refusal::Malformed(e.to_string())),
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn handle(
    service: Arc<KmsService>,
    peer: Option<PeerIdentity>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let Some(peer) = peer else {
        return refusal(&Refusal::Malformed("no verified peer".into()));
    };
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::POST, KMS_KEYS_PATH) => {
            let body: Option<Bytes> = match read_limited(req.into_body(), REQUEST_LIMIT).await {
                Ok(b) => b,
                Err(e) => return refusal(&Refusal::Malformed(e.to_string())),
            };
            let Some(body) = body else {
                return refusal(&Refusal::Malformed("request too large".into()));
            };
            let request: KeyRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return refusal(&Refusal::Malformed(e.to_string())),
            };
            match service.release(&peer, &request).await {
                Ok(keys) => answer(&keys),
                Err(r) => {
                    tracing::warn!(role = %peer.role, boot_key = %hex::encode(peer.public_key), refusal = %r, "keys refused");
                    refusal(&r)
                }
            }
        }
        (Method::GET, KMS_PUBLIC_KEY_PATH) => {
            let role = query_param(&query, "role").and_then(|r| r.parse::<Role>().ok());
            let wallet =
                query_param(&query, "wallet").and_then(|w| cocoon_ton::parse_address(&w).ok());
            let (Some(role), Some(wallet)) = (role, wallet) else {
                return refusal(&Refusal::Malformed("role and wallet are required".into()));
            };
            match service.public_key(role, &wallet) {
                Ok(a) => answer(&a),
                Err(r) => refusal(&r),
            }
        }
        (Method::GET, KMS_MASTER_PATH) => match service.master_for(&peer) {
            Ok(master) => answer(&MasterAnswer { master }),
            Err(r) => {
                tracing::warn!(role = %peer.role, "master key refused to a non-replica");
                refusal(&r)
            }
        },
        _ => json_response(
            404,
            br#"{"error":{"code":"not_found","message":"no such path"}}"#.to_vec(),
        ),
    }
}

/// The master key copied from the replica at `url` (which must present an allowed kms image).
async fn replicate(tls: &dyn HopTls, url: &str) -> anyhow::Result<Master> {
    let (status, body) = kms_request(tls, url, Method::GET, KMS_MASTER_PATH, None)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| format!("copying the master key from {url}"))?;
    anyhow::ensure!(
        status == 200,
        "the replica at {url} refused the master key ({status}): {}",
        String::from_utf8_lossy(&body)
    );
    let answer: MasterAnswer = serde_json::from_slice(&body).context("the replica's answer")?;
    let mut m = [0u8; 32];
    hex::decode_to_slice(answer.master.trim(), &mut m).context("the replica's master key")?;
    Ok(Master::from_bytes(m))
}

/// Builds a key service from `config` exactly as the binary does and starts serving.
pub async fn build(config: KmsConfig, options: &BuildOptions) -> anyhow::Result<KmsDaemon> {
    let tls_section = effective_tls(&config.tls, "", options.insecure_dev_tls);
    let config = KmsConfig {
        tls: tls_section.clone(),
        ..config
    };
    config.validate().context("key service configuration")?;
    let client = config.chain.endpoint.client()?;
    let root = config.root_address()?;
    let root_storage = root_state(client.as_ref(), &root)
        .await
        .context("reading the root contract (is chain.root right and the API reachable?)")?;
    let allowlist = Arc::new(att::policy::CachingAllowlist::new(
        Arc::new(RootAllowlist::new(client.clone(), root.clone())),
        Duration::from_millis(config.chain.allowlist_refresh_ms),
        Duration::from_millis(config.chain.allowlist_max_stale_ms),
        Arc::new(att::SystemClock),
    ));
    allowlist
        .refresh()
        .await
        .context("reading the root's image allowlists")?;
    let tls = build_hop_tls(Role::Kms, &tls_section, allowlist.clone())
        .context("building the key service's TLS")?;
    let (master, generated_master) = if config.replicate_from.is_empty() {
        (Master::generate(), true)
    } else {
        (
            replicate(tls.as_ref(), &config.replicate_from).await?,
            false,
        )
    };
    let wallets = options
        .wallets
        .clone()
        .unwrap_or_else(|| Arc::new(ChainWalletKeys::new(client.clone())));
    let service = Arc::new(KmsService::new(
        master,
        root_storage.network_id,
        root.clone(),
        config.epoch,
        wallets,
        Arc::new(att::SystemClock),
    ));
    if tls_section.mode.is_insecure() {
        tracing::warn!(
            mode = tls_section.mode.as_str(),
            "INSECURE key service: {} — every key it releases is only as secret as this process; \
             development and CI only",
            if tls_section.mode == TlsMode::Simulated {
                "simulated quotes, nothing backed by hardware"
            } else {
                "no attestation at all"
            }
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    let serving = {
        let service = service.clone();
        tokio::spawn(serve(
            listener,
            ServeOptions::tls(tls.clone(), HttpVersion::Http2),
            shutdown.clone(),
            move |peer| {
                let service = service.clone();
                let identity = peer.identity;
                Some(hyper::service::service_fn(move |req| {
                    let (service, identity) = (service.clone(), identity.clone());
                    async move { Ok::<_, Infallible>(handle(service, identity, req).await) }
                }))
            },
        ))
    };
    let status: StatusFn = {
        let generated = generated_master;
        let epoch = config.epoch;
        let root_hex = root.to_hex();
        Arc::new(move || {
            serde_json::json!({
                "role": "kms",
                "root": root_hex,
                "epoch": epoch,
                "master": if generated { "generated" } else { "replicated" },
            })
        })
    };
    let admin = AdminEndpoint::start(
        &config.admin_listen,
        Registry::new(),
        status,
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding admin {}", config.admin_listen))?;
    tracing::info!(%addr, generated_master, "key service running");
    Ok(KmsDaemon {
        addr,
        admin,
        tls,
        service,
        generated_master,
        shutdown,
        tasks: vec![serving, allowlist.spawn_refresher()],
    })
}

/// Loads the configuration, builds the key service ([`build`]), and runs until SIGINT/SIGTERM.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let config: KmsConfig = args.load().context("loading key service configuration")?;
    let options = BuildOptions {
        insecure_dev_tls: args.insecure_dev_tls,
        wallets: None,
    };
    build(config, &options).await?.run_until(os_signal()).await;
    Ok(())
}
