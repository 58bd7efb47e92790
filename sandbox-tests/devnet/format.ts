// Conversions between sandbox/@ton/core values and toncenter API v2 JSON shapes.
import {
    Address,
    beginCell,
    Cell,
    Dictionary,
    Message,
    storeMessage,
    storeStateInit,
    Transaction,
    TupleItem,
} from '@ton/core';

/** An error that the HTTP layer turns into toncenter's `{ok:false,error,code}` envelope. */
export class ApiError extends Error {
    constructor(
        readonly code: number,
        message: string,
    ) {
        super(message);
    }
}

export function b64(buf: Buffer): string {
    return buf.toString('base64');
}

export function friendly(addr: Address): string {
    return addr.toString({ urlSafe: true, bounceable: true, testOnly: false });
}

export function parseAddress(value: unknown, name = 'address'): Address {
    if (typeof value !== 'string' || value.length === 0) {
        throw new ApiError(400, `missing parameter: ${name}`);
    }
    try {
        return Address.parse(value);
    } catch {
        throw new ApiError(416, `Incorrect address: ${value}`);
    }
}

export function parseBocParam(value: unknown, name: string): Cell {
    if (typeof value !== 'string' || value.length === 0) {
        throw new ApiError(400, `missing parameter: ${name}`);
    }
    try {
        const cells = Cell.fromBoc(Buffer.from(value, 'base64'));
        if (cells.length !== 1) {
            throw new Error('expected exactly one root cell');
        }
        return cells[0];
    } catch (e) {
        throw new ApiError(400, `invalid ${name}: not a base64 bag of cells (${(e as Error).message})`);
    }
}

export function transactionId(lt: bigint, hash: Buffer) {
    return { '@type': 'internal.transactionId', lt: lt.toString(), hash: b64(hash) };
}

export const ZERO_TX_ID = { '@type': 'internal.transactionId', lt: '0', hash: b64(Buffer.alloc(32)) };

/** The normalized hash of an inbound external message (TEP-467): src none, import_fee 0, no init, body in a ref. */
export function normalizedExternalHash(msg: Message): Buffer | undefined {
    if (msg.info.type !== 'external-in') {
        return undefined;
    }
    const cell = beginCell()
        .storeUint(0b10, 2)
        .storeUint(0, 2)
        .storeAddress(msg.info.dest)
        .storeCoins(0)
        .storeBit(false)
        .storeBit(true)
        .storeRef(msg.body)
        .endCell();
    return cell.hash();
}

/** The raw cells of a transaction's in-message and out-messages, in the layout the network hashes. */
export function rawMessageCells(tx: Transaction): { inMsg?: Cell; outMsgs: Cell[] } {
    const slice = tx.raw.beginParse();
    // transaction$0111 account_addr lt prev_trans_hash prev_trans_lt now outmsg_cnt orig_status end_status ^[...]
    const msgs = slice.loadRef().beginParse();
    const inMsg = msgs.loadBit() ? msgs.loadRef() : undefined;
    const dict = msgs.loadDict(Dictionary.Keys.Uint(15), Dictionary.Values.Cell());
    const outMsgs = dict
        .keys()
        .sort((a, b) => a - b)
        .map((k) => dict.get(k) as Cell);
    return { inMsg, outMsgs };
}

function addrOrEmpty(a: Address | { toString(): string } | null | undefined): string {
    if (a === null || a === undefined) return '';
    if (Address.isAddress(a)) return friendly(a);
    return a.toString();
}

/** toncenter's raw.message object. `hashOverride` maps a recorded cell hash to the hash the sender used. */
export function messageJson(msg: Message, cell: Cell | undefined, hashOverride?: (h: Buffer) => Buffer) {
    const own = cell ?? beginCell().store(storeMessage(msg)).endCell();
    const hash = hashOverride ? hashOverride(own.hash()) : own.hash();
    const info = msg.info;
    let value = '0';
    let fwdFee = '0';
    let ihrFee = '0';
    let createdLt = '0';
    let bounce = false;
    let bounced = false;
    if (info.type === 'internal') {
        value = info.value.coins.toString();
        fwdFee = info.forwardFee.toString();
        ihrFee = info.ihrFee.toString();
        createdLt = info.createdLt.toString();
        bounce = info.bounce;
        bounced = info.bounced;
    } else if (info.type === 'external-out') {
        createdLt = info.createdLt.toString();
    }
    const init = msg.init ? b64(beginCell().store(storeStateInit(msg.init)).endCell().toBoc()) : '';
    const out: Record<string, unknown> = {
        '@type': 'raw.message',
        hash: b64(hash),
        source: info.type === 'external-in' ? addrOrEmpty(info.src) : addrOrEmpty(info.src),
        destination: info.type === 'external-out' ? addrOrEmpty(info.dest) : addrOrEmpty(info.dest),
        value,
        extra_currencies: [],
        fwd_fee: fwdFee,
        ihr_fee: ihrFee,
        created_lt: createdLt,
        bounce,
        bounced,
        body_hash: b64(msg.body.hash()),
        msg_data: { '@type': 'msg.dataRaw', body: b64(msg.body.toBoc()), init_state: init },
        message: '',
    };
    const norm = normalizedExternalHash(msg);
    if (norm) out.hash_norm = b64(norm);
    return out;
}

export function transactionJson(tx: Transaction, account: Address, hashOverride: (h: Buffer) => Buffer) {
    const { inMsg, outMsgs } = rawMessageCells(tx);
    const fee = tx.totalFees.coins;
    let storageFee = 0n;
    const d = tx.description;
    if ((d.type === 'generic' || d.type === 'storage' || d.type === 'tick-tock') && d.storagePhase) {
        storageFee = d.storagePhase.storageFeesCollected;
    }
    const outs: unknown[] = [];
    const outKeys = tx.outMessages.keys().sort((a, b) => a - b);
    outKeys.forEach((k, i) => {
        const m = tx.outMessages.get(k);
        if (m) outs.push(messageJson(m, outMsgs[i]));
    });
    let aborted = false;
    let exitCode: number | null = null;
    if (d.type === 'generic') {
        aborted = d.aborted;
        if (d.computePhase.type === 'vm') exitCode = d.computePhase.exitCode;
    }
    return {
        '@type': 'raw.transaction',
        address: { '@type': 'accountAddress', account_address: friendly(account) },
        utime: tx.now,
        data: b64(tx.raw.toBoc()),
        transaction_id: transactionId(tx.lt, tx.hash()),
        fee: fee.toString(),
        storage_fee: storageFee.toString(),
        other_fee: (fee - storageFee).toString(),
        in_msg: tx.inMessage ? messageJson(tx.inMessage, inMsg, hashOverride) : null,
        out_msgs: outs,
        // Not in toncenter's schema; handy when debugging a failed transaction.
        aborted,
        compute_exit_code: exitCode,
    };
}

// ---- get-method stacks -------------------------------------------------------------------------

function parseBigInt(v: unknown): bigint {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
    if (typeof v === 'string') {
        const s = v.trim();
        const neg = s.startsWith('-');
        const body = neg ? s.slice(1) : s;
        if (/^0x[0-9a-fA-F]+$/.test(body) || /^[0-9]+$/.test(body)) {
            const n = BigInt(body);
            return neg ? -n : n;
        }
    }
    throw new ApiError(400, `invalid stack number: ${JSON.stringify(v)}`);
}

function cellParam(v: unknown): Cell {
    if (v && typeof v === 'object' && 'bytes' in (v as Record<string, unknown>)) {
        return parseBocParam((v as Record<string, unknown>).bytes, 'stack cell');
    }
    return parseBocParam(v, 'stack cell');
}

/** toncenter input stack: [["num", "0x1"], ["cell", b64 | {bytes}], ["slice", ...], ["null"]]. */
export function parseStack(raw: unknown): TupleItem[] {
    let entries = raw;
    if (typeof raw === 'string') {
        try {
            entries = JSON.parse(raw);
        } catch {
            throw new ApiError(400, 'invalid stack: not JSON');
        }
    }
    if (entries === undefined || entries === null) return [];
    if (!Array.isArray(entries)) throw new ApiError(400, 'invalid stack: expected an array');
    return entries.map((e): TupleItem => {
        if (!Array.isArray(e) || typeof e[0] !== 'string') {
            throw new ApiError(400, `invalid stack entry: ${JSON.stringify(e)}`);
        }
        switch (e[0]) {
            case 'num':
            case 'number':
            case 'int':
                return { type: 'int', value: parseBigInt(e[1]) };
            case 'cell':
            case 'tvm.Cell':
                return { type: 'cell', cell: cellParam(e[1]) };
            case 'slice':
            case 'tvm.Slice':
                return { type: 'slice', cell: cellParam(e[1]) };
            case 'null':
                return { type: 'null' };
            default:
                throw new ApiError(400, `unsupported stack entry type: ${e[0]}`);
        }
    });
}

function hexNum(v: bigint): string {
    return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** Nested tuple elements use tonlib's typed objects, as toncenter does. */
function typedEntry(item: TupleItem): unknown {
    switch (item.type) {
        case 'int':
            return { '@type': 'tvm.stackEntryNumber', number: { '@type': 'tvm.numberDecimal', number: item.value.toString() } };
        case 'cell':
            return { '@type': 'tvm.stackEntryCell', cell: { '@type': 'tvm.cell', bytes: b64(item.cell.toBoc()) } };
        case 'slice':
            return { '@type': 'tvm.stackEntrySlice', slice: { '@type': 'tvm.slice', bytes: b64(item.cell.toBoc()) } };
        case 'builder':
            return { '@type': 'tvm.stackEntryCell', cell: { '@type': 'tvm.cell', bytes: b64(item.cell.toBoc()) } };
        case 'tuple':
            return { '@type': 'tvm.stackEntryTuple', tuple: { '@type': 'tvm.tuple', elements: item.items.map(typedEntry) } };
        case 'null':
            return { '@type': 'tvm.stackEntryUnsupported' };
        case 'nan':
            return { '@type': 'tvm.stackEntryNumber', number: { '@type': 'tvm.numberDecimal', number: 'NaN' } };
    }
}

export function stackJson(items: TupleItem[]): unknown[] {
    return items.map((item) => {
        switch (item.type) {
            case 'int':
                return ['num', hexNum(item.value)];
            case 'cell':
                return ['cell', { bytes: b64(item.cell.toBoc()), object: {} }];
            case 'slice':
                return ['slice', { bytes: b64(item.cell.toBoc()), object: {} }];
            case 'builder':
                return ['builder', { bytes: b64(item.cell.toBoc()), object: {} }];
            case 'tuple':
                return ['tuple', { '@type': 'tvm.tuple', elements: item.items.map(typedEntry) }];
            case 'null':
                return ['null', null];
            case 'nan':
                return ['num', 'NaN'];
        }
    });
}
