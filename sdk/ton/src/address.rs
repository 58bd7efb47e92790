//! Addresses in raw (`0:hex`) and user-friendly (base64, bounceable/testnet flags) forms.

use std::str::FromStr;

use tonlib_core::TonAddress;

use crate::TonError;

/// Which TON network a key, wallet or address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// The production network (global id -239).
    #[default]
    Mainnet,
    /// The test network (global id -3); the local devnet uses these conventions too.
    Testnet,
}

impl Network {
    /// True for test networks (the user-friendly address "testnet only" flag).
    pub fn is_testnet(self) -> bool {
        matches!(self, Network::Testnet)
    }
}

impl FromStr for Network {
    type Err = TonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" | "devnet" => Ok(Network::Testnet),
            other => Err(TonError::InvalidArgument(format!(
                "unknown network {other:?} (mainnet, testnet)"
            ))),
        }
    }
}

/// The flags a user-friendly address carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FriendlyFlags {
    /// bounceable (`EQ…`/`kQ…`) or not (`UQ…`/`0Q…`)
    pub bounceable: bool,
    /// test-network only
    pub testnet: bool,
}

/// Parses an address in raw (`0:…`) or user-friendly (url-safe or standard base64) form.
pub fn parse_address(text: &str) -> Result<TonAddress, TonError> {
    parse_address_with_flags(text).map(|(addr, _)| addr)
}

/// Parses an address and returns the flags of its user-friendly form (`None` for the raw form).
pub fn parse_address_with_flags(
    text: &str,
) -> Result<(TonAddress, Option<FriendlyFlags>), TonError> {
    let s = text.trim();
    let bad = |e: tonlib_core::TonAddressParseError| TonError::Address {
        input: text.to_string(),
        reason: e.to_string(),
    };
    if s.contains(':') {
        return TonAddress::from_hex_str(s).map(|a| (a, None)).map_err(bad);
    }
    let (addr, non_bounceable, testnet) = if s.contains('-') || s.contains('_') {
        TonAddress::from_base64_url_flags(s).map_err(bad)?
    } else {
        TonAddress::from_base64_std_flags(s).map_err(bad)?
    };
    Ok((
        addr,
        Some(FriendlyFlags {
            bounceable: !non_bounceable,
            testnet,
        }),
    ))
}

/// The raw form, `workchain:hex`.
pub fn to_raw(addr: &TonAddress) -> String {
    addr.to_hex()
}

/// The user-friendly url-safe form with the given flags.
pub fn to_friendly(addr: &TonAddress, bounceable: bool, network: Network) -> String {
    addr.to_base64_url_flags(!bounceable, network.is_testnet())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRIENDLY: &str = "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3";

    #[test]
    fn parses_both_forms_and_keeps_flags() {
        let (addr, flags) = parse_address_with_flags(FRIENDLY).expect("friendly");
        assert_eq!(
            flags,
            Some(FriendlyFlags {
                bounceable: true,
                testnet: false
            })
        );
        let raw = to_raw(&addr);
        assert!(raw.starts_with("0:"));
        let (again, flags) = parse_address_with_flags(&raw).expect("raw");
        assert_eq!(again, addr);
        assert_eq!(flags, None);
        let nb_test = to_friendly(&addr, false, Network::Testnet);
        let (same, flags) = parse_address_with_flags(&nb_test).expect("testnet form");
        assert_eq!(same, addr);
        assert_eq!(
            flags,
            Some(FriendlyFlags {
                bounceable: false,
                testnet: true
            })
        );
        assert_eq!(to_friendly(&addr, true, Network::Mainnet), FRIENDLY);
    }

    #[test]
    fn refuses_garbage_and_bad_checksums() {
        assert!(parse_address("hello").is_err());
        assert!(parse_address("0:zz").is_err());
        let mut broken = FRIENDLY.to_string();
        broken.replace_range(47..48, "A");
        assert!(parse_address(&broken).is_err());
    }
}
