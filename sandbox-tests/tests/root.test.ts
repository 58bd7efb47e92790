import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beginCell, toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { Net, expectError, pub } from '../wrappers/network.js';

const V = toNano('0.01');

test('owner transfer is two-step; only the pending owner can accept', async () => {
    const net = await Net.create();
    const next = await net.actor('next-governance');
    const stranger = await net.actor('stranger');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.changeOwner(stranger.address)), 'NOT_OWNER');
    expectError(net, await net.send(net.owner.address, net.root, V - 1n, C.rootMsg.changeOwner(next.address)), 'LOW_VALUE');
    expectError(net, await net.send(next.address, net.root, V, C.rootMsg.acceptOwner()), 'NOT_PENDING_OWNER');
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.changeOwner(next.address)));
    let o = await net.get(net.root, 'get_owner');
    assert.ok(o.readAddress().equals(net.owner.address));
    assert.ok(o.readAddressOpt()!.equals(next.address));
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.acceptOwner()), 'NOT_PENDING_OWNER');
    net.expectOk(await net.send(next.address, net.root, V, C.rootMsg.acceptOwner()));
    o = await net.get(net.root, 'get_owner');
    assert.ok(o.readAddress().equals(next.address));
    assert.equal(o.readAddressOpt(), null);
    expectError(net, await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(0, 1n, true)), 'NOT_OWNER');
});

test('images: allow, revoke records the time, per role', async () => {
    const net = await Net.create();
    const stranger = await net.actor('stranger');
    const image = (r: number, h: bigint) => net.get(net.root, 'get_image', [{ type: 'int', value: BigInt(r) }, { type: 'int', value: h }]).then((s) => s.readNumber());
    assert.equal(await image(C.ROLE_WORKER, 5n), -1);
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(C.ROLE_WORKER, 5n, true)));
    assert.equal(await image(C.ROLE_WORKER, 5n), 0);
    assert.equal(await image(C.ROLE_PROXY, 5n), -1);
    net.chain.now! += 100;
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(C.ROLE_WORKER, 5n, false)));
    assert.equal(await image(C.ROLE_WORKER, 5n), net.chain.now);
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(C.ROLE_PROXY, (1n << 256n) - 1n, true)));
    assert.equal(await image(C.ROLE_PROXY, (1n << 256n) - 1n), 0);
    // key-service images: their own list, allowed and revoked like the others
    assert.equal(await image(C.ROLE_KMS, 5n), -1);
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(C.ROLE_KMS, 7n, true)));
    assert.equal(await image(C.ROLE_KMS, 7n), 0);
    assert.equal(await image(C.ROLE_WORKER, 7n), -1);
    assert.equal(await image(C.ROLE_PROXY, 7n), -1);
    net.chain.now! += 50;
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(C.ROLE_KMS, 7n, false)));
    assert.equal(await image(C.ROLE_KMS, 7n), net.chain.now);
    expectError(net, await net.send(net.owner.address, net.root, V, C.rootMsg.setImage(3, 5n, true)), 'BAD_ROLE');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.setImage(C.ROLE_KMS, 5n, true)), 'NOT_OWNER');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.setImage(0, 5n, true)), 'NOT_OWNER');
});

test('models: set with a readable name, remove', async () => {
    const net = await Net.create();
    const model = async (h: bigint) => (await net.get(net.root, 'get_model', [{ type: 'int', value: h }])).readCellOpt();
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setModel(9n, 'SmolLM2-135M-Instruct Q4_1')));
    assert.equal((await model(9n))!.beginParse().loadStringTail(), 'SmolLM2-135M-Instruct Q4_1');
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setModel(9n, null)));
    assert.equal(await model(9n), null);
    const stranger = await net.actor('stranger');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.setModel(9n, 'x')), 'NOT_OWNER');
});

test('proxies: register with key and endpoints, unregister', async () => {
    const net = await Net.create();
    const proxy = await net.actor('proxy');
    await net.registerProxy(proxy, 'https://p.example:8443');
    let p = await net.get(net.root, 'get_proxy', [{ type: 'slice', cell: C.beginCellAddr(proxy.address) }]);
    assert.equal(p.readBoolean(), true);
    assert.equal(p.readBigNumber(), pub(proxy.key));
    assert.equal(p.readCell().beginParse().loadStringTail(), 'https://p.example:8443');
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setProxy(proxy.address, null)));
    p = await net.get(net.root, 'get_proxy', [{ type: 'slice', cell: C.beginCellAddr(proxy.address) }]);
    assert.equal(p.readBoolean(), false);
    expectError(net, await net.send(proxy.address, net.root, V, C.rootMsg.setProxy(proxy.address, null)), 'NOT_OWNER');
});

test('params: validated, versioned, snapshotted by stakes opened later', async () => {
    const net = await Net.create();
    const bad = { ...C.defaultParams, workerShareBps: 10001 };
    expectError(net, await net.send(net.owner.address, net.root, V, C.rootMsg.setParams(bad)), 'BAD_PARAMS');
    const next = { ...C.defaultParams, unbondDelay: 10, minWorkerStake: toNano('2') };
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setParams(next)));
    const g = await net.get(net.root, 'get_params');
    assert.equal(g.readNumber(), 2);
    assert.ok(g.readCell().equals(C.paramsCell(next)));
    const worker = await net.actor('worker');
    const stake = await net.openStake(worker, C.ROLE_WORKER, toNano('1'));
    const cold = await net.stakeCold(stake);
    assert.equal(cold.unbondDelay, 10);
    assert.equal(cold.paramsVersion, 2);
    assert.equal(cold.minStake, toNano('2'));
    const stranger = await net.actor('stranger');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.setParams(next)), 'NOT_OWNER');
});

test('codes: replacing child code bumps the version and moves derived addresses', async () => {
    const net = await Net.create();
    const worker = await net.actor('worker');
    const arg = [{ type: 'slice' as const, cell: C.beginCellAddr(worker.address) }, { type: 'int' as const, value: 0n }];
    const before = (await net.get(net.root, 'get_stake_address', arg)).readAddress();
    const otherCode = beginCell().storeUint(1, 8).endCell();
    const codes = await net.get(net.root, 'get_codes');
    const stakeCode = codes.readCell();
    const escrowCode = codes.readCell();
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setCodes(C.codesCell(otherCode, escrowCode))));
    const after = (await net.get(net.root, 'get_stake_address', arg)).readAddress();
    assert.ok(!before.equals(after));
    assert.equal((await net.get(net.root, 'get_params')).readNumber(), 2);
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.setCodes(C.codesCell(stakeCode, escrowCode))));
    const stranger = await net.actor('stranger');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.setCodes(C.codesCell(stakeCode, escrowCode))), 'NOT_OWNER');
});

test('network id is part of the deployment: same owner and params on two networks give two roots', async () => {
    const owner = (await Net.create()).owner.address;
    const { stake, escrow, root } = await import('../wrappers/network.js').then((m) => m.codes);
    const { contractAddress } = await import('@ton/core');
    const a = contractAddress(0, { code: root.code, data: C.rootStorageCell(owner, C.defaultParams, stake.code, escrow.code, -239) });
    const b = contractAddress(0, { code: root.code, data: C.rootStorageCell(owner, C.defaultParams, stake.code, escrow.code, -3) });
    assert.ok(!a.equals(b));
    const net = await Net.create();
    assert.equal((await net.get(net.root, 'get_network_id')).readNumber(), C.NETWORK_ID_SANDBOX);
});

test('kept slash proceeds: credited by notices, withdrawn by the owner only, never more than kept', async () => {
    const net = await Net.create();
    const stranger = await net.actor('stranger');
    net.expectOk(await net.send(stranger.address, net.root, toNano('2'), C.rootMsg.keptNotice()));
    assert.equal((await net.get(net.root, 'get_kept')).readBigNumber(), toNano('2'));
    expectError(net, await net.send(net.owner.address, net.root, V, C.rootMsg.withdrawKept(toNano('2') + 1n)), 'KEPT_TOO_LOW');
    expectError(net, await net.send(stranger.address, net.root, V, C.rootMsg.withdrawKept(1n)), 'NOT_OWNER');
    expectError(net, await net.send(net.owner.address, net.root, V, C.rootMsg.withdrawKept(0n)), 'AMOUNT_ZERO');
    net.expectOk(await net.send(net.owner.address, net.root, V, C.rootMsg.withdrawKept(toNano('2'))));
    assert.equal((await net.get(net.root, 'get_kept')).readBigNumber(), 0n);
    expectError(net, await net.send(stranger.address, net.root, V, beginCell().storeUint(0xdeadbeef, 32).endCell()), 'UNKNOWN_OP');
});
