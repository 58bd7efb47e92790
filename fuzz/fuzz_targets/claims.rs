//! Fuzz target: RA-TLS claims encodings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cocoon_drills::targets::claims(data);
});
