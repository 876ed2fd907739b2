import test from 'tape';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRunArgs, runRun, selectCases, toolstackOf, listText } from '../../harness/cli/run-command.ts';
import { UsageError } from '../../harness/cli/command.ts';
import { main } from '../../harness/cli/main.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      out: (t: string) => {
        out.push(t);
      },
      err: (l: string) => {
        err.push(l);
      },
      exit: () => undefined,
    },
  };
}

test('arguments: defaults and mistakes', (t) => {
  const a = parseRunArgs([]);
  t.equal(a.host, 'embedded');
  t.equal(a.matrix, 'smoke');
  t.equal(a.parallel, 1);
  t.equal(toolstackOf(a), 'xl');
  t.equal(toolstackOf(parseRunArgs(['--host', 'https://xs.example'])), 'xapi');
  t.equal(toolstackOf(parseRunArgs(['--host', 'https://xs.example', '--toolstack', 'xl'])), 'xl');
  t.throws(() => parseRunArgs(['--parallel', '0']), UsageError);
  t.throws(() => parseRunArgs(['--matrix', 'huge']), UsageError);
  t.throws(() => parseRunArgs(['--toolstack', 'libvirt']), UsageError);
  t.throws(() => parseRunArgs(['--host', 'ftp://x']), UsageError);
  t.throws(() => parseRunArgs(['--bogus']), UsageError);
  t.throws(() => parseRunArgs(['positional']), UsageError);
  t.equal(a.vmPrefix, 'xtv', 'VMs are named xtv-CASE by default');
  t.equal(parseRunArgs(['--vm-prefix', 'ci-7']).vmPrefix, 'ci-7');
  t.throws(() => parseRunArgs(['--vm-prefix', '9 lives']), /--vm-prefix wants a letter/);
  t.throws(() => parseRunArgs(['--vm-prefix', 'a'.repeat(20)]), /up to 18/, 'a prefix that would make names longer than xl allows');
  t.throws(() => selectCases({ matrix: 'smoke', filter: 'no-such-case' }), /matches no case/);
  t.end();
});

test("--list prints the cases with both models' expectations, without a host", async (t) => {
  const o = io();
  const code = await runRun(['--list', '--matrix', 'full', '--filter', 'running.clean_shutdown.ack-none.*'], o.io);
  t.equal(code, 0);
  const text = o.out.join('');
  t.match(text, /running\.clean_shutdown\.ack-none\.ignore\s+xl: error \(any\); Running; domid same; ack-timeout/);
  t.match(text, /xapi: error VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT; Running; domid same; ack-timeout/);
  t.match(text, /6 to run, 0 skipped/);
  t.deepEqual(o.err, [], 'nothing on stderr: no host touched');
  const withSkips = listText(selectCases({ matrix: 'full', filter: 'paused.pause' }), ['xl'], true);
  t.match(withSkips, /paused\.pause\.ack-none\.crash\s+skip: equivalent to paused\.pause\.ack-ok\.ignore/);
  t.end();
});

test('--list --json: cases with expectations', async (t) => {
  const o = io();
  t.equal(await runRun(['--list', '--json', '--toolstack', 'xapi'], o.io), 0);
  const list = JSON.parse(o.out.join('')) as Array<{ name: string; run: boolean; expect: Record<string, { kind: string }> }>;
  t.equal(list.length, 13);
  t.ok(
    list.every((c) => c.expect.xapi && !c.expect.xl),
    'only the chosen toolstack',
  );
  t.end();
});

test('xtv run against the fake host: TAP on stdout, reports written, exit 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-run-'));
  try {
    const o = io();
    const code = await runRun(['--host', 'fake', '--parallel', '4', '--report-dir', dir], o.io);
    t.equal(code, 0, 'no case failed');
    const out = o.out.join('');
    t.match(out, /^TAP version 13\n1\.\.13\n/);
    t.equal((out.match(/^ok \d+ - pass /gm) ?? []).length, 13);
    t.match(o.err.join('\n'), /VERDICT\s+CASE/, 'table on stderr');
    t.match(readFileSync(join(dir, 'xtv-xl-smoke.html'), 'utf8'), /<table class="grid"/);
    t.match(readFileSync(join(dir, 'xtv-xl-smoke.junit.xml'), 'utf8'), /<testsuites name="xtv" tests="13" failures="0" errors="0"/);
    const json = JSON.parse(readFileSync(join(dir, 'xtv-xl-smoke.json'), 'utf8')) as { verdict: string };
    t.equal(json.verdict, 'pass');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('exit 2 for usage mistakes and for a host that cannot be driven', async (t) => {
  t.equal(await main(['run', '--parallel', 'x']), 2);
  const o = io();
  const code = await runRun(['--host', 'https://127.0.0.1:1', '--image-dir', '/nonexistent'], o.io);
  t.equal(code, 2);
  t.match(o.err.join('\n'), /test image is missing/);
  t.end();
});

test('Ctrl-C on `xtv run` (a real process, fake host): stops, cleans up, reports, exits 1', async (t) => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'xtv-sigint-'));
  try {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../../bin/xtv.js', import.meta.url)), 'run', '--host', 'fake', '--matrix', 'full', '--parallel', '2', '--report-dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /request /.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('xtv run did not stop within 60 s of SIGINT'));
      }, 60_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    t.ok(sent, 'SIGINT sent while a request was in flight');
    t.equal(code, 1, 'exit 1: cases were interrupted');
    t.match(stderr, /SIGINT: stopping/);
    t.notOk(/could not remove/.test(stderr), 'every VM removed');
    t.match(stdout, /^not ok \d+ - error /m, 'interrupted cases reported as errors in TAP');
    const json = JSON.parse(readFileSync(join(dir, 'xtv-xl-full.json'), 'utf8')) as { aborted: boolean; counts: { error: number } };
    t.equal(json.aborted, true, 'the report says the run was interrupted');
    t.ok(json.counts.error > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});
