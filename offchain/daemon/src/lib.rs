//! Shared plumbing for cocoon daemons: configuration layering, HTTP serving, metrics, health and graceful shutdown.
//!
//! - [`config`]: one TOML file + `COCOON_*` environment + command-line overrides, in that increasing
//!   precedence, validated before any port is bound.
//! - [`tls`]: the [`tls::HopTls`] seam every hop's TLS goes through (RA-TLS from `cocoon-attestation`,
//!   or the loudly insecure development stand-in [`tls::DevTls`]); [`tls_config`]: the `[tls]` config
//!   section every daemon shares and the builder that turns it into a `HopTls`; [`keys`]: where the
//!   keys come from (local in development, a key service in a TEE), the one key seam.
//! - [`metrics`]: a small Prometheus text registry; [`admin`]: `/metrics`, `/healthz`, `/status`.
//! - [`shutdown`]: a shutdown signal and an in-flight tracker that lets streams drain.
//! - [`http`]: body type aliases and response helpers shared by the roles.
//! - [`chain_endpoint`]: the `[chain]` endpoint and wallet key every role flattens into its section.
//! - [`launch`]: the daemon shape (`DaemonArgs::load` -> role `build` -> [`launch::Daemon::run_until`]).
//! - [`measured`]: the measured configuration hash and the real-TEE endpoint rules.
//! - [`serve`]: the one accept / TLS / HTTP / drain loop; [`observe`]: the one observing body wrapper.

pub mod admin;
pub mod chain_endpoint;
pub mod config;
pub mod http;
pub mod keys;
pub mod launch;
pub mod measured;
pub mod metrics;
pub mod observe;
pub mod ra_tls;
pub mod serve;
pub mod shutdown;
pub mod tls;
pub mod tls_config;

/// Installs a `tracing` subscriber (RUST_LOG-style filter, default `info`; JSON when `json`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests, embedded use) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
