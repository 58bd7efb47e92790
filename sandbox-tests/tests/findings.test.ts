// Regression tests for issue 13: each test is an attack an operator, worker or reporter tried on the
// contracts, named after its finding (docs/security.md cites these names).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cell, toNano, beginCell, contractAddress } from '@ton/core';
import { internal, SendMessageResult } from '@ton/sandbox';
import * as C from '../wrappers/cocoon.js';
import { standardNet, expectError, exitCode, Net, pub, keyFromSeed, stakeData, codes } from '../wrappers/network.js';
const R = toNano('0.1');

const signed = (c: Cell, a: { key: { secretKey: Buffer } }) => C.signedCell(c, a.key.secretKey);

/** Exit code of the transaction on `at` in a result (undefined: none). */
function exitAt(r: SendMessageResult, at: { hash: Buffer }): number | undefined {
    const t = r.transactions.find((x) => x.address.toString(16).padStart(64, '0') === at.hash.toString('hex'));
    return t ? exitCode(t) : undefined;
}
/** Sum of the value delivered to `to` by the network's contracts in a result. */
function receivedBy(r: SendMessageResult, to: { equals(a: unknown): boolean }): bigint {
    let sum = 0n;
    for (const t of r.transactions) {
        const i = t.inMessage?.info;
        if (i?.type === 'internal' && to.equals(i.dest) && !to.equals(i.src)) sum += i.value.coins;
    }
    return sum;
}

test('finding 1: proxy owner cannot pay itself the pool', async () => {
    const { net, proxy, client, escrow, vault } = await standardNet();
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('3'))));
    const pool0 = (await net.stakeState(vault)).pool;
    const outside = keyFromSeed('a key the owner holds outside any TEE');
    const rogue = { ...proxy, key: outside };
    // the owner may not choose the vault's key, neither directly nor by re-opening with another key
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(outside))), 'KEY_FROM_REGISTRY');
    net.expectOk(await net.send(proxy.address, net.root, toNano('0.1'), C.rootMsg.openStake(C.ROLE_PROXY, pub(outside))));
    assert.equal((await net.stakeState(vault)).key, pub(proxy.key), 'the vault keeps the registered key');
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeClaim, net.payoutMsg(rogue, vault, proxy.address, 1, pool0)), 'BAD_SIGNATURE');
    // only the root sets it, and only to what governance registered
    expectError(net, await net.send(proxy.address, vault, toNano('0.1'), C.stakeMsg.registeredKey(pub(outside))), 'NOT_ROOT');
    const fresh = keyFromSeed('a newly attested proxy key');
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.05'), C.rootMsg.setProxy(proxy.address, C.proxyInfoCell(pub(fresh), 'https://p'))));
    assert.equal((await net.stakeState(vault)).key, pub(proxy.key), 'until synced');
    net.expectOk(await net.send(client.address, net.root, C.Fees.rootOwnerOp, C.rootMsg.syncVaultKey(proxy.address)));
    assert.equal((await net.stakeState(vault)).key, pub(fresh));
    assert.ok((await net.stakeState(vault)).pool >= pool0, 'nothing left the pool');
});

test('finding 1: a vault never pays itself', async () => {
    const { net, proxy, client, escrow, vault } = await standardNet();
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1'))));
    const s0 = await net.stakeState(vault);
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, vault, 1, toNano('0.5'))), 'WRONG_WORKER');
    assert.equal((await net.stakeState(vault)).paidOut, s0.paidOut);
});

test('finding 1: a proxy vault opened before registration has no payout key until the root syncs it', async () => {
    const net = await Net.create();
    const proxy = await net.actor('early-proxy');
    const vault = await net.openStake(proxy, C.ROLE_PROXY, toNano('3'));
    assert.equal((await net.stakeState(vault)).key, 0n);
    await net.registerProxy(proxy);
    assert.equal((await net.stakeState(vault)).key, 0n);
    expectError(net, await net.send(proxy.address, net.root, C.Fees.rootOwnerOp, C.rootMsg.syncVaultKey(net.owner.address)), 'PROXY_NOT_REGISTERED');
    net.expectOk(await net.send(proxy.address, net.root, C.Fees.rootOwnerOp, C.rootMsg.syncVaultKey(proxy.address)));
    assert.equal((await net.stakeState(vault)).key, pub(proxy.key));
});

test('finding 2: two honest payout series for one worker wallet are never a slashable conflict', async () => {
    const { net, proxy, worker, client, stranger, escrow, vault } = await standardNet();
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('3'))));
    // series A under the worker's first key, then the owner rotates the key and the ledger starts a
    // second series for the same payee wallet (seqnos from 1 again)
    net.expectOk(await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 1, toNano('0.1'))));
    net.expectOk(await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 2, toNano('0.2'))));
    net.expectOk(await net.send(worker.address, net.stakeAddress(worker.address, C.ROLE_WORKER), C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(keyFromSeed('worker key 2')))));
    const a = signed(C.payoutVoucherCell({ vault, worker: worker.address, seqno: 2, paid: toNano('0.2') }), proxy);
    const b = signed(C.payoutVoucherCell({ vault, worker: worker.address, seqno: 2, paid: toNano('0.05') }), proxy);
    const s0 = await net.stakeState(vault);
    expectError(net, await net.send(worker.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, a, b)), 'NOT_EQUIVOCATION');
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, b, a)), 'NOT_EQUIVOCATION');
    assert.equal((await net.stakeState(vault)).staked, s0.staked);
    // and a lower voucher for a seqno cannot take a higher one from the worker: the vault pays the
    // highest cumulative amount signed (same seqno, more paid counts; less or equal does not)
    expectError(net, await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 2, toNano('0.2'))), 'STALE_AMOUNT');
    net.expectOk(await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 2, toNano('0.3'))));
    assert.deepEqual(await net.payout(vault, worker.address), { seqno: 2, paid: toNano('0.3') });
    expectError(net, await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 1, toNano('0.4'))), 'STALE_SEQNO');
});

test('finding 3: evidence for another root or a made-up channel cannot slash here', async () => {
    const { net, proxy, client, stranger, vault, worker } = await standardNet();
    const s0 = await net.stakeState(vault);
    // the same proxy key signs for an escrow of a staging root (same code, another root address)
    const staging = await net.actor('staging-root');
    const foreign = C.escrowAddress(staging.address, client.address, proxy.address, codes.escrow.code);
    const a = signed(C.chargeVoucherCell({ escrow: foreign, seqno: 1, charged: 10n, final: false }), proxy);
    const b = signed(C.chargeVoucherCell({ escrow: foreign, seqno: 1, charged: 11n, final: false }), proxy);
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, a, b, client.address)), 'WRONG_CHANNEL');
    // an address that is nobody's escrow
    const c = signed(C.chargeVoucherCell({ escrow: stranger.address, seqno: 1, charged: 10n, final: false }), proxy);
    const d = signed(C.chargeVoucherCell({ escrow: stranger.address, seqno: 1, charged: 11n, final: false }), proxy);
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, c, d, stranger.address)), 'WRONG_CHANNEL');
    // the escrow of another client of this root is not the channel the reporter named
    const other = await net.actor('other-client');
    const e = signed(C.chargeVoucherCell({ escrow: net.escrowAddress(other.address, proxy.address), seqno: 1, charged: 10n, final: false }), proxy);
    const f = signed(C.chargeVoucherCell({ escrow: net.escrowAddress(other.address, proxy.address), seqno: 1, charged: 11n, final: false }), proxy);
    expectError(net, await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, e, f, client.address)), 'WRONG_CHANNEL');
    void worker;
    assert.equal((await net.stakeState(vault)).staked, s0.staked);
});

test('finding 4: a worker cannot dodge the revoked-serving slash by rotating its key', async () => {
    const { net, worker, stranger, workerStake } = await standardNet();
    const image = 0xfeedn;
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setImage(C.ROLE_WORKER, image, true)));
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setImage(C.ROLE_WORKER, image, false)));
    const st = C.servingStatementCell({ root: net.root, imageHash: image, servedAt: net.chain.now! + 1000, receiptHash: 7n });
    // the worker sees the report coming and rotates, directly and by re-opening
    net.expectOk(await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(keyFromSeed('w2')))));
    net.expectOk(await net.send(worker.address, net.root, toNano('0.1'), C.rootMsg.openStake(C.ROLE_WORKER, pub(keyFromSeed('w3')))));
    const s0 = await net.stakeState(workerStake);
    const r = await net.send(stranger.address, net.root, R, C.rootMsg.reportRevoked(worker.address, C.signCell(st, worker.key.secretKey), st));
    net.expectOk(r);
    assert.ok((await net.stakeState(workerStake)).staked < s0.staked, 'the retired key still signs slashable statements');
    // the history is bounded: a fifth rotation within the delay is refused
    net.expectOk(await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(keyFromSeed('w4')))));
    net.expectOk(await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(keyFromSeed('w5')))));
    expectError(net, await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(keyFromSeed('w6')))), 'KEY_HISTORY_FULL');
    // after the unbonding delay old keys are forgotten and rotation works again
    net.chain.now! += C.defaultParams.unbondDelay + 1;
    net.expectOk(await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.setKey(pub(keyFromSeed('w6')))));
    assert.equal((await stakeData(net, workerStake)).key, pub(keyFromSeed('w6')));
});

test('finding 5: lowering the worker share does not re-split income already in the vault', async () => {
    const { net, proxy, client, escrow, vault } = await standardNet();
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('4'))));
    const s = await net.stakeState(vault);
    const income = s.pool + s.paidOut + s.ownerWithdrawn;
    const owed = (income * BigInt(10000 - C.defaultParams.workerShareBps)) / 10000n;
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setParams({ ...C.defaultParams, workerShareBps: 1000 })));
    net.expectOk(await net.send(proxy.address, net.root, toNano('0.1'), C.rootMsg.openStake(C.ROLE_PROXY, 0n)));
    assert.equal((await net.stakeCold(vault)).workerShareBps, 1000);
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.withdrawEarnings(owed + toNano('0.01'))), 'EARNINGS_ABOVE_SHARE');
    net.expectOk(await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.withdrawEarnings(owed)));
    // income after the change is split at the new share
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 2, toNano('5'))));
    net.expectOk(await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.withdrawEarnings(toNano('0.85'))));
    expectError(net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.withdrawEarnings(toNano('0.1'))), 'EARNINGS_ABOVE_SHARE');
});

test('finding 6: a refused slash returns the reporter value', async () => {
    const { net, proxy, client, stranger, escrow, vault } = await standardNet();
    const a = signed(C.chargeVoucherCell({ escrow, seqno: 9, charged: 1n, final: false }), proxy);
    const b = signed(C.chargeVoucherCell({ escrow, seqno: 9, charged: 2n, final: false }), proxy);
    net.expectOk(await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, a, b, client.address)));
    const balance0 = await net.balance(vault);
    const again = await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, b, a, client.address));
    assert.equal(exitAt(again, vault), C.err('EVIDENCE_USED'));
    assert.ok(receivedBy(again, stranger.address) > R - toNano('0.02'), 'the value came back');
    assert.ok((await net.balance(vault)) <= balance0, 'the accused stake kept nothing');
    // a report against a worker that has no stake here
    const ghost = await net.actor('ghost-worker');
    const image = 0xdeadn;
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setImage(C.ROLE_WORKER, image, false)));
    const st = C.servingStatementCell({ root: net.root, imageHash: image, servedAt: net.chain.now! + 1000, receiptHash: 1n });
    const r = await net.send(stranger.address, net.root, R, C.rootMsg.reportRevoked(ghost.address, C.signCell(st, ghost.key.secretKey), st));
    assert.ok(receivedBy(r, stranger.address) > R - toNano('0.02'), 'the value came back from a stake that does not exist');
});

test('finding 6: bad-signature and cap-reached refusals return the reporter value and leave the stake as it was', async () => {
    const params = { ...C.defaultParams, faultCap: 1, faultPeriod: 100_000 };
    const { net, proxy, worker, stranger, workerStake } = await standardNet(params);
    const image = 0xbeefn;
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.01'), C.rootMsg.setImage(C.ROLE_WORKER, image, false)));
    const st = C.servingStatementCell({ root: net.root, imageHash: image, servedAt: net.chain.now! + 1000, receiptHash: 3n });
    const balance0 = await net.balance(workerStake);
    const forged = await net.send(stranger.address, net.root, R, C.rootMsg.reportRevoked(worker.address, C.signCell(st, stranger.key.secretKey), st));
    assert.equal(exitAt(forged, workerStake), C.err('BAD_SIGNATURE'));
    assert.ok(receivedBy(forged, stranger.address) > R - toNano('0.02'));
    assert.ok((await net.balance(workerStake)) <= balance0, 'the accused stake kept nothing');
    const fault = (id: bigint) => {
        const rep = C.faultReportCell({ root: net.root, proxy: proxy.address, worker: worker.address, reportId: id, at: net.chain.now!, reason: 1 });
        return C.rootMsg.reportFault(C.signCell(rep, proxy.key.secretKey), rep);
    };
    net.expectOk(await net.send(stranger.address, net.root, R, fault(1n)));
    const balance1 = await net.balance(workerStake);
    const capped = await net.send(stranger.address, net.root, R, fault(2n));
    assert.equal(exitAt(capped, workerStake), C.err('FAULT_CAP_REACHED'));
    assert.ok(receivedBy(capped, stranger.address) > R - toNano('0.02'));
    assert.ok((await net.balance(workerStake)) <= balance1, 'the accused stake kept nothing');
});

test('finding 6: payout claims exist only on proxy vaults', async () => {
    const { net, worker, workerStake } = await standardNet();
    net.expectOk(await net.send(worker.address, workerStake, toNano('1'), beginCell().endCell()));
    expectError(net, await net.send(worker.address, workerStake, C.Fees.stakeClaim, net.payoutMsg(worker, workerStake, worker.address, 1, toNano('0.5'))), 'NOT_PROXY_ROLE');
});

test('finding 7: one offence is slashed once however many vouchers prove it', async () => {
    const { net, proxy, client, stranger, escrow, vault } = await standardNet();
    const v = [1n, 2n, 3n].map((charged) => signed(C.chargeVoucherCell({ escrow, seqno: 4, charged, final: false }), proxy));
    const s0 = await net.stakeState(vault);
    net.expectOk(await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, v[0], v[1], client.address)));
    const s1 = await net.stakeState(vault);
    assert.equal(s1.staked, s0.staked - (s0.staked * BigInt(C.defaultParams.equivocationSlashBps)) / 10000n);
    for (const [x, y] of [[0, 2], [1, 2], [2, 0]]) {
        const r = await net.send(stranger.address, net.root, R, C.rootMsg.reportEquivocation(proxy.address, v[x], v[y], client.address));
        assert.equal(exitAt(r, vault), C.err('EVIDENCE_USED'));
    }
    assert.equal((await net.stakeState(vault)).staked, s1.staked);
    assert.equal((await net.get(vault, 'get_evidence_used', [{ type: 'int', value: C.chargeOffenceId(escrow, 4) }])).readBoolean(), true);
});

test('finding 8: a root deployed with another network id opens nothing', async () => {
    const net = await Net.create();
    const data = C.rootStorageCell(net.owner.address, C.defaultParams, codes.stake.code, codes.escrow.code, -3);
    const init = { code: codes.root.code, data };
    const root = contractAddress(0, init);
    net.track(root);
    net.expectOk(await net.chain.sendMessage(internal({ from: net.owner.address, to: root, value: toNano('1'), stateInit: init, bounce: false })));
    const op = await net.actor('op');
    expectError(net, await net.send(op.address, root, toNano('0.1'), C.rootMsg.openStake(C.ROLE_WORKER, 1n)), 'WRONG_NETWORK');
});

test('finding 8: a closed escrow opens again, a new proxy key reaches it, settled charges free the credit line', async () => {
    const { net, proxy, client, escrow } = await standardNet();
    // the credit line is 2 of ~10: charge 9, deposit 5 -> everything above the remaining credit is free
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('9.5'))));
    const e1 = await net.escrowState(escrow);
    assert.ok(e1.stake <= e1.balance);
    net.expectOk(await net.send(client.address, escrow, toNano('5'), C.escrowMsg.deposit()));
    const e2 = await net.escrowState(escrow);
    net.expectOk(await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.withdraw(e2.balance - e2.stake)));
    // governance registers a new key: the client's next open moves the channel to it
    const fresh = keyFromSeed('proxy key 2');
    net.expectOk(await net.send(net.owner.address, net.root, toNano('0.05'), C.rootMsg.setProxy(proxy.address, C.proxyInfoCell(pub(fresh), 'https://p'))));
    await net.openEscrow(client, proxy, toNano('1'), 0n);
    assert.equal((await net.escrowState(escrow)).proxyKey, pub(fresh));
    const rotated = { ...proxy, key: fresh };
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(rotated, escrow, 2, toNano('9.6'), true)));
    assert.equal((await net.escrowState(escrow)).state, C.ESCROW.CLOSED);
    await net.openEscrow(client, proxy, toNano('2'), toNano('1'));
    const e3 = await net.escrowState(escrow);
    assert.equal(e3.state, C.ESCROW.OPEN);
    assert.equal(e3.seqno, 2);
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(rotated, escrow, 2, toNano('9.7'))), 'STALE_SEQNO');
});

test('finding 8: a stranger\'s kept notice adds exactly its value (kept stays backed by the balance)', async () => {
    const { net, stranger } = await standardNet();
    const kept0 = (await net.get(net.root, 'get_kept')).readBigNumber();
    const bal0 = await net.balance(net.root);
    net.expectOk(await net.send(stranger.address, net.root, toNano('1'), C.rootMsg.keptNotice()));
    const kept1 = (await net.get(net.root, 'get_kept')).readBigNumber();
    assert.equal(kept1, kept0 + toNano('1'));
    assert.ok((await net.balance(net.root)) - bal0 >= toNano('1') - toNano('0.01'));
});

