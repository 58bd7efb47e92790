//! Computed values against the fixtures: TD HOB digests by memory size, the RTMR0..2 event
//! sequences, and MRTD, Authenticode and QEMU's kernel patch on synthetic inputs.

use cocoon_measure::event::Event;
use cocoon_measure::kernel::{
    QEMU_ACPI_DATA_SIZE, authenticode_sha384, cmdline_digest, qemu_patch,
};
use cocoon_measure::measure::{
    EFI_GLOBAL, rtmr0_log, rtmr1_log, rtmr2_log, uefi_variable_data, uiapp_load_option,
};
use cocoon_measure::replay::replay_digests;
use cocoon_measure::td_hob::HobLayout;
use cocoon_measure::tdvf::{ATTR_MR_EXTEND, ATTR_PAGE_AUG, PageAdding, Tdvf};
use cocoon_measure::{MeasureError, ccel, dstack, quote};
use sha2::{Digest, Sha384};

const GIB: u64 = 1 << 30;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn dstack(path: &str) -> (Vec<Event>, [[u8; 48]; 4], u64) {
    let r = dstack::parse_quote_response(&fixture(path)).expect("parse");
    let q = quote::td_measurements(&r.quote).expect("quote");
    let mem = r.memory_size().expect("memory_size");
    (r.events, q.rtmr, mem)
}

fn digests(events: &[Event], rtmr: usize) -> Vec<[u8; 48]> {
    events
        .iter()
        .filter(|e| e.rtmr == Some(rtmr))
        .map(|e| e.digest)
        .collect()
}

#[test]
fn td_hob_digest_follows_from_the_memory_size() {
    let hob = HobLayout::ovmf_default();
    // dstack: the VM config records the memory size.
    for path in ["dstack/quote-report.json", "dstack/tdx-lite-getquote.json"] {
        let (events, _, mem) = dstack(path);
        assert_eq!(
            hob.digest(mem).expect("hob"),
            events[0].digest,
            "{path} ({mem} bytes)"
        );
    }
    // trustee: no VM config; the sizes are derived (the only multiple of 512 MiB up to 1 TiB that fits).
    for (name, mem) in [("CCEL_data_ovmf", 2 * GIB), ("CCEL_data_grub", 10 * GIB)] {
        let (_, events) = ccel::parse_log(&fixture(&format!("trustee/{name}"))).expect(name);
        assert_eq!(hob.digest(mem).expect("hob"), events[0].digest, "{name}");
    }
    assert_eq!(
        hex::encode(hob.digest(2 * GIB).expect("hob")),
        "0b8772e5b0b41b83e6044a68397e02f49fb47066b4fbe4917ea2c45c64f323fdacbb37948f821ebaf8bc9c938ba8a749"
    );
    assert_eq!(
        hex::encode(hob.digest(64 * GIB).expect("hob")),
        "8ae1e425351df7992c444586eff99d35af3b779aa2b0e981cb4b73bc5b279f2ade19b6a62a203fc3c3bbdaae80af596d"
    );
    assert_ne!(
        hob.digest(2 * GIB).expect("hob"),
        hob.digest(3 * GIB).expect("hob")
    );
    assert!(matches!(hob.digest(0x80_0000), Err(MeasureError::Shape(_))));
}

#[test]
fn the_computed_event_sequences_replay_to_the_dstack_quotes() {
    for path in ["dstack/quote-report.json", "dstack/tdx-lite-getquote.json"] {
        let (events, quoted, mem) = dstack(path);
        let r0 = digests(&events, 0);
        // Inputs we lack (their firmware's CFV and their ACPI blobs) come from the log; the TD HOB,
        // Secure Boot variables, separator, BootOrder and Boot0000 are computed.
        let hob = HobLayout::ovmf_default().digest(mem).expect("hob");
        let ours = rtmr0_log(hob, r0[1], [r0[8], r0[9], r0[10]]);
        assert_eq!(
            replay_digests(ours.iter().map(|e| &e.digest)),
            quoted[0],
            "{path} RTMR0"
        );
        let r1 = digests(&events, 1);
        let ours = rtmr1_log(r1[0]);
        assert_eq!(
            replay_digests(ours.iter().map(|e| &e.digest)),
            quoted[1],
            "{path} RTMR1"
        );
        let r2 = digests(&events, 2);
        let ours = rtmr2_log(r2[0], r2[1]);
        assert_eq!(
            replay_digests(ours.iter().map(|e| &e.digest)),
            quoted[2],
            "{path} RTMR2"
        );
    }
}

#[test]
fn boot_variables_are_built_byte_for_byte_as_ovmf_logs_them() {
    let (events, _, _) = dstack("dstack/quote-report.json");
    assert_eq!(
        events[12].data,
        uefi_variable_data(&EFI_GLOBAL, "BootOrder", &[0, 0])
    );
    assert_eq!(
        events[13].data,
        uefi_variable_data(&EFI_GLOBAL, "Boot0000", &uiapp_load_option())
    );
    let ours = rtmr0_log([0; 48], [0; 48], [[0; 48]; 3]);
    for i in 2..=6 {
        assert_eq!(ours[i].data, events[i].data, "variable event {i}");
    }
}

#[test]
fn the_lite_fixture_records_the_two_pass_mrtd_its_qemu_8_quote_carries() {
    // tdx_measurement.measurement is CBOR; its "two_pass" value is the quote's MRTD (QEMU 8.2.2
    // adds pages in two passes). We cannot recompute it: the firmware is not in the fixture.
    let r = dstack::parse_quote_response(&fixture("dstack/tdx-lite-getquote.json")).expect("parse");
    let q = quote::td_measurements(&r.quote).expect("quote");
    assert_eq!(
        hex::encode(q.mrtd),
        "fd685522ce791dfef67414614eb07d03fc07a32c5a66f36288b329dab92b724b1564c73d436ffb9ea84488c51ac5a1c5"
    );
    assert_eq!(r.vm_config["qemu_version"], "8.2.2");
}

/// A minimal TDVF image: a 2-page BFV (extended), a TEMP_MEM page (added only) and a PAGE.AUG
/// page (neither), with the descriptor and OVMF's GUIDed table.
fn synthetic_firmware() -> Vec<u8> {
    let mut fw = vec![0u8; 0x4000];
    for (i, b) in fw[..0x2000].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    let desc = 0x2000;
    fw[desc..desc + 4].copy_from_slice(b"TDVF");
    fw[desc + 4..desc + 8].copy_from_slice(&(16u32 + 3 * 32).to_le_bytes());
    fw[desc + 8..desc + 12].copy_from_slice(&1u32.to_le_bytes());
    fw[desc + 12..desc + 16].copy_from_slice(&3u32.to_le_bytes());
    let sections: [(u32, u32, u64, u64, u32, u32); 3] = [
        (0, 0x2000, 0xffff_e000, 0x2000, 0, ATTR_MR_EXTEND),
        (0, 0, 0x80_0000, 0x1000, 3, 0),
        (0, 0, 0x90_0000, 0x1000, 4, ATTR_PAGE_AUG),
    ];
    for (i, (off, raw, addr, size, kind, attr)) in sections.into_iter().enumerate() {
        let at = desc + 16 + 32 * i;
        fw[at..at + 4].copy_from_slice(&off.to_le_bytes());
        fw[at + 4..at + 8].copy_from_slice(&raw.to_le_bytes());
        fw[at + 8..at + 16].copy_from_slice(&addr.to_le_bytes());
        fw[at + 16..at + 24].copy_from_slice(&size.to_le_bytes());
        fw[at + 24..at + 28].copy_from_slice(&kind.to_le_bytes());
        fw[at + 28..at + 32].copy_from_slice(&attr.to_le_bytes());
    }
    let guid = |s: &str| -> Vec<u8> {
        let h: Vec<u8> = hex::decode(s.replace('-', "")).expect("hex");
        let mut g = h.clone();
        g[..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        g
    };
    // [u32 offset from end][u16 22][metadata GUID][u16 total][footer GUID] then 0x20 bytes.
    let footer_end = fw.len() - 0x20;
    let mut table = Vec::new();
    table.extend_from_slice(&((fw.len() - desc) as u32).to_le_bytes());
    table.extend_from_slice(&22u16.to_le_bytes());
    table.extend(guid("e47a6535-984a-4798-865e-4685a7bf8ec2"));
    table.extend_from_slice(&((22 + 18) as u16).to_le_bytes());
    table.extend(guid("96b582de-1fb2-45f7-baea-a366c55a082d"));
    fw[footer_end - table.len()..footer_end].copy_from_slice(&table);
    fw
}

fn record(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut r = [0u8; 128];
    r[..op.len()].copy_from_slice(op);
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

#[test]
fn mrtd_hashes_page_adds_and_extends_in_the_vmms_order() {
    let fw = synthetic_firmware();
    let t = Tdvf::parse(&fw).expect("parse");
    assert_eq!(t.sections.len(), 3);
    let extend_page = |h: &mut Sha384, page: u64| {
        for c in 0..16u64 {
            let gpa = 0xffff_e000 + page * 0x1000 + c * 0x100;
            h.update(record(b"MR.EXTEND", gpa));
            let at = (page * 0x1000 + c * 0x100) as usize;
            h.update(&fw[at..at + 0x100]);
        }
    };
    let mut single = Sha384::new();
    for page in 0..2 {
        single.update(record(b"MEM.PAGE.ADD", 0xffff_e000 + page * 0x1000));
        extend_page(&mut single, page);
    }
    single.update(record(b"MEM.PAGE.ADD", 0x80_0000));
    let mut two = Sha384::new();
    two.update(record(b"MEM.PAGE.ADD", 0xffff_e000));
    two.update(record(b"MEM.PAGE.ADD", 0xffff_f000));
    extend_page(&mut two, 0);
    extend_page(&mut two, 1);
    two.update(record(b"MEM.PAGE.ADD", 0x80_0000));
    assert_eq!(
        t.mrtd(PageAdding::SinglePass),
        <[u8; 48]>::from(single.finalize())
    );
    assert_eq!(
        t.mrtd(PageAdding::TwoPass),
        <[u8; 48]>::from(two.finalize())
    );

    let mut broken = fw.clone();
    broken[fw.len() - 0x21] ^= 0xff; // the footer GUID
    assert!(matches!(Tdvf::parse(&broken), Err(MeasureError::Tdvf(_))));
}

/// A PE32+ image with one section and a certificate table appended.
fn synthetic_pe() -> Vec<u8> {
    let mut pe = vec![0u8; 0x600];
    pe[0..2].copy_from_slice(b"MZ");
    pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    pe[0x80..0x84].copy_from_slice(b"PE\0\0");
    let coff = 0x84;
    pe[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
    pe[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
    let opt = coff + 20;
    pe[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    pe[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes()); // SizeOfHeaders
    pe[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes()); // NumberOfRvaAndSizes
    let section = opt + 240;
    pe[section + 16..section + 20].copy_from_slice(&0x200u32.to_le_bytes());
    pe[section + 20..section + 24].copy_from_slice(&0x200u32.to_le_bytes());
    for b in &mut pe[0x200..0x400] {
        *b = 0x5a;
    }
    let cert = opt + 112 + 4 * 8;
    pe[cert..cert + 4].copy_from_slice(&0x500u32.to_le_bytes());
    pe[cert + 4..cert + 8].copy_from_slice(&0x100u32.to_le_bytes());
    pe
}

#[test]
fn authenticode_skips_checksum_and_certificates_but_not_code() {
    let pe = synthetic_pe();
    let base = authenticode_sha384(&pe).expect("hash");
    let opt = 0x84 + 20;
    let mut c = pe.clone();
    c[opt + 64] ^= 0xff; // checksum
    assert_eq!(authenticode_sha384(&c).expect("hash"), base);
    let mut c = pe.clone();
    c[0x580] ^= 0xff; // inside the certificate table
    assert_eq!(authenticode_sha384(&c).expect("hash"), base);
    let mut c = pe.clone();
    c[0x300] ^= 0xff; // section data
    assert_ne!(authenticode_sha384(&c).expect("hash"), base);
    let mut c = pe.clone();
    c[0x450] ^= 0xff; // trailing data outside the certificate table
    assert_ne!(authenticode_sha384(&c).expect("hash"), base);
    assert!(matches!(
        authenticode_sha384(&pe[..0x100]),
        Err(MeasureError::Kernel(_))
    ));
}

#[test]
fn qemu_places_the_initrd_by_low_memory_size() {
    let mut k = vec![0u8; 0x1000];
    k[0x206..0x208].copy_from_slice(&0x020cu16.to_le_bytes());
    k[0x236..0x238].copy_from_slice(&0x40u16.to_le_bytes());
    let addr = |mem: u64| {
        let p = qemu_patch(&k, 0x10_0000, mem, QEMU_ACPI_DATA_SIZE).expect("patch");
        u32::from_le_bytes(p[0x218..0x21c].try_into().expect("4"))
    };
    assert_eq!(addr(2 * GIB), addr(0xB000_0000));
    assert_eq!(addr(0xB000_0000), addr(64 * GIB));
    assert_ne!(addr(2 * GIB - 0x10_0000), addr(2 * GIB));
    let p = qemu_patch(&k, 0x10_0000, 2 * GIB, QEMU_ACPI_DATA_SIZE).expect("patch");
    assert_eq!(p[0x210], 0xb0);
    assert_eq!(&p[0x21c..0x220], &0x10_0000u32.to_le_bytes());
}

#[test]
fn the_command_line_is_hashed_as_utf16_with_its_nul() {
    assert_eq!(
        cmdline_digest("ro"),
        <[u8; 48]>::from(Sha384::digest(b"r\0o\0\0\0"))
    );
}

/// Issue 15: the configuration event a measured daemon's (simulated) RTMR3 carries is a dstack
/// runtime event, so the replay helpers reproduce the register from the base RTMR3 and the
/// `config_hash` claim alone.
#[test]
fn the_measured_configuration_event_replays_into_the_simulated_rtmr3() {
    use cocoon_attestation::provider::simulated::{
        CONFIG_EVENT_NAME, RUNTIME_EVENT_TYPE, SimulatedProvider, config_event_digest,
    };
    let config_hash = [0x5a; 32];
    let digest = dstack::runtime_event_digest(RUNTIME_EVENT_TYPE, CONFIG_EVENT_NAME, &config_hash);
    assert_eq!(digest, config_event_digest(&config_hash));
    let base = SimulatedProvider::new("replay");
    let measured = SimulatedProvider::with_config("replay", &config_hash);
    let mut rtmr3 = base.measurements().rtmr[3];
    cocoon_measure::replay::extend(&mut rtmr3, &digest);
    assert_eq!(measured.measurements().rtmr[3], rtmr3);
    let mut other = base.measurements().rtmr[3];
    cocoon_measure::replay::extend(
        &mut other,
        &dstack::runtime_event_digest(RUNTIME_EVENT_TYPE, CONFIG_EVENT_NAME, &[0x5b; 32]),
    );
    assert_ne!(measured.measurements().rtmr[3], other);
}
