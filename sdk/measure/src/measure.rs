//! The offline calculator: from firmware, kernel, initrd, command line, the VM shape and the ACPI
//! blobs captured from the VMM, the events a TD with OVMF (TDVF) and a Linux EFI-stub kernel logs,
//! and the registers they yield.
//!
//! The RTMR0 sequence is OVMF's for direct kernel boot with Secure Boot variables unset: TD HOB,
//! CFV, SecureBoot, PK, KEK, db, dbx (all empty), separator, the three ACPI blobs QEMU's table
//! loader hands over (`etc/table-loader`, `etc/acpi/rsdp`, `etc/acpi/tables`), BootOrder = [0] and
//! Boot0000 = OVMF's UiApp. RTMR1: the patched kernel image, "Calling EFI Application from Boot
//! Option", separator, the two Exit Boot Services actions. RTMR2: command line and initrd. RTMR3:
//! nothing at boot (extended only at run time).

use serde::Serialize;
use sha2::{Digest, Sha384};

use crate::Result;
use crate::event::{Digest48, Event, types};
use crate::kernel::{
    QEMU_ACPI_DATA_SIZE, authenticode_sha384, cmdline_digest, initrd_digest, qemu_patch,
};
use crate::replay::replay;
use crate::td_hob::HobLayout;
use crate::tdvf::{PageAdding, Tdvf, guid_bytes};

/// EFI global variable GUID 8be4df61-93ca-11d2-aa0d-00e098032b8c.
pub const EFI_GLOBAL: [u8; 16] = guid_bytes(
    0x8be4df61,
    0x93ca,
    0x11d2,
    [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// EFI image security database GUID d719b2cb-3d3a-4596-a3bc-dad00e67656f.
const EFI_IMAGE_SECURITY_DB: [u8; 16] = guid_bytes(
    0xd719b2cb,
    0x3d3a,
    0x4596,
    [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);
/// OVMF's DXE firmware volume name, 7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1.
const OVMF_DXEFV: [u8; 16] = guid_bytes(
    0x7cb8bdc9,
    0xf8eb,
    0x4f34,
    [0xaa, 0xea, 0x3e, 0xe4, 0xaf, 0x65, 0x16, 0xa1],
);
/// edk2's UiApp file GUID, 462caa21-7614-4503-836e-8ab6f4662331.
const UIAPP_FILE: [u8; 16] = guid_bytes(
    0x462caa21,
    0x7614,
    0x4503,
    [0x83, 0x6e, 0x8a, 0xb6, 0xf4, 0x66, 0x23, 0x31],
);

/// The VM shape: what of the VMM's configuration enters the registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VmShape {
    /// Guest memory, bytes (decides the TD HOB and the initrd address in the kernel header).
    pub memory_size: u64,
    /// vCPUs (enters RTMR0 only through the ACPI tables, which are supplied as files).
    pub cpus: u32,
    /// QEMU's page-adding order (QEMU 8.x two-pass, 9.0 and later single-pass).
    pub page_adding: PageAdding,
}

/// The ACPI blobs QEMU's table loader gives the firmware (capture them from the VMM with the same
/// shape; OVMF measures each into RTMR0).
#[derive(Debug, Clone, Default)]
pub struct AcpiBlobs {
    /// `etc/table-loader`.
    pub loader: Vec<u8>,
    /// `etc/acpi/rsdp`.
    pub rsdp: Vec<u8>,
    /// `etc/acpi/tables`.
    pub tables: Vec<u8>,
}

/// Boot artifacts; each register is computed when its inputs are present.
#[derive(Debug, Clone, Default)]
pub struct Artifacts<'a> {
    /// The OVMF/TDVF image (MRTD, and the TD HOB layout and CFV of RTMR0).
    pub firmware: Option<&'a [u8]>,
    /// The ACPI blobs (RTMR0).
    pub acpi: Option<&'a AcpiBlobs>,
    /// The bzImage/EFI-stub kernel (RTMR1).
    pub kernel: Option<&'a [u8]>,
    /// The initrd (RTMR1 through the patched header, RTMR2).
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line (RTMR2).
    pub cmdline: Option<&'a str>,
}

/// A computed measurement; `None` marks a register whose inputs were not given.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// MRTD.
    #[serde(serialize_with = "opt_hex")]
    pub mrtd: Option<Digest48>,
    /// RTMR0..3.
    #[serde(serialize_with = "opt_hex_4")]
    pub rtmr: [Option<Digest48>; 4],
    /// The expected event log (the events of the computed registers).
    pub events: Vec<Event>,
    /// SHA-256(MRTD ‖ RTMR0..3), when all five are known.
    #[serde(serialize_with = "opt_hex")]
    pub image_hash: Option<[u8; 32]>,
}

/// Computes every register whose inputs are present.
pub fn measure(a: &Artifacts<'_>, shape: &VmShape) -> Result<Measurement> {
    let tdvf = a.firmware.map(Tdvf::parse).transpose()?;
    let mrtd = tdvf.as_ref().map(|t| t.mrtd(shape.page_adding));
    let mut events = Vec::new();
    let mut known = [false, false, false, true];
    if let (Some(t), Some(acpi)) = (&tdvf, a.acpi) {
        events.extend(rtmr0_events(t, acpi, shape.memory_size)?);
        known[0] = true;
    }
    if let Some(kernel) = a.kernel {
        let initrd_len = a.initrd.map_or(0, |i| i.len());
        let initrd_len = u32::try_from(initrd_len)
            .map_err(|_| crate::MeasureError::Kernel("initrd over 4 GiB".into()))?;
        let patched = qemu_patch(kernel, initrd_len, shape.memory_size, QEMU_ACPI_DATA_SIZE)?;
        events.extend(rtmr1_log(authenticode_sha384(&patched)?));
        known[1] = true;
    }
    if let (Some(cmdline), Some(initrd)) = (a.cmdline, a.initrd) {
        events.extend(rtmr2_log(cmdline_digest(cmdline), initrd_digest(initrd)));
        known[2] = true;
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i;
    }
    let replayed = replay(&events);
    let rtmr: [Option<Digest48>; 4] = std::array::from_fn(|r| known[r].then_some(replayed[r]));
    let image_hash = match (mrtd, rtmr) {
        (Some(mrtd), [Some(r0), Some(r1), Some(r2), Some(r3)]) => Some(
            cocoon_attestation::dcap::TdMeasurements {
                mrtd,
                rtmr: [r0, r1, r2, r3],
            }
            .image_hash(),
        ),
        _ => None,
    };
    Ok(Measurement {
        mrtd,
        rtmr,
        events,
        image_hash,
    })
}

fn rtmr0_events(t: &Tdvf<'_>, acpi: &AcpiBlobs, memory_size: u64) -> Result<Vec<Event>> {
    let sha = |b: &[u8]| -> Digest48 { Sha384::digest(b).into() };
    let hob = HobLayout::from_sections(&t.sections)?.digest(memory_size)?;
    let cfv = sha(t
        .cfv()
        .ok_or_else(|| crate::MeasureError::Tdvf("no CFV section".into()))?);
    Ok(rtmr0_log(
        hob,
        cfv,
        [sha(&acpi.loader), sha(&acpi.rsdp), sha(&acpi.tables)],
    ))
}

/// The RTMR0 events of OVMF's TDX direct kernel boot, from the TD HOB digest, the CFV digest and
/// the digests of the three ACPI blobs (loader, RSDP, tables).
pub fn rtmr0_log(td_hob: Digest48, cfv: Digest48, acpi: [Digest48; 3]) -> Vec<Event> {
    let sha = |b: &[u8]| -> Digest48 { Sha384::digest(b).into() };
    let mut ev = vec![
        labelled(0, types::EV_EFI_HANDOFF_TABLES2, td_hob, "TD HOB"),
        labelled(
            0,
            types::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
            cfv,
            "configuration firmware volume",
        ),
    ];
    for (guid, name) in [
        (EFI_GLOBAL, "SecureBoot"),
        (EFI_GLOBAL, "PK"),
        (EFI_GLOBAL, "KEK"),
        (EFI_IMAGE_SECURITY_DB, "db"),
        (EFI_IMAGE_SECURITY_DB, "dbx"),
    ] {
        let data = uefi_variable_data(&guid, name, &[]);
        ev.push(Event {
            data: data.clone(),
            ..labelled(0, types::EV_EFI_VARIABLE_DRIVER_CONFIG, sha(&data), name)
        });
    }
    ev.push(separator(0));
    for (digest, name) in
        acpi.into_iter()
            .zip(["etc/table-loader", "etc/acpi/rsdp", "etc/acpi/tables"])
    {
        ev.push(labelled(0, types::EV_PLATFORM_CONFIG_FLAGS, digest, name));
    }
    let boot_order = [0u8, 0];
    let boot0000 = uiapp_load_option();
    ev.push(Event {
        data: uefi_variable_data(&EFI_GLOBAL, "BootOrder", &boot_order),
        ..labelled(
            0,
            types::EV_EFI_VARIABLE_BOOT,
            sha(&boot_order),
            "BootOrder",
        )
    });
    ev.push(Event {
        data: uefi_variable_data(&EFI_GLOBAL, "Boot0000", &boot0000),
        ..labelled(0, types::EV_EFI_VARIABLE_BOOT, sha(&boot0000), "Boot0000")
    });
    ev
}

/// The RTMR1 events of a directly booted EFI-stub kernel, from its patched Authenticode hash.
pub fn rtmr1_log(kernel_hash: Digest48) -> Vec<Event> {
    let action = |s: &str| {
        labelled(
            1,
            types::EV_EFI_ACTION,
            Sha384::digest(s.as_bytes()).into(),
            s,
        )
    };
    vec![
        labelled(
            1,
            types::EV_EFI_BOOT_SERVICES_APPLICATION,
            kernel_hash,
            "kernel (QEMU-patched, Authenticode)",
        ),
        action("Calling EFI Application from Boot Option"),
        separator(1),
        action("Exit Boot Services Invocation"),
        action("Exit Boot Services Returned with Success"),
    ]
}

/// The RTMR2 events of the EFI stub: command line, then initrd.
pub fn rtmr2_log(cmdline: Digest48, initrd: Digest48) -> Vec<Event> {
    vec![
        labelled(2, types::EV_EVENT_TAG, cmdline, "kernel command line"),
        labelled(2, types::EV_EVENT_TAG, initrd, "initrd"),
    ]
}

fn separator(rtmr: usize) -> Event {
    Event {
        data: vec![0; 4],
        ..labelled(
            rtmr,
            types::EV_SEPARATOR,
            Sha384::digest([0u8; 4]).into(),
            "separator",
        )
    }
}

fn labelled(rtmr: usize, event_type: u32, digest: Digest48, name: &str) -> Event {
    Event {
        index: 0,
        rtmr: Some(rtmr),
        event_type,
        digest,
        data: Vec::new(),
        name: Some(name.to_owned()),
    }
}

/// A UEFI_VARIABLE_DATA structure (what EV_EFI_VARIABLE_* events log).
pub fn uefi_variable_data(guid: &[u8; 16], name: &str, data: &[u8]) -> Vec<u8> {
    let name16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut v = Vec::with_capacity(32 + name16.len() + data.len());
    v.extend_from_slice(guid);
    v.extend_from_slice(&(name.encode_utf16().count() as u64).to_le_bytes());
    v.extend_from_slice(&(data.len() as u64).to_le_bytes());
    v.extend_from_slice(&name16);
    v.extend_from_slice(data);
    v
}

/// OVMF's Boot0000: an EFI_LOAD_OPTION for UiApp (active, hidden, application category) at
/// Fv(DXEFV)/FvFile(UiApp).
pub fn uiapp_load_option() -> Vec<u8> {
    let mut path = Vec::new();
    for (sub, guid) in [(7u8, OVMF_DXEFV), (6u8, UIAPP_FILE)] {
        path.extend_from_slice(&[4, sub, 20, 0]);
        path.extend_from_slice(&guid);
    }
    path.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    let mut v = Vec::new();
    v.extend_from_slice(&0x109u32.to_le_bytes());
    v.extend_from_slice(&(path.len() as u16).to_le_bytes());
    v.extend("UiApp\0".encode_utf16().flat_map(u16::to_le_bytes));
    v.extend_from_slice(&path);
    v
}

fn opt_hex<S: serde::Serializer, const N: usize>(
    v: &Option<[u8; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

fn opt_hex_4<S: serde::Serializer>(v: &[Option<Digest48>; 4], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(4))?;
    for r in v {
        seq.serialize_element(&r.map(hex::encode))?;
    }
    seq.end()
}
