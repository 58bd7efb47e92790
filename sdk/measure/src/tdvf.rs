//! TDVF (OVMF built for TDX) metadata and the MRTD it yields.
//!
//! The firmware ends with OVMF's GUIDed table: walking it backwards from the footer GUID finds the
//! "TDX metadata offset" entry, whose u32 is the distance from the end of the image to the "TDVF"
//! descriptor. Each of its 32-byte sections says where in the image its bytes are and where QEMU
//! puts them in the TD. For MRTD, the TDX module hashes, per page QEMU adds (TDH.MEM.PAGE.ADD), a
//! 128-byte record "MEM.PAGE.ADD" ‖ GPA, and, for sections marked MR.EXTEND, per 256-byte chunk
//! (TDH.MR.EXTEND) a record "MR.EXTEND" ‖ GPA followed by the chunk. QEMU before 9.0 added all
//! pages of a section before extending it ("two-pass"); 9.0 and later do both per page.

use sha2::{Digest, Sha384};

use crate::ccel::{le_u16, le_u32, le_u64};
use crate::event::Digest48;
use crate::{MeasureError, Result};

const PAGE: u64 = 0x1000;
const EXTEND_CHUNK: usize = 0x100;
/// OVMF table footer GUID 96b582de-1fb2-45f7-baea-a366c55a082d, in EFI byte order.
const TABLE_FOOTER_GUID: [u8; 16] = guid_bytes(
    0x96b582de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);
/// TDX metadata offset GUID e47a6535-984a-4798-865e-4685a7bf8ec2.
const TDX_METADATA_GUID: [u8; 16] = guid_bytes(
    0xe47a6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);

/// Attribute bit: the section's bytes are extended into MRTD.
pub const ATTR_MR_EXTEND: u32 = 1;
/// Attribute bit: the pages are accepted by the guest later (TDH.MEM.PAGE.AUG), not added.
pub const ATTR_PAGE_AUG: u32 = 2;

/// Builds an EFI GUID's byte layout at compile time.
pub(crate) const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// What a TDVF section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionType {
    /// Boot firmware volume (the code).
    Bfv,
    /// Configuration firmware volume (the variable store).
    Cfv,
    /// Where QEMU writes the TD HOB.
    TdHob,
    /// Temporary memory the firmware uses before it accepts memory.
    TempMem,
    /// Permanent memory.
    PermMem,
    /// A payload (kernel) image.
    Payload,
    /// The payload's parameters.
    PayloadParam,
    /// A type this code does not know.
    Other(u32),
}

impl SectionType {
    fn from_raw(v: u32) -> Self {
        match v {
            0 => Self::Bfv,
            1 => Self::Cfv,
            2 => Self::TdHob,
            3 => Self::TempMem,
            4 => Self::PermMem,
            5 => Self::Payload,
            6 => Self::PayloadParam,
            o => Self::Other(o),
        }
    }
}

/// One TDVF metadata section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Section {
    /// Offset of the section's bytes in the firmware image.
    pub data_offset: u32,
    /// Number of bytes in the image.
    pub raw_size: u32,
    /// Guest-physical address.
    pub address: u64,
    /// Size in the TD (page multiple).
    pub memory_size: u64,
    /// What the section is.
    pub kind: SectionType,
    /// Attribute bits ([`ATTR_MR_EXTEND`], [`ATTR_PAGE_AUG`]).
    pub attributes: u32,
}

/// Page-adding order of the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageAdding {
    /// Add all pages of a section, then extend them (QEMU 8.x).
    TwoPass,
    /// Add then extend each page in turn (QEMU 9.0 and later).
    SinglePass,
}

/// A TDVF firmware image and its parsed sections.
#[derive(Debug, Clone)]
pub struct Tdvf<'a> {
    image: &'a [u8],
    /// The metadata sections, in metadata order.
    pub sections: Vec<Section>,
}

impl<'a> Tdvf<'a> {
    /// Parses the metadata of a firmware image (the whole OVMF.fd QEMU is given with `-bios`).
    pub fn parse(image: &'a [u8]) -> Result<Self> {
        let bad = |m: String| MeasureError::Tdvf(m);
        let descriptor = metadata_offset(image).ok_or_else(|| {
            bad("no TDX metadata entry in the OVMF table (not a TDX firmware?)".into())
        })?;
        if image.get(descriptor..descriptor + 4) != Some(b"TDVF".as_slice()) {
            return Err(bad(format!("no \"TDVF\" descriptor at {descriptor:#x}")));
        }
        let version = le_u32(image, descriptor + 8).unwrap_or(0);
        if version != 1 {
            return Err(bad(format!(
                "descriptor version {version}, only 1 is known"
            )));
        }
        let count = le_u32(image, descriptor + 12).unwrap_or(0) as usize;
        let sections = (0..count)
            .map(|i| {
                parse_section(image, descriptor + 16 + 32 * i)
                    .map_err(|m| bad(format!("section {i}: {m}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { image, sections })
    }

    /// MRTD for the given page-adding order.
    pub fn mrtd(&self, order: PageAdding) -> Digest48 {
        let mut h = Sha384::new();
        for s in &self.sections {
            let pages = s.memory_size / PAGE;
            match order {
                PageAdding::TwoPass => {
                    (0..pages).for_each(|p| self.page_add(&mut h, s, p));
                    (0..pages).for_each(|p| self.mr_extend(&mut h, s, p));
                }
                PageAdding::SinglePass => (0..pages).for_each(|p| {
                    self.page_add(&mut h, s, p);
                    self.mr_extend(&mut h, s, p);
                }),
            }
        }
        h.finalize().into()
    }

    fn page_add(&self, h: &mut Sha384, s: &Section, page: u64) {
        if s.attributes & ATTR_PAGE_AUG == 0 {
            h.update(record(b"MEM.PAGE.ADD", s.address + page * PAGE));
        }
    }

    fn mr_extend(&self, h: &mut Sha384, s: &Section, page: u64) {
        if s.attributes & ATTR_MR_EXTEND == 0 {
            return;
        }
        for chunk in 0..(PAGE as usize / EXTEND_CHUNK) {
            let within = page as usize * PAGE as usize + chunk * EXTEND_CHUNK;
            h.update(record(b"MR.EXTEND", s.address + within as u64));
            // parse_section checked that the extended bytes lie inside the image.
            let at = s.data_offset as usize + within;
            h.update(
                self.image
                    .get(at..at + EXTEND_CHUNK)
                    .unwrap_or(&[0u8; EXTEND_CHUNK]),
            );
        }
    }

    /// The bytes of the configuration firmware volume (what RTMR0's second event hashes).
    pub fn cfv(&self) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| s.kind == SectionType::Cfv)?;
        let start = s.data_offset as usize;
        self.image.get(start..start + s.raw_size as usize)
    }
}

fn record(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut r = [0u8; 128];
    r[..op.len()].copy_from_slice(op);
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

fn parse_section(image: &[u8], at: usize) -> std::result::Result<Section, String> {
    let trunc = || "truncated".to_owned();
    let s = Section {
        data_offset: le_u32(image, at).ok_or_else(trunc)?,
        raw_size: le_u32(image, at + 4).ok_or_else(trunc)?,
        address: le_u64(image, at + 8).ok_or_else(trunc)?,
        memory_size: le_u64(image, at + 16).ok_or_else(trunc)?,
        kind: SectionType::from_raw(le_u32(image, at + 24).ok_or_else(trunc)?),
        attributes: le_u32(image, at + 28).ok_or_else(trunc)?,
    };
    if !s.address.is_multiple_of(PAGE) || !s.memory_size.is_multiple_of(PAGE) {
        return Err(format!(
            "address {:#x} or size {:#x} not page-aligned",
            s.address, s.memory_size
        ));
    }
    if u64::from(s.raw_size) > s.memory_size {
        return Err(format!(
            "raw size {:#x} exceeds memory size {:#x}",
            s.raw_size, s.memory_size
        ));
    }
    let end = u64::from(s.data_offset)
        + if s.attributes & ATTR_MR_EXTEND != 0 {
            s.memory_size
        } else {
            u64::from(s.raw_size)
        };
    if end > image.len() as u64 {
        return Err(format!(
            "bytes {:#x}..{end:#x} lie outside the {:#x}-byte image",
            s.data_offset,
            image.len()
        ));
    }
    Ok(s)
}

/// Finds the TDVF descriptor offset through OVMF's GUIDed table at the end of the image.
fn metadata_offset(image: &[u8]) -> Option<usize> {
    // The table ends 32 bytes before the end of the image: [entries][u16 total][footer GUID].
    let footer_end = image.len().checked_sub(0x20)?;
    let footer = footer_end.checked_sub(16)?;
    if image.get(footer..footer_end)? != TABLE_FOOTER_GUID {
        return None;
    }
    let total = le_u16(image, footer - 2)? as usize;
    let table_start = footer_end.checked_sub(total)?;
    let mut end = footer - 2; // end of the last entry's [data][u16 len][GUID]
    while end >= table_start + 18 {
        let guid_at = end - 16;
        let len = le_u16(image, guid_at - 2)? as usize;
        if len < 18 || end < table_start + len {
            return None;
        }
        if image.get(guid_at..end)? == TDX_METADATA_GUID {
            let from_end = le_u32(image, guid_at - 6)? as usize;
            return image.len().checked_sub(from_end);
        }
        end -= len;
    }
    None
}
