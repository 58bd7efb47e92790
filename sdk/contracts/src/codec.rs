//! Cell encoding helpers shared by every schema type: the [`CellCodec`] trait, `Coins` as `u128`,
//! `addr_std` / `MsgAddress` as [`TonAddress`], 256-bit hashes, snake strings and 256-bit-key dicts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use num_bigint::BigUint;
use tonlib_core::cell::{ArcCell, Cell, CellBuilder, CellParser, TonCellError};
use tonlib_core::{TonAddress, TonHash};

use crate::error::CodecError;

/// 32 bytes: a cell hash, a public key, an account id.
pub type Bits256 = [u8; 32];

/// Largest value `Coins` (VarUInteger 16) can hold: 2^120 - 1.
pub const MAX_COINS: u128 = (1u128 << 120) - 1;

/// A type with a TL-B layout in `contracts/schema/cocoon.tlb`.
pub trait CellCodec: Sized {
    /// Appends this value's fields to `b`.
    fn store(&self, b: &mut CellBuilder) -> Result<(), CodecError>;
    /// Reads this value's fields from `p`.
    fn load(p: &mut CellParser<'_>) -> Result<Self, CodecError>;

    /// The value as its own cell.
    fn to_cell(&self) -> Result<Cell, CodecError> {
        let mut b = CellBuilder::new();
        self.store(&mut b)?;
        Ok(b.build()?)
    }

    /// The value as a shared cell, ready to be a reference.
    fn to_arc(&self) -> Result<ArcCell, CodecError> {
        Ok(Arc::new(self.to_cell()?))
    }

    /// Parses a cell that holds exactly this value (no trailing bits or references).
    fn from_cell(cell: &Cell) -> Result<Self, CodecError> {
        let mut p = cell.parser();
        let value = Self::load(&mut p)?;
        let bits = p.remaining_bits();
        let refs = p.remaining_refs();
        if bits != 0 || refs != 0 {
            return Err(CodecError::Trailing { bits, refs });
        }
        Ok(value)
    }

    /// The BoC of [`CellCodec::to_cell`], byte-identical to @ton/core's `toBoc()`.
    fn to_boc(&self) -> Result<Vec<u8>, CodecError> {
        write_boc(&self.to_cell()?)
    }

    /// Parses a single-root BoC holding exactly this value.
    fn from_boc(bytes: &[u8]) -> Result<Self, CodecError> {
        let root = cocoon_ton::boc::parse_boc(bytes)?.single_root()?;
        Self::from_cell(&root)
    }
}

/// The representation hash of a cell as 32 bytes.
pub fn cell_hash(cell: &Cell) -> Bits256 {
    hash_bytes(&cell.cell_hash())
}

/// A tonlib-core hash as 32 bytes.
pub fn hash_bytes(h: &TonHash) -> Bits256 {
    let mut out = [0u8; 32];
    out.copy_from_slice(h.as_slice());
    out
}

pub(crate) fn store_opcode(b: &mut CellBuilder, op: u32) -> Result<(), CodecError> {
    b.store_u32(32, op)?;
    Ok(())
}

pub(crate) fn load_opcode(p: &mut CellParser<'_>, expected: u32) -> Result<(), CodecError> {
    let found = p.load_u32(32)?;
    if found != expected {
        return Err(CodecError::WrongOpcode { expected, found });
    }
    Ok(())
}

/// Reads the leading 32-bit opcode of a cell without consuming anything.
pub fn peek_opcode(cell: &Cell) -> Result<u32, CodecError> {
    Ok(cell.parser().load_u32(32)?)
}

pub(crate) fn store_coins(b: &mut CellBuilder, v: u128) -> Result<(), CodecError> {
    if v > MAX_COINS {
        return Err(CodecError::CoinsOverflow(v));
    }
    b.store_coins(&BigUint::from(v))?;
    Ok(())
}

pub(crate) fn load_coins(p: &mut CellParser<'_>) -> Result<u128, CodecError> {
    let len = p.load_u8(4)? as usize;
    if len == 0 {
        return Ok(0);
    }
    let bytes = p.load_bytes(len)?;
    Ok(bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)))
}

pub(crate) fn store_bits256(b: &mut CellBuilder, v: &Bits256) -> Result<(), CodecError> {
    b.store_slice(v)?;
    Ok(())
}

pub(crate) fn load_bits256(p: &mut CellParser<'_>) -> Result<Bits256, CodecError> {
    let mut out = [0u8; 32];
    p.load_slice(&mut out)?;
    Ok(out)
}

pub(crate) fn store_bits512(b: &mut CellBuilder, v: &[u8; 64]) -> Result<(), CodecError> {
    b.store_slice(v)?;
    Ok(())
}

pub(crate) fn load_bits512(p: &mut CellParser<'_>) -> Result<[u8; 64], CodecError> {
    let mut out = [0u8; 64];
    p.load_slice(&mut out)?;
    Ok(out)
}

/// `MsgAddressInt` restricted to `addr_std$10 anycast:0 workchain:int8 address:bits256`.
pub(crate) fn store_address(b: &mut CellBuilder, a: &TonAddress) -> Result<(), CodecError> {
    let wc = i8::try_from(a.workchain)
        .map_err(|_| CodecError::UnsupportedAddress(format!("workchain {}", a.workchain)))?;
    b.store_u8(2, 0b10)?;
    b.store_bit(false)?;
    b.store_i8(8, wc)?;
    b.store_slice(a.hash_part.as_slice())?;
    Ok(())
}

fn load_std_tail(p: &mut CellParser<'_>) -> Result<TonAddress, CodecError> {
    if p.load_bit()? {
        return Err(CodecError::UnsupportedAddress("anycast".into()));
    }
    let wc = p.load_i8(8)?;
    let hash = load_bits256(p)?;
    Ok(TonAddress::new(i32::from(wc), TonHash::from(hash)))
}

pub(crate) fn load_address(p: &mut CellParser<'_>) -> Result<TonAddress, CodecError> {
    match p.load_u8(2)? {
        0b10 => load_std_tail(p),
        tag => Err(CodecError::UnsupportedAddress(format!(
            "tag {tag:02b}, expected addr_std"
        ))),
    }
}

/// `MsgAddress` that is either `addr_none$00` or `addr_std`.
pub(crate) fn store_maybe_address(
    b: &mut CellBuilder,
    a: Option<&TonAddress>,
) -> Result<(), CodecError> {
    match a {
        Some(a) => store_address(b, a),
        None => {
            b.store_u8(2, 0)?;
            Ok(())
        }
    }
}

pub(crate) fn load_maybe_address(p: &mut CellParser<'_>) -> Result<Option<TonAddress>, CodecError> {
    match p.load_u8(2)? {
        0b00 => Ok(None),
        0b10 => load_std_tail(p).map(Some),
        tag => Err(CodecError::UnsupportedAddress(format!("tag {tag:02b}"))),
    }
}

pub(crate) fn load_ref(p: &mut CellParser<'_>) -> Result<ArcCell, CodecError> {
    Ok(p.next_reference()?)
}

pub(crate) fn load_ref_as<T: CellCodec>(p: &mut CellParser<'_>) -> Result<T, CodecError> {
    T::from_cell(&*p.next_reference()?)
}

pub(crate) fn load_maybe_ref(p: &mut CellParser<'_>) -> Result<Option<ArcCell>, CodecError> {
    if p.load_bit()? {
        Ok(Some(p.next_reference()?))
    } else {
        Ok(None)
    }
}

/// A string as a snake cell the way @ton/core's `storeStringTail` writes it: 127 bytes per cell, the
/// rest in a chain of first references, no prefix byte.
pub fn snake_string_cell(s: &str) -> Result<Cell, CodecError> {
    snake_cell(s.as_bytes())
}

fn snake_cell(bytes: &[u8]) -> Result<Cell, CodecError> {
    let (head, tail) = bytes.split_at(bytes.len().min(127));
    let mut b = CellBuilder::new();
    b.store_slice(head)?;
    if !tail.is_empty() {
        b.store_child(snake_cell(tail)?)?;
    }
    Ok(b.build()?)
}

/// Reads a snake string (data bits of the cell, then of its first reference, recursively).
pub fn read_snake_string(cell: &Cell) -> Result<String, CodecError> {
    let mut bytes = Vec::new();
    let mut current = cell.clone();
    loop {
        let mut p = current.parser();
        let n = p.remaining_bits() / 8;
        bytes.extend(p.load_bytes(n)?);
        if current.references().is_empty() {
            break;
        }
        let next = current.reference(0)?.as_ref().clone();
        current = next;
    }
    String::from_utf8(bytes).map_err(|_| CodecError::Utf8)
}

/// Writes `HashmapE 256 V` (the empty dict as one 0 bit).
pub(crate) fn store_dict256<V: Clone>(
    b: &mut CellBuilder,
    map: &BTreeMap<Bits256, V>,
    writer: fn(&mut CellBuilder, V) -> Result<(), TonCellError>,
) -> Result<(), CodecError> {
    let data: HashMap<BigUint, V> = map
        .iter()
        .map(|(k, v)| (BigUint::from_bytes_be(k), v.clone()))
        .collect();
    b.store_dict(256, writer, data)?;
    Ok(())
}

pub(crate) fn load_dict256<V>(
    p: &mut CellParser<'_>,
    reader: fn(&mut CellParser<'_>) -> Result<V, TonCellError>,
) -> Result<BTreeMap<Bits256, V>, CodecError> {
    if !p.load_bit()? {
        return Ok(BTreeMap::new());
    }
    let root = p.next_reference()?;
    check_hashmap_labels(&root, 256)?;
    let raw = root
        .parser()
        .load_dict_data(256, key_reader_bits256, reader)?;
    Ok(raw.into_iter().collect())
}

/// Bits of a label length when `m` key bits are left: `#<= m` takes ceil(log2(m + 1)) bits.
fn label_len_bits(m: usize) -> usize {
    (usize::BITS - m.leading_zeros()) as usize
}

/// Checks every label and fork of a `Hashmap m X` tree before tonlib-core walks it: its parser
/// underflows (panics) on a label longer than the key bits left, which any peer or chain API could
/// send. Each level consumes at least one key bit, so the recursion is at most `m + 1` deep.
fn check_hashmap_labels(cell: &ArcCell, m: usize) -> Result<(), CodecError> {
    let bad = |what: &str| CodecError::Cell(TonCellError::CellParserError(what.into()));
    let mut p = cell.parser();
    let label = if !p.load_bit()? {
        // hml_short: unary length, then the bits
        let n = p.load_unary_length()?;
        if n > m {
            return Err(bad("dict label longer than the key"));
        }
        p.skip_bits(n)?;
        n
    } else {
        let same = p.load_bit()?;
        if same {
            // hml_same: one bit repeated n times
            p.load_bit()?;
        }
        let n = usize::try_from(p.load_u64(label_len_bits(m))?)
            .map_err(|_| bad("dict label length out of range"))?;
        if n > m {
            return Err(bad("dict label longer than the key"));
        }
        if !same {
            // hml_long: n bits
            p.skip_bits(n)?;
        }
        n
    };
    let rest = m - label;
    if rest > 0 {
        let (Ok(left), Ok(right)) = (cell.reference(0), cell.reference(1)) else {
            return Err(bad("dict fork without two branches"));
        };
        check_hashmap_labels(left, rest - 1)?;
        check_hashmap_labels(right, rest - 1)?;
    }
    Ok(())
}

fn key_reader_bits256(k: &BigUint) -> Result<Bits256, TonCellError> {
    let bytes = k.to_bytes_be();
    if bytes.len() > 32 {
        return Err(TonCellError::CellParserError(
            "dict key longer than 256 bits".into(),
        ));
    }
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(&bytes);
    Ok(out)
}

/// The 256-bit account id of an address (its hash part), as used for dict keys.
pub fn account_id(a: &TonAddress) -> Bits256 {
    hash_bytes(&a.hash_part)
}

/// A cell's BoC as @ton/core writes it (the one writer, [`cocoon_ton::boc::cell_to_boc`]).
pub fn write_boc(cell: &Cell) -> Result<Vec<u8>, CodecError> {
    cocoon_ton::boc::cell_to_boc(cell)
        .map_err(|e| CodecError::Cell(TonCellError::BagOfCellsSerializationError(e.to_string())))
}

/// Hex of a cell's BoC (as @ton/core writes it), lower case.
pub fn boc_hex(cell: &Cell) -> Result<String, CodecError> {
    Ok(hex::encode(write_boc(cell)?))
}

/// Parses a single-root BoC from hex.
pub fn cell_from_boc_hex(s: &str) -> Result<ArcCell, CodecError> {
    let bytes = hex::decode(s.trim())?;
    Ok(cocoon_ton::boc::parse_boc(&bytes)?.single_root()?)
}

fn to_cell_error(e: CodecError) -> TonCellError {
    match e {
        CodecError::Cell(c) => c,
        other => TonCellError::CellBuilderError(other.to_string()),
    }
}

pub(crate) fn write_u32(b: &mut CellBuilder, v: u32) -> Result<(), TonCellError> {
    b.store_u32(32, v)?;
    Ok(())
}

pub(crate) fn read_u32(p: &mut CellParser<'_>) -> Result<u32, TonCellError> {
    p.load_u32(32)
}

pub(crate) fn write_snake(b: &mut CellBuilder, v: String) -> Result<(), TonCellError> {
    b.store_child(snake_string_cell(&v).map_err(to_cell_error)?)?;
    Ok(())
}

pub(crate) fn read_snake(p: &mut CellParser<'_>) -> Result<String, TonCellError> {
    let c = p.next_reference()?;
    read_snake_string(&c).map_err(to_cell_error)
}

pub(crate) fn write_codec<T: CellCodec>(b: &mut CellBuilder, v: T) -> Result<(), TonCellError> {
    v.store(b).map_err(to_cell_error)
}

pub(crate) fn read_codec<T: CellCodec>(p: &mut CellParser<'_>) -> Result<T, TonCellError> {
    T::load(p).map_err(|e| TonCellError::CellParserError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_reproduces_the_embedded_code_byte_for_byte() {
        // The build writes the code BoCs with @ton/core, so the shared writer must match them.
        for c in crate::Contract::ALL {
            let hex_in = c.build().expect("record").code_boc_hex;
            let cell = c.code().expect("code");
            assert_eq!(boc_hex(&cell).expect("boc"), hex_in, "{}", c.name());
            let parsed = cell_from_boc_hex(&hex_in).expect("parse");
            assert_eq!(cell_hash(&parsed), cell_hash(&cell));
        }
    }
}
