import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Address, Cell, toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { standardNet, expectError, Actor, Net } from '../wrappers/network.js';

const R = toNano('0.1');

function signed(c: Cell, a: Actor): Cell {
    return C.signedCell(c, a.key.secretKey);
}

async function rewardTo(net: Net, r: Awaited<ReturnType<Net['send']>>, to: Address): Promise<bigint> {
    let sum = 0n;
    for (const t of r.transactions) {
        const i = t.inMessage?.info;
        if (i?.type === 'internal' && i.dest.equals(to) && !i.src.equals(to)) sum += i.value.coins;
    }
    return sum;
}

test('equivocation: two charge vouchers for one escrow and seqno slash the proxy once, reporter rewarded', async () => {
    const { net, proxy, client, stranger, escrow, vault } = await standardNet();
    const a = signed(C.chargeVoucherCell({ escrow, seqno: 7, charged: toNano('1'), final: false }), proxy);
    const b = signed(C.chargeVoucherCell({ escrow, seqno: 7, charged: toNano('0.5'), final: false }), proxy);
    const s0 = await net.stakeState(vault);
    const kept0 = (await net.get(net.root, 'get_kept')).readBigNumber();
    const r = await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, a, b, client.address));
    net.expectOk(r);
    const slashed = (s0.staked * BigInt(C.defaultParams.equivocationSlashBps)) / 10000n;
    const reward = (slashed * BigInt(C.defaultParams.reporterRewardBps)) / 10000n;
    const s1 = await net.stakeState(vault);
    assert.equal(s1.staked, s0.staked - slashed);
    assert.ok((await rewardTo(net, r, stranger.address)) >= reward);
    // not burnt by default: the rest is kept by the root
    assert.equal((await net.get(net.root, 'get_kept')).readBigNumber(), kept0 + slashed - reward);
    assert.equal((await net.stakeCold(vault)).slashed, slashed);
    // the same evidence, in either order, is spent
    const again = await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, b, a, client.address));
    const stakeTx = again.transactions.find((t) => t.address.toString(16).padStart(64, '0') === vault.hash.toString('hex'));
    assert.ok(stakeTx);
    assert.equal(stakeTx!.description.type === 'generic' && stakeTx!.description.computePhase.type === 'vm' && stakeTx!.description.computePhase.exitCode, C.err('EVIDENCE_USED'));
    assert.equal((await net.stakeState(vault)).staked, s1.staked);
});

test('equivocation: payout vouchers are no evidence; non-conflicting, same statement, forged or unregistered refused', async () => {
    const { net, proxy, worker, client, stranger, vault, escrow } = await standardNet();
    const pa = signed(C.payoutVoucherCell({ vault, worker: worker.address, seqno: 3, paid: 10n }), proxy);
    const pb = signed(C.payoutVoucherCell({ vault, worker: worker.address, seqno: 3, paid: 11n }), proxy);
    const pc = signed(C.payoutVoucherCell({ vault, worker: worker.address, seqno: 4, paid: 11n }), proxy);
    const ca = signed(C.chargeVoucherCell({ escrow, seqno: 3, charged: 10n, final: false }), proxy);
    const cb = signed(C.chargeVoucherCell({ escrow, seqno: 3, charged: 11n, final: false }), proxy);
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, pa, pb)), 'NOT_EQUIVOCATION');
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, pa, pa)), 'NOT_EQUIVOCATION');
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, pa, pc)), 'NOT_EQUIVOCATION');
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, pa, ca)), 'NOT_EQUIVOCATION');
    const forged = signed(C.chargeVoucherCell({ escrow, seqno: 3, charged: 12n, final: false }), stranger);
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, ca, forged, client.address)), 'BAD_SIGNATURE');
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(stranger.address, ca, cb, client.address)), 'PROXY_NOT_REGISTERED');
    expectError(net, await net.send(stranger.address, net.root, R - toNano('0.051'), C.rootMsg.reportEquivocation(proxy.address, ca, cb, client.address)), 'LOW_VALUE');
    const s0 = await net.stakeState(vault);
    net.expectOk(await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, ca, cb, client.address)));
    assert.ok((await net.stakeState(vault)).staked < s0.staked);
});

test('revoked serving: slashes a worker for a receipt dated after revocation + grace, once', async () => {
    const { net, worker, stranger, workerStake } = await standardNet();
    const image = 0xabcdn;
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setImage(C.ROLE_WORKER, image, true)));
    const statement = (servedAt: number, root = net.root, imageHash = image) =>
        C.servingStatementCell({ root, imageHash, servedAt, receiptHash: 42n });
    const report = (st: Cell, who: Actor = worker) => C.rootMsg.reportRevoked(worker.address, C.signCell(st, who.key.secretKey), st);
    const t0 = net.chain.now!;
    expectError(net, await net.send(stranger.address, net.root, R, report(statement(t0 + 5000))), 'IMAGE_NOT_REVOKED');
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setImage(C.ROLE_WORKER, image, false)));
    expectError(net, await net.send(stranger.address, net.root, R, report(statement(t0 + C.defaultParams.gracePeriod))), 'WITHIN_GRACE');
    expectError(net, await net.send(stranger.address, net.root, R, report(statement(t0 + 5000, worker.address))), 'WRONG_ROOT');
    expectError(net, await net.send(stranger.address, net.root, R, report(statement(t0 + 5000, net.root, 0x1n))), 'IMAGE_NOT_REVOKED');
    const s0 = await net.stakeState(workerStake);
    // a forged signature passes the root (it does not know worker keys) and fails at the stake
    const forged = await net.send(stranger.address, net.root, R, report(statement(t0 + 5000), stranger));
    assert.ok(forged.transactions.some((t) => t.description.type === 'generic' && t.description.computePhase.type === 'vm' && t.description.computePhase.exitCode === C.err('BAD_SIGNATURE')));
    assert.equal((await net.stakeState(workerStake)).staked, s0.staked);
    const good = statement(t0 + C.defaultParams.gracePeriod + 1);
    net.expectOk(await net.send(stranger.address, net.root, R, report(good)));
    const s1 = await net.stakeState(workerStake);
    assert.equal(s1.staked, s0.staked - (s0.staked * BigInt(C.defaultParams.revokedSlashBps)) / 10000n);
    const again = await net.send(stranger.address, net.root, R, report(good));
    assert.ok(again.transactions.some((t) => t.description.type === 'generic' && t.description.computePhase.type === 'vm' && t.description.computePhase.exitCode === C.err('EVIDENCE_USED')));
    assert.equal((await net.stakeState(workerStake)).staked, s1.staked);
});

test('fault reports: registered proxy only, small fraction, capped per period, burnt when params say so', async () => {
    const params = { ...C.defaultParams, burnSlashed: true, faultCap: 2, faultPeriod: 1000 };
    const { net, proxy, worker, stranger, workerStake } = await standardNet(params);
    let id = 0n;
    const fault = (signer: Actor = proxy, from: Address = proxy.address, root = net.root) => {
        const rep = C.faultReportCell({ root, proxy: from, worker: worker.address, reportId: ++id, at: net.chain.now!, reason: 1 });
        return C.rootMsg.reportFault(C.signCell(rep, signer.key.secretKey), rep);
    };
    expectError(net, await net.send(proxy.address, net.root, R, fault(stranger)), 'BAD_SIGNATURE');
    expectError(net, await net.send(proxy.address, net.root, R, fault(stranger, stranger.address)), 'PROXY_NOT_REGISTERED');
    expectError(net, await net.send(proxy.address, net.root, R, fault(proxy, proxy.address, worker.address)), 'WRONG_ROOT');
    const s0 = await net.stakeState(workerStake);
    const kept0 = (await net.get(net.root, 'get_kept')).readBigNumber();
    const f1 = fault();
    net.expectOk(await net.send(proxy.address, net.root, R, f1));
    const s1 = await net.stakeState(workerStake);
    const cut = (s0.staked * BigInt(params.faultSlashBps)) / 10000n;
    assert.equal(s1.staked, s0.staked - cut);
    assert.equal(s1.burnt, cut - (cut * BigInt(params.reporterRewardBps)) / 10000n);
    assert.equal((await net.get(net.root, 'get_kept')).readBigNumber(), kept0, 'burnt, not kept');
    // the same report twice is one fault
    const dup = await net.send(proxy.address, net.root, R, f1);
    assert.ok(dup.transactions.some((t) => t.description.type === 'generic' && t.description.computePhase.type === 'vm' && t.description.computePhase.exitCode === C.err('EVIDENCE_USED')));
    net.expectOk(await net.send(proxy.address, net.root, R, fault()));
    const capped = await net.send(proxy.address, net.root, R, fault());
    assert.ok(capped.transactions.some((t) => t.description.type === 'generic' && t.description.computePhase.type === 'vm' && t.description.computePhase.exitCode === C.err('FAULT_CAP_REACHED')));
    const s2 = await net.stakeState(workerStake);
    net.chain.now! += params.faultPeriod;
    net.expectOk(await net.send(proxy.address, net.root, R, fault()));
    assert.ok((await net.stakeState(workerStake)).staked < s2.staked, 'a new period allows new faults');
    // the balance still covers everything the stake owes
    const s3 = await net.stakeState(workerStake);
    assert.ok((await net.balance(workerStake)) >= s3.staked + s3.unbonding + s3.burnt);
});

test('slash from anyone but the root is refused', async () => {
    const { net, stranger, workerStake } = await standardNet();
    const terms = { slashBps: 10000, reporterBps: 10000, burn: false, faultCap: 0, faultPeriod: 0 };
    expectError(net, await net.send(stranger.address, workerStake, R, C.stakeMsg.slash(1, 1n, stranger.address, terms, null)), 'NOT_ROOT');
});
