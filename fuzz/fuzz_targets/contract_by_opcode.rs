//! Fuzz target: decoding by leading opcode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cocoon_drills::targets::contract_by_opcode(data);
});
