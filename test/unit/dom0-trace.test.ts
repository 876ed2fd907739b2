// XTV_TRACE_DOM0: a JSON line per dom0 command when set, nothing when not.
import test from 'tape';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { traceDom0 } from '../../harness/remote/dom0-trace.ts';

test('traceDom0: one line per command with the variable; nothing without it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-trace-'));
  const file = join(dir, 'trace.jsonl');
  const saved = process.env['XTV_TRACE_DOM0'];
  try {
    delete process.env['XTV_TRACE_DOM0'];
    traceDom0('exec', 'xl list', Date.now());
    t.notOk(existsSync(file), 'off: nothing written');
    process.env['XTV_TRACE_DOM0'] = file;
    traceDom0('exec', `xl list\n${'x'.repeat(300)}`, Date.now() - 5);
    traceDom0('copy', 'cat > /tmp/f', Date.now());
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; cmd: string; ms: number; pid: number });
    t.deepEqual(
      lines.map((l) => l.kind),
      ['exec', 'copy'],
      'a line per command',
    );
    t.ok(lines[0]!.cmd.startsWith('xl list ; xxx') && lines[0]!.cmd.length === 160, 'the command on one line, cut at 160 characters');
    t.ok(lines[0]!.ms >= 5 && lines[0]!.pid === process.pid, 'with its duration and our pid');
    process.env['XTV_TRACE_DOM0'] = join(dir, 'no-such-dir', 'f');
    t.doesNotThrow(() => traceDom0('exec', 'xl list', Date.now()), 'an unwritable trace never fails the command');
  } finally {
    if (saved === undefined) delete process.env['XTV_TRACE_DOM0'];
    else process.env['XTV_TRACE_DOM0'] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});
