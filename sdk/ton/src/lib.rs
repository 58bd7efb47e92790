//! TON primitives for cocoon: addresses, cells and BoCs, mnemonics, wallets, amounts and the toncenter v2 client.
