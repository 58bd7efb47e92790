// cocoon devnet: a toncenter API v2 compatible HTTP server over @ton/sandbox (the real TVM).
//   node --import tsx devnet/server.ts --port 0 --state FILE
// Prints exactly one line on stdout when ready: `devnet listening on http://127.0.0.1:PORT`.
import http from 'node:http';
import { Address } from '@ton/core';
import { Chain } from './chain.js';
import {
    ApiError,
    b64,
    friendly,
    parseAddress,
    parseBocParam,
    parseStack,
    stackJson,
    transactionId,
    transactionJson,
    ZERO_TX_ID,
} from './format.js';

const MAX_BODY = 16 * 1024 * 1024;
const MAX_TX_LIMIT = 256;

type Params = Record<string, unknown>;

function parseArgs(argv: string[]): { port: number; state?: string; lifeline: boolean } {
    let port = 0;
    let state: string | undefined;
    let lifeline = false;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--port') port = Number(argv[++i]);
        else if (a === '--state') state = argv[++i];
        else if (a === '--stdin-lifeline') lifeline = true;
        else throw new Error(`unknown argument: ${a} (usage: server.ts --port N --state FILE [--stdin-lifeline])`);
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0..65535');
    return { port, state, lifeline };
}

function intParam(p: Params, name: string, def?: number): number | undefined {
    const v = p[name];
    if (v === undefined || v === null || v === '') return def;
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isSafeInteger(n)) throw new ApiError(400, `invalid integer parameter: ${name}`);
    return n;
}

function bigParam(p: Params, name: string): bigint | undefined {
    const v = p[name];
    if (v === undefined || v === null || v === '') return undefined;
    if ((typeof v === 'string' && /^[0-9]+$/.test(v)) || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
        return BigInt(v);
    }
    throw new ApiError(400, `invalid integer parameter: ${name}`);
}

function hashParam(v: unknown): Buffer | undefined {
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new ApiError(400, 'invalid hash');
    if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
    const buf = Buffer.from(v, 'base64');
    if (buf.length !== 32) throw new ApiError(400, 'invalid hash: expected 32 bytes in base64 or hex');
    return buf;
}

class Api {
    constructor(private readonly chain: Chain) {}

    async call(method: string, p: Params): Promise<unknown> {
        const c = this.chain;
        switch (method) {
            case 'getMasterchainInfo':
                return {
                    '@type': 'blocks.masterchainInfo',
                    last: c.blockId(),
                    state_root_hash: c.stateRootHash(),
                    init: { ...c.blockId(), seqno: 0 },
                };
            case 'getAddressInformation':
                return this.addressInformation(parseAddress(p.address));
            case 'getAddressBalance':
                return (await c.account(parseAddress(p.address))).balance.toString();
            case 'getAddressState':
                return (await c.account(parseAddress(p.address))).state;
            case 'getWalletInformation':
                return this.walletInformation(parseAddress(p.address));
            case 'runGetMethod':
                return this.runGetMethod(p);
            case 'sendBoc':
                await c.sendExternal(parseBocParam(p.boc, 'boc'));
                return { '@type': 'ok' };
            case 'sendBocReturnHash': {
                const { hash, hashNorm } = await c.sendExternal(parseBocParam(p.boc, 'boc'));
                return { '@type': 'raw.extMessageInfo', hash: b64(hash), hash_norm: b64(hashNorm) };
            }
            case 'getTransactions':
                return this.transactions(p);
            case 'estimateFee':
                return this.estimateFee(p);
            default:
                throw new ApiError(404, `method not found: ${method}`);
        }
    }

    private async estimateFee(p: Params) {
        const addr = parseAddress(p.address);
        const body = parseBocParam(p.body, 'body');
        const hasCode = typeof p.init_code === 'string' && p.init_code !== '';
        const hasData = typeof p.init_data === 'string' && p.init_data !== '';
        if (hasCode !== hasData) throw new ApiError(400, 'init_code and init_data go together');
        const init = hasCode
            ? { code: parseBocParam(p.init_code, 'init_code'), data: parseBocParam(p.init_data, 'init_data') }
            : undefined;
        const ignore = !(p.ignore_chksig === false || p.ignore_chksig === 'false' || p.ignore_chksig === 0);
        const msg = {
            info: { type: 'external-in' as const, dest: addr, importFee: 0n },
            init,
            body,
        };
        const f = await this.chain.estimateFee(msg, ignore);
        return {
            '@type': 'query.fees',
            source_fees: {
                '@type': 'fees',
                in_fwd_fee: Number(f.inFwd),
                storage_fee: Number(f.storage),
                gas_fee: Number(f.gas),
                fwd_fee: Number(f.fwd),
            },
            destination_fees: [],
        };
    }

    private async addressInformation(addr: Address) {
        const c = this.chain;
        const a = await c.account(addr);
        return {
            '@type': 'raw.fullAccountState',
            balance: a.balance.toString(),
            extra_currencies: [],
            code: a.code ? b64(a.code.toBoc()) : '',
            data: a.data ? b64(a.data.toBoc()) : '',
            last_transaction_id: a.lastLt > 0n ? transactionId(a.lastLt, a.lastHash) : ZERO_TX_ID,
            block_id: c.blockId(),
            frozen_hash: a.frozenHash ? b64(Buffer.from(a.frozenHash.toString(16).padStart(64, '0'), 'hex')) : '',
            sync_utime: c.now(),
            state: a.state,
        };
    }

    private async walletInformation(addr: Address) {
        const c = this.chain;
        const a = await c.account(addr);
        const lastTx = a.lastLt > 0n ? transactionId(a.lastLt, a.lastHash) : ZERO_TX_ID;
        const type = c.walletType(a.code);
        if (a.state !== 'active' || !type) {
            return { wallet: false, balance: a.balance.toString(), account_state: a.state, last_transaction_id: lastTx };
        }
        const seqno = await c.runGetMethod(addr, 'seqno', []);
        const walletId = await c.runGetMethod(addr, 'get_subwallet_id', []);
        const num = (r: typeof seqno) =>
            r.exitCode === 0 && r.stack[0]?.type === 'int' ? Number(r.stack[0].value) : undefined;
        return {
            wallet: true,
            balance: a.balance.toString(),
            account_state: a.state,
            wallet_type: type,
            seqno: num(seqno) ?? 0,
            wallet_id: num(walletId),
            last_transaction_id: lastTx,
        };
    }

    private async runGetMethod(p: Params) {
        const c = this.chain;
        const addr = parseAddress(p.address);
        let method = p.method;
        if (typeof method === 'string' && /^-?[0-9]+$/.test(method)) method = Number(method);
        if (typeof method !== 'string' && typeof method !== 'number') throw new ApiError(400, 'missing parameter: method');
        const r = await c.runGetMethod(addr, method, parseStack(p.stack));
        const a = await c.account(addr);
        return {
            '@type': 'smc.runResult',
            gas_used: Number(r.gasUsed),
            stack: stackJson(r.stack),
            exit_code: r.exitCode,
            block_id: c.blockId(),
            last_transaction_id: a.lastLt > 0n ? transactionId(a.lastLt, a.lastHash) : ZERO_TX_ID,
        };
    }

    private transactions(p: Params) {
        const c = this.chain;
        const addr = parseAddress(p.address);
        const limit = Math.min(intParam(p, 'limit', 10) ?? 10, MAX_TX_LIMIT);
        if (limit < 1) throw new ApiError(400, 'limit must be positive');
        const fromLt = bigParam(p, 'lt');
        const fromHash = hashParam(p.hash);
        const toLt = bigParam(p, 'to_lt') ?? 0n;
        const hashPart = BigInt('0x' + addr.hash.toString('hex'));
        const mine = c.transactions().filter((tx) => {
            if (tx.address !== hashPart) return false;
            const dst = tx.inMessage?.info.dest;
            return !Address.isAddress(dst) || dst.workChain === addr.workChain;
        });
        mine.sort((x, y) => (x.lt > y.lt ? -1 : x.lt < y.lt ? 1 : 0));
        let start = 0;
        if (fromLt !== undefined) {
            start = mine.findIndex((tx) => tx.lt <= fromLt);
            if (start < 0) return [];
            if (fromHash && !(mine[start].lt === fromLt && mine[start].hash().equals(fromHash))) {
                throw new ApiError(404, `transaction not found: lt ${fromLt}`);
            }
        }
        return mine
            .slice(start)
            .filter((tx) => tx.lt > toLt)
            .slice(0, limit)
            .map((tx) => transactionJson(tx, addr, c.sentHash));
    }
}

/** Test-only routes under /devnet/. */
async function devnetRoute(chain: Chain, route: string, p: Params): Promise<unknown> {
    switch (route) {
        case 'status':
            return {
                seqno: chain.seqno,
                now: chain.now(),
                lt: chain.bc.lt.toString(),
                transactions: chain.transactions().length,
                state_file: chain.statePath ?? null,
                pid: process.pid,
            };
        case 'fund': {
            const addr = parseAddress(p.address);
            const amount = bigParam(p, 'amount');
            if (amount === undefined) throw new ApiError(400, 'missing parameter: amount (nanotons)');
            const tx = await chain.fund(addr, amount);
            const a = await chain.account(addr);
            return {
                address: friendly(addr),
                balance: a.balance.toString(),
                transaction_id: tx ? transactionId(tx.lt, tx.hash()) : null,
            };
        }
        case 'time': {
            const unix = intParam(p, 'unix');
            const advance = intParam(p, 'advance');
            if (unix !== undefined) chain.setTime(unix);
            else if (advance !== undefined) chain.advanceTime(advance);
            else throw new ApiError(400, 'expected `unix` or `advance`');
            return { now: chain.now() };
        }
        default:
            throw new ApiError(404, `unknown devnet route: ${route}`);
    }
}

function readBody(req: http.IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (d: Buffer) => {
            size += d.length;
            if (size > MAX_BODY) {
                reject(new ApiError(413, 'request body too large'));
                req.destroy();
            } else chunks.push(d);
        });
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
    });
}

function parseJson(text: string): Params {
    if (text.trim() === '') return {};
    try {
        const v = JSON.parse(text);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
        return v as Params;
    } catch (e) {
        throw new ApiError(400, `invalid JSON body: ${(e as Error).message}`);
    }
}

async function handle(chain: Chain, api: Api, req: http.IncomingMessage): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query: Params = Object.fromEntries(url.searchParams.entries());
    const body = req.method === 'POST' ? parseJson(await readBody(req)) : {};
    const path = url.pathname.replace(/\/+$/, '');
    let rpcId: unknown = undefined;
    const envelope = (result: unknown) => ({ status: 200, body: { ok: true, result, ...(rpcId !== undefined ? { jsonrpc: '2.0', id: rpcId } : {}) } });
    try {
        if (path === '/jsonRPC' || path === '/api/v2/jsonRPC') {
            if (req.method !== 'POST') throw new ApiError(405, 'jsonRPC needs POST');
            rpcId = body.id ?? null;
            if (typeof body.method !== 'string') throw new ApiError(400, 'missing method');
            const params = (body.params ?? {}) as Params;
            return envelope(await chain.serial(() => api.call(body.method as string, params)));
        }
        if (path.startsWith('/api/v2/')) {
            const method = path.slice('/api/v2/'.length);
            const params = { ...query, ...body };
            return envelope(await chain.serial(() => api.call(method, params)));
        }
        if (path.startsWith('/devnet/')) {
            const route = path.slice('/devnet/'.length);
            const params = { ...query, ...body };
            return envelope(await chain.serial(() => devnetRoute(chain, route, params)));
        }
        throw new ApiError(404, `not found: ${path}`);
    } catch (e) {
        const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`);
        if (!(e instanceof ApiError)) console.error(e);
        return {
            status: err.code,
            body: { ok: false, error: err.message, code: err.code, ...(rpcId !== undefined ? { jsonrpc: '2.0', id: rpcId } : {}) },
        };
    }
}

async function main() {
    const { port, state, lifeline } = parseArgs(process.argv.slice(2));
    const chain = await Chain.open(state);
    const api = new Api(chain);
    const server = http.createServer((req, res) => {
        handle(chain, api, req)
            .then(({ status, body }) => {
                const text = JSON.stringify(body);
                res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
                res.end(text);
            })
            .catch((e) => {
                console.error('devnet: response failed', e);
                res.destroy();
            });
    });
    // Clients pool connections; closing idle ones after node's default 5 s races with their reuse.
    server.keepAliveTimeout = 120_000;
    server.headersTimeout = 125_000;
    const stop = (sig: string) => {
        console.error(`devnet: ${sig}, stopping`);
        // State is written synchronously after every change, so there is nothing left to flush.
        chain.serial(async () => {
            server.close();
            server.closeAllConnections();
            process.exit(0);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    if (lifeline) {
        // The parent holds our stdin open; when it dies (even by SIGKILL) the pipe closes and we follow.
        process.stdin.on('end', () => stop('stdin closed'));
        process.stdin.on('error', () => stop('stdin error'));
        process.stdin.resume();
    }
    process.on('SIGINT', () => stop('SIGINT'));
    server.listen(port, '127.0.0.1', () => {
        const addr = server.address();
        const actual = typeof addr === 'object' && addr ? addr.port : port;
        process.stdout.write(`devnet listening on http://127.0.0.1:${actual}\n`);
    });
}

main().catch((e) => {
    console.error(`devnet: ${(e as Error).message}`);
    process.exit(1);
});
