//! The one shape of every daemon: [`DaemonArgs::load`] the layered config, the role's `build`
//! (validate, TLS, chain, listeners, admin endpoint) returns a [`Daemon`], and
//! [`Daemon::run_until`] serves until a shutdown signal, then drains. The role binaries, the `cocoon`
//! CLI and the local network call the same `build`.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{ConfigError, Sources, Validate, load};
use crate::tls_config::{TlsMode, TlsSection};

/// How long a stopping daemon lets in-flight streams finish.
pub const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// The flags every daemon's `run` takes (each role flattens these into its own arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DaemonArgs {
    /// TOML config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override a config key: `--set key=value` (repeatable; beats env and file).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Shorthand for `--set tls.mode=dev-insecure`: no attestation at all (INSECURE).
    #[arg(long)]
    pub insecure_dev_tls: bool,
    /// JSON logs.
    #[arg(long)]
    pub json_logs: bool,
}

impl DaemonArgs {
    /// Starts logging and loads the config from the file, `COCOON_*` and `--set`.
    pub fn load<T>(&self) -> Result<T, ConfigError>
    where
        T: Serialize + DeserializeOwned + Default + Validate,
    {
        crate::init_tracing(self.json_logs);
        load(&Sources::from_process(
            self.config.as_deref(),
            self.set.clone(),
        ))
    }
}

/// The `[tls]` section after `--insecure-dev-tls`; a role's top-level `dev_key` still works when
/// the section names no key.
pub fn effective_tls(tls: &TlsSection, dev_key: &str, insecure_dev_tls: bool) -> TlsSection {
    let mut tls = tls.clone();
    if insecure_dev_tls {
        tls.mode = TlsMode::DevInsecure;
    }
    if tls.dev_key.is_empty() && tls.key_file.is_empty() && !dev_key.is_empty() {
        tls.dev_key = dev_key.to_owned();
    }
    tls
}

/// A banner: `fields` (addresses) followed by the attested identity `tls` presents (key, image hash,
/// TEE, whether it is insecure), the same keys for every role.
pub fn identity_banner(
    tls: &dyn crate::tls::HopTls,
    fields: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let identity = tls.identity();
    let mut banner = fields;
    banner.insert("key".into(), hex::encode(identity.public_key).into());
    banner.insert("image_hash".into(), hex::encode(identity.image_hash).into());
    banner.insert("tee".into(), serde_json::json!(identity.tee));
    banner.insert("insecure".into(), identity.insecure.into());
    serde_json::Value::Object(banner)
}

/// A built, serving daemon.
#[allow(async_fn_in_trait)]
pub trait Daemon: Sized {
    /// What the daemon prints on stdout once it serves (addresses, key), one JSON line.
    fn banner(&self) -> serde_json::Value;

    /// Drains in-flight work for up to `grace`, then stops everything it started.
    async fn shutdown(self, grace: Duration);

    /// Prints the banner, serves until `stop` resolves, then drains for [`DRAIN_GRACE`].
    async fn run_until(self, stop: impl Future<Output = ()>) {
        println!("{}", self.banner());
        stop.await;
        tracing::info!("draining");
        self.shutdown(DRAIN_GRACE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_flag_and_top_level_key_reach_the_tls_section() {
        let key = "11".repeat(32);
        let tls = effective_tls(&TlsSection::default(), &key, true);
        assert_eq!(tls.mode, TlsMode::DevInsecure);
        assert_eq!(tls.dev_key, key);
        let tls = effective_tls(&TlsSection::default(), "", false);
        assert_eq!(tls.mode, TlsMode::Tdx);
        assert!(tls.dev_key.is_empty());
        let own = TlsSection {
            key_file: "k".into(),
            ..TlsSection::default()
        };
        assert!(effective_tls(&own, &key, false).dev_key.is_empty());
    }
}
