//! What each entry point requires to be attached, mirrored from `contracts/<name>/fees.tolk` (a test
//! compares both ways). Values are nanoTON.

/// Root: governance operations.
pub const ROOT_OWNER_OP_VALUE: u128 = 10_000_000;
/// Root: minimum for `root_open_stake` / `root_open_escrow`; the rest is forwarded to the child.
pub const ROOT_OPEN_VALUE: u128 = 50_000_000;
/// Root: minimum for slashing reports.
pub const ROOT_REPORT_VALUE: u128 = 50_000_000;
/// Stake: kept from every deposit (and from the value of `stake_init`).
pub const STAKE_DEPOSIT_FEE: u128 = 5_000_000;
/// Stake: owner operations.
pub const STAKE_OWNER_OP_VALUE: u128 = 10_000_000;
/// Stake: kept out of the payout pool for storage.
pub const STAKE_RESERVE: u128 = 10_000_000;
/// Stake: minimum for `stake_claim_payout`; the rest rides along with the payout.
pub const STAKE_CLAIM_VALUE: u128 = 10_000_000;
/// Stake: value the root attaches to `stake_slash`.
pub const STAKE_SLASH_VALUE: u128 = 20_000_000;
/// Escrow: kept from every deposit (and from the value of `escrow_init`).
pub const ESCROW_DEPOSIT_FEE: u128 = 5_000_000;
/// Escrow: minimum for `escrow_submit_charge`.
pub const ESCROW_CHARGE_VALUE: u128 = 6_000_000;
/// Escrow: client operations.
pub const ESCROW_CLIENT_OP_VALUE: u128 = 10_000_000;

/// Every fee constant by its Tolk name.
pub const ALL: &[(&str, u128)] = &[
    ("ROOT_OWNER_OP_VALUE", ROOT_OWNER_OP_VALUE),
    ("ROOT_OPEN_VALUE", ROOT_OPEN_VALUE),
    ("ROOT_REPORT_VALUE", ROOT_REPORT_VALUE),
    ("STAKE_DEPOSIT_FEE", STAKE_DEPOSIT_FEE),
    ("STAKE_OWNER_OP_VALUE", STAKE_OWNER_OP_VALUE),
    ("STAKE_RESERVE", STAKE_RESERVE),
    ("STAKE_CLAIM_VALUE", STAKE_CLAIM_VALUE),
    ("STAKE_SLASH_VALUE", STAKE_SLASH_VALUE),
    ("ESCROW_DEPOSIT_FEE", ESCROW_DEPOSIT_FEE),
    ("ESCROW_CHARGE_VALUE", ESCROW_CHARGE_VALUE),
    ("ESCROW_CLIENT_OP_VALUE", ESCROW_CLIENT_OP_VALUE),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `const NAME = ton("0.01")` lines of the Tolk fee files.
    fn tolk_fees() -> Vec<(String, u128)> {
        let files = [
            include_str!("../../../contracts/root/fees.tolk"),
            include_str!("../../../contracts/stake/fees.tolk"),
            include_str!("../../../contracts/escrow/fees.tolk"),
        ];
        let mut out = Vec::new();
        for line in files.iter().flat_map(|f| f.lines()) {
            let Some(rest) = line.trim().strip_prefix("const ") else {
                continue;
            };
            let (name, value) = rest.split_once('=').expect("const NAME = value");
            let value = value
                .trim()
                .trim_start_matches("ton(\"")
                .trim_end_matches("\")");
            let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
            let nanos = whole.parse::<u128>().expect("whole") * 1_000_000_000
                + format!("{frac:0<9}").parse::<u128>().expect("fraction");
            out.push((name.trim().to_owned(), nanos));
        }
        out
    }

    #[test]
    fn fee_constants_match_the_tolk_sources_both_ways() {
        let tolk = tolk_fees();
        assert_eq!(tolk.len(), ALL.len(), "{tolk:?}");
        for (name, value) in &tolk {
            assert!(
                ALL.contains(&(name.as_str(), *value)),
                "{name} = {value} not mirrored"
            );
        }
    }
}
