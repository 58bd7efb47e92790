//! Structural validation of a serialized bag of cells before tonlib-core parses it.
//!
//! tonlib-core 0.26 trusts the BoC header: out-of-range root or reference indices panic, and a header
//! claiming billions of cells makes it reserve that much memory up front (the process aborts). It also
//! skips the CRC32-C and TON's depth limit. BoCs reach us from peers (vouchers handed over a hop) and
//! from toncenter, so every parse goes through [`check_boc`] first: it walks the whole layout with
//! bounds-checked reads and refuses anything tonlib-core could trip on.

/// Why a BoC was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid BoC: {0}")]
pub struct InvalidBoc(pub String);

/// TON's `serialized_boc#b5ee9c72` magic.
const MAGIC: [u8; 4] = [0xb5, 0xee, 0x9c, 0x72];
/// Deepest chain of references TON accepts in a cell tree.
pub const MAX_DEPTH: usize = 1024;
/// Most cells a BoC may hold (far above anything a message or state needs).
pub const MAX_CELLS: usize = 1 << 20;

fn bad(why: impl Into<String>) -> InvalidBoc {
    InvalidBoc(why.into())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], InvalidBoc> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| bad(format!("truncated in {what}")))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize, what: &str) -> Result<u64, InvalidBoc> {
        Ok(self
            .take(n, what)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn index(&mut self, n: usize, what: &str) -> Result<usize, InvalidBoc> {
        usize::try_from(self.uint(n, what)?).map_err(|_| bad(format!("{what} does not fit")))
    }
}

/// CRC32-C (Castagnoli, reflected), as TON appends it to a BoC: the one the writer
/// ([`crate::boc::cell_to_boc`]) appends and [`check_boc`] verifies. Bitwise; BoCs are small.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Checks that `boc` is a well-formed bag of cells: magic, header sizes, every root and reference
/// index in range and pointing forward (so no cycles), cell data exactly filling the declared size,
/// the CRC32-C when present, and a tree no deeper than [`MAX_DEPTH`].
pub fn check_boc(boc: &[u8]) -> Result<(), InvalidBoc> {
    let mut r = Reader { bytes: boc, pos: 0 };
    if r.take(4, "magic")? != MAGIC {
        return Err(bad("wrong magic (not a serialized_boc#b5ee9c72)"));
    }
    let flags = r.take(1, "header")?[0];
    let has_index = flags & 0x80 != 0;
    let has_crc = flags & 0x40 != 0;
    let ref_size = usize::from(flags & 0x07);
    if !(1..=4).contains(&ref_size) {
        return Err(bad(format!("reference size {ref_size} is not 1..4")));
    }
    let off_size = usize::from(r.take(1, "header")?[0]);
    if !(1..=8).contains(&off_size) {
        return Err(bad(format!("offset size {off_size} is not 1..8")));
    }
    let cells = r.index(ref_size, "cell count")?;
    let roots = r.index(ref_size, "root count")?;
    let absent = r.index(ref_size, "absent count")?;
    let data_size = r.index(off_size, "data size")?;
    if cells == 0 || cells > MAX_CELLS {
        return Err(bad(format!("{cells} cells (allowed 1..{MAX_CELLS})")));
    }
    if roots == 0 || roots > cells {
        return Err(bad(format!("{roots} roots for {cells} cells")));
    }
    if absent != 0 {
        return Err(bad("absent cells are not supported"));
    }
    // Every cell takes at least two descriptor bytes: a count beyond that is a lie.
    if cells.saturating_mul(2) > data_size || data_size > boc.len() {
        return Err(bad(format!(
            "{cells} cells cannot fit in {data_size} bytes of a {}-byte BoC",
            boc.len()
        )));
    }
    for _ in 0..roots {
        let root = r.index(ref_size, "root list")?;
        if root >= cells {
            return Err(bad(format!(
                "root index {root} out of range ({cells} cells)"
            )));
        }
    }
    if has_index {
        let index_len = cells
            .checked_mul(off_size)
            .ok_or_else(|| bad("index size overflows"))?;
        r.take(index_len, "index")?;
    }
    let data_start = r.pos;
    let mut refs: Vec<Vec<usize>> = Vec::with_capacity(cells);
    for i in 0..cells {
        let d = r.take(2, "cell descriptor")?;
        let (d1, d2) = (d[0], d[1]);
        let ref_count = usize::from(d1 & 0x07);
        if ref_count > 4 {
            return Err(bad(format!("cell {i} has {ref_count} references")));
        }
        if d1 & 0x10 != 0 {
            // Stored hashes and depths: one per significant level, 32 + 2 bytes each.
            let level_mask = d1 >> 5;
            let hashes = level_mask.count_ones() as usize + 1;
            r.take(hashes * 34, "stored hashes")?;
        }
        let data_len = usize::from(d2).div_ceil(2);
        let data = r.take(data_len, "cell data")?;
        if d2 % 2 == 1 && data.last() == Some(&0) {
            return Err(bad(format!("cell {i} has no completion tag")));
        }
        let mut own = Vec::with_capacity(ref_count);
        for _ in 0..ref_count {
            let target = r.index(ref_size, "reference")?;
            if target <= i || target >= cells {
                return Err(bad(format!(
                    "cell {i} references cell {target} (references must point forward within {cells} cells)"
                )));
            }
            own.push(target);
        }
        refs.push(own);
    }
    if r.pos - data_start != data_size {
        return Err(bad(format!(
            "cells take {} bytes but the header declares {data_size}",
            r.pos - data_start
        )));
    }
    // References point forward, so depths resolve from the last cell back.
    let mut depth = vec![0usize; cells];
    for i in (0..cells).rev() {
        let d = refs[i].iter().map(|t| depth[*t] + 1).max().unwrap_or(0);
        if d > MAX_DEPTH {
            return Err(bad(format!("depth {d} exceeds {MAX_DEPTH}")));
        }
        depth[i] = d;
    }
    if has_crc {
        let body_end = r.pos;
        let stored = r.take(4, "CRC32-C")?;
        let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        if crc32c(&boc[..body_end]) != stored {
            return Err(bad("CRC32-C mismatch"));
        }
    }
    if r.pos != boc.len() {
        return Err(bad(format!("{} trailing bytes", boc.len() - r.pos)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boc::{cell_to_boc, cell_to_boc_without_crc};
    use std::sync::Arc;
    use tonlib_core::cell::{BagOfCells, CellBuilder};

    fn chain(depth: usize) -> Vec<u8> {
        let mut cell = CellBuilder::new().store_u8(8, 1).and_then(|b| b.build());
        for i in 0..depth {
            let child = Arc::new(cell.expect("cell builds"));
            cell = CellBuilder::new()
                .store_u32(32, i as u32)
                .and_then(|b| b.store_reference(&child))
                .and_then(|b| b.build());
        }
        cell_to_boc(&cell.expect("cell builds")).expect("serializes")
    }

    /// A one-byte-index BoC with the given cells (descriptor bytes, data, refs), no CRC.
    fn raw(cells: &[&[u8]], roots: &[u8], cell_count: u8) -> Vec<u8> {
        let data: Vec<u8> = cells.concat();
        let mut out = MAGIC.to_vec();
        out.extend([
            0x01,
            0x01,
            cell_count,
            roots.len() as u8,
            0,
            data.len() as u8,
        ]);
        out.extend(roots);
        out.extend(data);
        out
    }

    #[test]
    fn what_the_writer_produces_passes_with_and_without_crc() {
        let boc = chain(5);
        check_boc(&boc).expect("valid with CRC");
        let cell = BagOfCells::parse(&boc)
            .expect("parses")
            .single_root()
            .expect("root");
        check_boc(&cell_to_boc_without_crc(&cell).expect("serializes")).expect("valid without CRC");
    }

    #[test]
    fn depth_limit_is_tons() {
        check_boc(&chain(MAX_DEPTH)).expect("1024 deep is allowed");
        let err = check_boc(&chain(MAX_DEPTH + 1)).expect_err("1025 deep is refused");
        assert!(err.0.contains("depth"), "{err}");
    }

    #[test]
    fn a_corrupted_crc_or_trailing_bytes_are_refused() {
        let mut boc = chain(2);
        let mid = boc.len() / 2;
        boc[mid] ^= 0x01;
        assert!(check_boc(&boc).is_err());
        let mut boc = chain(2);
        boc.push(0);
        assert!(check_boc(&boc).is_err());
    }

    #[test]
    fn indices_out_of_range_or_backwards_are_refused_not_panicked_on() {
        // One cell with no data and a reference to cell 5 of 1.
        let err = check_boc(&raw(&[&[0x01, 0x00, 0x05]], &[0], 1)).expect_err("bad ref");
        assert!(err.0.contains("references cell 5"), "{err}");
        // A cell that references itself.
        let err = check_boc(&raw(&[&[0x01, 0x00, 0x00]], &[0], 1)).expect_err("cycle");
        assert!(err.0.contains("point forward"), "{err}");
        // Root index 3 of 1.
        let err = check_boc(&raw(&[&[0x00, 0x00]], &[3], 1)).expect_err("bad root");
        assert!(err.0.contains("root index 3"), "{err}");
        // The same with valid indices passes.
        check_boc(&raw(&[&[0x00, 0x00]], &[0], 1)).expect("an empty cell is fine");
    }

    #[test]
    fn a_header_claiming_more_cells_than_bytes_is_refused_before_any_allocation() {
        let mut boc = MAGIC.to_vec();
        boc.extend([
            0x04, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0x10,
        ]);
        boc.extend([0, 0, 0, 0, 0, 0]);
        let err = check_boc(&boc).expect_err("cell bomb");
        assert!(err.0.contains("cells"), "{err}");
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
