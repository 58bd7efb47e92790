//! Bags of cells: bytes and base64 to cells and back. The workspace's only BoC writer
//! ([`cell_to_boc`], byte-identical to @ton/core) and its only reader entry ([`parse_boc`], which
//! runs [`check_boc`] first); the CRC32-C both use lives beside `check_boc`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::HashMap;

use tonlib_core::TonHash;
use tonlib_core::cell::{ArcCell, BagOfCells, Cell, TonCellError};

use crate::TonError;
use crate::boc_check::crc32c;
pub use crate::boc_check::{InvalidBoc, MAX_CELLS, MAX_DEPTH, check_boc};

/// Parses a bag of cells from untrusted bytes: [`check_boc`] first (tonlib-core's own reader panics
/// or aborts on some malformed headers), then tonlib-core. Use this, never `BagOfCells::parse`.
pub fn parse_boc(boc: &[u8]) -> Result<BagOfCells, TonCellError> {
    check_boc(boc).map_err(|e| TonCellError::BagOfCellsDeserializationError(e.to_string()))?;
    BagOfCells::parse(boc)
}

/// Parses a single-root BoC (validated, see [`parse_boc`]).
pub fn boc_to_cell(boc: &[u8]) -> Result<ArcCell, TonError> {
    Ok(parse_boc(boc)?.single_root()?)
}

/// Parses a single-root BoC given in standard base64 (as toncenter sends them).
pub fn boc_b64_to_cell(boc_b64: &str) -> Result<ArcCell, TonError> {
    let bytes = STANDARD
        .decode(boc_b64.trim())
        .map_err(|e| TonError::Cell(format!("BoC is not base64: {e}")))?;
    boc_to_cell(&bytes)
}

/// Serialises a cell as a single-root BoC, byte for byte as @ton/core's `cell.toBoc()` writes it:
/// the same cell order (breadth-first discovery, then a depth-first topological sort), no index,
/// CRC32-C. Unlike tonlib-core's writer, the output is deterministic.
pub fn cell_to_boc(cell: &Cell) -> Result<Vec<u8>, TonError> {
    write_boc(cell, true)
}

/// Like [`cell_to_boc`] but without the CRC32-C trailer.
pub fn cell_to_boc_without_crc(cell: &Cell) -> Result<Vec<u8>, TonError> {
    write_boc(cell, false)
}

/// Serialises a cell as a base64 single-root BoC (see [`cell_to_boc`]).
pub fn cell_to_boc_b64(cell: &Cell) -> Result<String, TonError> {
    Ok(STANDARD.encode(cell_to_boc(cell)?))
}

struct Node<'a> {
    cell: &'a Cell,
    refs: Vec<usize>,
}

/// Cells in @ton/core's order: parents before children.
fn topological_order(root: &Cell) -> Result<Vec<Node<'_>>, TonError> {
    // Breadth-first discovery, deduplicated by hash, fixes the order in which sorting starts.
    let mut index: HashMap<TonHash, usize> = HashMap::new();
    let mut nodes: Vec<Node<'_>> = Vec::new();
    let mut level: Vec<&Cell> = vec![root];
    while !level.is_empty() {
        let mut next = Vec::new();
        for cell in level {
            let hash = cell.cell_hash();
            if index.contains_key(&hash) {
                continue;
            }
            index.insert(hash, nodes.len());
            nodes.push(Node {
                cell,
                refs: Vec::new(),
            });
            next.extend(cell.references().iter().map(|r| r.as_ref()));
        }
        level = next;
    }
    for node in &mut nodes {
        node.refs = node
            .cell
            .references()
            .iter()
            .map(|r| index[&r.cell_hash()])
            .collect();
    }
    // Depth-first post-order, children visited last-to-first; the reverse is the output order.
    let mut done = vec![false; nodes.len()];
    let mut on_path = vec![false; nodes.len()];
    let mut sorted = Vec::with_capacity(nodes.len());
    for start in 0..nodes.len() {
        if done[start] {
            continue;
        }
        // Iterative DFS: (node, next child position counted from the end).
        let mut stack = vec![(start, nodes[start].refs.len())];
        on_path[start] = true;
        while let Some(top) = stack.last_mut() {
            let (i, remaining) = *top;
            if remaining == 0 {
                stack.pop();
                on_path[i] = false;
                done[i] = true;
                sorted.push(i);
                continue;
            }
            top.1 -= 1;
            let child = nodes[i].refs[remaining - 1];
            if on_path[child] {
                return Err(TonError::Cell("cell graph has a cycle".to_string()));
            }
            if !done[child] {
                on_path[child] = true;
                stack.push((child, nodes[child].refs.len()));
            }
        }
    }
    // Renumber: output position of each node.
    let mut position = vec![0usize; nodes.len()];
    for (pos, &i) in sorted.iter().rev().enumerate() {
        position[i] = pos;
    }
    let mut out: Vec<Option<Node<'_>>> = nodes.into_iter().map(Some).collect();
    let mut ordered = Vec::with_capacity(out.len());
    for &i in sorted.iter().rev() {
        if let Some(mut node) = out[i].take() {
            node.refs = node.refs.iter().map(|&r| position[r]).collect();
            ordered.push(node);
        }
    }
    Ok(ordered)
}

/// The level mask of a cell, from its type and children (tonlib-core keeps its own private).
fn level_mask(cell: &Cell) -> u8 {
    let children = || cell.references().iter().fold(0u8, |m, r| m | level_mask(r));
    if !cell.is_exotic() {
        return children();
    }
    match cell.data().first() {
        Some(1) => cell.data().get(1).copied().unwrap_or(0), // pruned branch
        Some(3) | Some(4) => children() >> 1,                // merkle proof / update
        _ => 0,                                              // library
    }
}

fn bytes_for(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits as usize).div_ceil(8).max(1)
}

fn push_be(out: &mut Vec<u8>, v: usize, bytes: usize) {
    let be = (v as u64).to_be_bytes();
    out.extend_from_slice(&be[8 - bytes..]);
}

fn write_boc(root: &Cell, with_crc: bool) -> Result<Vec<u8>, TonError> {
    let nodes = topological_order(root)?;
    let size_bytes = bytes_for(nodes.len());
    let cell_size = |n: &Node<'_>| 2 + n.cell.bit_len().div_ceil(8) + n.refs.len() * size_bytes;
    let total: usize = nodes.iter().map(cell_size).sum();
    let offset_bytes = bytes_for(total);
    let mut out = Vec::with_capacity(total + 32);
    out.extend_from_slice(&[0xb5, 0xee, 0x9c, 0x72]);
    // has_idx:0 has_crc32c has_cache_bits:0 flags:00 size:3
    out.push(if with_crc { 0x40 } else { 0 } | size_bytes as u8);
    out.push(offset_bytes as u8);
    push_be(&mut out, nodes.len(), size_bytes);
    push_be(&mut out, 1, size_bytes); // roots
    push_be(&mut out, 0, size_bytes); // absent
    push_be(&mut out, total, offset_bytes);
    push_be(&mut out, 0, size_bytes); // the root is first
    for node in &nodes {
        let cell = node.cell;
        let bits = cell.bit_len();
        let d1 =
            node.refs.len() as u8 + if cell.is_exotic() { 8 } else { 0 } + level_mask(cell) * 32;
        let d2 = (bits.div_ceil(8) + bits / 8) as u8;
        out.push(d1);
        out.push(d2);
        let len = bits.div_ceil(8);
        let mut data = cell.data().get(..len).unwrap_or(cell.data()).to_vec();
        data.resize(len, 0);
        if bits % 8 != 0 {
            // Completion tag: a 1 bit right after the data, zeros after it.
            let last = len - 1;
            let used = bits % 8;
            data[last] &= 0xffu8 << (8 - used);
            data[last] |= 1 << (7 - used);
        }
        out.extend_from_slice(&data);
        for &r in &node.refs {
            push_be(&mut out, r, size_bytes);
        }
    }
    if with_crc {
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
    }
    Ok(out)
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

    #[test]
    fn writes_what_ton_core_writes() {
        // @ton/core: beginCell().storeUint(0, 0).endCell().toBoc() and an empty cell without CRC.
        let empty = Cell::default();
        assert_eq!(
            hex::encode(cell_to_boc(&empty).expect("boc")),
            "b5ee9c724101010100020000004cacb9cd"
        );
        assert_eq!(
            hex::encode(cell_to_boc_without_crc(&empty).expect("boc")),
            "b5ee9c72010101010002000000"
        );
    }

    #[test]
    fn shared_cells_are_written_once_and_output_is_stable() {
        let leaf = CellBuilder::new()
            .store_u8(5, 0b10101)
            .and_then(|b| b.build())
            .expect("leaf")
            .to_arc();
        let mid = CellBuilder::new()
            .store_reference(&leaf)
            .and_then(|b| b.store_u8(3, 1))
            .and_then(|b| b.build())
            .expect("mid")
            .to_arc();
        let root = CellBuilder::new()
            .store_reference(&leaf)
            .and_then(|b| b.store_reference(&mid))
            .and_then(|b| b.store_reference(&leaf))
            .and_then(|b| b.build())
            .expect("root");
        let first = cell_to_boc(&root).expect("boc");
        for _ in 0..20 {
            assert_eq!(cell_to_boc(&root).expect("boc"), first);
        }
        assert_eq!(first[6], 3, "three distinct cells");
        let back = boc_to_cell(&first).expect("parse");
        assert_eq!(back.cell_hash(), root.cell_hash());
    }
}
