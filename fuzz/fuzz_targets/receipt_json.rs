//! Fuzz target: receipts as JSON.
#![no_main]

use std::sync::OnceLock;

use cocoon_drills::binding::Binding;
use libfuzzer_sys::fuzz_target;

fn binding() -> &'static Binding {
    static B: OnceLock<Binding> = OnceLock::new();
    B.get_or_init(|| Binding::drill().expect("drill binding"))
}

fuzz_target!(|data: &[u8]| {
    let _ = cocoon_drills::targets::receipt_json(data, binding());
});
