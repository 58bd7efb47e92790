//! BoC serialisation byte-identical to @ton/core's `Cell.toBoc()` (no index, CRC32C), which is what
//! the sandbox tests and the golden vectors write. tonlib-core orders cells differently, so a BoC it
//! writes holds the same cells but not the same bytes.

use std::collections::HashMap;

use tonlib_core::cell::Cell;

use crate::codec::{Bits256, cell_hash};

struct Node<'a> {
    cell: &'a Cell,
    refs: Vec<usize>,
}

/// Serialises a tree of ordinary cells the way @ton/core does: breadth-first discovery, then a
/// depth-first topological sort that visits references last-to-first, root first in the output.
pub fn serialize_boc(root: &Cell) -> Vec<u8> {
    // breadth-first discovery, deduplicated by hash, in insertion order
    let mut nodes: Vec<Node<'_>> = Vec::new();
    let mut index: HashMap<Bits256, usize> = HashMap::new();
    let mut pending: Vec<&Cell> = vec![root];
    while !pending.is_empty() {
        let mut next = Vec::new();
        for cell in pending {
            let h = cell_hash(cell);
            if index.contains_key(&h) {
                continue;
            }
            index.insert(h, nodes.len());
            nodes.push(Node {
                cell,
                refs: Vec::new(),
            });
            next.extend(cell.references().iter().map(|r| r.as_ref()));
        }
        pending = next;
    }
    let all_refs: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.cell
                .references()
                .iter()
                .map(|r| index.get(&cell_hash(r)).copied().unwrap_or_default())
                .collect()
        })
        .collect();
    for (node, refs) in nodes.iter_mut().zip(all_refs) {
        node.refs = refs;
    }

    let mut remaining = vec![true; nodes.len()];
    let mut sorted: Vec<usize> = Vec::with_capacity(nodes.len());
    fn visit(i: usize, nodes: &[Node<'_>], remaining: &mut [bool], sorted: &mut Vec<usize>) {
        if !remaining[i] {
            return;
        }
        for &r in nodes[i].refs.iter().rev() {
            visit(r, nodes, remaining, sorted);
        }
        sorted.push(i);
        remaining[i] = false;
    }
    while let Some(first) = remaining.iter().position(|r| *r) {
        visit(first, &nodes, &mut remaining, &mut sorted);
    }
    let order: Vec<usize> = sorted.into_iter().rev().collect();
    let mut position = vec![0usize; nodes.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }

    let count = nodes.len();
    let size_bytes = bytes_for(count as u64).max(1);
    let mut cells_data = Vec::new();
    for &i in &order {
        let cell = nodes[i].cell;
        let bits = cell.bit_len();
        let level = 0u8; // only ordinary cells are written by the SDK
        let exotic = u8::from(cell.is_exotic());
        cells_data.push(nodes[i].refs.len() as u8 + 8 * exotic + 32 * level);
        cells_data.push((bits / 8 + bits.div_ceil(8)) as u8);
        cells_data.extend(padded_data(cell.data(), bits));
        for &r in &nodes[i].refs {
            push_be(&mut cells_data, position[r] as u64, size_bytes);
        }
    }
    let total = cells_data.len() as u64;
    let offset_bytes = bytes_for(total).max(1);

    let mut out = Vec::with_capacity(cells_data.len() + 32);
    out.extend_from_slice(&[0xb5, 0xee, 0x9c, 0x72]);
    out.push(0b0100_0000 | size_bytes as u8); // no index, crc32c, no cache bits
    out.push(offset_bytes as u8);
    push_be(&mut out, count as u64, size_bytes);
    push_be(&mut out, 1, size_bytes);
    push_be(&mut out, 0, size_bytes);
    push_be(&mut out, total, offset_bytes);
    push_be(&mut out, 0, size_bytes);
    out.extend_from_slice(&cells_data);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn bytes_for(n: u64) -> usize {
    let bits = 64 - n.leading_zeros() as usize;
    bits.div_ceil(8)
}

fn push_be(out: &mut Vec<u8>, v: u64, bytes: usize) {
    let all = v.to_be_bytes();
    out.extend_from_slice(&all[8 - bytes..]);
}

/// Data bytes with the completion tag (a 1 bit, then zeros) when the length is not whole bytes.
fn padded_data(data: &[u8], bits: usize) -> Vec<u8> {
    let mut out = data[..bits.div_ceil(8).min(data.len())].to_vec();
    let rem = bits % 8;
    if rem != 0
        && let Some(last) = out.last_mut()
    {
        let keep = 0xffu8 << (8 - rem);
        *last = (*last & keep) | (1 << (7 - rem));
    }
    out
}

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82f6_3b78 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonlib_core::cell::BagOfCells;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn round_trips_the_embedded_code_byte_for_byte() {
        // the build writes code BoCs with @ton/core, so our writer must reproduce them exactly
        for c in crate::Contract::ALL {
            let hex_in = c.build().expect("record").code_boc_hex;
            let cell = c.code().expect("code");
            assert_eq!(hex::encode(serialize_boc(&cell)), hex_in, "{}", c.name());
            let parsed = BagOfCells::parse(&serialize_boc(&cell))
                .expect("parse")
                .single_root()
                .expect("root");
            assert_eq!(cell_hash(&parsed), cell_hash(&cell));
        }
    }
}
