//! Every fixture's event log replays to its quote's registers (or the recorded expectations), and
//! corrupted or reordered logs fail naming the event.

use cocoon_measure::event::{Event, types};
use cocoon_measure::explain::{DigestCheck, explain};
use cocoon_measure::replay::{compare, first_suspect, replay};
use cocoon_measure::{MeasureError, ccel, dstack, quote};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn dstack_log(path: &str) -> (Vec<Event>, [[u8; 48]; 4]) {
    let r = dstack::parse_quote_response(&fixture(path)).expect("parse");
    let q = quote::td_measurements(&r.quote).expect("quote");
    (r.events, q.rtmr)
}

fn go_tdx_guest_log() -> Vec<Event> {
    ccel::parse_log(&fixture("go-tdx-guest/ccel_data.dat"))
        .expect("log")
        .1
}

#[test]
fn dstack_quote_report_replays_to_rtmr0_to_3() {
    let (events, quoted) = dstack_log("dstack/quote-report.json");
    assert_eq!(events.len(), 28);
    let checks = compare(&events, &quoted, &[0, 1, 2, 3]);
    assert!(checks.iter().all(|c| c.matches), "{checks:#?}");
    assert_eq!(
        checks.iter().map(|c| c.events).collect::<Vec<_>>(),
        [13, 5, 2, 8]
    );
}

#[test]
fn dstack_lite_replays_to_rtmr0_to_3_with_runtime_digests_recomputed() {
    let (events, quoted) = dstack_log("dstack/tdx-lite-getquote.json");
    assert_eq!(events.len(), 29);
    let checks = compare(&events, &quoted, &[0, 1, 2, 3]);
    assert!(checks.iter().all(|c| c.matches), "{checks:#?}");
}

#[test]
fn go_tdx_guest_ccel_replays_to_the_quotes_rtmr0_to_2() {
    let table = ccel::CcelTable::parse(&fixture("go-tdx-guest/ccel_table.dat")).expect("table");
    assert_eq!(table.cc_type, ccel::CC_TYPE_TDX);
    assert_eq!(table.log_area_len, 0x40000);
    let events = go_tdx_guest_log();
    assert_eq!(events.len(), 43);
    let q = quote::td_measurements(&fixture("go-tdx-guest/cos-113-tdx-quote.dat")).expect("quote");
    let checks = compare(&events, &q.rtmr, &[0, 1, 2]);
    assert!(checks.iter().all(|c| c.matches), "{checks:#?}");
}

/// The expectations trustee's own test asserts (deps/eventlog/src/lib.rs, test_rtmr_integrity).
#[test]
fn trustee_logs_replay_to_their_recorded_rtmrs() {
    let zero = "0".repeat(96);
    let cases: [(&str, [&str; 3]); 5] = [
        (
            "CCEL_data",
            [
                "2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8213543f4",
                "0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf",
                &zero,
            ],
        ),
        (
            "CCEL_data_ovmf",
            [
                "8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193",
                "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6",
                "94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a",
            ],
        ),
        (
            "CCEL_data_grub",
            [
                "cec0a104f691f60da2387fea3c2de00c4ac035e2bb479ff02edcce69039d9e9907f0b3e55031da3dc7038f423adebd79",
                "6c289e0c62182d41ebe97bdbc9872d10998a08eaa86adcdc684001a363207ee72942c7522cdf00a4bbc3d784bed7b670",
                "08919d017ba0e52cd6d966351c7de16fe76c1d3d3d3da4554239e4c7d16cb8b82a94e7eaea3a0e6e18eb690b999fd31e",
            ],
        ),
        (
            "CCEL_data_gcp",
            [
                "3300980705adf09d28b707b79699d9874892164280832be2c386a715b6e204e0897fb564a064f810659207ba862b304f",
                "204d49f78d29918fe7b2f694e76653861a0c2a018987d2c3a54266eff737232524cf0af68c4d180e2f8c2c0937f21967",
                &zero,
            ],
        ),
        (
            "CCEL_data_grub_gke",
            [
                "bc9945139042cf2cc75caf920aa57f14884ecfd7e893bccc51250c8ce90eb53ce72741e6adaa18183eb1331a87d4544a",
                "c17cb288a4dee302bb9ed8d27257a168f3264ad68cab53757f37eeaa7039657fa887cad65cf910e0fdc435ff110f8a7b",
                "334aeba2c985f8886cea97d1ecffbd512769d528b9a94009583db667ad7d2faa7d37fa145d75b192ceee2d2f10b2eb6d",
            ],
        ),
    ];
    for (name, expected) in cases {
        let (_, events) = ccel::parse_log(&fixture(&format!("trustee/{name}"))).expect(name);
        let r = replay(&events);
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(hex::encode(r[i]), *e, "{name} RTMR{i}");
        }
        assert_eq!(r[3], [0u8; 48], "{name} RTMR3");
    }
}

#[test]
fn no_fixture_event_contradicts_its_own_data() {
    let mut logs = vec![go_tdx_guest_log(), dstack_log("dstack/quote-report.json").0];
    for name in [
        "CCEL_data",
        "CCEL_data_ovmf",
        "CCEL_data_grub",
        "CCEL_data_gcp",
        "CCEL_data_grub_gke",
    ] {
        logs.push(
            ccel::parse_log(&fixture(&format!("trustee/{name}")))
                .expect(name)
                .1,
        );
    }
    let mut checked = 0;
    for log in &logs {
        for e in log {
            let x = explain(e);
            assert_ne!(x.digest_check, DigestCheck::Differs, "{x:?}");
            checked += usize::from(x.digest_check == DigestCheck::Matches);
        }
    }
    assert!(checked > 50, "only {checked} digests recomputed");
}

#[test]
fn explanations_decode_the_simple_payloads() {
    let (events, _) = dstack_log("dstack/quote-report.json");
    let what = |i: usize| explain(&events[i]).what;
    assert!(
        what(0).contains("TD HOB") && what(0).contains("0x809000"),
        "{}",
        what(0)
    );
    assert!(
        what(1).contains("configuration firmware volume") && what(1).contains("0x84000"),
        "{}",
        what(1)
    );
    assert!(
        what(2).ends_with(":SecureBoot unset (empty)"),
        "{}",
        what(2)
    );
    assert_eq!(explain(&events[7]).type_name, "EV_SEPARATOR");
    assert!(what(12).ends_with("BootOrder = [Boot0000]"), "{}", what(12));
    assert!(
        what(13).ends_with("Boot0000 = load option \"UiApp\""),
        "{}",
        what(13)
    );
    assert!(what(16).contains("kernel command line"), "{}", what(16));
    assert!(what(17).contains("initrd"), "{}", what(17));
    assert!(what(22).contains("compose-hash"), "{}", what(22));
    let grub = go_tdx_guest_log();
    assert!(
        explain(&grub[23]).what.contains("grub-lakitu.efi"),
        "{}",
        explain(&grub[23]).what
    );
    assert!(
        explain(&grub[40])
            .what
            .starts_with("boot loader: kernel_cmdline: /syslinux/vmlinuz.A")
    );
}

#[test]
fn a_corrupted_digest_fails_its_register_and_names_the_event() {
    let mut events = go_tdx_guest_log();
    let q = quote::td_measurements(&fixture("go-tdx-guest/cos-113-tdx-quote.dat")).expect("quote");
    assert_eq!(events[15].event_type, types::EV_SEPARATOR);
    events[15].digest[0] ^= 1;
    let checks = compare(&events, &q.rtmr, &[0, 1, 2]);
    assert!(checks[0].matches && checks[2].matches);
    assert!(!checks[1].matches);
    let suspect = checks[1].suspect.as_ref().expect("suspect");
    assert_eq!(suspect.index, 15, "{suspect:?}");
}

#[test]
fn a_corrupted_event_size_is_a_parse_error_naming_the_event() {
    let mut log = fixture("go-tdx-guest/ccel_data.dat");
    // Event 0 follows the header event; its size field sits after 12 + 2 + 48 bytes.
    let header = 32 + u32::from_le_bytes(log[28..32].try_into().expect("4")) as usize;
    let size_at = header + 12 + 2 + 48;
    log[size_at..size_at + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    match ccel::parse_log(&log) {
        Err(MeasureError::Event {
            index: 0, reason, ..
        }) => assert!(reason.contains("runs past"), "{reason}"),
        other => panic!("expected an error for event 0, got {other:?}"),
    }
    let mut log = fixture("go-tdx-guest/ccel_data.dat");
    log[header] = 9; // MR index 9 does not exist
    assert!(matches!(
        ccel::parse_log(&log),
        Err(MeasureError::Event { index: 0, .. })
    ));
}

fn swap(events: &mut [Event], a: usize, b: usize) {
    events.swap(a, b);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i;
    }
}

#[test]
fn a_reordered_log_fails_its_register_and_names_the_moved_event() {
    let (mut events, quoted) = dstack_log("dstack/quote-report.json");
    swap(&mut events, 3, 4); // PK and KEK
    let checks = compare(&events, &quoted, &[0, 1, 2, 3]);
    assert!(!checks[0].matches && checks[1..].iter().all(|c| c.matches));
    let s = checks[0].suspect.as_ref().expect("suspect");
    assert_eq!(s.index, 4, "{s:?}");
    assert!(s.reason.contains("out of order"), "{s:?}");

    let (mut events, _) = dstack_log("dstack/quote-report.json");
    swap(&mut events, 0, 1); // CFV before the TD HOB
    assert_eq!(first_suspect(&events, 0).map(|s| s.index), Some(0));

    let (mut events, _) = dstack_log("dstack/quote-report.json");
    swap(&mut events, 6, 7); // dbx after the separator
    assert_eq!(first_suspect(&events, 0).map(|s| s.index), Some(7));

    let mut events = go_tdx_guest_log();
    swap(&mut events, 41, 42); // Exit Boot Services returned before invoked
    assert_eq!(first_suspect(&events, 1).map(|s| s.index), Some(41));
}

#[test]
fn moving_an_event_across_registers_changes_nothing_it_does_not_extend() {
    let (mut events, quoted) = dstack_log("dstack/quote-report.json");
    swap(&mut events, 10, 11); // an RTMR0 and an RTMR1 event: each register keeps its order
    assert!(
        compare(&events, &quoted, &[0, 1, 2, 3])
            .iter()
            .all(|c| c.matches)
    );
}
