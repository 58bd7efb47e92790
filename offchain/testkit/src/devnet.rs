//! A local devnet (`cocoon-devnet`) and a client for it, as the devnet-backed tests start them.

use std::sync::Arc;
use std::time::Duration;

use cocoon_devnet::{Devnet, DevnetOptions};
use cocoon_ton::{HttpTonClient, TonClient, TonClientConfig};

/// How often the devnet client polls for transactions (the devnet answers at once).
const DEVNET_POLL: Duration = Duration::from_millis(50);

/// Starts a devnet (panics with a hint when it cannot: `make setup` installs it) and a client that
/// polls it every 50 ms and retries a failed call `max_retries` times.
pub async fn start_devnet(max_retries: u32) -> (Devnet, Arc<dyn TonClient>) {
    let devnet = Devnet::start(DevnetOptions::default())
        .await
        .unwrap_or_else(|e| panic!("devnet (make setup installs the sandbox): {e}"));
    let mut cfg = TonClientConfig::new(devnet.url());
    cfg.poll_interval = DEVNET_POLL;
    cfg.max_retries = max_retries;
    let client = HttpTonClient::new(cfg).unwrap_or_else(|e| panic!("devnet client: {e}"));
    (devnet, Arc::new(client))
}
