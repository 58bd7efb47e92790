import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { standardNet, expectError, Net, escrowData, pub } from '../wrappers/network.js';

test('open: escrow derives its address from root+client+proxy and learns key, vault, delay', async () => {
    const { net, proxy, client, escrow, vault } = await standardNet();
    const s = await net.escrowState(escrow);
    assert.equal(s.state, C.ESCROW.OPEN);
    assert.equal(s.proxyKey, BigInt('0x' + proxy.key.publicKey.toString('hex')));
    assert.equal(s.vault, vault.toString());
    assert.equal(s.closeDelay, C.defaultParams.closeDelay);
    assert.equal(s.stake, toNano('2'));
    // the root forwards the value minus its own gas; the escrow keeps the deposit fee
    assert.ok(s.balance < toNano('10') - C.Fees.escrowDeposit && s.balance > toNano('9.98'));
    const fromRoot = (await net.get(net.root, 'get_escrow_address', [
        { type: 'slice', cell: C.beginCellAddr(client.address) },
        { type: 'slice', cell: C.beginCellAddr(proxy.address) },
    ])).readAddress();
    assert.ok(fromRoot.equals(escrow));
});

test('open: unregistered proxy and too little value are refused', async () => {
    const { net, client, stranger } = await standardNet();
    expectError(net, await net.send(client.address, net.root, toNano('1'), C.rootMsg.openEscrow(stranger.address, 0n)), 'PROXY_NOT_REGISTERED');
    const proxy = await net.actor('proxy');
    expectError(net, await net.send(client.address, net.root, toNano('0.04'), C.rootMsg.openEscrow(proxy.address, 0n)), 'LOW_VALUE');
});

test('deposit: anyone tops up; too little value refused', async () => {
    const { net, stranger, escrow } = await standardNet();
    const before = (await net.escrowState(escrow)).balance;
    net.expectOk(await net.send(stranger.address, escrow, toNano('1'), C.escrowMsg.deposit()));
    assert.equal((await net.escrowState(escrow)).balance, before + toNano('1') - C.Fees.escrowDeposit);
    expectError(net, await net.send(stranger.address, escrow, C.Fees.escrowDeposit, C.escrowMsg.deposit()), 'LOW_VALUE');
    assert.equal((await net.escrowState(escrow)).balance, before + toNano('1') - C.Fees.escrowDeposit);
});

test('charge: success moves exactly the delta into the vault pool', async () => {
    const { net, proxy, stranger, escrow, vault } = await standardNet();
    const s0 = await net.escrowState(escrow);
    const pool0 = (await net.stakeState(vault)).pool;
    const r = await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1.5')));
    net.expectOk(r);
    const s1 = await net.escrowState(escrow);
    assert.equal(s1.charged, toNano('1.5'));
    assert.equal(s1.seqno, 1);
    assert.equal(s1.balance, s0.balance - toNano('1.5'));
    const pool1 = (await net.stakeState(vault)).pool;
    // the pool grows by the delta plus the submitter's unspent gas, never by less than the delta
    assert.ok(pool1 - pool0 >= toNano('1.5') && pool1 - pool0 < toNano('1.51'));
    // cumulative: a second voucher moves only the difference
    net.expectOk(await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 2, toNano('2'))));
    assert.equal((await net.escrowState(escrow)).balance, s0.balance - toNano('2'));
});

test('charge: replay, stale seqno, lower amount, bad signature, wrong escrow, low value are refused with state intact', async () => {
    const { net, proxy, client, stranger, escrow } = await standardNet();
    const msg = net.chargeMsg(proxy, escrow, 5, toNano('1'));
    net.expectOk(await net.send(stranger.address, escrow, toNano('0.01'), msg));
    const s = await net.escrowState(escrow);
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), msg), 'STALE_SEQNO');
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 5, toNano('2'))), 'STALE_SEQNO');
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 6, toNano('0.5'))), 'STALE_AMOUNT');
    const forger = await net.actor('forger');
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(forger, escrow, 6, toNano('3'))), 'BAD_SIGNATURE');
    // a voucher for another escrow of the same proxy
    const other = await net.actor('other-client');
    const otherEscrow = await net.openEscrow(other, proxy, toNano('5'), 0n);
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, otherEscrow, 6, toNano('3'))), 'WRONG_ESCROW');
    expectError(net, await net.send(stranger.address, escrow, C.Fees.escrowCharge - 1n, net.chargeMsg(proxy, escrow, 6, toNano('3'))), 'LOW_VALUE');
    assert.deepEqual(await net.escrowState(escrow), s);
    void client;
});

test('charge: boundaries — zero delta, max seqno, more than the balance is capped', async () => {
    const { net, proxy, stranger, escrow, vault } = await standardNet();
    const s0 = await net.escrowState(escrow);
    // zero: a voucher that only advances the seqno moves nothing
    net.expectOk(await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, 0n)));
    assert.equal((await net.escrowState(escrow)).balance, s0.balance);
    // the proxy signed for more than there is (max coins): the vault gets the whole balance, not more
    const maxCoins = (1n << 120n) - 1n;
    const pool0 = (await net.stakeState(vault)).pool;
    net.expectOk(await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 0xffffffff, maxCoins)));
    const s1 = await net.escrowState(escrow);
    assert.equal(s1.balance, 0n);
    assert.equal(s1.seqno, 0xffffffff);
    assert.equal(s1.charged, maxCoins);
    const pool1 = (await net.stakeState(vault)).pool;
    assert.ok(pool1 - pool0 >= s0.balance && pool1 - pool0 < s0.balance + toNano('0.01'));
    // nothing after the max seqno is possible any more
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 0xffffffff, maxCoins)), 'STALE_SEQNO');
});

test('charge: final voucher closes cooperatively and refunds the rest to the client', async () => {
    const { net, proxy, client, stranger, escrow } = await standardNet();
    const s0 = await net.escrowState(escrow);
    const r = await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1'), true));
    net.expectOk(r);
    const refund = r.transactions.find((t) => t.inMessage?.info.dest?.toString() === client.address.toString());
    assert.ok(refund, 'client got a refund');
    assert.equal(refund!.inMessage!.info.type === 'internal' && refund!.inMessage!.info.value.coins, s0.balance - toNano('1'));
    const s1 = await net.escrowState(escrow);
    assert.equal(s1.state, C.ESCROW.CLOSED);
    assert.equal(s1.balance, 0n);
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 2, toNano('2'))), 'ESCROW_NOT_OPEN');
    expectError(net, await net.send(stranger.address, escrow, toNano('1'), C.escrowMsg.deposit()), 'ESCROW_NOT_OPEN');
});

test('settle bounce: a vault that does not exist sends the money back and the escrow restores its state', async () => {
    const net = await Net.create();
    const proxy = await net.actor('proxy-without-vault');
    const client = await net.actor('client');
    await net.registerProxy(proxy);
    const escrow = await net.openEscrow(client, proxy, toNano('10'), 0n);
    const s0 = await net.escrowState(escrow);
    const r = await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1')));
    const s1 = await net.escrowState(escrow);
    assert.ok(r.transactions.length >= 3, 'settle bounced back');
    assert.equal(s1.balance, s0.balance);
    assert.equal(s1.charged, 0n);
    assert.equal(s1.seqno, 1, 'the seqno stays used: the proxy signs a newer voucher');
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 2, toNano('0.5'))));
    assert.equal((await net.escrowState(escrow)).balance, s0.balance);
});

test('stake (credit line): raise only, within balance, client only', async () => {
    const { net, client, stranger, escrow } = await standardNet();
    const s0 = await net.escrowState(escrow);
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.setStake(toNano('3'))));
    assert.equal((await net.escrowState(escrow)).stake, toNano('3'));
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.setStake(toNano('1'))), 'STAKE_DECREASE');
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.setStake(s0.balance + 1n)), 'STAKE_ABOVE_BALANCE');
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), C.escrowMsg.setStake(toNano('4'))), 'NOT_CLIENT');
    expectError(net, await net.send(client.address, escrow, toNano('0.009'), C.escrowMsg.setStake(toNano('4'))), 'LOW_VALUE');
});

test('withdraw: only above the stake, client only, non-zero', async () => {
    const { net, client, stranger, escrow } = await standardNet();
    const s0 = await net.escrowState(escrow);
    const free = s0.balance - s0.stake;
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.withdraw(free + 1n)), 'WITHDRAW_ABOVE_FREE');
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.withdraw(0n)), 'AMOUNT_ZERO');
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), C.escrowMsg.withdraw(1n)), 'NOT_CLIENT');
    expectError(net, await net.send(client.address, escrow, toNano('0.005'), C.escrowMsg.withdraw(1n)), 'LOW_VALUE');
    const r = await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.withdraw(free));
    net.expectOk(r);
    assert.equal((await net.escrowState(escrow)).balance, s0.stake);
});

test('unilateral close: request, charges still land during the delay, finish only after it', async () => {
    const { net, proxy, client, stranger, escrow } = await standardNet();
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), C.escrowMsg.requestClose()), 'NOT_CLIENT');
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.finishClose()), 'CLOSE_NOT_REQUESTED');
    net.expectOk(await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.requestClose()));
    const s0 = await net.escrowState(escrow);
    assert.equal(s0.state, C.ESCROW.CLOSING);
    expectError(net, await net.send(client.address, escrow, toNano('0.01'), C.escrowMsg.withdraw(1n)), 'ESCROW_NOT_OPEN');
    net.expectOk(await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1'))));
    net.chain.now! += C.defaultParams.closeDelay - 1;
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), C.escrowMsg.finishClose()), 'CLOSE_DELAY_NOT_PASSED');
    net.chain.now! += 1;
    const r = await net.send(stranger.address, escrow, toNano('0.01'), C.escrowMsg.finishClose());
    net.expectOk(r);
    const s1 = await net.escrowState(escrow);
    assert.equal(s1.state, C.ESCROW.CLOSED);
    assert.equal(s1.balance, 0n);
    expectError(net, await net.send(stranger.address, escrow, toNano('0.01'), C.escrowMsg.finishClose()), 'CLOSE_NOT_REQUESTED');
    // re-opening through the root revives the channel with its seqno, so old vouchers stay dead
    const r2 = await net.send(client.address, net.root, toNano('1'), C.rootMsg.openEscrow(proxy.address, 0n));
    net.expectOk(r2);
    const s2 = await net.escrowState(escrow);
    assert.equal(s2.state, C.ESCROW.OPEN);
    assert.equal(s2.seqno, 1);
    expectError(net, await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1'))), 'STALE_SEQNO');
});

test('init: only the root may initialise; unknown opcodes refused', async () => {
    const { net, proxy, stranger, escrow, vault } = await standardNet();
    expectError(net, await net.send(stranger.address, escrow, toNano('1'), C.escrowMsg.init(123n, vault, 1, 0n)), 'NOT_ROOT');
    const { beginCell } = await import('@ton/core');
    expectError(net, await net.send(stranger.address, escrow, toNano('1'), beginCell().storeUint(0x12345678, 32).endCell()), 'UNKNOWN_OP');
    void proxy;
});

test('client key: named at open, kept by a top-up naming none, rotated by the client only', async () => {
    const { net, proxy, client, stranger, escrow } = await standardNet();
    const clientKey = async () => (await net.get(escrow, 'get_escrow_client_key')).readBigNumber();
    assert.equal(await clientKey(), pub(client.key), 'standardNet opens with the client key');
    assert.equal((await escrowData(net, escrow)).clientKey, pub(client.key), 'storage decodes the same key');
    // a top-up through the root naming no key keeps it; naming one replaces it
    net.expectOk(await net.send(client.address, net.root, toNano('1'), C.rootMsg.openEscrow(proxy.address, 0n)));
    assert.equal(await clientKey(), pub(client.key));
    net.expectOk(await net.send(client.address, net.root, toNano('1'), C.rootMsg.openEscrow(proxy.address, 0n, 0n, 0xabcn)));
    assert.equal(await clientKey(), 0xabcn);
    // only the client rotates it, with enough value, while open
    expectError(net, await net.send(stranger.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.setClientKey(0x5157n)), 'NOT_CLIENT');
    expectError(net, await net.send(proxy.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.setClientKey(0x5157n)), 'NOT_CLIENT');
    expectError(net, await net.send(client.address, escrow, C.Fees.escrowClientOp - 1n, C.escrowMsg.setClientKey(0x5157n)), 'LOW_VALUE');
    assert.equal(await clientKey(), 0xabcn, 'refused rotations change nothing');
    net.expectOk(await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.setClientKey(0xdefn)));
    assert.equal(await clientKey(), 0xdefn);
    net.expectOk(await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.setClientKey(0n)));
    assert.equal(await clientKey(), 0n, 'zero names no key');
    assert.equal((await escrowData(net, escrow)).clientKey, 0n);
    net.expectOk(await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.requestClose()));
    expectError(net, await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.setClientKey(1n)), 'ESCROW_NOT_OPEN');
});
