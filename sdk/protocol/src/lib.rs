//! cocoon's off-chain protocol: receipts, signed charges and payouts, pricing and the messages between hops.
