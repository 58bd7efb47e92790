//! HTTP header and trailer names used between hops. All are lowercase, as HTTP/2 requires.

/// Request header (app → gateway → proxy → worker): the highest worker price coefficient the client
/// accepts, in thousandths (`1000` = 1.0×). The proxy only picks workers at or below it and the worker
/// refuses a request whose cap is below its current coefficient.
pub const MAX_COEFFICIENT: &str = "x-cocoon-max-coefficient";
/// Request header (app → gateway → proxy): a per-request timeout in milliseconds, capped by the proxy.
pub const TIMEOUT_MS: &str = "x-cocoon-timeout-ms";
/// Request header (gateway → proxy): the client's wallet, whose escrow with this proxy pays. The proxy
/// binds the gateway's TLS key to it once that escrow's `client_key` is this key (read from chain
/// once, then kept current by its refresh), and refuses the request otherwise.
pub const CLIENT_WALLET: &str = "x-cocoon-client-wallet";
/// Request header (proxy → worker): the proxy's request id, echoed in logs on both sides.
pub const REQUEST_ID: &str = "x-cocoon-request-id";
/// Trailer (worker → proxy → gateway): the worker's signed receipt, see [`crate::receipt`].
pub const RECEIPT: &str = "x-cocoon-receipt";
/// Response header (proxy → gateway): the worker's attested Ed25519 key, hex.
pub const WORKER_KEY: &str = "x-cocoon-worker-key";
/// Response header (proxy → gateway): the worker's TEE image hash, hex.
pub const WORKER_IMAGE: &str = "x-cocoon-worker-image";
/// Response header (proxy → gateway): `1` when the worker's attestation is simulated (insecure).
pub const WORKER_INSECURE: &str = "x-cocoon-worker-insecure";
/// Response header (proxy → gateway): the cost the proxy charged for this response, nanoTON.
/// Sent as a trailer because the cost is known only at the end.
pub const CHARGED_NANO: &str = "x-cocoon-charged-nanoton";
/// Response header (gateway → app): how the receipt of a non-streamed response checked out
/// (`verified`, or `unverified: <reason>`). Streamed responses are checked after the last byte and logged.
pub const RECEIPT_STATUS: &str = "x-cocoon-receipt-status";
