//! The TD HOB QEMU hands TDVF, and its digest: the first event of RTMR0.
//!
//! QEMU writes a PHIT HOB and one resource descriptor per memory range: the ranges the firmware's
//! TD_HOB and TEMP_MEM sections occupy as accepted system memory, everything else below the guest's
//! memory size as unaccepted memory, and, when the guest has 0xB000_0000 bytes or more, the part
//! above 2 GiB moved to 4 GiB (q35's PCI hole). TDVF measures the list without its end HOB, with
//! the PHIT's EfiEndOfHobList pointing past it. So for one firmware the digest depends on the
//! memory size only.

use sha2::{Digest, Sha384};

use crate::event::Digest48;
use crate::tdvf::{Section, SectionType};
use crate::{MeasureError, Result};

const LOW_MEMORY_SPLIT: u64 = 0xB000_0000;
const TWO_GIB: u64 = 0x8000_0000;
const FOUR_GIB: u64 = 0x1_0000_0000;
const RESOURCE_SYSTEM_MEMORY: u32 = 0;
const RESOURCE_UNACCEPTED: u32 = 7;
/// PRESENT | INITIALIZED | TESTED.
const RESOURCE_ATTRIBUTES: u32 = 7;

/// The ranges a TD HOB is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HobLayout {
    /// Guest-physical address of the TD HOB (the TD_HOB section).
    pub hob_address: u64,
    /// Accepted ranges (TD_HOB and TEMP_MEM sections): (start, length).
    pub accepted: Vec<(u64, u64)>,
}

impl HobLayout {
    /// The layout of a parsed firmware's sections.
    pub fn from_sections(sections: &[Section]) -> Result<Self> {
        let hob = sections
            .iter()
            .find(|s| s.kind == SectionType::TdHob)
            .ok_or_else(|| MeasureError::Tdvf("no TD_HOB section".to_owned()))?;
        let mut accepted: Vec<(u64, u64)> = sections
            .iter()
            .filter(|s| matches!(s.kind, SectionType::TdHob | SectionType::TempMem))
            .map(|s| (s.address, s.memory_size))
            .collect();
        accepted.sort_unstable();
        Ok(Self {
            hob_address: hob.address,
            accepted,
        })
    }

    /// OVMF's TDX layout (that of Debian's OVMF.fd 2022.11, and the one dstack records for its
    /// firmware; it decides every QEMU TD HOB digest in our fixtures): TEMP_MEM 0x800000+0x6000,
    /// TD_HOB 0x809000+0x2000, TEMP_MEM 0x80b000+0x2000, TEMP_MEM 0x810000+0x10000.
    pub fn ovmf_default() -> Self {
        Self {
            hob_address: 0x80_9000,
            accepted: vec![
                (0x80_0000, 0x6000),
                (0x80_9000, 0x2000),
                (0x80_b000, 0x2000),
                (0x81_0000, 0x1_0000),
            ],
        }
    }

    /// The TD HOB bytes TDVF measures for a guest of `memory_size` bytes.
    pub fn td_hob(&self, memory_size: u64) -> Result<Vec<u8>> {
        let ranges = self.memory_ranges(memory_size)?;
        let mut hob = phit();
        let (last, rest) = ranges
            .split_last()
            .ok_or_else(|| MeasureError::Shape("no memory".into()))?;
        for &(accepted, start, end) in rest {
            let kind = if accepted {
                RESOURCE_SYSTEM_MEMORY
            } else {
                RESOURCE_UNACCEPTED
            };
            push_resource(&mut hob, kind, start, end - start);
        }
        let &(_, start, end) = last;
        if memory_size >= LOW_MEMORY_SPLIT {
            if start < TWO_GIB {
                push_resource(&mut hob, RESOURCE_UNACCEPTED, start, TWO_GIB - start);
            }
            if end > TWO_GIB {
                push_resource(&mut hob, RESOURCE_UNACCEPTED, FOUR_GIB, end - TWO_GIB);
            }
        } else {
            push_resource(&mut hob, RESOURCE_UNACCEPTED, start, end - start);
        }
        // EfiEndOfHobList: the address of the end HOB, which follows the measured bytes.
        let end_of_list = self.hob_address + hob.len() as u64 + 8;
        hob[48..56].copy_from_slice(&end_of_list.to_le_bytes());
        Ok(hob)
    }

    /// SHA-384 of [`HobLayout::td_hob`].
    pub fn digest(&self, memory_size: u64) -> Result<Digest48> {
        Ok(Sha384::digest(self.td_hob(memory_size)?).into())
    }

    /// Splits [0, memory_size) into accepted and unaccepted ranges, sorted by start.
    fn memory_ranges(&self, memory_size: u64) -> Result<Vec<(bool, u64, u64)>> {
        let mut ranges = vec![(false, 0u64, memory_size)];
        for &(start, len) in &self.accepted {
            let end = start.checked_add(len).filter(|e| *e <= memory_size).ok_or_else(|| {
                MeasureError::Shape(format!("memory size {memory_size:#x} does not hold the firmware range {start:#x}+{len:#x}"))
            })?;
            let mut next = Vec::with_capacity(ranges.len() + 2);
            for &(acc, s, e) in &ranges {
                if acc || e <= start || s >= end {
                    next.push((acc, s, e));
                    continue;
                }
                if s < start {
                    next.push((false, s, start));
                }
                if e > end {
                    next.push((false, end, e));
                }
            }
            next.push((true, start, end));
            next.sort_by_key(|r| r.1);
            ranges = next;
        }
        Ok(ranges)
    }
}

fn phit() -> Vec<u8> {
    let mut h = Vec::with_capacity(56 + 48 * 8);
    h.extend_from_slice(&1u16.to_le_bytes()); // EFI_HOB_TYPE_HANDOFF
    h.extend_from_slice(&56u16.to_le_bytes());
    h.extend_from_slice(&[0u8; 4]);
    h.extend_from_slice(&9u32.to_le_bytes()); // PHIT version
    h.extend_from_slice(&[0u8; 4]); // boot mode
    h.extend_from_slice(&[0u8; 40]); // memory top/bottom, free top/bottom, end of list
    h
}

fn push_resource(h: &mut Vec<u8>, kind: u32, start: u64, len: u64) {
    h.extend_from_slice(&3u16.to_le_bytes()); // EFI_HOB_TYPE_RESOURCE_DESCRIPTOR
    h.extend_from_slice(&48u16.to_le_bytes());
    h.extend_from_slice(&[0u8; 4]);
    h.extend_from_slice(&[0u8; 16]); // owner GUID
    h.extend_from_slice(&kind.to_le_bytes());
    h.extend_from_slice(&RESOURCE_ATTRIBUTES.to_le_bytes());
    h.extend_from_slice(&start.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
}
