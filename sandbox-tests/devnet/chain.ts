// The devnet's chain: a @ton/sandbox Blockchain plus chain time, a block counter and persistence.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
    Blockchain,
    BlockchainTransaction,
    EmulationError,
    GetMethodError,
} from '@ton/sandbox';
import { Address, beginCell, Cell, loadMessage, Message, Transaction, TupleItem } from '@ton/core';
import { ApiError, b64, normalizedExternalHash, rawMessageCells } from './format.js';
import { SerializableSnapshot, snapshotFromState, snapshotToState } from './state.js';

const STATE_VERSION = 1;
const TREASURY_SEED = 'cocoon-devnet-treasury';
const TREASURY_FLOOR = 1_000_000_000n * 1_000_000_000n; // 1e9 TON: top the treasury up below this

/** What the devnet keeps beyond the sandbox snapshot. */
type DevnetMeta = {
    /** seconds added to the wall clock to get chain time */
    timeOffset: number;
    /** chain time never goes backwards, even across restarts with a skewed clock */
    lastNow: number;
    /** a pseudo masterchain seqno: one "block" per state change */
    seqno: number;
    /** recorded in-message cell hash (hex) -> hash of the BoC the sender submitted (hex) */
    sentHashes: Record<string, string>;
};

type StateFile = { version: number; meta: DevnetMeta; snapshot: SerializableSnapshot };

export type WalletKind = { type: string; code: Cell };

const WALLET_CODE_HASHES: Record<string, string> = {
    feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0: 'wallet v4 r2',
    '20834b7b72b112147e1b2fb457b84e74d1a30f04f737d4f62a668e9552d2b72f': 'wallet v5 r1',
};

export class Chain {
    private meta: DevnetMeta = { timeOffset: 0, lastNow: 0, seqno: 1, sentHashes: {} };
    private queue: Promise<unknown> = Promise.resolve();

    private constructor(
        readonly bc: Blockchain,
        readonly statePath: string | undefined,
    ) {}

    static async open(statePath: string | undefined): Promise<Chain> {
        const bc = await Blockchain.create();
        bc.verbosity = { print: false, blockchainLogs: false, vmLogs: 'none', debugLogs: false };
        const chain = new Chain(bc, statePath);
        if (statePath && fs.existsSync(statePath)) {
            const parsed = JSON.parse(fs.readFileSync(statePath, 'utf8')) as StateFile;
            if (parsed.version !== STATE_VERSION) {
                throw new Error(`state file ${statePath} has version ${parsed.version}, expected ${STATE_VERSION}`);
            }
            const { snapshot, droppedLinks } = snapshotFromState(parsed.snapshot);
            if (droppedLinks > 0) {
                console.error(`devnet: ${statePath} was written by an older devnet: dropped ${droppedLinks} transaction links it could not resolve`);
            }
            await bc.loadFrom(snapshot);
            chain.meta = parsed.meta;
        }
        bc.verbosity = { print: false, blockchainLogs: false, vmLogs: 'none', debugLogs: false };
        chain.persist();
        return chain;
    }

    /** Serialises every operation: the sandbox and the state file see one change at a time. */
    serial<T>(fn: () => Promise<T>): Promise<T> {
        const next = this.queue.then(fn, fn);
        this.queue = next.catch(() => undefined);
        return next;
    }

    now(): number {
        const wall = Math.floor(Date.now() / 1000) + this.meta.timeOffset;
        return Math.max(wall, this.meta.lastNow);
    }

    get seqno(): number {
        return this.meta.seqno;
    }

    transactions(): BlockchainTransaction[] {
        // The sandbox keeps every transaction in emulation order; it is protected, not private.
        return (this.bc as unknown as { transactions: BlockchainTransaction[] }).transactions;
    }

    /** Moves chain time to `unix`; refuses to go backwards because accounts already have later transactions. */
    setTime(unix: number): void {
        if (!Number.isSafeInteger(unix) || unix < 0) throw new ApiError(400, 'time must be a non-negative integer');
        const current = this.now();
        if (unix < current) {
            throw new ApiError(400, `cannot move chain time backwards (now ${current}, asked ${unix})`);
        }
        this.meta.timeOffset = unix - Math.floor(Date.now() / 1000);
        this.meta.lastNow = unix;
        this.commit();
    }

    advanceTime(secs: number): void {
        if (!Number.isSafeInteger(secs) || secs < 0) throw new ApiError(400, 'seconds must be a non-negative integer');
        this.setTime(this.now() + secs);
    }

    /** Applies a state change: pins chain time for the sandbox, bumps the block counter, persists. */
    private async change<T>(fn: () => Promise<T>): Promise<T> {
        const now = this.now();
        this.bc.now = now;
        try {
            return await fn();
        } finally {
            // A failed emulation can leave queued children behind; drop them so the next call starts clean.
            const q = (this.bc as unknown as { defaultQueueManager?: { messageQueue?: unknown[] } }).defaultQueueManager;
            if (q?.messageQueue && q.messageQueue.length > 0) q.messageQueue.length = 0;
            this.bc.now = undefined;
            this.meta.lastNow = Math.max(this.meta.lastNow, now);
            this.commit();
        }
    }

    private commit(): void {
        this.meta.seqno += 1;
        this.persist();
    }

    /** Atomic write: temp file in the same folder, then rename over the state file. */
    persist(): void {
        if (!this.statePath) return;
        const state: StateFile = {
            version: STATE_VERSION,
            meta: this.meta,
            snapshot: snapshotToState(this.bc.snapshot()),
        };
        const dir = path.dirname(this.statePath);
        fs.mkdirSync(dir, { recursive: true });
        const tmp = path.join(dir, `.${path.basename(this.statePath)}.${process.pid}.tmp`);
        fs.writeFileSync(tmp, JSON.stringify(state));
        fs.renameSync(tmp, this.statePath);
    }

    /** Sends an inbound external message; refuses it like a lite server when the contract does not accept it. */
    async sendExternal(boc: Cell): Promise<{ hash: Buffer; hashNorm: Buffer }> {
        let msg;
        try {
            msg = loadMessage(boc.beginParse());
        } catch (e) {
            throw new ApiError(400, `cannot parse message: ${(e as Error).message}`);
        }
        if (msg.info.type !== 'external-in') {
            throw new ApiError(400, 'only inbound external messages can be sent');
        }
        const hash = boc.hash();
        const hashNorm = normalizedExternalHash(msg) as Buffer;
        await this.change(async () => {
            let result;
            try {
                result = await this.bc.sendMessage(msg);
            } catch (e) {
                if (e instanceof EmulationError) {
                    const exit = e.exitCode !== undefined ? `: exitcode=${e.exitCode}` : '';
                    throw new ApiError(
                        500,
                        `LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\n` +
                            `Cannot run message on account: inbound external message rejected by transaction ${(msg.info.dest as Address).toRawString()}${exit}, ${e.error}`,
                    );
                }
                throw new ApiError(500, `LITE_SERVER_UNKNOWN: ${(e as Error).message}`);
            }
            const first = result.transactions[0];
            if (first) {
                const recorded = rawMessageCells(first).inMsg;
                if (recorded && !recorded.hash().equals(hash)) {
                    this.meta.sentHashes[recorded.hash().toString('hex')] = hash.toString('hex');
                }
            }
        });
        return { hash, hashNorm };
    }

    /**
     * Fees of an inbound external message, emulated on a copy of the current state: the chain, its
     * history, the block counter and the state file are left exactly as they were.
     */
    async estimateFee(msg: Message, ignoreChksig: boolean) {
        const saved = this.bc.snapshot();
        this.bc.now = this.now();
        try {
            const result = await this.bc.sendMessage(msg, { ignoreChksig });
            const tx = result.transactions[0];
            if (!tx) throw new ApiError(500, 'emulation produced no transaction');
            const d = tx.description;
            let storage = 0n;
            let gas = 0n;
            let actionFees = 0n;
            let fwd = 0n;
            if (d.type === 'generic') {
                storage = d.storagePhase?.storageFeesCollected ?? 0n;
                if (d.computePhase.type === 'vm') gas = d.computePhase.gasFees;
                actionFees = d.actionPhase?.totalActionFees ?? 0n;
                fwd = d.actionPhase?.totalFwdFees ?? 0n;
            }
            const inFwd = tx.totalFees.coins - storage - gas - actionFees;
            return { inFwd: inFwd > 0n ? inFwd : 0n, storage, gas, fwd };
        } catch (e) {
            if (e instanceof EmulationError) {
                const exit = e.exitCode !== undefined ? `: exitcode=${e.exitCode}` : '';
                throw new ApiError(500, `LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted${exit}, ${e.error}`);
            }
            throw e;
        } finally {
            const q = (this.bc as unknown as { defaultQueueManager?: { messageQueue?: unknown[] } }).defaultQueueManager;
            if (q?.messageQueue && q.messageQueue.length > 0) q.messageQueue.length = 0;
            await this.bc.loadFrom(saved);
            this.bc.now = undefined;
        }
    }

    /** The hash a client knows for a recorded in-message cell (the BoC it sent), if it differs. */
    sentHash = (recorded: Buffer): Buffer => {
        const sent = this.meta.sentHashes[recorded.toString('hex')];
        return sent ? Buffer.from(sent, 'hex') : recorded;
    };

    /** Funds any address (deployed or not) from the treasury with a non-bounceable transfer. */
    async fund(address: Address, amount: bigint): Promise<Transaction | undefined> {
        if (amount <= 0n) throw new ApiError(400, 'amount must be positive');
        return this.change(async () => {
            const treasury = await this.bc.treasury(TREASURY_SEED);
            const tc = await this.bc.getContract(treasury.address);
            if (tc.balance < amount + TREASURY_FLOOR) tc.balance = amount + 2n * TREASURY_FLOOR;
            const result = await treasury.send({ to: address, value: amount, bounce: false });
            return result.transactions.find((tx) => tx.address === BigInt('0x' + address.hash.toString('hex')));
        });
    }

    async account(address: Address) {
        const c = await this.bc.getContract(address);
        const st = c.accountState;
        const state = st === undefined ? 'uninitialized' : st.type === 'uninit' ? 'uninitialized' : st.type;
        const code = st?.type === 'active' ? (st.state.code ?? undefined) : undefined;
        const data = st?.type === 'active' ? (st.state.data ?? undefined) : undefined;
        const lastLt = c.lastTransactionLt;
        const lastHash = Buffer.from(c.lastTransactionHash.toString(16).padStart(64, '0'), 'hex');
        return { balance: c.balance, state, code, data, lastLt, lastHash, frozenHash: st?.type === 'frozen' ? st.stateHash : undefined };
    }

    walletType(code: Cell | undefined): string | undefined {
        return code ? WALLET_CODE_HASHES[code.hash().toString('hex')] : undefined;
    }

    /** Runs a get method; non-zero exit codes come back as results, like toncenter. */
    async runGetMethod(address: Address, method: string | number, stack: TupleItem[]) {
        const acc = await this.account(address);
        if (acc.state !== 'active') {
            return { exitCode: -13, gasUsed: 0n, stack: [] as TupleItem[] };
        }
        try {
            const r = await this.bc.runGetMethod(address, method, stack, { now: this.now() });
            return { exitCode: r.exitCode, gasUsed: r.gasUsed, stack: r.stack };
        } catch (e) {
            if (e instanceof GetMethodError) return { exitCode: e.exitCode, gasUsed: e.gasUsed, stack: [] as TupleItem[] };
            throw new ApiError(500, `get method failed: ${(e as Error).message}`);
        }
    }

    blockId() {
        const h = (tag: string) =>
            b64(createHash('sha256').update(`${tag}:${this.meta.seqno}:${this.bc.lt}`).digest());
        return {
            '@type': 'ton.blockIdExt',
            workchain: -1,
            shard: '-9223372036854775808',
            seqno: this.meta.seqno,
            root_hash: h('root'),
            file_hash: h('file'),
        };
    }

    stateRootHash(): string {
        return b64(beginCell().storeUint(this.meta.seqno, 64).storeUint(this.bc.lt, 64).endCell().hash());
    }
}
