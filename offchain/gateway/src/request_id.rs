//! `x-request-id`: every gateway response carries one, the log line and the stored receipt name it,
//! so a user can find the receipt of a request (`GET /cocoon/v1/receipts?request_id=…`).

use hyper::HeaderMap;

/// The header, as apps and OpenAI's SDKs spell it.
pub const HEADER: &str = "x-request-id";
/// Whether a client's id can be echoed and stored as is (the rule bundle selections share).
pub use cocoon_audit::is_sane_request_id as is_sane;

/// A fresh id: `req_` and 128 random bits in hex.
pub fn generate() -> String {
    format!("req_{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// The client's id when it sent exactly one sane one, else a fresh one.
pub(crate) fn of_request(headers: &HeaderMap) -> String {
    let mut given = headers.get_all(HEADER).iter();
    match (given.next(), given.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .filter(|s| is_sane(s))
            .map_or_else(generate, str::to_owned),
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_echoed_and_others_replaced() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, "3f2a-UUID_like.v1:7".parse().unwrap());
        assert_eq!(of_request(&h), "3f2a-UUID_like.v1:7");
        h.insert(HEADER, "a b".parse().unwrap());
        let fresh = of_request(&h);
        assert!(fresh.starts_with("req_") && fresh.len() == 36, "{fresh}");
        assert!(is_sane(&fresh));
        assert_ne!(fresh, of_request(&h), "fresh ids differ");
        // Two ids: neither is trusted.
        h.insert(HEADER, "one".parse().unwrap());
        h.append(HEADER, "two".parse().unwrap());
        assert!(of_request(&h).starts_with("req_"));
        assert!(of_request(&HeaderMap::new()).starts_with("req_"));
    }
}
