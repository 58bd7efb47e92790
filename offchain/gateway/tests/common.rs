//! The gateway tests' network: `cocoon-testkit`'s in-process network (fake engine → worker(s) →
//! proxy → gateway), with the names these tests use.

#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used
)]

use cocoon_gateway::GatewayConfig;
use cocoon_protocol::PriceParams;
use cocoon_testkit::roles::proxy::ProxyConfig;
pub use cocoon_testkit::{FAKE_MODEL as MODEL, MemoryNetwork as Net, Resp, TlsKit};

pub const CREDIT: u128 = cocoon_testkit::DEFAULT_CREDIT;

pub fn params() -> PriceParams {
    PriceParams::default()
}

/// A network with tweaked proxy and gateway configs.
pub async fn start_with(
    coefficients: &[u32],
    credit: Option<u128>,
    tweak_proxy: impl FnOnce(&mut ProxyConfig) + Send,
    tweak_gateway: impl FnOnce(&mut GatewayConfig) + Send,
) -> Net {
    cocoon_testkit::NetworkBuilder::default()
        .workers(coefficients)
        .credit(credit)
        .proxy_config(tweak_proxy)
        .gateway_config(tweak_gateway)
        .start()
        .await
}

pub fn chat(content: &str, stream: bool) -> String {
    cocoon_testkit::http::chat_body(MODEL, content, stream)
}
