import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { standardNet, expectError, pub, stakeData } from '../wrappers/network.js';

test('open: root deploys the stake at the derived address with key and params snapshot', async () => {
    const { net, worker, workerStake } = await standardNet();
    const s = await net.stakeState(workerStake);
    assert.equal(s.state, C.STAKE_ACTIVE);
    assert.equal(s.key, pub(worker.key));
    assert.ok(s.staked > toNano('2.9') && s.staked < toNano('3'));
    const cold = await net.stakeCold(workerStake);
    assert.equal(cold.minStake, C.defaultParams.minWorkerStake);
    assert.equal(cold.unbondDelay, C.defaultParams.unbondDelay);
    assert.equal(cold.paramsVersion, 1);
    assert.equal((await net.get(workerStake, 'get_can_serve')).readBoolean(), true);
    const fromRoot = (await net.get(net.root, 'get_stake_address', [
        { type: 'slice', cell: C.beginCellAddr(worker.address) }, { type: 'int', value: BigInt(C.ROLE_WORKER) },
    ])).readAddress();
    assert.ok(fromRoot.equals(workerStake));
    expectError(net, await net.send(worker.address, net.root, toNano('1'), C.rootMsg.openStake(2, 1n)), 'BAD_ROLE');
    expectError(net, await net.send(worker.address, net.root, toNano('0.01'), C.rootMsg.openStake(0, 1n)), 'LOW_VALUE');
});

test('deposit tops up; below the minimum a stake cannot serve', async () => {
    const { net, stranger } = await standardNet();
    const small = await net.actor('small-worker');
    const addr = await net.openStake(small, C.ROLE_WORKER, toNano('0.5'));
    assert.equal((await net.get(addr, 'get_can_serve')).readBoolean(), false);
    net.expectOk(await net.send(stranger.address, addr, toNano('1'), C.stakeMsg.deposit()));
    assert.equal((await net.get(addr, 'get_can_serve')).readBoolean(), true);
    expectError(net, await net.send(stranger.address, addr, C.Fees.stakeDeposit, C.stakeMsg.deposit()), 'LOW_VALUE');
});

test('init from anyone but the root is refused', async () => {
    const { net, stranger, workerStake } = await standardNet();
    expectError(net, await net.send(stranger.address, workerStake, toNano('1'), C.stakeMsg.init(1n, 0n, 0, 0, 9)), 'NOT_ROOT');
});

test('set key: owner only', async () => {
    const { net, worker, stranger, workerStake } = await standardNet();
    expectError(net, await net.send(stranger.address, workerStake, toNano('0.01'), C.stakeMsg.setKey(7n)), 'NOT_OWNER');
    expectError(net, await net.send(worker.address, workerStake, toNano('0.005'), C.stakeMsg.setKey(7n)), 'LOW_VALUE');
    net.expectOk(await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.setKey(7n)));
    assert.equal((await net.stakeState(workerStake)).key, 7n);
});

test('unbond then withdraw only after the delay', async () => {
    const { net, worker, stranger, workerStake } = await standardNet();
    const s0 = await net.stakeState(workerStake);
    expectError(net, await net.send(stranger.address, workerStake, toNano('0.01'), C.stakeMsg.unbond(1n)), 'NOT_OWNER');
    expectError(net, await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.unbond(0n)), 'AMOUNT_ZERO');
    expectError(net, await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.unbond(s0.staked + 1n)), 'UNBOND_TOO_LARGE');
    expectError(net, await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.withdraw()), 'NOTHING_TO_WITHDRAW');
    net.expectOk(await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.unbond(s0.staked)));
    const s1 = await net.stakeState(workerStake);
    assert.equal(s1.staked, 0n);
    assert.equal(s1.unbonding, s0.staked);
    assert.equal(s1.unbondAt, net.chain.now! + C.defaultParams.unbondDelay);
    assert.equal((await net.get(workerStake, 'get_can_serve')).readBoolean(), false);
    net.chain.now! += C.defaultParams.unbondDelay - 1;
    expectError(net, await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.withdraw()), 'UNBOND_NOT_READY');
    net.chain.now! += 1;
    expectError(net, await net.send(stranger.address, workerStake, toNano('0.01'), C.stakeMsg.withdraw()), 'NOT_OWNER');
    const r = await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.withdraw());
    net.expectOk(r);
    const got = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === worker.address.toString() && t.inMessage.info.src?.toString() === workerStake.toString());
    assert.ok(got && got.inMessage!.info.type === 'internal' && got.inMessage!.info.value.coins >= s0.staked);
    assert.equal((await net.stakeState(workerStake)).unbonding, 0n);
});

test('payout: a worker claims directly from the vault, cumulative, replay-safe', async () => {
    const { net, proxy, worker, stranger, escrow, vault } = await standardNet();
    net.expectOk(await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('2'))));
    const claim = net.payoutMsg(proxy, vault, worker.address, 1, toNano('1'));
    const r = await net.send(stranger.address, vault, toNano('0.01'), claim);
    net.expectOk(r);
    const got = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === worker.address.toString());
    assert.ok(got && got.inMessage!.info.type === 'internal' && got.inMessage!.info.value.coins >= toNano('1'));
    assert.deepEqual(await net.payout(vault, worker.address), { seqno: 1, paid: toNano('1') });
    assert.equal((await net.stakeState(vault)).paidOut, toNano('1'));
    // a replay pays nothing more (the vault pays the highest cumulative amount signed)
    expectError(net, await net.send(stranger.address, vault, toNano('0.01'), claim), 'STALE_AMOUNT');
    expectError(net, await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, worker.address, 2, toNano('1'))), 'STALE_AMOUNT');
    net.expectOk(await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, worker.address, 2, toNano('1.5'))));
    assert.equal((await net.stakeState(vault)).paidOut, toNano('1.5'));
});

test('payout: never more than the pool, never with a forged or misdirected voucher', async () => {
    const { net, proxy, worker, stranger, escrow, vault, workerStake } = await standardNet();
    net.expectOk(await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1'))));
    const pool = (await net.stakeState(vault)).pool;
    const staked = (await net.stakeState(vault)).staked;
    expectError(net, await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, worker.address, 1, pool + 1n)), 'POOL_EXHAUSTED');
    expectError(net, await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(worker, vault, worker.address, 1, 1n)), 'BAD_SIGNATURE');
    expectError(net, await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(proxy, workerStake, worker.address, 1, 1n)), 'WRONG_VAULT');
    expectError(net, await net.send(stranger.address, vault, C.Fees.stakeClaim - 1n, net.payoutMsg(proxy, vault, worker.address, 1, 1n)), 'LOW_VALUE');
    // the whole pool can go out, the stake never
    net.expectOk(await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, worker.address, 1, pool)));
    const s = await net.stakeState(vault);
    assert.equal(s.staked, staked);
    assert.ok(s.pool >= 0n && s.pool < toNano('0.01'));
    assert.ok((await net.balance(vault)) >= s.staked);
});

test('earnings: the proxy takes at most its share and leaves the workers theirs', async () => {
    const { net, proxy, worker, stranger, escrow, vault } = await standardNet();
    net.expectOk(await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('5'))));
    const s0 = await net.stakeState(vault);
    const share = (s0.pool * BigInt(10000 - C.defaultParams.workerShareBps)) / 10000n;
    expectError(net, await net.send(stranger.address, vault, toNano('0.01'), C.stakeMsg.withdrawEarnings(1n)), 'NOT_OWNER');
    expectError(net, await net.send(proxy.address, vault, toNano('0.01'), C.stakeMsg.withdrawEarnings(share + 1n)), 'EARNINGS_ABOVE_SHARE');
    expectError(net, await net.send(proxy.address, vault, toNano('0.01'), C.stakeMsg.withdrawEarnings(0n)), 'AMOUNT_ZERO');
    net.expectOk(await net.send(proxy.address, vault, toNano('0.01'), C.stakeMsg.withdrawEarnings(share)));
    assert.equal((await net.stakeState(vault)).ownerWithdrawn, share);
    // workers can still be paid their 90 %
    net.expectOk(await net.send(stranger.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, worker.address, 1, s0.pool - share)));
    const workerStake = net.stakeAddress(worker.address, C.ROLE_WORKER);
    expectError(net, await net.send(worker.address, workerStake, toNano('0.01'), C.stakeMsg.withdrawEarnings(1n)), 'NOT_PROXY_ROLE');
});

test('ledger marker: the proxy operator raises it on its vault; never lowered, replayed or set by others', async () => {
    const { net, proxy, worker, stranger, vault, workerStake } = await standardNet();
    const marker = async () => (await net.get(vault, 'get_marker')).readBigNumber();
    assert.equal(await marker(), 0n);
    net.expectOk(await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker(500n)));
    assert.equal(await marker(), 500n);
    assert.equal((await stakeData(net, vault)).marker, 500n, 'storage decodes the same marker');
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker(500n)), 'MARKER_NOT_RAISED');
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker(499n)), 'MARKER_NOT_RAISED');
    expectError(net, await net.send(stranger.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker(501n)), 'NOT_OWNER');
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp - 1n, C.stakeMsg.commitMarker(501n)), 'LOW_VALUE');
    expectError(net, await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker(1n)), 'NOT_PROXY_ROLE');
    assert.equal(await marker(), 500n, 'refused commits change nothing');
    const cold = await net.stakeCold(vault);
    net.expectOk(await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker((1n << 64n) - 1n)));
    assert.equal(await marker(), (1n << 64n) - 1n);
    assert.deepEqual(await net.stakeCold(vault), cold, 'the rest of the cold data is untouched');
});
