//! Fuzz target: completion request bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ =
        cocoon_drills::targets::openai_request(cocoon_protocol::api::Endpoint::Completions, data);
});
