//! Fuzz target: every contract message and state decoder, the first byte picking the type.
#![no_main]

use cocoon_contracts::registry::TYPE_NAMES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = TYPE_NAMES[usize::from(pick) % TYPE_NAMES.len()];
    let _ = cocoon_drills::targets::contract_message(name, rest);
});
