// Golden vectors for the Rust SDK: every message, statement, evidence and storage layout as
// {name, fields, boc (hex), hash (hex)}, built from fixed keys and addresses. The files in golden/ are
// committed; this test fails when the builders drift from them (UPDATE_GOLDEN=1 rewrites them), and
// checks the derived addresses against a real root on the sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Address, Cell, contractAddress, toNano } from '@ton/core';
import * as C from '../wrappers/cocoon.js';
import { Net, codes, keyFromSeed, pub } from '../wrappers/network.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');
const addr = (n: number) => new Address(0, Buffer.alloc(32, n));
const A = { client: addr(0x11), proxy: addr(0x22), worker: addr(0x33), reporter: addr(0x44), owner: addr(0x55) };
const proxyKey = keyFromSeed('golden-proxy');
const workerKey = keyFromSeed('golden-worker');
const clientKey = keyFromSeed('golden-client');

type Vector = { name: string; fields: Record<string, unknown>; boc: string; hash: string; [k: string]: unknown };
const norm = (v: unknown): unknown =>
    typeof v === 'bigint' ? v.toString() : v instanceof Address ? v.toRawString() : Buffer.isBuffer(v) ? v.toString('hex')
        : v instanceof Cell ? v.toBoc().toString('hex') : Array.isArray(v) ? v.map(norm)
        : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)])) : v;
const vec = (name: string, fields: Record<string, unknown>, cell: Cell, extra: Record<string, unknown> = {}): Vector => ({
    name, fields: norm(fields) as Record<string, unknown>, boc: cell.toBoc().toString('hex'), hash: cell.hash().toString('hex'), ...norm(extra) as object,
});

function build() {
    const rootData = C.rootStorageCell(A.owner, C.defaultParams, codes.stake.code, codes.escrow.code);
    const root = contractAddress(0, { code: codes.root.code, data: rootData });
    const vault = C.stakeAddress(root, A.proxy, C.ROLE_PROXY, codes.stake.code);
    const escrow = C.escrowAddress(root, A.client, A.proxy, codes.escrow.code);
    const workerStake = C.stakeAddress(root, A.worker, C.ROLE_WORKER, codes.stake.code);
    const maxCoins = (1n << 120n) - 1n;

    const charge = { escrow, seqno: 42, charged: 1_234_567_890n, final: false };
    const chargeMax = { escrow, seqno: 0xffffffff, charged: maxCoins, final: true };
    const payout = { vault, worker: A.worker, seqno: 7, paid: 987_654_321n };
    const serving = { root, imageHash: 0xabcdefn, servedAt: 1_800_000_600, receiptHash: 0x1234n };
    const fault = { root, proxy: A.proxy, worker: A.worker, reportId: 9n, at: 1_800_000_000, reason: 2 };
    const signedVec = (name: string, fields: Record<string, unknown>, cell: Cell, key: typeof proxyKey) =>
        vec(name, fields, cell, { signer_public_key: key.publicKey, signature: C.signCell(cell, key.secretKey) });
    const statements = [
        signedVec('charge_voucher', charge, C.chargeVoucherCell(charge), proxyKey),
        signedVec('charge_voucher_final_max', chargeMax, C.chargeVoucherCell(chargeMax), proxyKey),
        signedVec('payout_voucher', payout, C.payoutVoucherCell(payout), proxyKey),
        signedVec('serving_statement', serving, C.servingStatementCell(serving), workerKey),
        signedVec('fault_report', fault, C.faultReportCell(fault), proxyKey),
    ];
    const chargeCell = C.chargeVoucherCell(charge);
    const chargeSig = C.signCell(chargeCell, proxyKey.secretKey);
    const payoutCell = C.payoutVoucherCell(payout);
    const payoutSig = C.signCell(payoutCell, proxyKey.secretKey);
    const servingCell = C.servingStatementCell(serving);
    const faultCell = C.faultReportCell(fault);
    const other = C.chargeVoucherCell({ ...charge, charged: charge.charged + 1n });
    const evA = C.signedCell(chargeCell, proxyKey.secretKey);
    const evB = C.signedCell(other, proxyKey.secretKey);
    const terms = { slashBps: 5000, reporterBps: 1000, burn: false, faultCap: 3, faultPeriod: 86400 };
    const revokedEvidence = C.signedCell(servingCell, workerKey.secretKey);

    const messages = [
        vec('root_change_owner', { query_id: 1n, new_owner: A.reporter }, C.rootMsg.changeOwner(A.reporter, 1n)),
        vec('root_accept_owner', { query_id: 2n }, C.rootMsg.acceptOwner(2n)),
        vec('root_set_image', { query_id: 3n, role: 0, image_hash: 0xabcdefn, allowed: false }, C.rootMsg.setImage(0, 0xabcdefn, false, 3n)),
        vec('root_set_model', { query_id: 4n, model_hash: 0x77n, name: 'SmolLM2-135M-Instruct' }, C.rootMsg.setModel(0x77n, 'SmolLM2-135M-Instruct', 4n)),
        vec('root_set_model_remove', { query_id: 4n, model_hash: 0x77n, name: null }, C.rootMsg.setModel(0x77n, null, 4n)),
        vec('root_set_proxy', { query_id: 5n, proxy: A.proxy, key: pub(proxyKey), endpoints: 'https://proxy.example:443' },
            C.rootMsg.setProxy(A.proxy, C.proxyInfoCell(pub(proxyKey), 'https://proxy.example:443'), 5n)),
        vec('root_set_proxy_remove', { query_id: 5n, proxy: A.proxy, info: null }, C.rootMsg.setProxy(A.proxy, null, 5n)),
        vec('root_set_params', { query_id: 6n, params: C.defaultParams }, C.rootMsg.setParams(C.defaultParams, 6n)),
        vec('root_set_codes', { query_id: 7n, stake_code_hash: codes.stake.codeHash, escrow_code_hash: codes.escrow.codeHash },
            C.rootMsg.setCodes(C.codesCell(codes.stake.code, codes.escrow.code), 7n)),
        vec('root_withdraw_kept', { query_id: 8n, amount: toNano('1') }, C.rootMsg.withdrawKept(toNano('1'), 8n)),
        vec('root_open_stake', { query_id: 9n, role: 1, key: pub(proxyKey) }, C.rootMsg.openStake(1, pub(proxyKey), 9n)),
        vec('root_open_escrow', { query_id: 10n, proxy: A.proxy, stake: toNano('2'), client_key: pub(clientKey) }, C.rootMsg.openEscrow(A.proxy, toNano('2'), 10n, pub(clientKey))),
        vec('root_report_equivocation', { query_id: 11n, proxy: A.proxy, client: A.client, a: evA, b: evB }, C.rootMsg.reportEquivocation(A.proxy, evA, evB, A.client, 11n)),
        vec('root_report_revoked', { query_id: 12n, worker: A.worker, statement: servingCell }, C.rootMsg.reportRevoked(A.worker, C.signCell(servingCell, workerKey.secretKey), servingCell, 12n)),
        vec('root_report_fault', { query_id: 13n, report: faultCell }, C.rootMsg.reportFault(C.signCell(faultCell, proxyKey.secretKey), faultCell, 13n)),
        vec('root_kept_notice', { query_id: 14n }, C.rootMsg.keptNotice(14n)),
        vec('stake_init', { query_id: 20n, key: pub(proxyKey), min_stake: toNano('1'), unbond_delay: 86400, worker_share_bps: 9000, params_version: 1 },
            C.stakeMsg.init(pub(proxyKey), toNano('1'), 86400, 9000, 1, 20n)),
        vec('stake_deposit', { query_id: 21n }, C.stakeMsg.deposit(21n)),
        vec('stake_set_key', { query_id: 22n, key: pub(workerKey) }, C.stakeMsg.setKey(pub(workerKey), 22n)),
        vec('stake_unbond', { query_id: 23n, amount: toNano('1.5') }, C.stakeMsg.unbond(toNano('1.5'), 23n)),
        vec('stake_withdraw', { query_id: 24n }, C.stakeMsg.withdraw(24n)),
        vec('stake_settle', { query_id: 25n, amount: 1_234_567_890n }, C.stakeMsg.settle(1_234_567_890n, 25n)),
        vec('stake_claim_payout', { query_id: 26n, voucher: payout, signature: payoutSig }, C.stakeMsg.claimPayout(payoutSig, payoutCell, 26n)),
        vec('stake_withdraw_earnings', { query_id: 27n, amount: toNano('0.1') }, C.stakeMsg.withdrawEarnings(toNano('0.1'), 27n)),
        vec('stake_slash', { query_id: 28n, kind: 2, evidence_hash: BigInt('0x' + servingCell.hash().toString('hex')), reporter: A.reporter, terms, evidence: revokedEvidence },
            C.stakeMsg.slash(2, BigInt('0x' + servingCell.hash().toString('hex')), A.reporter, terms, revokedEvidence, 28n)),
        vec('escrow_init', { query_id: 30n, proxy_key: pub(proxyKey), vault, close_delay: 3600, stake: toNano('2'), client_key: null },
            C.escrowMsg.init(pub(proxyKey), vault, 3600, toNano('2'), 30n)),
        vec('escrow_init_client_key', { query_id: 30n, proxy_key: pub(proxyKey), vault, close_delay: 3600, stake: toNano('2'), client_key: { key: pub(clientKey) } },
            C.escrowMsg.init(pub(proxyKey), vault, 3600, toNano('2'), 30n, pub(clientKey))),
        vec('escrow_set_client_key', { query_id: 37n, key: pub(clientKey) }, C.escrowMsg.setClientKey(pub(clientKey), 37n)),
        vec('root_sync_vault_key', { query_id: 41n, proxy: A.proxy }, C.rootMsg.syncVaultKey(A.proxy, 41n)),
        vec('stake_registered_key', { query_id: 38n, key: pub(proxyKey) }, C.stakeMsg.registeredKey(pub(proxyKey), 38n)),
        vec('root_report_refused', { query_id: 39n, exit_code: 154 }, C.rootMsg.reportRefused(154, 39n)),
        vec('stake_commit_marker', { query_id: 29n, marker: 0x0123456789abcdefn }, C.stakeMsg.commitMarker(0x0123456789abcdefn, 29n)),
        vec('escrow_deposit', { query_id: 31n }, C.escrowMsg.deposit(31n)),
        vec('escrow_set_stake', { query_id: 32n, stake: toNano('3') }, C.escrowMsg.setStake(toNano('3'), 32n)),
        vec('escrow_submit_charge', { query_id: 33n, voucher: charge, signature: chargeSig }, C.escrowMsg.submitCharge(chargeSig, chargeCell, 33n)),
        vec('escrow_withdraw', { query_id: 34n, amount: toNano('1') }, C.escrowMsg.withdraw(toNano('1'), 34n)),
        vec('escrow_request_close', { query_id: 35n }, C.escrowMsg.requestClose(35n)),
        vec('escrow_finish_close', { query_id: 36n }, C.escrowMsg.finishClose(36n)),
    ];
    for (const [name, op] of [['escrow_refund_notice', C.Op.EscrowRefundNotice], ['stake_payout_notice', C.Op.StakePayoutNotice],
        ['stake_withdraw_notice', C.Op.StakeWithdrawNotice], ['stake_reward_notice', C.Op.StakeRewardNotice],
        ['root_owner_notice', C.Op.RootOwnerNotice]] as const) {
        messages.push(vec(name, { query_id: 40n }, C.noticeBody(op, 40n)));
    }
    statements.push(
        vec('equivocation_evidence', { client: A.client, a: evA, b: evB }, C.equivocationEvidenceCell(A.client, evA, evB)),
        vec('revoked_serving_evidence', { statement: servingCell }, revokedEvidence),
        vec('fault_evidence', { report: faultCell }, C.signedCell(faultCell, proxyKey.secretKey)),
    );
    const storage = [
        vec('network_params', C.defaultParams as unknown as Record<string, unknown>, C.paramsCell(C.defaultParams)),
        vec('root_storage_initial', { owner: A.owner, network_id: C.NETWORK_ID_SANDBOX, params_version: 1 }, rootData, { address: root }),
        vec('stake_storage_initial', { root, owner: A.proxy, role: C.ROLE_PROXY }, C.stakeInitialData(root, A.proxy, C.ROLE_PROXY), { address: vault }),
        vec('stake_storage_initial_worker', { root, owner: A.worker, role: C.ROLE_WORKER }, C.stakeInitialData(root, A.worker, C.ROLE_WORKER), { address: workerStake }),
        vec('escrow_storage_initial', { root, client: A.client, proxy: A.proxy }, C.escrowInitialData(root, A.client, A.proxy), { address: escrow }),
        vec('slash_terms', terms, C.slashTermsCell(terms)),
        vec('proxy_info', { key: pub(proxyKey), endpoints: 'https://proxy.example:443' }, C.proxyInfoCell(pub(proxyKey), 'https://proxy.example:443')),
    ];
    return { root, vault, escrow, workerStake, files: { 'statements.json': statements, 'messages.json': messages, 'storage.json': storage } };
}

test('golden vectors match the committed files', () => {
    const { files } = build();
    for (const [file, vectors] of Object.entries(files)) {
        const text = JSON.stringify(vectors, null, 2) + '\n';
        const path = join(DIR, file);
        if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) writeFileSync(path, text);
        else assert.equal(readFileSync(path, 'utf8'), text, `${file} drifted: UPDATE_GOLDEN=1 npm test rewrites it`);
    }
});

test('golden signatures verify and golden addresses are the ones a real root derives', async () => {
    const { sign, signVerify } = await import('@ton/crypto');
    void sign;
    const { root, vault, escrow } = build();
    for (const v of JSON.parse(readFileSync(join(DIR, 'statements.json'), 'utf8')) as Vector[]) {
        if (!v.signature) continue;
        assert.ok(signVerify(Buffer.from(v.hash, 'hex'), Buffer.from(v.signature as string, 'hex'), Buffer.from(v.signer_public_key as string, 'hex')), v.name);
    }
    const net = await Net.create();
    const owner = A.owner;
    const data = C.rootStorageCell(owner, C.defaultParams, codes.stake.code, codes.escrow.code);
    assert.ok(contractAddress(0, { code: codes.root.code, data }).equals(root));
    // deploy this exact root and ask it
    const { internal } = await import('@ton/sandbox');
    net.expectOk(await net.chain.sendMessage(internal({ from: net.owner.address, to: root, value: toNano('1'), stateInit: { code: codes.root.code, data }, bounce: false })));
    const s = await net.chain.runGetMethod(root, 'get_stake_address', [{ type: 'slice', cell: C.beginCellAddr(A.proxy) }, { type: 'int', value: 1n }]);
    assert.ok(s.stackReader.readAddress().equals(vault));
    const e = await net.chain.runGetMethod(root, 'get_escrow_address', [{ type: 'slice', cell: C.beginCellAddr(A.client) }, { type: 'slice', cell: C.beginCellAddr(A.proxy) }]);
    assert.ok(e.stackReader.readAddress().equals(escrow));
});

test('golden vectors cover every opcode the contracts declare', () => {
    const ops = JSON.parse(readFileSync(join(DIR, '..', '..', 'contracts', 'build', 'opcodes.json'), 'utf8')) as Record<string, string>;
    const seen = new Set<number>();
    for (const file of ['messages.json', 'statements.json']) {
        for (const v of JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Vector[]) {
            const s = Cell.fromBoc(Buffer.from(v.boc, 'hex'))[0].beginParse();
            if (s.remainingBits >= 32) seen.add(s.preloadUint(32));
        }
    }
    const missing = Object.entries(ops).filter(([, hex]) => !seen.has(parseInt(hex, 16))).map(([n]) => n);
    assert.deepEqual(missing, []);
});
