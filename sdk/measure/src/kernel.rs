//! RTMR1 and RTMR2 inputs: the kernel's PE Authenticode hash after QEMU patches its setup header,
//! and the command line and initrd as the Linux EFI stub measures them.

use sha2::{Digest, Sha384};

use crate::ccel::{le_u16, le_u32};
use crate::event::Digest48;
use crate::{MeasureError, Result};

/// The ACPI data size QEMU reserves below 4 GiB on q35 (what it subtracts before placing the initrd).
pub const QEMU_ACPI_DATA_SIZE: u32 = 0x28000;
const LOW_MEMORY_SPLIT: u64 = 0xB000_0000;

fn bad(m: impl Into<String>) -> MeasureError {
    MeasureError::Kernel(m.into())
}

/// Applies the setup-header changes QEMU's x86 loader makes before the firmware measures the
/// kernel: loader type, heap end, command-line address and the initrd's address and size.
pub fn qemu_patch(
    kernel: &[u8],
    initrd_size: u32,
    memory_size: u64,
    acpi_data_size: u32,
) -> Result<Vec<u8>> {
    if kernel.len() < 0x1000 {
        return Err(bad("shorter than 4 KiB"));
    }
    let mut k = kernel.to_vec();
    let protocol = le_u16(&k, 0x206).unwrap_or(0);
    let loaded_high = k[0x211] & 1 != 0;
    let (real_addr, cmdline_addr) = if protocol < 0x200 || !loaded_high {
        (0x9_0000u32, 0x9_a000u32)
    } else {
        (0x1_0000, 0x2_0000)
    };
    if protocol >= 0x200 {
        k[0x210] = 0xb0; // type_of_loader: QEMU
    }
    if protocol >= 0x201 {
        k[0x211] |= 0x80; // CAN_USE_HEAP
        let heap_end = cmdline_addr - real_addr - 0x200;
        k[0x224..0x228].copy_from_slice(&heap_end.to_le_bytes());
    }
    if protocol >= 0x202 {
        k[0x228..0x22c].copy_from_slice(&cmdline_addr.to_le_bytes());
    } else {
        k[0x20..0x22].copy_from_slice(&0xa33fu16.to_le_bytes());
        k[0x22..0x24].copy_from_slice(&((cmdline_addr - real_addr) as u16).to_le_bytes());
    }
    if initrd_size > 0 {
        let addr = initrd_address(&k, protocol, initrd_size, memory_size, acpi_data_size)?;
        k[0x218..0x21c].copy_from_slice(&addr.to_le_bytes());
        k[0x21c..0x220].copy_from_slice(&initrd_size.to_le_bytes());
    }
    Ok(k)
}

fn initrd_address(
    k: &[u8],
    protocol: u16,
    initrd_size: u32,
    memory_size: u64,
    acpi_data_size: u32,
) -> Result<u32> {
    if protocol < 0x200 {
        return Err(bad("boot protocol older than 2.00 cannot take an initrd"));
    }
    let mut initrd_max = if protocol >= 0x20c && le_u16(k, 0x236).unwrap_or(0) & 0x40 != 0 {
        u32::MAX // XLF_CAN_BE_LOADED_ABOVE_4G
    } else if protocol >= 0x203 {
        match le_u32(k, 0x22c).unwrap_or(0) {
            0 => 0x37ff_ffff,
            max => max,
        }
    } else {
        0x37ff_ffff
    };
    // QEMU's q35 keeps at most 0xB0000000 below 4 GiB, or 2 GiB when the guest has more.
    let lowmem = if memory_size < LOW_MEMORY_SPLIT {
        LOW_MEMORY_SPLIT
    } else {
        0x8000_0000
    };
    let below_4g = memory_size.min(lowmem) as u32;
    let available = below_4g.checked_sub(acpi_data_size).ok_or_else(|| {
        bad(format!(
            "ACPI data ({acpi_data_size:#x}) exceeds low memory ({below_4g:#x})"
        ))
    })?;
    if initrd_max >= available {
        initrd_max = available - 1;
    }
    if initrd_size >= initrd_max {
        return Err(bad(format!(
            "initrd of {initrd_size} bytes does not fit below {initrd_max:#x}"
        )));
    }
    Ok((initrd_max - initrd_size) & !0xfff)
}

/// The PE/COFF Authenticode SHA-384 of an EFI image, as the firmware's measured-boot code hashes
/// it: headers without the checksum and the certificate-table entry, sections in file order, then
/// any trailing bytes except the certificate table, zero-padded to 8 bytes.
pub fn authenticode_sha384(image: &[u8]) -> Result<Digest48> {
    let pe = le_u32(image, 0x3c).ok_or_else(|| bad("no DOS header"))? as usize;
    if image.get(pe..pe + 4) != Some(b"PE\0\0".as_slice()) {
        return Err(bad("no PE signature (not an EFI-stub kernel)"));
    }
    let coff = pe + 4;
    let sections = le_u16(image, coff + 2).ok_or_else(|| bad("truncated COFF header"))? as usize;
    let opt_size = le_u16(image, coff + 16).ok_or_else(|| bad("truncated COFF header"))? as usize;
    let opt = coff + 20;
    let pe32_plus = le_u16(image, opt) == Some(0x20b);
    let checksum = opt + 64;
    let cert_entry = opt + if pe32_plus { 112 } else { 96 } + 4 * 8;
    let headers = le_u32(image, opt + 60).ok_or_else(|| bad("truncated optional header"))? as usize;
    if !(checksum < cert_entry && cert_entry + 8 <= headers && headers <= image.len()) {
        return Err(bad("header layout out of bounds"));
    }
    let mut h = Sha384::new();
    h.update(&image[..checksum]);
    h.update(&image[checksum + 4..cert_entry]);
    h.update(&image[cert_entry + 8..headers]);
    let mut raw: Vec<(usize, usize)> = (0..sections)
        .filter_map(|i| {
            let s = opt + opt_size + 40 * i;
            Some((
                le_u32(image, s + 20)? as usize,
                le_u32(image, s + 16)? as usize,
            ))
        })
        .filter(|(_, size)| *size > 0)
        .collect();
    raw.sort_unstable();
    let mut hashed = headers;
    for (at, size) in raw {
        let end = at
            .checked_add(size)
            .filter(|e| *e <= image.len())
            .ok_or_else(|| bad("a section runs past the file"))?;
        h.update(&image[at..end]);
        hashed += size;
    }
    let cert_size = le_u32(image, cert_entry + 4).unwrap_or(0) as usize;
    if image.len() > hashed + cert_size {
        h.update(&image[hashed..image.len() - cert_size]);
    }
    if !image.len().is_multiple_of(8) {
        h.update(vec![0u8; 8 - image.len() % 8]);
    }
    Ok(h.finalize().into())
}

/// The RTMR2 digest of a kernel command line: its UTF-16LE encoding with the terminating NUL, as
/// the EFI stub hashes the load options.
pub fn cmdline_digest(cmdline: &str) -> Digest48 {
    let mut h = Sha384::new();
    for unit in cmdline.encode_utf16().chain(std::iter::once(0)) {
        h.update(unit.to_le_bytes());
    }
    h.finalize().into()
}

/// The RTMR2 digest of an initrd: SHA-384 of its bytes.
pub fn initrd_digest(initrd: &[u8]) -> Digest48 {
    Sha384::digest(initrd).into()
}
