// Gas history: every operation's gas and fees summed over all contract transactions it causes, in the
// sandbox's default config. Fails when an operation costs more than sandbox-tests/gas.json records
// (and when it costs less: then the file must be updated with UPDATE_GAS=1 so the history moves).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { standardNet, Net, pub } from '../wrappers/network.js';

const FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'gas.json');
const TARGETS: Record<string, { gas: number; fee_ton: number }> = {
    charge: { gas: 5775, fee_ton: 0.0029 },
    payout: { gas: 8991, fee_ton: 0.0044 },
};

type Entry = { gas: number; fee_ton: number; txs: number };

async function measure(): Promise<Record<string, Entry>> {
    const out: Record<string, Entry> = {};
    const record = (name: string, net: Net, r: Awaited<ReturnType<Net['send']>>) => {
        net.expectOk(r);
        const c = net.cost(r);
        out[name] = { gas: Number(c.gas), fee_ton: Number(c.fees) / 1e9, txs: c.txs };
    };
    const { net, proxy, worker, client, escrow, vault, workerStake } = await standardNet();
    // a vault that already pays several workers, a channel that already settled once
    net.expectOk(await net.send(proxy.address, escrow, toNano('0.01'), net.chargeMsg(proxy, escrow, 1, toNano('1'))));
    for (let i = 0; i < 8; i++) {
        const w = await net.actor(`gas-worker-${i}`);
        net.expectOk(await net.send(w.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, w.address, 1, toNano('0.01'))));
    }
    record('charge', net, await net.send(proxy.address, escrow, C.Fees.escrowCharge, net.chargeMsg(proxy, escrow, 2, toNano('2'))));
    record('payout_first', net, await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 1, toNano('0.1'))));
    record('payout', net, await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 2, toNano('0.2'))));
    record('escrow_deposit', net, await net.send(client.address, escrow, toNano('1'), C.escrowMsg.deposit()));
    record('escrow_withdraw', net, await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.withdraw(toNano('0.5'))));
    record('stake_deposit', net, await net.send(worker.address, workerStake, toNano('1'), C.stakeMsg.deposit()));
    record('stake_unbond', net, await net.send(worker.address, workerStake, C.Fees.stakeOwnerOp, C.stakeMsg.unbond(toNano('1'))));
    record('earnings_withdraw', net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.withdrawEarnings(toNano('0.05'))));
    const c2 = await net.actor('gas-client-2');
    net.escrowAddress(c2.address, proxy.address);
    record('open_escrow', net, await net.send(c2.address, net.root, toNano('1'), C.rootMsg.openEscrow(proxy.address, 0n, 0n, 0xc11e47n)));
    record('escrow_set_client_key', net, await net.send(client.address, escrow, C.Fees.escrowClientOp, C.escrowMsg.setClientKey(0xbeefn)));
    record('commit_marker', net, await net.send(proxy.address, vault, C.Fees.stakeOwnerOp, C.stakeMsg.commitMarker(1_000_000n)));
    const w2 = await net.actor('gas-worker-new');
    net.stakeAddress(w2.address, C.ROLE_WORKER);
    record('open_stake', net, await net.send(w2.address, net.root, toNano('1'), C.rootMsg.openStake(C.ROLE_WORKER, 1n)));
    // the vault's per-worker records are a dict: a claim costs more as a proxy pays more workers
    for (let i = 8; i < 64; i++) {
        const w = await net.actor(`gas-worker-${i}`);
        net.expectOk(await net.send(w.address, vault, toNano('0.01'), net.payoutMsg(proxy, vault, w.address, 1, toNano('0.001'))));
    }
    record('payout_64_workers', net, await net.send(worker.address, vault, C.Fees.stakeClaim, net.payoutMsg(proxy, vault, worker.address, 3, toNano('0.3'))));
    record('close_cooperative', net, await net.send(proxy.address, escrow, C.Fees.escrowCharge, net.chargeMsg(proxy, escrow, 3, toNano('2.5'), true)));
    // root entry points (the values in contracts/root/fees.tolk cite these)
    record('root_set_proxy', net, await net.send(net.owner.address, net.root, C.Fees.rootOwnerOp, C.rootMsg.setProxy(proxy.address, C.proxyInfoCell(pub(proxy.key), 'https://proxy.example:443'))));
    record('sync_vault_key', net, await net.send(client.address, net.root, C.Fees.rootOwnerOp, C.rootMsg.syncVaultKey(proxy.address)));
    const e2 = net.escrowAddress(c2.address, proxy.address);
    const ev = (charged: bigint) => C.signedCell(C.chargeVoucherCell({ escrow: e2, seqno: 5, charged, final: false }), proxy.key.secretKey);
    record('report_equivocation', net, await net.send(client.address, net.root, C.Fees.rootReport, C.rootMsg.reportEquivocation(proxy.address, ev(1n), ev(2n), c2.address)));
    // the same offence again: refused at the stake, bounced to the root, value back to the reporter
    const refused = await net.send(client.address, net.root, C.Fees.rootReport, C.rootMsg.reportEquivocation(proxy.address, ev(2n), ev(3n), c2.address));
    const rc = net.cost(refused);
    out['report_refused'] = { gas: Number(rc.gas), fee_ton: Number(rc.fees) / 1e9, txs: rc.txs };
    return out;
}

test('gas: targets hold and nothing rose against sandbox-tests/gas.json', async () => {
    const now = await measure();
    for (const [op, t] of Object.entries(TARGETS)) {
        assert.ok(now[op].gas <= t.gas, `${op}: ${now[op].gas} gas > target ${t.gas}`);
        assert.ok(now[op].fee_ton <= t.fee_ton, `${op}: ${now[op].fee_ton} TON > target ${t.fee_ton}`);
    }
    const text = JSON.stringify(now, null, 2) + '\n';
    if (process.env.UPDATE_GAS === '1' || !existsSync(FILE)) {
        writeFileSync(FILE, text);
        return;
    }
    const committed = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, Entry>;
    const rises: string[] = [];
    const falls: string[] = [];
    for (const [op, e] of Object.entries(now)) {
        const old = committed[op];
        if (!old) { falls.push(`${op}: new operation`); continue; }
        if (e.gas > old.gas || e.fee_ton > old.fee_ton || e.txs > old.txs) rises.push(`${op}: ${JSON.stringify(old)} -> ${JSON.stringify(e)}`);
        else if (e.gas < old.gas || e.fee_ton < old.fee_ton || e.txs < old.txs) falls.push(`${op}: ${JSON.stringify(old)} -> ${JSON.stringify(e)}`);
    }
    assert.deepEqual(rises, [], 'gas rose');
    assert.deepEqual(falls, [], 'gas fell or an operation is new: record it with UPDATE_GAS=1 npm test');
});
