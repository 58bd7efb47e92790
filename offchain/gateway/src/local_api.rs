//! Who may use the gateway's local API: a web page on the same machine must not (issue 16,
//! finding 5).
//!
//! - **Host** (DNS rebinding): a page on `evil.example` whose name is re-pointed at 127.0.0.1 reaches
//!   the gateway with `Host: evil.example:8080`. Only the listen address, `localhost` (and, on a
//!   loopback listener, the other loopback literals), or a name in `allowed_hosts` is served; a
//!   port, when given, must be the listen port (unless the whole `host:port` is allowed).
//! - **Origin** (cross-site requests, e.g. a `text/plain` POST a page sends without a preflight):
//!   browsers send `Origin` on every cross-origin request and on every POST; a request carrying one
//!   is refused unless it is listed in `allowed_origins` (`*` allows any). Apps and SDKs send none.
//! - **Token**: compared in constant time ([`token_matches`]).

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use subtle::ConstantTimeEq;

/// Why a request was refused before it was routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No `Host` (nor HTTP/2 `:authority`).
    #[error("the request names no Host: refused (DNS-rebinding protection)")]
    NoHost,
    /// A `Host` that is not this gateway.
    #[error(
        "Host {0:?} is not this gateway's listen address or localhost: refused (DNS-rebinding \
         protection; add it to allowed_hosts if it is yours)"
    )]
    Host(String),
    /// A browser's cross-origin request.
    #[error(
        "cross-origin browser request from Origin {0:?} refused (add it to allowed_origins to \
         let that page use the gateway)"
    )]
    Origin(String),
}

/// Splits `host[:port]` (`[v6]:port` too) into the lowercase name and the port text.
fn split_host(host: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        return Some((name.to_ascii_lowercase(), port));
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => Some((name.to_ascii_lowercase(), Some(port))),
        Some(_) => None,
        None => Some((host.to_ascii_lowercase(), None)),
    }
}

/// Whether `name` (lowercase, brackets removed) is this listener's address.
fn is_listen_name(name: &str, listen: SocketAddr) -> bool {
    let name = name.trim_end_matches('.');
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let Ok(ip) = name.parse::<IpAddr>() else {
        return false;
    };
    let own = listen.ip();
    ip == own || (own.is_loopback() && ip.is_loopback()) || own.is_unspecified()
}

/// Checks `Host` (or `authority`) against the listen address and `allowed_hosts`.
pub fn check_host(
    host: Option<&str>,
    listen: SocketAddr,
    allowed_hosts: &[String],
) -> Result<(), Refused> {
    let host = host
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(Refused::NoHost)?;
    let refused = || Refused::Host(host.chars().take(200).collect());
    let (name, port) = split_host(host).ok_or_else(refused)?;
    if allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    let listed = allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(&name));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().ok() == Some(listen.port()));
    if port_ok && (listed || is_listen_name(&name, listen)) {
        return Ok(());
    }
    Err(refused())
}

/// Refuses a request carrying an `Origin` that `allowed_origins` does not list.
pub fn check_origin(headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), Refused> {
    let Some(origin) = headers.get(hyper::header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    let trimmed = origin.trim().trim_end_matches('/');
    let allowed = allowed_origins
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(trimmed));
    if allowed {
        Ok(())
    } else {
        Err(Refused::Origin(origin.chars().take(200).collect()))
    }
}

/// Whether `Authorization` carries `Bearer <token>`, compared in constant time (the length of the
/// expected value is not hidden; its bytes are).
pub fn token_matches(given: Option<&[u8]>, token: &str) -> bool {
    let expected = format!("Bearer {token}");
    match given {
        Some(g) => bool::from(g.ct_eq(expected.as_bytes())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn only_the_listen_address_and_localhost_are_served() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "localhost",
            "[::1]:8080",
            "127.0.0.2:8080",
        ] {
            assert_eq!(check_host(Some(ok), lo(), &[]), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "127.0.0.1.evil.example:8080",
            "localhost:9999",
            "10.0.0.1:8080",
            "localhost:8080:1",
            "[::1",
        ] {
            assert!(check_host(Some(bad), lo(), &[]).is_err(), "{bad}");
        }
        assert_eq!(check_host(None, lo(), &[]), Err(Refused::NoHost));
        let mine = ["gw.internal".to_owned(), "front:443".to_owned()];
        assert_eq!(check_host(Some("gw.internal:8080"), lo(), &mine), Ok(()));
        assert_eq!(check_host(Some("front:443"), lo(), &mine), Ok(()));
        assert!(check_host(Some("front:444"), lo(), &mine).is_err());
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(check_host(Some("192.168.1.5:8080"), any, &[]), Ok(()));
        assert!(check_host(Some("evil.example:8080"), any, &[]).is_err());
    }

    #[test]
    fn origins_are_refused_unless_listed() {
        let mut h = HeaderMap::new();
        assert_eq!(check_origin(&h, &[]), Ok(()));
        h.insert(
            hyper::header::ORIGIN,
            "https://evil.example".parse().unwrap(),
        );
        assert!(check_origin(&h, &[]).is_err());
        assert!(check_origin(&h, &["https://app.example".into()]).is_err());
        assert_eq!(check_origin(&h, &["https://evil.example/".into()]), Ok(()));
        assert_eq!(check_origin(&h, &["*".into()]), Ok(()));
        h.insert(hyper::header::ORIGIN, "null".parse().unwrap());
        assert!(check_origin(&h, &["https://app.example".into()]).is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(Some(b"Bearer s3cret"), "s3cret"));
        assert!(!token_matches(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!token_matches(Some(b"Bearer s3cretX"), "s3cret"));
        assert!(!token_matches(Some(b"bearer s3cret"), "s3cret"));
        assert!(!token_matches(None, "s3cret"));
    }
}
