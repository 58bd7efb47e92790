//! cocoon's on-chain interface: embedded contract code, opcodes, error codes, message builders and state decoders.
