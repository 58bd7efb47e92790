//! Fuzz target: RA-TLS certificates (DER).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cocoon_drills::targets::certificate(data);
});
