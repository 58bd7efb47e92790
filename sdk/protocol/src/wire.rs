//! The HTTP contract between hops that is not an OpenAI body: the paths a proxy calls on a worker
//! connection, what a worker announces, how it answers a payout voucher, and the proxy path a
//! gateway fetches worker certificates from. Both sides of each hop use these names, so the roles
//! need not depend on each other. Header names are in [`crate::headers`].

/// `GET` on a worker connection (proxy → worker): the worker's [`Announcement`], polled.
pub const ANNOUNCE_PATH: &str = "/cocoon/v1/announce";

/// `POST` on a worker connection (proxy → worker): a signed payout voucher, body = its BoC
/// ([`PAYOUT_CONTENT_TYPE`]). The worker answers 200 with a [`PayoutAnswer`], or an OpenAI-shaped
/// error saying why it refused the voucher.
pub const PAYOUT_PATH: &str = "/cocoon/v1/payout";

/// Content type of a [`PAYOUT_PATH`] body.
pub const PAYOUT_CONTENT_TYPE: &str = "application/octet-stream";

/// Authority the proxy puts in request URIs on a worker connection (the connection already
/// chooses the worker; the name is only there to form an absolute URI).
pub const WORKER_AUTHORITY: &str = "worker";

/// Prefix of the proxy's worker certificate path (gateway → proxy), see [`worker_certificate_path`].
pub const WORKER_CERTIFICATE_PREFIX: &str = "/cocoon/v1/workers/";

/// Suffix of the proxy's worker certificate path, see [`worker_certificate_path`].
pub const WORKER_CERTIFICATE_SUFFIX: &str = "/certificate";

/// `GET` on the proxy (gateway → proxy): the RA-TLS certificate (DER) the worker with this
/// Ed25519 key presented, for proof bundles.
pub fn worker_certificate_path(worker_key: &[u8; 32]) -> String {
    format!(
        "{WORKER_CERTIFICATE_PREFIX}{}{WORKER_CERTIFICATE_SUFFIX}",
        hex::encode(worker_key)
    )
}

/// The worker key (hex, as sent) named by a [`worker_certificate_path`], or `None` for another path.
pub fn worker_certificate_key(path: &str) -> Option<&str> {
    path.strip_prefix(WORKER_CERTIFICATE_PREFIX)?
        .strip_suffix(WORKER_CERTIFICATE_SUFFIX)
}

/// What a worker tells a proxy about itself ([`ANNOUNCE_PATH`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Announcement {
    /// The served model name.
    pub model: String,
    /// Hash of the model weights, hex.
    pub model_hash: String,
    /// Current price coefficient, thousandths.
    pub coefficient: u32,
    /// Concurrent requests the worker accepts.
    pub capacity: u32,
    /// Requests in flight now.
    pub in_flight: u32,
    /// The GPU owner's wallet (`chain.owner`): the proxy binds this worker's key to it once the
    /// owner's worker stake on chain holds this key, and pays it. Empty without a chain.
    #[serde(default)]
    pub owner: String,
}

/// A worker's 200 answer to a payout voucher ([`PAYOUT_PATH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PayoutAnswer {
    /// The voucher pays more than the one held for its vault, and replaced it.
    pub kept: bool,
    /// The worker has an owner wallet and will claim the voucher itself (the proxy then waits
    /// for the claim before paying it on its own).
    pub claims: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_path_round_trips_the_key() {
        let path = worker_certificate_path(&[0xab; 32]);
        assert_eq!(
            path,
            format!("/cocoon/v1/workers/{}/certificate", "ab".repeat(32))
        );
        assert_eq!(
            worker_certificate_key(&path),
            Some("ab".repeat(32).as_str())
        );
        assert_eq!(worker_certificate_key("/cocoon/v1/workers/x"), None);
        assert_eq!(worker_certificate_key("/v1/models"), None);
    }

    #[test]
    fn payout_answer_has_the_documented_shape() {
        let a = PayoutAnswer {
            kept: true,
            claims: false,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"kept":true,"claims":false}"#
        );
        let old: Announcement = serde_json::from_str(
            r#"{"model":"m","model_hash":"00","coefficient":1000,"capacity":4,"in_flight":0}"#,
        )
        .unwrap();
        assert_eq!(
            old.owner, "",
            "an announcement without an owner still parses"
        );
    }
}
