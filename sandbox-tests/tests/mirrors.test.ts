// The error codes and opcodes exist once (contracts/errors.json, the `struct (0x..)` declarations);
// every mirror must equal them: the generated build files, the TL-B schema and the TS wrappers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTRACTS_DIR, BUILD_DIR, loadErrors, collectOpcodes } from '../scripts/build-contracts.js';
import { Errors, Op } from '../wrappers/cocoon.js';

test('build/errors.json and build/errors.tolk mirror contracts/errors.json', () => {
    const source = loadErrors();
    assert.deepEqual(JSON.parse(readFileSync(join(BUILD_DIR, 'errors.json'), 'utf8')), source);
    const tolk = readFileSync(join(BUILD_DIR, 'errors.tolk'), 'utf8');
    const parsed: Record<string, number> = {};
    for (const m of tolk.matchAll(/const ERR_([A-Z0-9_]+) = (\d+)/g)) parsed[m[1]] = Number(m[2]);
    assert.deepEqual(parsed, source);
    assert.deepEqual({ ...Errors }, source);
});

test('opcodes: sources, build/opcodes.json, schema and wrappers agree', () => {
    const ops = collectOpcodes();
    const built = JSON.parse(readFileSync(join(BUILD_DIR, 'opcodes.json'), 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.fromEntries(Object.entries(built).map(([k, v]) => [k, parseInt(v, 16)])), ops);
    assert.deepEqual({ ...Op }, ops);
    const schema = readFileSync(join(CONTRACTS_DIR, 'schema', 'cocoon.tlb'), 'utf8');
    const schemaTags = new Set([...schema.matchAll(/#([0-9a-f]{8}) /g)].map((m) => parseInt(m[1], 16)));
    for (const [name, code] of Object.entries(ops)) {
        assert.ok(schemaTags.has(code), `${name} 0x${code.toString(16)} missing from the TL-B schema`);
    }
    assert.equal(schemaTags.size, Object.keys(ops).length, 'schema has tags the sources do not');
});
