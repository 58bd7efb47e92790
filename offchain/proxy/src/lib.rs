//! The cocoon proxy: admits clients, routes requests to workers, records charges and payouts, settles on chain.
