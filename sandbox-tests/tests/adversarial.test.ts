// Randomised adversarial run (issue 13): two roots on one chain, proxies registered at both with the
// same key, workers and clients; every party also tries what an attacker would (re-key, re-open,
// self-payouts, vouchers for foreign channels, replayed and cross-root evidence, share changes,
// reports racing unbonding and withdrawals). After every step: money conserved (nothing created,
// losses bounded by fees), nobody paid more than the rules owe it, no honest party slashed, each
// offence slashed at most once, every refused report's value returned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Address, Cell, contractAddress, toNano } from '@ton/core';
import { internal, SendMessageResult } from '@ton/sandbox';
import { KeyPair } from '@ton/crypto';
import * as C from '../wrappers/cocoon.js';
import { Net, Actor, exitCode, stakeData, escrowData, codes, keyFromSeed, pub } from '../wrappers/network.js';
import { prng } from '../wrappers/prng.js';


const STEPS = Number(process.env.COCOON_ADVERSARIAL_STEPS ?? 2000);
const SEED = Number(process.env.COCOON_ADVERSARIAL_SEED ?? 20261204);
const R = toNano('0.1');
const SHARES = [9000, 7000, 5000];

interface Root { addr: Address; owner: Actor; share: number; image: bigint }
interface Vault { root: Root; proxy: Actor; addr: Address; signed: Map<string, bigint>; offences: number }
interface Escrow { root: Root; client: Actor; proxy: Actor; addr: Address; seqno: number; charged: bigint; signedMax: bigint; conflicts: [Cell, Cell][] }
interface WorkerStake { root: Root; worker: Actor; addr: Address; keys: KeyPair[]; retired: { key: KeyPair; at: number }[]; revokedServed: boolean; slashedImage: boolean }

test(`adversarial run: ${STEPS} steps over 2 roots keep every invariant`, { timeout: 900_000 }, async () => {
    const started = Date.now();
    const rnd = prng(SEED);
    const net = await Net.create();
    const rootA: Root = { addr: net.root, owner: net.owner, share: C.defaultParams.workerShareBps, image: 0xa1n };
    // a staging root on the same chain: same codes, another owner, so another address
    const ownerB = await net.actor('staging-governance');
    const dataB = C.rootStorageCell(ownerB.address, C.defaultParams, codes.stake.code, codes.escrow.code);
    const rootB: Root = { addr: contractAddress(0, { code: codes.root.code, data: dataB }), owner: ownerB, share: C.defaultParams.workerShareBps, image: 0xb1n };
    net.track(rootB.addr);
    net.expectOk(await net.chain.sendMessage(internal({ from: ownerB.address, to: rootB.addr, value: toNano('1'), stateInit: { code: codes.root.code, data: dataB }, bounce: false })));
    const roots = [rootA, rootB];

    const honestProxy = await net.actor('adv-proxy-honest');
    const cheatProxy = await net.actor('adv-proxy-cheat');
    const honestWorker = await net.actor('adv-worker-honest');
    const cheatWorker = await net.actor('adv-worker-cheat');
    const clients = [await net.actor('adv-client-0'), await net.actor('adv-client-1'), await net.actor('adv-client-2')];
    const reporters = [await net.actor('adv-reporter'), ...clients];
    const ghost = await net.actor('adv-ghost-worker');
    const outside = keyFromSeed('adv: a key no TEE holds');

    const vaults: Vault[] = [];
    const escrows: Escrow[] = [];
    const stakes: WorkerStake[] = [];
    const track = (a: Address) => net.track(a);
    for (const root of roots) {
        for (const s of [1, 0]) {
            // allow then revoke one worker image per root (revocation at t0)
            net.expectOk(await net.send(root.owner.address, root.addr, toNano('0.02'), C.rootMsg.setImage(C.ROLE_WORKER, root.image, s === 1)));
        }
        for (const p of [honestProxy, cheatProxy]) {
            net.expectOk(await net.send(root.owner.address, root.addr, toNano('0.05'), C.rootMsg.setProxy(p.address, C.proxyInfoCell(pub(p.key), 'x'))));
            const addr = track(C.stakeAddress(root.addr, p.address, C.ROLE_PROXY, codes.stake.code));
            net.expectOk(await net.send(p.address, root.addr, toNano('5'), C.rootMsg.openStake(C.ROLE_PROXY, pub(p.key))));
            vaults.push({ root, proxy: p, addr, signed: new Map(), offences: 0 });
            for (const c of clients) {
                const e = track(C.escrowAddress(root.addr, c.address, p.address, codes.escrow.code));
                net.expectOk(await net.send(c.address, root.addr, toNano('4'), C.rootMsg.openEscrow(p.address, toNano('1'), 0n, pub(c.key))));
                escrows.push({ root, client: c, proxy: p, addr: e, seqno: 0, charged: 0n, signedMax: 0n, conflicts: [] });
            }
        }
        for (const w of [honestWorker, cheatWorker]) {
            const addr = track(C.stakeAddress(root.addr, w.address, C.ROLE_WORKER, codes.stake.code));
            net.expectOk(await net.send(w.address, root.addr, toNano('3'), C.rootMsg.openStake(C.ROLE_WORKER, pub(w.key))));
            stakes.push({ root, worker: w, addr, keys: [w.key], retired: [], revokedServed: false, slashedImage: false });
        }
    }
    track(C.stakeAddress(rootA.addr, ghost.address, C.ROLE_WORKER, codes.stake.code));
    const t0 = net.chain.now!;
    const vaultOf = (root: Root, p: Actor) => vaults.find((v) => v.root === root && v.proxy === p)!;
    const workers = [honestWorker, cheatWorker];
    const contracts = () => [...net.contracts].map((a) => Address.parse(a));
    const isContract = (a: Address) => net.contracts.has(a.toRawString());

    // ----------------------------------------------------------------- per-step bookkeeping
    const counts: Record<string, number> = {};
    let refused = 0;
    let results: SendMessageResult[] = [];
    const coldOf = async (a: Address) => {
        const acc = (await net.chain.getContract(a)).accountState;
        if (acc?.type !== 'active' || !acc.state.data) throw new Error('stake not active');
        return C.parseStakeCold(acc.state.data.refs[1]);
    };
    async function totalBalance(): Promise<bigint> {
        let sum = 0n;
        for (const a of contracts()) sum += (await net.chain.getContract(a)).balance;
        return sum;
    }
    /** Value actors sent into contracts, value contracts sent to actors, fees contracts paid. */
    function flows(r: SendMessageResult) {
        let inflow = 0n, outflow = 0n, fees = 0n;
        for (const t of r.transactions) {
            const info = t.inMessage?.info;
            const at = new Address(0, Buffer.from(t.address.toString(16).padStart(64, '0'), 'hex'));
            if (isContract(at)) {
                fees += t.totalFees.coins;
                if (info?.type === 'internal' && !isContract(info.src)) inflow += info.value.coins;
                for (const m of t.outMessages.values()) {
                    if (m.info.type !== 'internal') continue;
                    fees += m.info.forwardFee;
                    if (!isContract(m.info.dest)) outflow += m.info.value.coins;
                }
            }
        }
        return { inflow, outflow, fees };
    }
    /** Value that reached `who` in a result (refunds, bounces, rewards). */
    function received(r: SendMessageResult, who: Address): bigint {
        let sum = 0n;
        for (const t of r.transactions) {
            const i = t.inMessage?.info;
            if (i?.type === 'internal' && i.dest.equals(who) && !i.src.equals(who)) sum += i.value.coins;
        }
        return sum;
    }

    /** Sends a report; checks it was accepted (a new offence recorded, the exact cut taken) or
     * refused with its value returned, as `shouldSlash` says. */
    async function report(body: Cell, root: Root, accused: Address | null, shouldSlash: boolean, label: string, bps = 0) {
        const reporter = rnd.pick(reporters);
        const c0 = accused ? await coldOf(accused) : null;
        const d0 = accused ? await stakeData(net, accused) : null;
        const r = await net.send(reporter.address, root.addr, R, body);
        results.push(r);
        const c1 = accused ? await coldOf(accused) : null;
        const accepted = c0 !== null && c1!.usedEvidence.size > c0.usedEvidence.size;
        assert.equal(accepted, shouldSlash, `${label}: accepted=${accepted}`);
        if (accepted) {
            const cut = ((d0!.staked + d0!.unbonding) * BigInt(bps)) / 10000n;
            assert.equal(c1!.slashed - c0!.slashed, cut, `${label}: the cut is the slash fraction once`);
        } else {
            refused += 1;
            if (c0) assert.equal(c1!.slashed, c0.slashed, `${label}: refused, nothing slashed`);
            assert.ok(received(r, reporter.address) >= R - toNano('0.03'), `${label}: the refused report's value came back`);
        }
        return r;
    }

    // ----------------------------------------------------------------- steps
    for (let step = 0; step < STEPS; step++) {
        const before = await totalBalance();
        results = [];
        const send = async (from: Address, to: Address, value: bigint, body: Cell) => {
            const r = await net.send(from, to, value, body);
            results.push(r);
            return r;
        };
        const op = rnd.int(100);
        let kind: string;
        const e = rnd.pick(escrows);
        const v = vaultOf(e.root, e.proxy);
        if (op < 22) {
            kind = 'charge';
            const charged = e.signedMax + BigInt(1 + rnd.int(300)) * 1_000_000n;
            const seqno = e.seqno + 1;
            const r = await send(e.client.address, e.addr, toNano('0.01'), net.chargeMsg(e.proxy, e.addr, seqno, charged));
            if (exitCode(r.transactions[0]) === 0) { e.seqno = seqno; e.charged = charged; }
            e.signedMax = charged;
            // the cheating proxy also signs a second, different voucher for the same seqno
            if (e.proxy === cheatProxy && rnd.int(3) === 0) {
                const a = C.signedCell(C.chargeVoucherCell({ escrow: e.addr, seqno, charged, final: false }), cheatProxy.key.secretKey);
                const b = C.signedCell(C.chargeVoucherCell({ escrow: e.addr, seqno, charged: charged + 1n, final: false }), cheatProxy.key.secretKey);
                e.conflicts.push([a, b]);
            }
        } else if (op < 30) {
            kind = 'report-equivocation';
            const withConflicts = escrows.filter((x) => x.conflicts.length > 0);
            if (withConflicts.length === 0) { kind = 'idle'; } else {
                const x = rnd.pick(withConflicts);
                const [a, b] = rnd.pick(x.conflicts);
                const vx = vaultOf(x.root, x.proxy);
                const mode = rnd.int(4);
                if (mode === 0) {
                    // cross-root: the same key's vouchers reported at the other root
                    const other = x.root === rootA ? rootB : rootA;
                    await report(C.rootMsg.reportEquivocation(x.proxy.address, a, b, x.client.address), other, vaultOf(other, x.proxy).addr, false, 'cross-root evidence');
                } else if (mode === 1) {
                    // naming another client: not the channel the vouchers are for
                    const c = clients.find((cl) => !cl.address.equals(x.client.address))!;
                    await report(C.rootMsg.reportEquivocation(x.proxy.address, a, b, c.address), x.root, vx.addr, false, 'wrong client');
                } else {
                    // the voucher's seqno: after its tag and escrow address
                    const offence = C.chargeOffenceId(x.addr, a.refs[0].beginParse().skip(32 + 267).loadUint(32));
                    const used = (await coldOf(vx.addr)).usedEvidence.has(offence);
                    const r = await report(C.rootMsg.reportEquivocation(x.proxy.address, mode === 2 ? a : b, mode === 2 ? b : a, x.client.address), x.root, vx.addr, !used, 'equivocation', C.defaultParams.equivocationSlashBps);
                    if (!used) vx.offences += 1;
                    void r;
                }
            }
        } else if (op < 34) {
            kind = 'report-honest';
            // two different honest vouchers (different seqnos), or payout vouchers: never a conflict
            const x = escrows.find((y) => y.proxy === honestProxy && y.seqno >= 2) ?? e;
            const a = C.signedCell(C.chargeVoucherCell({ escrow: x.addr, seqno: 1, charged: 1n, final: false }), x.proxy.key.secretKey);
            const b = C.signedCell(C.chargeVoucherCell({ escrow: x.addr, seqno: 2, charged: 2n, final: false }), x.proxy.key.secretKey);
            const vx = vaultOf(x.root, x.proxy);
            const w = rnd.pick(workers);
            const pa = C.signedCell(C.payoutVoucherCell({ vault: vx.addr, worker: w.address, seqno: 1, paid: 5n }), x.proxy.key.secretKey);
            const pb = C.signedCell(C.payoutVoucherCell({ vault: vx.addr, worker: w.address, seqno: 1, paid: 6n }), x.proxy.key.secretKey);
            if (rnd.int(2) === 0) await report(C.rootMsg.reportEquivocation(x.proxy.address, a, b, x.client.address), x.root, vx.addr, false, 'honest charge pair');
            else await report(C.rootMsg.reportEquivocation(x.proxy.address, pa, pb), x.root, vx.addr, false, 'payout pair');
        } else if (op < 50) {
            kind = 'payout';
            const w = rnd.pick(workers);
            const key = w.address.toRawString();
            const signed = (v.signed.get(key) ?? 0n) + BigInt(1 + rnd.int(200)) * 1_000_000n;
            const rec = (await stakeData(net, v.addr)).payouts.get(BigInt('0x' + w.address.hash.toString('hex'))) ?? { seqno: 0, paid: 0n };
            // honest series, or a second series with the same seqno (both harmless)
            const seqno = rnd.int(4) === 0 ? rec.seqno : rec.seqno + 1;
            v.signed.set(key, signed);
            await send(w.address, v.addr, C.Fees.stakeClaim, net.payoutMsg(v.proxy, v.addr, w.address, seqno, signed));
        } else if (op < 56) {
            kind = 'owner-theft';
            const proxyAsRogue = { ...v.proxy, key: outside };
            const pool = (await stakeData(net, v.addr)).pool;
            const which = rnd.int(4);
            const r = which === 0 ? await send(v.proxy.address, v.addr, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(outside)))
                : which === 1 ? await send(v.proxy.address, v.root.addr, toNano('0.1'), C.rootMsg.openStake(C.ROLE_PROXY, pub(outside)))
                : which === 2 ? await send(v.proxy.address, v.addr, C.Fees.stakeClaim, net.payoutMsg(proxyAsRogue, v.addr, v.proxy.address, 1, pool > 0n ? pool : 1n))
                : await send(v.proxy.address, v.addr, C.Fees.stakeClaim, net.payoutMsg(v.proxy, v.addr, v.addr, 99, pool > 0n ? pool : 1n));
            assert.equal((await stakeData(net, v.addr)).key, pub(v.proxy.key), 'a vault keeps the registered key');
            if (which !== 1) assert.notEqual(exitCode(r.transactions[0]), 0, 'owner theft refused');
        } else if (op < 62) {
            kind = 'earnings';
            const d = await stakeData(net, v.addr);
            const cold = await coldOf(v.addr);
            const income = d.pool + d.paidOut + d.ownerWithdrawn;
            const since = income - cold.incomeAtShare > 0n ? income - cold.incomeAtShare : 0n;
            const share = cold.proxyShareAtShare + (since * BigInt(10000 - cold.workerShareBps)) / 10000n;
            const room = share - d.ownerWithdrawn;
            const amount = rnd.int(2) === 0 && room > 1_000_000n ? room - 1_000_000n : room + BigInt(1 + rnd.int(100)) * 1_000_000n;
            const r = await send(v.proxy.address, v.addr, C.Fees.stakeOwnerOp, C.stakeMsg.withdrawEarnings(amount > 0n ? amount : 1n));
            if (amount > room) assert.notEqual(exitCode(r.transactions[0]), 0, 'earnings above the share refused');
        } else if (op < 66) {
            kind = 'share-change';
            const root = rnd.pick(roots);
            root.share = rnd.pick(SHARES);
            net.expectOk(await send(root.owner.address, root.addr, toNano('0.02'), C.rootMsg.setParams({ ...C.defaultParams, workerShareBps: root.share })));
            const p = rnd.pick([honestProxy, cheatProxy]);
            net.expectOk(await send(p.address, root.addr, toNano('0.1'), C.rootMsg.openStake(C.ROLE_PROXY, 0n)));
        } else if (op < 72) {
            kind = 'rotate';
            const s = rnd.pick(stakes);
            const now = net.chain.now!;
            const live = s.retired.filter((k) => k.at + C.defaultParams.unbondDelay >= now).length;
            const fresh = keyFromSeed(`adv-rot-${step}`);
            const r = await send(s.worker.address, s.addr, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(fresh)));
            const ok = exitCode(r.transactions[0]) === 0;
            assert.equal(ok, live < 4, `rotation with ${live} live retired keys`);
            if (ok) { s.retired = s.retired.filter((k) => k.at + C.defaultParams.unbondDelay >= now); s.retired.push({ key: s.keys[0], at: now }); s.keys = [fresh]; }
        } else if (op < 80) {
            kind = 'report-revoked';
            const s = rnd.pick(stakes);
            const now = net.chain.now!;
            const servedAt = Math.max(now, t0 + C.defaultParams.gracePeriod + 1);
            const st = C.servingStatementCell({ root: s.root.addr, imageHash: s.root.image, servedAt, receiptHash: BigInt(step) });
            // the cheating worker serves on the revoked image and signs with its current or a recently
            // retired key; against the honest worker a reporter can only forge
            let signer: KeyPair;
            let valid: boolean;
            if (s.worker === cheatWorker) {
                const usable = [...s.keys, ...s.retired.filter((k) => k.at + C.defaultParams.unbondDelay >= now).map((k) => k.key)];
                signer = rnd.pick(usable);
                valid = true;
                s.revokedServed = true;
            } else {
                signer = keyFromSeed(`adv-forger-${step}`);
                valid = false;
            }
            const shouldSlash = valid && !s.slashedImage;
            await report(C.rootMsg.reportRevoked(s.worker.address, C.signCell(st, signer.secretKey), st), s.root, s.addr, shouldSlash, 'revoked serving', C.defaultParams.revokedSlashBps);
            if (shouldSlash) s.slashedImage = true;
        } else if (op < 82) {
            kind = 'report-ghost';
            const st = C.servingStatementCell({ root: rootA.addr, imageHash: rootA.image, servedAt: net.chain.now! + 700, receiptHash: 1n });
            await report(C.rootMsg.reportRevoked(ghost.address, C.signCell(st, ghost.key.secretKey), st), rootA, null, false, 'ghost stake');
        } else if (op < 88) {
            kind = 'unbond-withdraw';
            const target = rnd.int(2) === 0 ? { owner: v.proxy, addr: v.addr } : (() => { const s = rnd.pick(stakes); return { owner: s.worker, addr: s.addr }; })();
            const d = await stakeData(net, target.addr);
            if (rnd.int(2) === 0 && d.staked > 0n) await send(target.owner.address, target.addr, C.Fees.stakeOwnerOp, C.stakeMsg.unbond(d.staked / 4n + 1n));
            else await send(target.owner.address, target.addr, C.Fees.stakeOwnerOp, C.stakeMsg.withdraw());
        } else if (op < 94) {
            kind = 'client';
            if (rnd.int(2) === 0) await send(e.client.address, e.addr, toNano('0.5'), C.escrowMsg.deposit());
            else {
                const d = await escrowData(net, e.addr);
                const free = d.balance - d.stake;
                await send(e.client.address, e.addr, C.Fees.escrowClientOp, C.escrowMsg.withdraw(free > 0n ? free / 2n + 1n : 1n));
            }
        } else {
            kind = 'time';
            net.chain.now! += 600 + rnd.int(40_000);
        }
        counts[kind] = (counts[kind] ?? 0) + 1;

        // ------------------------------------------------------------- invariants
        const after = await totalBalance();
        let inflow = 0n, outflow = 0n, fees = 0n;
        for (const r of results) { const f = flows(r); inflow += f.inflow; outflow += f.outflow; fees += f.fees; }
        assert.ok(after - before <= inflow - outflow, `step ${step} ${kind}: money created (${after - before} > ${inflow - outflow})`);
        assert.ok(inflow - outflow - (after - before) <= fees + 10_000_000n, `step ${step} ${kind}: money lost beyond fees`);
        for (const x of vaults) {
            const d = await stakeData(net, x.addr);
            assert.ok(d.balance >= d.staked + d.unbonding + d.burnt, `step ${step}: vault covers its stake`);
            assert.equal(d.payouts.get(BigInt('0x' + x.addr.hash.toString('hex'))), undefined, 'a vault never pays itself');
            for (const w of workers) {
                const rec = d.payouts.get(BigInt('0x' + w.address.hash.toString('hex')));
                if (rec) assert.ok(rec.paid <= (x.signed.get(w.address.toRawString()) ?? 0n), `step ${step}: ${w.name} paid above what was signed`);
            }
            const slashes = (await coldOf(x.addr)).slashed;
            if (x.proxy === honestProxy) assert.equal(slashes, 0n, `step ${step}: the honest proxy was slashed`);
            assert.ok(x.offences <= escrows.filter((y) => y.root === x.root && y.proxy === x.proxy).reduce((n, y) => n + y.conflicts.length, 0), 'at most one slash per offence');
        }
        for (const s of stakes) {
            const d = await stakeData(net, s.addr);
            assert.ok(d.balance >= d.staked + d.unbonding + d.burnt, `step ${step}: stake covers itself`);
            assert.equal(d.paidOut, 0n, 'a worker stake pays nothing out');
            const slashed = (await coldOf(s.addr)).slashed;
            if (s.worker === honestWorker) assert.equal(slashed, 0n, `step ${step}: the honest worker was slashed`);
        }
        for (const x of escrows) {
            const d = await escrowData(net, x.addr);
            assert.ok(d.charged <= x.signedMax, `step ${step}: escrow charged above what the proxy signed`);
            assert.ok(d.stake <= d.balance, `step ${step}: credit line backed`);
            assert.ok((await net.balance(x.addr)) >= d.balance, `step ${step}: escrow covers its balance`);
        }
    }
    // the run exercised what it claims to
    for (const k of ['charge', 'report-equivocation', 'report-honest', 'payout', 'owner-theft', 'earnings', 'share-change', 'rotate', 'report-revoked', 'report-ghost', 'unbond-withdraw', 'client', 'time']) {
        assert.ok((counts[k] ?? 0) > 0, `no ${k} step ran`);
    }
    const cheatSlashes = vaults.filter((x) => x.proxy === cheatProxy).reduce((n, x) => n + x.offences, 0);
    assert.ok(cheatSlashes > 0 && refused > 0, `the run slashed (${cheatSlashes}) and refused (${refused})`);
    process.stderr.write(`adversarial run: ${STEPS} steps, seed ${SEED}, ${cheatSlashes} equivocation slashes, ${refused} refused reports, ${Date.now() - started} ms\n`);
});
