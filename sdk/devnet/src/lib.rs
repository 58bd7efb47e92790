//! Start, stop and inspect the local devnet (a toncenter-compatible server over @ton/sandbox).
