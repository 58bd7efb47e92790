//! The cocoon client gateway: a local OpenAI-compatible endpoint that reaches the network over RA-TLS and verifies receipts.
