//! One measured event, whatever log format it came from, and the TCG event-type names.

use serde::Serialize;

/// A SHA-384 digest or register value.
pub type Digest48 = [u8; 48];

/// Event types of the TCG PC Client Platform Firmware Profile (and the UEFI range), plus dstack's
/// runtime event type, which its RTMR3 logs use.
pub mod types {
    /// EV_PREBOOT_CERT.
    pub const EV_PREBOOT_CERT: u32 = 0x0;
    /// EV_POST_CODE.
    pub const EV_POST_CODE: u32 = 0x1;
    /// EV_NO_ACTION: informational, never extended into a register.
    pub const EV_NO_ACTION: u32 = 0x3;
    /// EV_SEPARATOR.
    pub const EV_SEPARATOR: u32 = 0x4;
    /// EV_ACTION.
    pub const EV_ACTION: u32 = 0x5;
    /// EV_EVENT_TAG (the Linux EFI stub's command-line and initrd events).
    pub const EV_EVENT_TAG: u32 = 0x6;
    /// EV_S_CRTM_CONTENTS.
    pub const EV_S_CRTM_CONTENTS: u32 = 0x7;
    /// EV_S_CRTM_VERSION.
    pub const EV_S_CRTM_VERSION: u32 = 0x8;
    /// EV_CPU_MICROCODE.
    pub const EV_CPU_MICROCODE: u32 = 0x9;
    /// EV_PLATFORM_CONFIG_FLAGS (OVMF measures QEMU's ACPI blobs with it).
    pub const EV_PLATFORM_CONFIG_FLAGS: u32 = 0xa;
    /// EV_TABLE_OF_DEVICES.
    pub const EV_TABLE_OF_DEVICES: u32 = 0xb;
    /// EV_COMPACT_HASH.
    pub const EV_COMPACT_HASH: u32 = 0xc;
    /// EV_IPL (GRUB's commands and kernel command line).
    pub const EV_IPL: u32 = 0xd;
    /// EV_IPL_PARTITION_DATA.
    pub const EV_IPL_PARTITION_DATA: u32 = 0xe;
    /// EV_NONHOST_CODE.
    pub const EV_NONHOST_CODE: u32 = 0xf;
    /// EV_NONHOST_CONFIG.
    pub const EV_NONHOST_CONFIG: u32 = 0x10;
    /// EV_NONHOST_INFO.
    pub const EV_NONHOST_INFO: u32 = 0x11;
    /// EV_OMIT_BOOT_DEVICE_EVENTS.
    pub const EV_OMIT_BOOT_DEVICE_EVENTS: u32 = 0x12;
    /// EV_EFI_VARIABLE_DRIVER_CONFIG (Secure Boot configuration variables).
    pub const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
    /// EV_EFI_VARIABLE_BOOT (BootOrder, Boot####).
    pub const EV_EFI_VARIABLE_BOOT: u32 = 0x8000_0002;
    /// EV_EFI_BOOT_SERVICES_APPLICATION (a loaded EFI image: shim, GRUB, a kernel's EFI stub).
    pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
    /// EV_EFI_BOOT_SERVICES_DRIVER.
    pub const EV_EFI_BOOT_SERVICES_DRIVER: u32 = 0x8000_0004;
    /// EV_EFI_RUNTIME_SERVICES_DRIVER.
    pub const EV_EFI_RUNTIME_SERVICES_DRIVER: u32 = 0x8000_0005;
    /// EV_EFI_GPT_EVENT.
    pub const EV_EFI_GPT_EVENT: u32 = 0x8000_0006;
    /// EV_EFI_ACTION (fixed strings such as "Exit Boot Services Invocation").
    pub const EV_EFI_ACTION: u32 = 0x8000_0007;
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB.
    pub const EV_EFI_PLATFORM_FIRMWARE_BLOB: u32 = 0x8000_0008;
    /// EV_EFI_HANDOFF_TABLES.
    pub const EV_EFI_HANDOFF_TABLES: u32 = 0x8000_0009;
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2 (TDVF: the configuration firmware volume).
    pub const EV_EFI_PLATFORM_FIRMWARE_BLOB2: u32 = 0x8000_000a;
    /// EV_EFI_HANDOFF_TABLES2 (TDVF: the TD HOB).
    pub const EV_EFI_HANDOFF_TABLES2: u32 = 0x8000_000b;
    /// EV_EFI_VARIABLE_BOOT2.
    pub const EV_EFI_VARIABLE_BOOT2: u32 = 0x8000_000c;
    /// EV_EFI_HCRTM_EVENT.
    pub const EV_EFI_HCRTM_EVENT: u32 = 0x8000_0010;
    /// EV_EFI_VARIABLE_AUTHORITY (the db entry that authorised an image).
    pub const EV_EFI_VARIABLE_AUTHORITY: u32 = 0x8000_00e0;
    /// EV_EFI_SPDM_FIRMWARE_BLOB.
    pub const EV_EFI_SPDM_FIRMWARE_BLOB: u32 = 0x8000_00e1;
    /// EV_EFI_SPDM_FIRMWARE_CONFIG.
    pub const EV_EFI_SPDM_FIRMWARE_CONFIG: u32 = 0x8000_00e2;
    /// dstack's runtime event (RTMR3): digest = SHA-384(type LE ‖ ":" ‖ name ‖ ":" ‖ payload).
    pub const DSTACK_RUNTIME_EVENT: u32 = 0x0800_0001;
}

/// The TCG name of an event type, or `None` for a type we do not know.
pub fn type_name(event_type: u32) -> Option<&'static str> {
    use types::*;
    Some(match event_type {
        EV_PREBOOT_CERT => "EV_PREBOOT_CERT",
        EV_POST_CODE => "EV_POST_CODE",
        EV_NO_ACTION => "EV_NO_ACTION",
        EV_SEPARATOR => "EV_SEPARATOR",
        EV_ACTION => "EV_ACTION",
        EV_EVENT_TAG => "EV_EVENT_TAG",
        EV_S_CRTM_CONTENTS => "EV_S_CRTM_CONTENTS",
        EV_S_CRTM_VERSION => "EV_S_CRTM_VERSION",
        EV_CPU_MICROCODE => "EV_CPU_MICROCODE",
        EV_PLATFORM_CONFIG_FLAGS => "EV_PLATFORM_CONFIG_FLAGS",
        EV_TABLE_OF_DEVICES => "EV_TABLE_OF_DEVICES",
        EV_COMPACT_HASH => "EV_COMPACT_HASH",
        EV_IPL => "EV_IPL",
        EV_IPL_PARTITION_DATA => "EV_IPL_PARTITION_DATA",
        EV_NONHOST_CODE => "EV_NONHOST_CODE",
        EV_NONHOST_CONFIG => "EV_NONHOST_CONFIG",
        EV_NONHOST_INFO => "EV_NONHOST_INFO",
        EV_OMIT_BOOT_DEVICE_EVENTS => "EV_OMIT_BOOT_DEVICE_EVENTS",
        EV_EFI_VARIABLE_DRIVER_CONFIG => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        EV_EFI_VARIABLE_BOOT => "EV_EFI_VARIABLE_BOOT",
        EV_EFI_BOOT_SERVICES_APPLICATION => "EV_EFI_BOOT_SERVICES_APPLICATION",
        EV_EFI_BOOT_SERVICES_DRIVER => "EV_EFI_BOOT_SERVICES_DRIVER",
        EV_EFI_RUNTIME_SERVICES_DRIVER => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        EV_EFI_GPT_EVENT => "EV_EFI_GPT_EVENT",
        EV_EFI_ACTION => "EV_EFI_ACTION",
        EV_EFI_PLATFORM_FIRMWARE_BLOB => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        EV_EFI_HANDOFF_TABLES => "EV_EFI_HANDOFF_TABLES",
        EV_EFI_PLATFORM_FIRMWARE_BLOB2 => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        EV_EFI_HANDOFF_TABLES2 => "EV_EFI_HANDOFF_TABLES2",
        EV_EFI_VARIABLE_BOOT2 => "EV_EFI_VARIABLE_BOOT2",
        EV_EFI_HCRTM_EVENT => "EV_EFI_HCRTM_EVENT",
        EV_EFI_VARIABLE_AUTHORITY => "EV_EFI_VARIABLE_AUTHORITY",
        EV_EFI_SPDM_FIRMWARE_BLOB => "EV_EFI_SPDM_FIRMWARE_BLOB",
        EV_EFI_SPDM_FIRMWARE_CONFIG => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        DSTACK_RUNTIME_EVENT => "DSTACK_RUNTIME_EVENT",
        _ => return None,
    })
}

/// One event of a log, normalised to the RTMR it extends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Position in the log, 0-based (a CCEL's header event is not counted).
    pub index: usize,
    /// The RTMR (0..=3) this event extends; `None` for events that extend nothing (EV_NO_ACTION,
    /// or CC MR index 0, which is MRTD and cannot be extended at run time).
    pub rtmr: Option<usize>,
    /// The event type.
    pub event_type: u32,
    /// The SHA-384 digest that was extended.
    #[serde(with = "hex_48")]
    pub digest: Digest48,
    /// The event data as logged (may be empty when a log was stripped of payloads).
    #[serde(serialize_with = "hex_bytes")]
    pub data: Vec<u8>,
    /// A name the log gives the event (dstack's JSON logs name their runtime events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Event {
    /// The TCG name of this event's type, or `0x…` for an unknown type.
    pub fn type_name(&self) -> String {
        type_name(self.event_type)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{:#010x}", self.event_type))
    }
}

fn hex_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

mod hex_48 {
    pub(super) fn serialize<S: serde::Serializer>(v: &[u8; 48], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}
