//! Bags of cells: bytes and base64 to cells and back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tonlib_core::cell::{ArcCell, BagOfCells, Cell};

use crate::TonError;

/// Parses a single-root BoC.
pub fn boc_to_cell(boc: &[u8]) -> Result<ArcCell, TonError> {
    Ok(BagOfCells::parse(boc)?.single_root()?)
}

/// Parses a single-root BoC given in standard base64 (as toncenter sends them).
pub fn boc_b64_to_cell(boc_b64: &str) -> Result<ArcCell, TonError> {
    let bytes = STANDARD
        .decode(boc_b64.trim())
        .map_err(|e| TonError::Cell(format!("BoC is not base64: {e}")))?;
    boc_to_cell(&bytes)
}

/// Serialises a cell as a single-root BoC (no CRC, like most TON tools).
pub fn cell_to_boc(cell: &Cell) -> Result<Vec<u8>, TonError> {
    Ok(BagOfCells::from_root(cell.clone()).serialize(false)?)
}

/// Serialises a cell as a base64 single-root BoC.
pub fn cell_to_boc_b64(cell: &Cell) -> Result<String, TonError> {
    Ok(STANDARD.encode(cell_to_boc(cell)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonlib_core::cell::CellBuilder;

    #[test]
    fn round_trips_a_cell_tree() {
        let child = CellBuilder::new()
            .store_u32(32, 7)
            .and_then(|b| b.build())
            .expect("child")
            .to_arc();
        let root = CellBuilder::new()
            .store_u64(64, 42)
            .and_then(|b| b.store_reference(&child))
            .and_then(|b| b.build())
            .expect("root");
        let b64 = cell_to_boc_b64(&root).expect("serialise");
        let back = boc_b64_to_cell(&b64).expect("parse");
        assert_eq!(back.cell_hash(), root.cell_hash());
        assert!(boc_b64_to_cell("not base64!").is_err());
        assert!(boc_to_cell(&[1, 2, 3]).is_err());
    }
}
