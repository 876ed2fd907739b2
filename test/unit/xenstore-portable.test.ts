// The wire protocol and the client must run under QuickJS (the guest agent is
// PID 1 there): no Buffer, no node: imports, no TextEncoder/TextDecoder, no
// EventEmitter, no setImmediate. Two checks: the sources name none of these,
// and an esbuild bundle of them does a full exchange inside a bare V8 context
// (node:vm), which has only ECMAScript built-ins, with timers passed in.
// When a qjs binary is at hand (XTV_QJS, the image build's cache, or PATH),
// the same exchange also runs under real QuickJS.
import test from 'tape';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir, homedir } from 'node:os';
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
      t.ok(
        /^\.\.?\/(protocol|xenstore)?/.test(m[1]!) && !m[1]!.includes('transport-node') && !m[1]!.includes('test-xenstored'),
        `${file} imports only portable modules (${m[1]})`,
      );
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
  t.deepEqual(
    result,
    { v: 'hé ☃', missing: null, txv: '1', big: 'E2BIG', events: ['control/shutdown w1'] },
    'read, write, tryRead, transaction, E2BIG and watch work',
  );
});

/** The in-context responder and exchange, shared by the QuickJS run. `xs` is the bundle, `later(fn)` a timer. */
const QJS_EXCHANGE = `
const store = new Map();
let onData = null;
let hung = false;
let commitsToFail = 2;
const dec = new xs.FrameDecoder();
const reply = (frame, r) => later(() => onData(xs.encodeFrame({ op: r.op, reqId: frame.reqId, txId: frame.txId, payload: xs.encodeReplyPayload(r) })));
const transport = {
  write(bytes) {
    for (const item of dec.push(bytes)) {
      const f = item.frame;
      const req = xs.parseRequestPayload(f.op, f.payload);
      if (hung) continue;
      if (req.op === 'READ') reply(f, store.has(req.path) ? { op: 'READ', value: store.get(req.path) } : { op: 'ERROR', code: 'ENOENT' });
      else if (req.op === 'WRITE') { store.set(req.path, req.value); reply(f, { op: 'WRITE' }); }
      else if (req.op === 'WATCH') { reply(f, { op: 'WATCH' }); reply({ reqId: 0, txId: 0 }, { op: 'WATCH_EVENT', path: req.path, token: req.token }); }
      else if (req.op === 'TRANSACTION_START') reply(f, { op: 'TRANSACTION_START', txId: 9 });
      else if (req.op === 'TRANSACTION_END') reply(f, req.commit && commitsToFail-- > 0 ? { op: 'ERROR', code: 'EAGAIN' } : { op: 'TRANSACTION_END' });
    }
  },
  onData(cb) { onData = cb; },
  onClose() {},
  close() {},
};
const codeOf = async (p) => { try { await p; return 'ok'; } catch (e) { return e.code; } };
async function exchange() {
  const client = new xs.XenstoreClient(transport, { timers, requestTimeoutMs: 200, retryBaseMs: 1 });
  const events = [];
  client.onWatch((p, t) => events.push(p + ' ' + t));
  await client.watch('control/shutdown', 'w1');
  await client.write('data/x', 'h\\u00e9 \\u2603 \\ud83d\\ude00');
  const v = await client.read('data/x');
  const missing = await client.tryRead('nope');
  const enoent = await codeOf(client.read('nope'));
  let runs = 0;
  const txv = await client.transaction(async (tx) => { runs++; await tx.write('data/y', '1'); return tx.read('data/y'); });
  let leaked = null;
  const aborted = await codeOf(client.transaction(async (tx) => { leaked = tx; await tx.read('data/y'); const e = new Error('body'); e.code = 'BODY'; throw e; }));
  const afterEnd = await codeOf(leaked.read('data/y'));
  const big = await codeOf(client.write('data/big', 'x'.repeat(5000)));
  const nul = await codeOf(client.read('a\\u0000b'));
  hung = true;
  const timeout = await codeOf(client.read('data/x'));
  hung = false;
  client.close();
  const closed = await codeOf(client.read('data/x'));
  const bad = xs.decodeUtf8(new Uint8Array([0xe2, 0x98, 0x41, 0xff]));
  return JSON.stringify({ v, missing, enoent, txv, runs, aborted, afterEnd, big, nul, timeout, closed, events, bad });
}
`;
const QJS_EXPECTED = {
  v: 'hé ☃ 😀',
  missing: null,
  enoent: 'ENOENT',
  txv: '1',
  runs: 3,
  aborted: 'BODY',
  afterEnd: 'EINVAL',
  big: 'E2BIG',
  nul: 'EINVAL',
  timeout: 'ETIMEDOUT',
  closed: 'ECONNRESET',
  events: ['control/shutdown w1'],
  bad: '\ufffdA\ufffd',
};

function findQjs(): string | null {
  if (process.env.XTV_QJS) return process.env.XTV_QJS;
  const cache = join(process.env.XTV_CACHE_DIR ?? join(homedir(), '.cache', 'xtv'), 'image', 'qjs');
  if (existsSync(cache)) {
    for (const d of readdirSync(cache)) if (existsSync(join(cache, d, 'qjs'))) return join(cache, d, 'qjs');
  }
  const which = spawnSync('sh', ['-c', 'command -v qjs'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

test('under real QuickJS (qjs --std, WITHOUT --no-unhandled-rejection): the same exchange', async (t) => {
  const qjs = findQjs();
  if (!qjs) {
    t.skip('no qjs found (set XTV_QJS, or build the image so that its cache holds one)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'xtv-qjs-'));
  try {
    await build({
      stdin: {
        contents: `export * from './protocol/xenstore-wire.ts'; export * from './protocol/utf8.ts'; export * from './xenstore/client.ts'; export * from './xenstore/errors.ts';`,
        resolveDir: root,
        loader: 'ts',
      },
      bundle: true,
      format: 'esm',
      target: 'es2020',
      platform: 'neutral',
      outfile: join(dir, 'xs.js'),
      logLevel: 'warning',
    });
    writeFileSync(
      join(dir, 'run.js'),
      `import * as os from 'os';\nimport * as xs from './xs.js';\n` +
        `const timers = { setTimeout: (f, ms) => os.setTimeout(f, ms), clearTimeout: (h) => os.clearTimeout(h) };\n` +
        `const later = (fn) => os.setTimeout(fn, 0);\n${QJS_EXCHANGE}\nexchange().then((r) => print(r), (e) => print('FAILED ' + e));\n`,
    );
    // No --no-unhandled-rejection: qjs then exits on any rejection nobody handles yet, so this also
    // proves the client never rejects before its caller can attach a handler.
    const r = spawnSync(qjs, ['--std', '-m', join(dir, 'run.js')], { encoding: 'utf8', timeout: 20000 });
    t.equal(r.status, 0, `qjs exit status (stderr: ${r.stderr.trim() || 'none'})`);
    t.deepEqual(JSON.parse(r.stdout.trim() || '{}'), QJS_EXPECTED, `${qjs}: same results as under Node`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
