//! The registers of a TDX quote, through cocoon-attestation's DCAP parser (no signature check: the
//! replay only needs the values; verifying the quote is cocoon-attestation's job).

use cocoon_attestation::dcap::{Measurements, TdMeasurements, parse_quote};

use crate::{MeasureError, Result};

/// MRTD and RTMR0..3 of a TDX quote (v4 or v5).
pub fn td_measurements(quote: &[u8]) -> Result<TdMeasurements> {
    let (_, _, measurements, _) =
        parse_quote(quote).map_err(|e| MeasureError::Quote(e.to_string()))?;
    match measurements {
        Measurements::Td(m) => Ok(m),
        Measurements::Sgx { .. } => Err(MeasureError::Quote("an SGX quote, not TDX".to_owned())),
    }
}
