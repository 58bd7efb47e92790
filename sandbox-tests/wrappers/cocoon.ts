// TypeScript mirror of contracts/schema/cocoon.tlb: builders for every message, statement and storage
// layout, error names and opcodes (checked against the build by tests/mirrors.test.ts).
import { Address, beginCell, Builder, Cell, Dictionary, Slice } from '@ton/core';
import { sign } from '@ton/crypto';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUILD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'contracts', 'build');

export const Errors = JSON.parse(readFileSync(join(BUILD, 'errors.json'), 'utf8')) as Record<string, number>;

/** Error code by name; throws on a name the contracts do not define. */
export function err(name: string): number {
    const code = Errors[name];
    if (code === undefined) throw new Error(`unknown error ${name}`);
    return code;
}

export const Op = {
    ChargeVoucher: 0xc4a20001,
    PayoutVoucher: 0xc4a20002,
    ServingStatement: 0xc4a20003,
    FaultReport: 0xc4a20004,
    RootChangeOwner: 0x52000001,
    RootAcceptOwner: 0x52000002,
    RootSetImage: 0x52000003,
    RootSetModel: 0x52000004,
    RootSetProxy: 0x52000005,
    RootSetParams: 0x52000006,
    RootSetCodes: 0x52000007,
    RootWithdrawKept: 0x52000008,
    RootOpenStake: 0x52000010,
    RootOpenEscrow: 0x52000011,
    RootSyncVaultKey: 0x52000012,
    RootReportEquivocation: 0x52000020,
    RootReportRevoked: 0x52000021,
    RootReportFault: 0x52000022,
    RootOwnerNotice: 0x52000030,
    RootReportRefused: 0x52000031,
    StakeInit: 0x53000001,
    StakeDeposit: 0x53000002,
    StakeSetKey: 0x53000003,
    StakeUnbond: 0x53000004,
    StakeWithdraw: 0x53000005,
    StakeSettle: 0x53000006,
    StakeClaimPayout: 0x53000007,
    StakeWithdrawEarnings: 0x53000008,
    StakeSlash: 0x53000009,
    StakeCommitMarker: 0x5300000a,
    StakeRegisteredKey: 0x5300000b,
    StakePayoutNotice: 0x53000010,
    StakeWithdrawNotice: 0x53000011,
    StakeRewardNotice: 0x53000012,
    RootKeptNotice: 0x53000013,
    EscrowInit: 0x45000001,
    EscrowDeposit: 0x45000002,
    EscrowSetStake: 0x45000003,
    EscrowSubmitCharge: 0x45000004,
    EscrowWithdraw: 0x45000005,
    EscrowRequestClose: 0x45000006,
    EscrowFinishClose: 0x45000007,
    EscrowSetClientKey: 0x45000008,
    EscrowRefundNotice: 0x45000010,
} as const;

export const ROLE_WORKER = 0;
export const ROLE_PROXY = 1;
export const ROLE_KMS = 2;
export const STAKE_ACTIVE = 1;
export const ESCROW = { UNINIT: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export const SLASH = { EQUIVOCATION: 1, REVOKED_SERVING: 2, FAULT: 3 } as const;

/** Fees the contracts keep or require (mirrors contracts/<name>/fees.tolk). */
export const Fees = {
    stakeDeposit: 5_000_000n,
    escrowDeposit: 5_000_000n,
    escrowCharge: 6_000_000n,
    escrowClientOp: 10_000_000n,
    stakeOwnerOp: 10_000_000n,
    stakeSettleGas: 2_000_000n,
    stakeClaim: 10_000_000n,
    rootOwnerOp: 10_000_000n,
    rootOpen: 50_000_000n,
    rootReport: 50_000_000n,
};

export function loadCode(name: 'root' | 'stake' | 'escrow'): { code: Cell; codeHash: string } {
    const j = JSON.parse(readFileSync(join(BUILD, `${name}.json`), 'utf8'));
    return { code: Cell.fromBoc(Buffer.from(j.codeBoc, 'hex'))[0], codeHash: j.codeHash };
}

// ---------------------------------------------------------------- statements

export interface ChargeVoucher { escrow: Address; seqno: number; charged: bigint; final: boolean }
export interface PayoutVoucher { vault: Address; worker: Address; seqno: number; paid: bigint }
export interface ServingStatement { root: Address; imageHash: bigint; servedAt: number; receiptHash: bigint }
export interface FaultReport { root: Address; proxy: Address; worker: Address; reportId: bigint; at: number; reason: number }

export function chargeVoucherCell(v: ChargeVoucher): Cell {
    return beginCell().storeUint(Op.ChargeVoucher, 32).storeAddress(v.escrow)
        .storeUint(v.seqno, 32).storeCoins(v.charged).storeBit(v.final).endCell();
}
export function payoutVoucherCell(v: PayoutVoucher): Cell {
    return beginCell().storeUint(Op.PayoutVoucher, 32).storeAddress(v.vault).storeAddress(v.worker)
        .storeUint(v.seqno, 32).storeCoins(v.paid).endCell();
}
export function servingStatementCell(s: ServingStatement): Cell {
    return beginCell().storeUint(Op.ServingStatement, 32).storeAddress(s.root).storeUint(s.imageHash, 256)
        .storeUint(s.servedAt, 32).storeUint(s.receiptHash, 256).endCell();
}
export function faultReportCell(r: FaultReport): Cell {
    return beginCell().storeUint(Op.FaultReport, 32).storeAddress(r.root).storeAddress(r.proxy)
        .storeAddress(r.worker).storeUint(r.reportId, 64).storeUint(r.at, 32).storeUint(r.reason, 16).endCell();
}
/** Ed25519 over the representation hash of the statement cell. */
export function signCell(c: Cell, secretKey: Buffer): Buffer {
    return sign(c.hash(), secretKey);
}
export function signedCell(c: Cell, secretKey: Buffer): Cell {
    return beginCell().storeBuffer(signCell(c, secretKey)).storeRef(c).endCell();
}

// ---------------------------------------------------------------- root

export interface NetworkParams {
    pricePerToken: bigint;
    promptMult: number; cachedMult: number; completionMult: number; reasoningMult: number;
    workerShareBps: number;
    minWorkerStake: bigint; minProxyStake: bigint;
    unbondDelay: number; closeDelay: number;
    equivocationSlashBps: number; revokedSlashBps: number; faultSlashBps: number; reporterRewardBps: number;
    burnSlashed: boolean; gracePeriod: number; faultCap: number; faultPeriod: number;
}

export const defaultParams: NetworkParams = {
    pricePerToken: 20n, promptMult: 10000, cachedMult: 1000, completionMult: 40000, reasoningMult: 40000,
    workerShareBps: 9000, minWorkerStake: 10n ** 9n, minProxyStake: 10n ** 9n,
    unbondDelay: 86400, closeDelay: 3600,
    equivocationSlashBps: 5000, revokedSlashBps: 2000, faultSlashBps: 100, reporterRewardBps: 1000,
    burnSlashed: false, gracePeriod: 600, faultCap: 3, faultPeriod: 86400,
};

export function paramsCell(p: NetworkParams): Cell {
    return beginCell().storeCoins(p.pricePerToken)
        .storeUint(p.promptMult, 32).storeUint(p.cachedMult, 32).storeUint(p.completionMult, 32).storeUint(p.reasoningMult, 32)
        .storeUint(p.workerShareBps, 16).storeCoins(p.minWorkerStake).storeCoins(p.minProxyStake)
        .storeUint(p.unbondDelay, 32).storeUint(p.closeDelay, 32)
        .storeUint(p.equivocationSlashBps, 16).storeUint(p.revokedSlashBps, 16).storeUint(p.faultSlashBps, 16)
        .storeUint(p.reporterRewardBps, 16).storeBit(p.burnSlashed).storeUint(p.gracePeriod, 32)
        .storeUint(p.faultCap, 8).storeUint(p.faultPeriod, 32).endCell();
}

export function codesCell(stakeCode: Cell, escrowCode: Cell): Cell {
    return beginCell().storeRef(stakeCode).storeRef(escrowCode).endCell();
}

export function proxyInfoCell(key: bigint, endpoints: string): Cell {
    return beginCell().storeUint(key, 256).storeRef(beginCell().storeStringTail(endpoints).endCell()).endCell();
}

export const NETWORK_ID_SANDBOX = -239;

export function rootStorageCell(owner: Address, p: NetworkParams, stakeCode: Cell, escrowCode: Cell, networkId = NETWORK_ID_SANDBOX): Cell {
    const registry = beginCell().storeDict(null).storeDict(null).storeDict(null).storeDict(null).endCell();
    return beginCell().storeAddress(owner).storeUint(0, 2).storeUint(1, 32).storeCoins(0).storeInt(networkId, 32)
        .storeRef(paramsCell(p)).storeRef(codesCell(stakeCode, escrowCode)).storeRef(registry).storeDict(null).endCell();
}

const q = (b: Builder, op: number, queryId: bigint | number = 0) => b.storeUint(op, 32).storeUint(queryId, 64);

export const rootMsg = {
    changeOwner: (newOwner: Address, qid = 0n) => q(beginCell(), Op.RootChangeOwner, qid).storeAddress(newOwner).endCell(),
    acceptOwner: (qid = 0n) => q(beginCell(), Op.RootAcceptOwner, qid).endCell(),
    setImage: (role: number, imageHash: bigint, allowed: boolean, qid = 0n) =>
        q(beginCell(), Op.RootSetImage, qid).storeUint(role, 8).storeUint(imageHash, 256).storeBit(allowed).endCell(),
    setModel: (modelHash: bigint, name: string | null, qid = 0n) =>
        q(beginCell(), Op.RootSetModel, qid).storeUint(modelHash, 256)
            .storeMaybeRef(name === null ? null : beginCell().storeStringTail(name).endCell()).endCell(),
    setProxy: (proxy: Address, info: Cell | null, qid = 0n) =>
        q(beginCell(), Op.RootSetProxy, qid).storeAddress(proxy).storeMaybeRef(info).endCell(),
    setParams: (p: NetworkParams, qid = 0n) => q(beginCell(), Op.RootSetParams, qid).storeRef(paramsCell(p)).endCell(),
    setCodes: (codes: Cell, qid = 0n) => q(beginCell(), Op.RootSetCodes, qid).storeRef(codes).endCell(),
    withdrawKept: (amount: bigint, qid = 0n) => q(beginCell(), Op.RootWithdrawKept, qid).storeCoins(amount).endCell(),
    openStake: (role: number, key: bigint, qid = 0n) =>
        q(beginCell(), Op.RootOpenStake, qid).storeUint(role, 8).storeUint(key, 256).endCell(),
    openEscrow: (proxy: Address, stake: bigint, qid = 0n, clientKey = 0n) =>
        q(beginCell(), Op.RootOpenEscrow, qid).storeAddress(proxy).storeCoins(stake).storeUint(clientKey, 256).endCell(),
    /** `client` names the escrow's client for charge vouchers (ignored for payout vouchers). */
    reportEquivocation: (proxy: Address, a: Cell, b: Cell, client: Address = proxy, qid = 0n) =>
        q(beginCell(), Op.RootReportEquivocation, qid).storeAddress(proxy)
            .storeRef(equivocationEvidenceCell(client, a, b)).endCell(),
    reportRevoked: (worker: Address, signature: Buffer, statement: Cell, qid = 0n) =>
        q(beginCell(), Op.RootReportRevoked, qid).storeAddress(worker)
            .storeRef(beginCell().storeBuffer(signature).storeRef(statement).endCell()).endCell(),
    reportFault: (signature: Buffer, report: Cell, qid = 0n) =>
        q(beginCell(), Op.RootReportFault, qid)
            .storeRef(beginCell().storeBuffer(signature).storeRef(report).endCell()).endCell(),
    syncVaultKey: (proxy: Address, qid = 0n) => q(beginCell(), Op.RootSyncVaultKey, qid).storeAddress(proxy).endCell(),
    keptNotice: (qid = 0n) => q(beginCell(), Op.RootKeptNotice, qid).endCell(),
    /** The root's answer to a reporter whose slash bounced (sent by the root, built here for vectors). */
    reportRefused: (exitCode: number, qid = 0n) => q(beginCell(), Op.RootReportRefused, qid).storeInt(exitCode, 32).endCell(),
};

// ---------------------------------------------------------------- stake

export function stakeIdentityCell(root: Address, owner: Address, role: number): Cell {
    return beginCell().storeAddress(root).storeAddress(owner).storeUint(role, 8).endCell();
}
/** Deployment data of a stake: its address is a function of root, owner and role. */
export function stakeInitialData(root: Address, owner: Address, role: number): Cell {
    return beginCell().storeUint(0, 2).storeUint(0, 256).storeCoins(0).storeCoins(0).storeUint(0, 32)
        .storeCoins(0).storeCoins(0).storeCoins(0).storeRef(stakeIdentityCell(root, owner, role))
        .storeMaybeRef(null).storeDict(null).endCell();
}
/** StakeCold as StakeInit first writes it (tests build storage with it). */
export interface StakeCold {
    minStake: bigint; unbondDelay: number; workerShareBps: number; paramsVersion: number; slashed: bigint;
    faultPeriodStart: number; faultsInPeriod: number; marker: bigint;
    incomeAtShare: bigint; proxyShareAtShare: bigint;
    /** Worker stakes: retired key -> retired at. */
    retiredKeys: Dictionary<bigint, number>;
    /** Offence id -> time slashed. */
    usedEvidence: Dictionary<bigint, number>;
}
export function parseStakeCold(c: Cell): StakeCold {
    const s = c.beginParse();
    const d = {
        minStake: s.loadCoins(), unbondDelay: s.loadUint(32), workerShareBps: s.loadUint(16), paramsVersion: s.loadUint(32),
        slashed: s.loadCoins(), faultPeriodStart: s.loadUint(32), faultsInPeriod: s.loadUint(8), marker: s.loadUintBig(64),
        incomeAtShare: s.loadCoins(), proxyShareAtShare: s.loadCoins(),
        retiredKeys: s.loadDict(Dictionary.Keys.BigUint(256), Dictionary.Values.Uint(32)),
        usedEvidence: s.loadDict(Dictionary.Keys.BigUint(256), Dictionary.Values.Uint(32)),
    };
    s.endParse();
    return d;
}
export function stakeAddress(root: Address, owner: Address, role: number, stakeCode: Cell): Address {
    const init = beginCell().storeUint(0, 2).storeMaybeRef(stakeCode).storeMaybeRef(stakeInitialData(root, owner, role)).storeUint(0, 1).endCell();
    return new Address(0, init.hash());
}
export interface SlashTerms { slashBps: number; reporterBps: number; burn: boolean; faultCap: number; faultPeriod: number }
export function slashTermsCell(t: SlashTerms): Cell {
    return beginCell().storeUint(t.slashBps, 16).storeUint(t.reporterBps, 16).storeBit(t.burn)
        .storeUint(t.faultCap, 8).storeUint(t.faultPeriod, 32).endCell();
}

export const stakeMsg = {
    init: (key: bigint, minStake: bigint, unbondDelay: number, workerShareBps: number, paramsVersion: number, qid = 0n) =>
        q(beginCell(), Op.StakeInit, qid).storeUint(key, 256).storeCoins(minStake).storeUint(unbondDelay, 32)
            .storeUint(workerShareBps, 16).storeUint(paramsVersion, 32).endCell(),
    deposit: (qid = 0n) => q(beginCell(), Op.StakeDeposit, qid).endCell(),
    setKey: (key: bigint, qid = 0n) => q(beginCell(), Op.StakeSetKey, qid).storeUint(key, 256).endCell(),
    unbond: (amount: bigint, qid = 0n) => q(beginCell(), Op.StakeUnbond, qid).storeCoins(amount).endCell(),
    withdraw: (qid = 0n) => q(beginCell(), Op.StakeWithdraw, qid).endCell(),
    settle: (amount: bigint, qid = 0n) => q(beginCell(), Op.StakeSettle, qid).storeCoins(amount).endCell(),
    claimPayout: (signature: Buffer, voucher: Cell, qid = 0n) =>
        q(beginCell(), Op.StakeClaimPayout, qid).storeBuffer(signature).storeRef(voucher).endCell(),
    withdrawEarnings: (amount: bigint, qid = 0n) => q(beginCell(), Op.StakeWithdrawEarnings, qid).storeCoins(amount).endCell(),
    slash: (kind: number, evidenceHash: bigint, reporter: Address, terms: SlashTerms, evidence: Cell | null, qid = 0n) =>
        q(beginCell(), Op.StakeSlash, qid).storeUint(kind, 8).storeUint(evidenceHash, 256).storeAddress(reporter)
            .storeRef(slashTermsCell(terms)).storeMaybeRef(evidence).endCell(),
    commitMarker: (marker: bigint, qid = 0n) => q(beginCell(), Op.StakeCommitMarker, qid).storeUint(marker, 64).endCell(),
    registeredKey: (key: bigint, qid = 0n) => q(beginCell(), Op.StakeRegisteredKey, qid).storeUint(key, 256).endCell(),
};

// ---------------------------------------------------------------- escrow

export function escrowIdentityCell(root: Address, client: Address, proxy: Address): Cell {
    return beginCell().storeAddress(root).storeAddress(client).storeAddress(proxy).endCell();
}
/** Deployment data of an escrow: its address is a function of root, client and proxy. */
export function escrowInitialData(root: Address, client: Address, proxy: Address): Cell {
    return beginCell().storeUint(0, 2).storeUint(0, 32).storeCoins(0).storeCoins(0).storeCoins(0)
        .storeUint(0, 32).storeUint(0, 32).storeUint(0, 256).storeUint(0, 2)
        .storeRef(escrowIdentityCell(root, client, proxy)).storeMaybeRef(null).endCell();
}
export function escrowAddress(root: Address, client: Address, proxy: Address, escrowCode: Cell): Address {
    const init = beginCell().storeUint(0, 2).storeMaybeRef(escrowCode).storeMaybeRef(escrowInitialData(root, client, proxy)).storeUint(0, 1).endCell();
    return new Address(0, init.hash());
}

export const escrowMsg = {
    init: (proxyKey: bigint, vault: Address, closeDelay: number, stake: bigint, qid = 0n, clientKey = 0n) =>
        q(beginCell(), Op.EscrowInit, qid).storeUint(proxyKey, 256).storeAddress(vault).storeUint(closeDelay, 32)
            .storeCoins(stake).storeMaybeRef(clientKey === 0n ? null : escrowClientKeyCell(clientKey)).endCell(),
    deposit: (qid = 0n) => q(beginCell(), Op.EscrowDeposit, qid).endCell(),
    setStake: (stake: bigint, qid = 0n) => q(beginCell(), Op.EscrowSetStake, qid).storeCoins(stake).endCell(),
    submitCharge: (signature: Buffer, voucher: Cell, qid = 0n) =>
        q(beginCell(), Op.EscrowSubmitCharge, qid).storeBuffer(signature).storeRef(voucher).endCell(),
    withdraw: (amount: bigint, qid = 0n) => q(beginCell(), Op.EscrowWithdraw, qid).storeCoins(amount).endCell(),
    requestClose: (qid = 0n) => q(beginCell(), Op.EscrowRequestClose, qid).endCell(),
    finishClose: (qid = 0n) => q(beginCell(), Op.EscrowFinishClose, qid).endCell(),
    setClientKey: (key: bigint, qid = 0n) => q(beginCell(), Op.EscrowSetClientKey, qid).storeUint(key, 256).endCell(),
};
/** escrow_client_key: the key that may spend an escrow's credit at the proxy. */
export function escrowClientKeyCell(key: bigint): Cell {
    return beginCell().storeUint(key, 256).endCell();
}

export function readAddressOpt(s: Slice): Address | null {
    return s.loadMaybeAddress();
}
export { Dictionary };

/** A cell holding one address (for get-method slice arguments). */
export function beginCellAddr(a: Address): Cell {
    return beginCell().storeAddress(a).endCell();
}

// ---------------------------------------------------------------- storage decoders (no TVM needed)

export interface EscrowData {
    state: number; seqno: number; charged: bigint; balance: bigint; stake: bigint; closingAt: number;
    closeDelay: number; proxyKey: bigint; vault: Address | null; root: Address; client: Address; proxy: Address;
    clientKey: bigint;
}
export function parseEscrowData(data: Cell): EscrowData {
    const s = data.beginParse();
    const d = {
        state: s.loadUint(2), seqno: s.loadUint(32), charged: s.loadCoins(), balance: s.loadCoins(), stake: s.loadCoins(),
        closingAt: s.loadUint(32), closeDelay: s.loadUint(32), proxyKey: s.loadUintBig(256), vault: s.loadMaybeAddress(),
    };
    const id = s.loadRef().beginParse();
    const ck = s.loadMaybeRef();
    s.endParse();
    const clientKey = ck === null ? 0n : ck.beginParse().loadUintBig(256);
    return { ...d, root: id.loadAddress(), client: id.loadAddress(), proxy: id.loadAddress(), clientKey };
}

export interface PayoutRecord { seqno: number; paid: bigint }
const payoutRecordValue = {
    serialize: (v: PayoutRecord, b: Builder) => { b.storeUint(v.seqno, 32).storeCoins(v.paid); },
    parse: (s: Slice): PayoutRecord => ({ seqno: s.loadUint(32), paid: s.loadCoins() }),
};
export interface StakeData {
    state: number; key: bigint; staked: bigint; unbonding: bigint; unbondAt: number; burnt: bigint; paidOut: bigint;
    ownerWithdrawn: bigint; root: Address; owner: Address; role: number; hasCold: boolean;
    /** The proxy's committed ledger marker (0 without cold data). */
    marker: bigint;
    payouts: Dictionary<bigint, PayoutRecord>;
}
export function parseStakeData(data: Cell): StakeData {
    const s = data.beginParse();
    const d = {
        state: s.loadUint(2), key: s.loadUintBig(256), staked: s.loadCoins(), unbonding: s.loadCoins(), unbondAt: s.loadUint(32),
        burnt: s.loadCoins(), paidOut: s.loadCoins(), ownerWithdrawn: s.loadCoins(),
    };
    const id = s.loadRef().beginParse();
    const cold = s.loadMaybeRef();
    const payouts = Dictionary.load(Dictionary.Keys.BigUint(256), payoutRecordValue, s);
    s.endParse();
    const marker = cold === null ? 0n : parseStakeCold(cold).marker;
    return { ...d, root: id.loadAddress(), owner: id.loadAddress(), role: id.loadUint(8), hasCold: cold !== null, marker, payouts };
}
/** Mirrors StakeStorage.pool in contracts/stake/storage.tolk (balance outside any message). */
export const STAKE_RESERVE = 2_000_000n;
export function stakePool(balance: bigint, d: StakeData): bigint {
    return balance - d.staked - d.unbonding - d.burnt - STAKE_RESERVE;
}

/** Body of the plain value transfers the contracts send (refund, payout, withdraw, reward, kept, owner). */
export function noticeBody(op: number, queryId: bigint | number = 0): Cell {
    return beginCell().storeUint(op, 32).storeUint(queryId, 64).endCell();
}
/** equivocation_evidence: the escrow's client (charge vouchers) and two signed statements as refs. */
export function equivocationEvidenceCell(client: Address, a: Cell, b: Cell): Cell {
    return beginCell().storeAddress(client).storeRef(a).storeRef(b).endCell();
}
/** The offence id the root records for an equivocation (one per kind, channel and seqno). */
export function chargeOffenceId(escrow: Address, seqno: number): bigint {
    return BigInt('0x' + beginCell().storeUint(Op.ChargeVoucher, 32).storeAddress(escrow).storeUint(seqno, 32).endCell().hash().toString('hex'));
}
