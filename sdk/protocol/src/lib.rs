//! cocoon's off-chain protocol: receipts, signed charges and payouts, pricing and the messages between hops.
//!
//! Everything here is pure data and arithmetic: no sockets, no clocks except where a caller passes one in.
//! The daemons (`cocoon-proxy`, `cocoon-worker`, `cocoon-gateway`) build on these types; an auditor's tool
//! can verify a [`receipt::SignedReceipt`] with nothing but this crate.

pub mod api;
pub mod headers;
pub mod pricing;
pub mod receipt;
pub mod sse;
pub mod voucher;
pub mod wire;

pub use api::{ApiError, Endpoint, ErrorCode, ParsedRequest, RequestLimits};
pub use pricing::{Coefficient, Cost, PriceParams, PricingError, Usage};
pub use receipt::{Receipt, ReceiptError, SignedReceipt};
pub use voucher::{ChargeVoucher, PayoutVoucher, SignedVoucher, VoucherError};
pub use wire::{Announcement, PayoutAnswer};
