//! TEE attestation for cocoon: quote providers, DCAP verification, RA-TLS certificates and mutual TLS 1.3.
