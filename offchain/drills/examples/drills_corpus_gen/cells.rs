//! Bags of cells and TL-B cells: structural BoC damage (target `boc`), and for every contract
//! message and state decoder a wrong opcode, a truncated body or an empty cell (`message:<Type>`),
//! plus a few field-level faults (bad address tags, bad UTF-8, missing references, trailing data).

use cocoon_contracts::CellCodec;
use cocoon_contracts::messages::{EscrowDeposit, StakeUnbond};
use cocoon_contracts::opcodes;
use cocoon_contracts::registry::{TYPE_NAMES, normalize};
use cocoon_ton::tonlib::cell::{Cell, CellBuilder};

use crate::Gen;

/// A BoC written field by field: `size`-byte cell indices, `off`-byte offsets, no index, no CRC.
fn raw_boc(size: u8, off: u8, cells: u64, roots: &[u64], cell_bytes: &[u8]) -> Vec<u8> {
    let be = |v: u64, n: u8| v.to_be_bytes()[8 - usize::from(n)..].to_vec();
    let mut out = vec![0xb5, 0xee, 0x9c, 0x72, size, off];
    out.extend(be(cells, size));
    out.extend(be(roots.len() as u64, size));
    out.extend(be(0, size));
    out.extend(be(cell_bytes.len() as u64, off));
    for r in roots {
        out.extend(be(*r, size));
    }
    out.extend_from_slice(cell_bytes);
    out
}

fn cell(build: impl FnOnce(&mut CellBuilder)) -> Cell {
    let mut b = CellBuilder::new();
    build(&mut b);
    b.build().expect("cell")
}

fn boc(c: &Cell) -> Vec<u8> {
    cocoon_ton::boc::cell_to_boc(c).expect("boc")
}

fn structural(g: &mut Gen) {
    let valid = boc(&cell(|b| {
        b.store_u32(32, 0x1234_5678).expect("bits");
    }));
    let t = "boc";
    g.add("cells/empty.boc", b"", t, "boc", "zero bytes");
    let mut bad_magic = valid.clone();
    bad_magic[0] ^= 0xff;
    g.add(
        "cells/bad_magic.boc",
        &bad_magic,
        t,
        "boc",
        "first byte of the magic flipped",
    );
    g.add(
        "cells/truncated_header.boc",
        &valid[..6],
        t,
        "boc",
        "cut inside the header",
    );
    g.add(
        "cells/truncated_cell_data.boc",
        &valid[..valid.len() - 6],
        t,
        "boc",
        "cut inside the cell data",
    );
    let mut size5 = valid.clone();
    size5[4] = (size5[4] & 0xf8) | 5;
    g.add(
        "cells/size_above_4.boc",
        &size5,
        t,
        "boc",
        "index size field 5 (at most 4)",
    );
    g.add(
        "cells/root_index_out_of_range.boc",
        &raw_boc(1, 1, 1, &[3], &[0, 0]),
        t,
        "boc",
        "root index 3 of 1 cell (tonlib-core 0.26 alone panics: cell/bag_of_cells.rs:86)",
    );
    g.add(
        "cells/zero_cells_one_root.boc",
        &raw_boc(1, 1, 0, &[0], &[]),
        t,
        "boc",
        "no cells but a root (tonlib-core 0.26 alone panics: cell/bag_of_cells.rs:86)",
    );
    g.add(
        "cells/ref_index_out_of_range.boc",
        &raw_boc(1, 1, 2, &[0], &[1, 0, 9, 0, 0]),
        t,
        "boc",
        "a reference to cell 9 of 2 (tonlib-core 0.26 alone panics: cell/bag_of_cells.rs:70)",
    );
    g.add(
        "cells/self_reference.boc",
        &raw_boc(1, 1, 1, &[0], &[1, 0, 0]),
        t,
        "boc",
        "a cell that references itself (a cycle)",
    );
    g.add(
        "cells/two_cell_cycle.boc",
        &raw_boc(1, 1, 2, &[0], &[1, 0, 1, 1, 0, 0]),
        t,
        "boc",
        "cell 0 -> 1 -> 0",
    );
    let mut five_refs = vec![5u8, 0, 1, 2, 3, 4, 5];
    for _ in 0..5 {
        five_refs.extend([0, 0]);
    }
    g.add(
        "cells/five_refs.boc",
        &raw_boc(1, 1, 6, &[0], &five_refs),
        t,
        "boc",
        "a cell with 5 references (at most 4)",
    );
    g.add("cells/cell_count_bomb.boc", &raw_boc(4, 1, u64::from(u32::MAX), &[0], &[0, 0]), t, "boc", "a 20-byte BoC claiming 4 billion cells (tonlib-core 0.26 alone reserves memory for them and aborts: cell/raw.rs:114)");
    g.add(
        "cells/root_count_bomb.boc",
        &raw_boc(4, 1, 1, &[], &[])
            .iter()
            .copied()
            .enumerate()
            .map(|(i, b)| if (10..14).contains(&i) { 0xff } else { b })
            .collect::<Vec<_>>(),
        t,
        "boc",
        "claims 4 billion roots",
    );
    let mut off255 = valid.clone();
    off255[5] = 255;
    g.add(
        "cells/offset_size_255.boc",
        &off255,
        t,
        "boc",
        "offset field of 255 bytes",
    );
    g.add(
        "cells/zero_roots.boc",
        &raw_boc(1, 1, 1, &[], &[0, 0]),
        t,
        "boc",
        "no root",
    );
    g.add(
        "cells/two_roots.boc",
        &raw_boc(1, 1, 2, &[0, 1], &[0, 0, 0, 0]),
        t,
        "boc",
        "two roots where one is expected",
    );
    g.add(
        "cells/zero_completion_byte.boc",
        &raw_boc(1, 1, 1, &[0], &[0, 1, 0]),
        t,
        "boc",
        "partial last byte without its completion bit",
    );
    g.add(
        "cells/bad_exotic_type.boc",
        &raw_boc(1, 1, 1, &[0], &[8, 2, 0xff]),
        t,
        "boc",
        "exotic cell of type 0xff",
    );
    g.add(
        "cells/short_pruned_branch.boc",
        &raw_boc(1, 1, 1, &[0], &[0x28, 4, 1, 1]),
        t,
        "boc",
        "pruned branch without its hashes",
    );
    g.add(
        "cells/hashes_flag_truncated.boc",
        &raw_boc(1, 1, 1, &[0], &[0x10, 0]),
        t,
        "boc",
        "has-hashes flag with no hashes",
    );
    let mut idx = raw_boc(1, 4, 3, &[0], &[]);
    idx[4] |= 0x80;
    g.add(
        "cells/index_truncated.boc",
        &idx,
        t,
        "boc",
        "has-index flag with no index",
    );
    let mut crc = valid.clone();
    let last = crc.len() - 1;
    crc[last] ^= 0x01;
    g.add(
        "cells/bad_crc.boc",
        &crc,
        t,
        "boc",
        "CRC32-C flipped (tonlib-core 0.26 alone does not check it)",
    );
    let depth = 2_000u64;
    let mut chain = Vec::new();
    for i in 0..depth {
        if i + 1 < depth {
            chain.extend([1, 0]);
            chain.extend(((i + 1) as u16).to_be_bytes());
        } else {
            chain.extend([0, 0]);
        }
    }
    g.add("cells/deep_chain_2000.boc", &raw_boc(2, 2, depth, &[0], &chain), t, "boc", "a chain 2,000 cells deep; TON's limit is 1,024 (tonlib-core 0.26 alone does not check depth)");
}

fn decoders(g: &mut Gen) {
    let all = opcodes::ALL;
    for (i, (name, op)) in all.iter().enumerate() {
        let (other, other_op) = all[(i + 1) % all.len()];
        let wrong = cell(|b| {
            b.store_u32(32, other_op).expect("bits");
            b.store_u64(64, 0).expect("bits");
        });
        g.add(
            &format!("cells/wrong_opcode/{name}.boc"),
            &boc(&wrong),
            &format!("message:{name}"),
            "wrong_opcode",
            &format!("{other}'s opcode where {name} is expected"),
        );
        let only = cell(|b| {
            b.store_u32(32, *op).expect("bits");
        });
        g.add(
            &format!("cells/opcode_only/{name}.boc"),
            &boc(&only),
            &format!("message:{name}"),
            "cell",
            &format!("{name}'s opcode and nothing after it (cell underflow)"),
        );
    }
    for name in TYPE_NAMES {
        if all.iter().any(|(n, _)| normalize(n) == normalize(name)) {
            continue;
        }
        g.add(
            &format!("cells/empty_cell/{name}.boc"),
            &boc(&Cell::default()),
            &format!("message:{name}"),
            "cell",
            &format!("an empty cell decoded as {name}"),
        );
    }
}

fn fields(g: &mut Gen) {
    let deposit = EscrowDeposit { query_id: 1 }.to_cell().expect("cell");
    let extra_bit = cell(|b| {
        b.store_cell(&deposit).expect("copy");
        b.store_bit(true).expect("bit");
    });
    g.add(
        "cells/trailing_bit_EscrowDeposit.boc",
        &boc(&extra_bit),
        "message:EscrowDeposit",
        "trailing",
        "one bit after the last field",
    );
    let unbond = StakeUnbond {
        query_id: 2,
        amount: 5,
    }
    .to_cell()
    .expect("cell");
    let extra_ref = cell(|b| {
        b.store_cell(&unbond).expect("copy");
        b.store_child(Cell::default()).expect("ref");
    });
    g.add(
        "cells/trailing_ref_StakeUnbond.boc",
        &boc(&extra_ref),
        "message:StakeUnbond",
        "trailing",
        "a reference after the last field",
    );
    for (file, tag, anycast, why) in [
        (
            "addr_var",
            0b11u8,
            false,
            "addr_var tag where addr_std is required",
        ),
        (
            "addr_none",
            0b00,
            false,
            "addr_none where an address is required",
        ),
        ("addr_extern", 0b01, false, "addr_extern tag"),
        ("anycast", 0b10, true, "addr_std with anycast"),
    ] {
        let c = cell(|b| {
            b.store_u32(32, opcodes::CHARGE_VOUCHER).expect("bits");
            b.store_u8(2, tag).expect("bits");
            b.store_bit(anycast).expect("bit");
            b.store_u8(8, 0).expect("bits");
            b.store_slice(&[7; 32]).expect("bits");
            b.store_u32(32, 1).expect("bits");
            b.store_u8(4, 0).expect("bits");
            b.store_bit(false).expect("bit");
        });
        g.add(
            &format!("cells/ChargeVoucher_{file}.boc"),
            &boc(&c),
            "message:ChargeVoucher",
            "address",
            why,
        );
    }
    let bad_name = cell(|b| {
        b.store_u32(32, opcodes::ROOT_SET_MODEL).expect("bits");
        b.store_u64(64, 1).expect("bits");
        b.store_slice(&[9; 32]).expect("bits");
        b.store_bit(true).expect("bit");
        b.store_child(cell(|c| {
            c.store_slice(&[0xff, 0xfe, 0x41]).expect("bits");
        }))
        .expect("ref");
    });
    g.add(
        "cells/RootSetModel_bad_utf8.boc",
        &boc(&bad_name),
        "message:RootSetModel",
        "utf8",
        "model name is not UTF-8",
    );
    let no_ref = cell(|b| {
        b.store_u32(32, opcodes::ESCROW_SUBMIT_CHARGE)
            .expect("bits");
        b.store_u64(64, 1).expect("bits");
        b.store_slice(&[1; 64]).expect("bits");
    });
    g.add(
        "cells/EscrowSubmitCharge_no_voucher.boc",
        &boc(&no_ref),
        "message:EscrowSubmitCharge",
        "cell",
        "signature but no voucher reference",
    );
    let payout_inside = cell(|b| {
        b.store_u32(32, opcodes::ESCROW_SUBMIT_CHARGE)
            .expect("bits");
        b.store_u64(64, 1).expect("bits");
        b.store_slice(&[1; 64]).expect("bits");
        b.store_child(cell(|c| {
            c.store_u32(32, opcodes::PAYOUT_VOUCHER).expect("bits");
        }))
        .expect("ref");
    });
    g.add(
        "cells/EscrowSubmitCharge_payout_inside.boc",
        &boc(&payout_inside),
        "message:EscrowSubmitCharge",
        "wrong_opcode",
        "a payout voucher where the charge voucher belongs",
    );
    let bad_dict = cell(|b| {
        b.store_bit(true).expect("bit");
        b.store_child(Cell::default()).expect("ref");
        for _ in 0..3 {
            b.store_bit(false).expect("bit");
        }
    });
    g.add(
        "cells/RootRegistry_empty_dict_root.boc",
        &boc(&bad_dict),
        "message:RootRegistry",
        "cell",
        "a dictionary root cell with no label",
    );
    let short_coins = cell(|b| {
        b.store_u32(32, opcodes::ESCROW_WITHDRAW).expect("bits");
        b.store_u64(64, 1).expect("bits");
        b.store_u8(4, 15).expect("bits");
        b.store_u16(16, 0xffff).expect("bits");
    });
    g.add(
        "cells/EscrowWithdraw_short_coins.boc",
        &boc(&short_coins),
        "message:EscrowWithdraw",
        "cell",
        "coins length 15 with 2 bytes present",
    );
    let unknown = cell(|b| {
        b.store_u32(32, 0xdead_beef).expect("bits");
        b.store_u64(64, 0).expect("bits");
    });
    g.add(
        "cells/by_opcode_unknown.boc",
        &boc(&unknown),
        "message:any",
        "unknown_opcode",
        "an opcode no contract defines",
    );
    let short = cell(|b| {
        b.store_u16(16, 0x4500).expect("bits");
    });
    g.add(
        "cells/by_opcode_short.boc",
        &boc(&short),
        "message:any",
        "cell",
        "16 bits: not even an opcode",
    );
    let bad_body = cell(|b| {
        b.store_u32(32, opcodes::CHARGE_VOUCHER).expect("bits");
        b.store_u8(2, 0).expect("bits");
    });
    g.add(
        "cells/by_opcode_bad_body.boc",
        &boc(&bad_body),
        "message:any",
        "address",
        "a charge voucher opcode followed by addr_none",
    );
}

pub(crate) fn generate(g: &mut Gen) {
    structural(g);
    decoders(g);
    fields(g);
}
