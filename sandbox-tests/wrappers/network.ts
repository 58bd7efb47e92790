// A whole cocoon network on @ton/sandbox for the suites: root, proxies (registered, with vaults),
// workers with stakes, clients with escrows. Messages are injected with `internal()` from actor
// addresses (treasuries), so every transaction in a result belongs to a contract or to an actor.
import { Blockchain, BlockchainTransaction, SendMessageResult, SandboxContract, TreasuryContract, internal } from '@ton/sandbox';
import { Address, Cell, toNano, TupleItem, TupleReader } from "@ton/core";
import { KeyPair, keyPairFromSeed } from '@ton/crypto';
import { createHash } from 'node:crypto';
import * as C from './cocoon.js';

export const codes = { root: C.loadCode('root'), stake: C.loadCode('stake'), escrow: C.loadCode('escrow') };

export function keyFromSeed(seed: string): KeyPair {
    return keyPairFromSeed(createHash('sha256').update(seed).digest());
}
export const pub = (k: KeyPair) => BigInt('0x' + k.publicKey.toString('hex'));

export interface Actor { name: string; wallet: SandboxContract<TreasuryContract>; address: Address; key: KeyPair }

export function exitCode(tx: BlockchainTransaction): number | undefined {
    const d = tx.description;
    if (d.type !== 'generic' || d.computePhase.type !== 'vm') return undefined;
    return d.computePhase.exitCode;
}
export function gasUsed(tx: BlockchainTransaction): bigint {
    const d = tx.description;
    if (d.type !== 'generic' || d.computePhase.type !== 'vm') return 0n;
    return d.computePhase.gasUsed;
}

export class Net {
    root!: Address;
    owner!: Actor;
    contracts = new Set<string>();
    private constructor(public chain: Blockchain, public params: C.NetworkParams) {}

    static async create(params: C.NetworkParams = C.defaultParams, now = 1_800_000_000): Promise<Net> {
        const chain = await Blockchain.create();
        chain.now = now;
        const net = new Net(chain, params);
        net.owner = await net.actor('governance');
        const data = C.rootStorageCell(net.owner.address, params, codes.stake.code, codes.escrow.code);
        const init = { code: codes.root.code, data };
        const { contractAddress } = await import('@ton/core');
        net.root = contractAddress(0, init);
        net.contracts.add(net.root.toRawString());
        const r = await chain.sendMessage(internal({ from: net.owner.address, to: net.root, value: toNano('1'), stateInit: init, bounce: false }));
        net.expectOk(r);
        return net;
    }

    async actor(name: string): Promise<Actor> {
        const wallet = await this.chain.treasury(name);
        return { name, wallet, address: wallet.address, key: keyFromSeed(name) };
    }

    /** Sends `body` from `from` to `to`; returns the result (does not throw on contract errors). */
    async send(from: Address, to: Address, value: bigint, body: Cell, bounce = true): Promise<SendMessageResult> {
        return this.chain.sendMessage(internal({ from, to, value, body, bounce }));
    }

    /** The transactions of this network's contracts in a result. */
    contractTxs(r: SendMessageResult): BlockchainTransaction[] {
        return r.transactions.filter((t) => this.contracts.has(new Address(0, Buffer.from(t.address.toString(16).padStart(64, '0'), 'hex')).toRawString()));
    }

    /** Exit code of the first contract transaction (the one the message hit). */
    firstExit(r: SendMessageResult): number | undefined {
        return exitCode(r.transactions[0]);
    }

    /** Throws unless every contract transaction succeeded (compute and action phases). */
    expectOk(r: SendMessageResult): void {
        for (const t of this.contractTxs(r)) {
            const d = t.description;
            if (d.type !== 'generic') continue;
            if (d.aborted || (d.computePhase.type === 'vm' && !d.computePhase.success) || (d.actionPhase && !d.actionPhase.success)) {
                throw new Error(`transaction failed: exit ${exitCode(t)} action ${d.actionPhase?.resultCode}`);
            }
        }
    }

    /** {gas, fees, txs} summed over the contract transactions of a result. */
    cost(r: SendMessageResult): { gas: bigint; fees: bigint; txs: number } {
        let gas = 0n, fees = 0n, txs = 0;
        for (const t of this.contractTxs(r)) {
            gas += gasUsed(t);
            fees += t.totalFees.coins;
            txs += 1;
        }
        return { gas, fees, txs };
    }

    track(a: Address): Address {
        this.contracts.add(a.toRawString());
        return a;
    }

    stakeAddress(owner: Address, role: number): Address {
        return this.track(C.stakeAddress(this.root, owner, role, codes.stake.code));
    }
    escrowAddress(client: Address, proxy: Address): Address {
        return this.track(C.escrowAddress(this.root, client, proxy, codes.escrow.code));
    }

    async get(addr: Address, method: string, args: TupleItem[] = []): Promise<TupleReader> {
        const r = await this.chain.runGetMethod(addr, method, args);
        return r.stackReader;
    }
    async balance(addr: Address): Promise<bigint> {
        return (await this.chain.getContract(addr)).balance;
    }

    async stakeState(addr: Address) {
        const s = await this.get(addr, 'get_stake_state');
        return {
            state: s.readNumber(), key: s.readBigNumber(), staked: s.readBigNumber(), unbonding: s.readBigNumber(),
            unbondAt: s.readNumber(), burnt: s.readBigNumber(), paidOut: s.readBigNumber(), ownerWithdrawn: s.readBigNumber(),
            pool: s.readBigNumber(),
        };
    }
    async stakeCold(addr: Address) {
        const s = await this.get(addr, 'get_stake_cold');
        return {
            minStake: s.readBigNumber(), unbondDelay: s.readNumber(), workerShareBps: s.readNumber(), paramsVersion: s.readNumber(),
            slashed: s.readBigNumber(), faultPeriodStart: s.readNumber(), faultsInPeriod: s.readNumber(),
        };
    }
    async escrowState(addr: Address) {
        const s = await this.get(addr, 'get_escrow_state');
        return {
            state: s.readNumber(), seqno: s.readNumber(), charged: s.readBigNumber(), balance: s.readBigNumber(), stake: s.readBigNumber(),
            closingAt: s.readNumber(), closeDelay: s.readNumber(), proxyKey: s.readBigNumber(), vault: s.readAddressOpt()?.toString() ?? null,
        };
    }
    async payout(vault: Address, worker: Address) {
        const s = await this.get(vault, 'get_payout', [{ type: 'int', value: BigInt('0x' + worker.hash.toString('hex')) }]);
        return { seqno: s.readNumber(), paid: s.readBigNumber() };
    }

    // ------------------------------------------------------------ scenario helpers

    async registerProxy(proxy: Actor, endpoints = 'https://proxy.example:443'): Promise<void> {
        this.expectOk(await this.send(this.owner.address, this.root, toNano('0.05'), C.rootMsg.setProxy(proxy.address, C.proxyInfoCell(pub(proxy.key), endpoints))));
    }
    async openStake(op: Actor, role: number, value: bigint): Promise<Address> {
        const addr = this.stakeAddress(op.address, role);
        this.expectOk(await this.send(op.address, this.root, value, C.rootMsg.openStake(role, pub(op.key))));
        return addr;
    }
    /** Opens (or tops up) `client`'s escrow with `proxy`, naming the client's own key by default. */
    async openEscrow(client: Actor, proxy: Actor, value: bigint, stake: bigint, clientKey = pub(client.key)): Promise<Address> {
        const addr = this.escrowAddress(client.address, proxy.address);
        this.expectOk(await this.send(client.address, this.root, value, C.rootMsg.openEscrow(proxy.address, stake, 0n, clientKey)));
        return addr;
    }
    chargeMsg(proxy: Actor, escrow: Address, seqno: number, charged: bigint, final = false): Cell {
        const v = C.chargeVoucherCell({ escrow, seqno, charged, final });
        return C.escrowMsg.submitCharge(C.signCell(v, proxy.key.secretKey), v);
    }
    payoutMsg(proxy: Actor, vault: Address, worker: Address, seqno: number, paid: bigint): Cell {
        const v = C.payoutVoucherCell({ vault, worker, seqno, paid });
        return C.stakeMsg.claimPayout(C.signCell(v, proxy.key.secretKey), v);
    }
}

/** Asserts the message was refused with the named error, and its value went back as a bounce. */
export function expectError(net: Net, r: SendMessageResult, name: string): void {
    const first = r.transactions[0];
    const code = exitCode(first);
    if (code !== C.err(name)) throw new Error(`expected ${name} (${C.err(name)}), got exit ${code}`);
    const bounced = first.outMessages.values().some((m) => m.info.type === 'internal' && m.info.bounced);
    if (!bounced) throw new Error(`refused message was not bounced back`);
    void net;
}

/** A fresh network with one registered proxy (with vault), one worker (with stake), one client escrow. */
export async function standardNet(params: C.NetworkParams = C.defaultParams) {
    const net = await Net.create(params);
    const proxy = await net.actor('proxy');
    const worker = await net.actor('worker');
    const client = await net.actor('client');
    const stranger = await net.actor('stranger');
    await net.registerProxy(proxy);
    const vault = await net.openStake(proxy, C.ROLE_PROXY, toNano('5'));
    const workerStake = await net.openStake(worker, C.ROLE_WORKER, toNano('3'));
    const escrow = await net.openEscrow(client, proxy, toNano('10'), toNano('2'));
    return { net, proxy, worker, client, stranger, vault, workerStake, escrow };
}

/** Contract data decoded in TypeScript: fast enough for long randomised runs. */
export async function escrowData(net: Net, addr: Address): Promise<C.EscrowData> {
    const acc = (await net.chain.getContract(addr)).accountState;
    if (acc?.type !== 'active' || !acc.state.data) throw new Error('escrow not active');
    return C.parseEscrowData(acc.state.data);
}
export async function stakeData(net: Net, addr: Address): Promise<C.StakeData & { balance: bigint; pool: bigint }> {
    const sc = await net.chain.getContract(addr);
    const acc = sc.accountState;
    if (acc?.type !== 'active' || !acc.state.data) throw new Error('stake not active');
    const d = C.parseStakeData(acc.state.data);
    return { ...d, balance: sc.balance, pool: C.stakePool(sc.balance, d) };
}
