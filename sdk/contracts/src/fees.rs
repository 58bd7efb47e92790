//! What each entry point requires to be attached, generated at build time from
//! `contracts/<name>/fees.tolk`, so the SDK always attaches what the compiled contracts expect.
//! Values are nanoTON.

include!(concat!(env!("OUT_DIR"), "/fees.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fee_file_is_mirrored() {
        let names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        for needed in [
            "ROOT_OPEN_VALUE",
            "STAKE_DEPOSIT_FEE",
            "ESCROW_CHARGE_VALUE",
        ] {
            assert!(names.contains(&needed), "{needed} missing from {names:?}");
        }
        assert_eq!(
            ROOT_OWNER_OP_VALUE, 10_000_000,
            "ton(\"0.01\") is 10^7 nanoTON"
        );
        assert!(ALL.iter().all(|(_, v)| *v > 0));
    }
}
