//! `x-request-id`: every gateway response carries one, the log line and the stored receipt name it,
//! so a user can find the receipt of a request (`GET /cocoon/v1/receipts?request_id=…`).

use hyper::HeaderMap;

/// The header, as apps and OpenAI's SDKs spell it.
pub const HEADER: &str = "x-request-id";
/// Longest client-supplied id echoed back.
const MAX_LEN: usize = 128;

/// Whether a client's id can be echoed and stored as is: 1 to 128 characters of `A-Z a-z 0-9 - _ . :`
/// (UUIDs, ULIDs, OpenAI's `req_…`), nothing a log line or a header could be confused by.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

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
        for bad in ["", "has space", "quote\"", "ünï", &"x".repeat(129)] {
            assert!(!is_sane(bad), "{bad:?}");
        }
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
