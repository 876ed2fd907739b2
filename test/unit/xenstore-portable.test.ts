// The wire protocol and the client must run under QuickJS (the guest agent is
// PID 1 there): no Buffer, no node: imports, no TextEncoder/TextDecoder, no
// EventEmitter, no setImmediate. Two checks: the sources name none of these,
// and an esbuild bundle of them does a full exchange inside a bare V8 context
// (node:vm), which has only ECMAScript built-ins, with timers passed in.
import test from 'tape';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vm from 'node:vm';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PORTABLE = ['protocol/utf8.ts', 'protocol/xenstore-wire.ts', 'xenstore/client.ts', 'xenstore/errors.ts', 'xenstore/transport.ts'];
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bBuffer\b/, 'Buffer'],
  [/from\s+['"]node:/, 'a node: import'],
  [/\brequire\s*\(/, 'require()'],
  [/\bText(En|De)coder\b/, 'TextEncoder/TextDecoder'],
  [/\bEventEmitter\b/, 'EventEmitter'],
  [/\bsetImmediate\b/, 'setImmediate'],
  [/\bqueueMicrotask\b/, 'queueMicrotask'],
  [/\bprocess\./, 'process'],
  [/\bstructuredClone\b/, 'structuredClone'],
];

function withoutComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"])\/\/.*$/gm, '$1');
}

test('portable sources use no Node-only or missing-in-QuickJS API', (t) => {
  for (const file of PORTABLE) {
    const src = withoutComments(readFileSync(join(root, file), 'utf8'));
    for (const [re, what] of FORBIDDEN) t.notOk(re.test(src), `${file} does not use ${what}`);
    for (const m of src.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
      t.ok(/^\.\.?\/(protocol|xenstore)?/.test(m[1]!) && !m[1]!.includes('transport-node') && !m[1]!.includes('test-server'), `${file} imports only portable modules (${m[1]})`);
    }
  }
  t.end();
});

test('bundled client does a full exchange in a context without Node globals', async (t) => {
  const entry = `
    export * from './protocol/xenstore-wire.ts';
    export * from './protocol/utf8.ts';
    export * from './xenstore/client.ts';
    export * from './xenstore/errors.ts';`;
  const out = await build({
    stdin: { contents: entry, resolveDir: root, loader: 'ts' },
    bundle: true,
    format: 'iife',
    globalName: 'xs',
    target: 'es2020',
    write: false,
    platform: 'neutral',
  });
  const code = out.outputFiles[0]!.text;
  const context = vm.createContext({ hostSetTimeout: setTimeout, hostClearTimeout: clearTimeout });
  t.equal(vm.runInContext('typeof TextEncoder + typeof Buffer + typeof setTimeout', context), 'undefinedundefinedundefined', 'the context is bare');
  vm.runInContext(code, context);
  // A tiny xenstored inside the context: answers READ, WRITE, WATCH (+ event), transactions.
  const script = `
    (async () => {
      const store = new Map();
      let onData = null;
      const dec = new xs.FrameDecoder();
      const reply = (frame, r) => hostSetTimeout(() => onData(xs.encodeFrame({ op: r.op, reqId: frame.reqId, txId: frame.txId, payload: xs.encodeReplyPayload(r) })), 0);
      const transport = {
        write(bytes) {
          for (const item of dec.push(bytes)) {
            const f = item.frame;
            const req = xs.parseRequestPayload(f.op, f.payload);
            if (req.op === 'READ') reply(f, store.has(req.path) ? { op: 'READ', value: store.get(req.path) } : { op: 'ERROR', code: 'ENOENT' });
            else if (req.op === 'WRITE') { store.set(req.path, req.value); reply(f, { op: 'WRITE' }); }
            else if (req.op === 'WATCH') { reply(f, { op: 'WATCH' }); reply({ reqId: 0, txId: 0 }, { op: 'WATCH_EVENT', path: req.path, token: req.token }); }
            else if (req.op === 'TRANSACTION_START') reply(f, { op: 'TRANSACTION_START', txId: 9 });
            else if (req.op === 'TRANSACTION_END') reply(f, { op: 'TRANSACTION_END' });
          }
        },
        onData(cb) { onData = cb; },
        onClose() {},
        close() {},
      };
      const client = new xs.XenstoreClient(transport, { timers: { setTimeout: hostSetTimeout, clearTimeout: hostClearTimeout }, requestTimeoutMs: 1000 });
      const events = [];
      client.onWatch((p, tok) => events.push(p + ' ' + tok));
      await client.watch('control/shutdown', 'w1');
      await client.write('data/x', 'h\\u00e9 \\u2603');
      const v = await client.read('data/x');
      const missing = await client.tryRead('nope');
      const txv = await client.transaction(async (tx) => { await tx.write('data/y', '1'); return tx.read('data/y'); });
      let big = '';
      try { await client.write('data/big', 'x'.repeat(5000)); } catch (e) { big = e.code; }
      client.close();
      return JSON.stringify({ v, missing, txv, big, events });
    })()`;
  const result = JSON.parse(await (vm.runInContext(script, context) as Promise<string>));
  t.deepEqual(result, { v: 'hé ☃', missing: null, txv: '1', big: 'E2BIG', events: ['control/shutdown w1'] }, 'read, write, tryRead, transaction, E2BIG and watch work');
});
