import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { Net } from '../wrappers/network.js';

test('end to end: open, charge, payout', async () => {
    const net = await Net.create();
    const proxy = await net.actor('proxy');
    const worker = await net.actor('worker');
    const client = await net.actor('client');
    await net.registerProxy(proxy);
    const vault = await net.openStake(proxy, C.ROLE_PROXY, toNano('5'));
    await net.openStake(worker, C.ROLE_WORKER, toNano('3'));
    const escrow = await net.openEscrow(client, proxy, toNano('10'), toNano('2'));
    const es = await net.escrowState(escrow);
    assert.equal(es.state, C.ESCROW.OPEN);
    assert.equal(es.vault, vault.toString());
    const r = await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1')));
    net.expectOk(r);
    console.log('charge', net.cost(r));
    assert.ok((await net.stakeState(vault)).pool >= toNano('1'));
    const p = await net.send(worker.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, worker.address, 1, toNano('0.5')));
    net.expectOk(p);
    console.log('payout', net.cost(p));
    assert.deepEqual(await net.payout(vault, worker.address), { seqno: 1, paid: toNano('0.5') });
});
