// The long-lived shell sessions that carry commands to dom0
// (harness/remote/shell-session.ts), with this machine's sh standing in for
// "ssh dom0 sh": results framed exactly (exit status, stdout, stderr, any
// bytes, no final newline), input passed through, one command at a time per
// session, a bound that closes the session, and a dead session reported.
import test from 'tape';
import { spawn, spawnSync } from 'node:child_process';
import { ShellPool, ShellSession, ShellSessionError, commandText } from '../../harness/remote/shell-session.ts';

const localShell = () => spawn('sh', [], { stdio: ['pipe', 'pipe', 'pipe'] });
/** dom0's shell is busybox ash: the framing is checked with it too where this machine has busybox. */
const haveBusybox = spawnSync('busybox', ['true']).status === 0;

for (const [name, shell] of [
  ['sh', localShell],
  ['busybox sh', () => spawn('busybox', ['sh'], { stdio: ['pipe', 'pipe', 'pipe'] })],
] as const) {
  test(`shell session (${name}): exit status, stdout and stderr, exactly`, { skip: name === 'busybox sh' && !haveBusybox }, async (t) => {
    const s = new ShellSession(shell());
    await s.whenReady(5000);
    t.deepEqual(await s.run('echo out; echo err >&2; exit 3', { timeoutMs: 5000 }), { code: 3, stdout: 'out\n', stderr: 'err\n' });
    t.deepEqual(await s.run("printf 'no newline'", { timeoutMs: 5000 }), { code: 0, stdout: 'no newline', stderr: '' }, 'no final newline kept as is');
    t.deepEqual(
      await s.run("printf 'XTV-SEP-00\\nXTV-END-00 0\\nx'; printf '\\n\\n' >&2", { timeoutMs: 5000 }),
      { code: 0, stdout: 'XTV-SEP-00\nXTV-END-00 0\nx', stderr: '\n\n' },
      'output that looks like the markers (of another id) is just output',
    );
    const tricky = 'line with \'quotes\' and "doubles" and $HOME and `backticks`\nXTV-END-x\n';
    t.deepEqual(await s.run('cat', { timeoutMs: 5000, input: tricky }), { code: 0, stdout: tricky, stderr: '' }, 'input arrives byte for byte');
    t.deepEqual(await s.run('cat', { timeoutMs: 5000 }), { code: 0, stdout: '', stderr: '' }, "no input: empty stdin, not the session's");
    t.deepEqual(await s.run('echo $$ > /dev/null; exit 0', { timeoutMs: 5000 }), { code: 0, stdout: '', stderr: '' }, 'exit ends the command, not the session');
    t.equal((await s.run('echo still here', { timeoutMs: 5000 })).stdout, 'still here\n');
    // A background process that keeps stdout open does not hold the result back.
    const t0 = Date.now();
    t.equal((await s.run('sleep 10 & echo started', { timeoutMs: 15_000 })).stdout, 'started\n');
    t.ok(Date.now() - t0 < 8000, `a lingering background process does not delay the result (${Date.now() - t0} ms)`);
    t.equal(
      (await s.run("x='it''s'; echo \"$x\" 'single quoted'", { timeoutMs: 5000 })).stdout,
      'its single quoted\n',
      'single quotes in the script work as written',
    );
    await s.run('xtv_d=/nonexistent; x=leaked; set -e; cd /; trap "echo trap" EXIT', { timeoutMs: 5000 });
    t.deepEqual(
      await s.run('echo "[$x]"; false; echo after', { timeoutMs: 5000 }),
      { code: 0, stdout: '[]\nafter\n', stderr: '' },
      "a command's variables, set -e and traps stay with it",
    );
    const bad = await s.run('if then', { timeoutMs: 5000 });
    t.ok(bad.code !== 0 && bad.stderr !== '', `a syntax error fails that command (exit ${bad.code}: ${bad.stderr.trim()})`);
    t.equal((await s.run('echo fine', { timeoutMs: 5000 })).stdout, 'fine\n', 'and the session goes on');
    s.close();
  });
}

test('shell session: the bound closes the session; a dead session says so', async (t) => {
  const s = new ShellSession(localShell());
  await s.whenReady(5000);
  const slow = await s.run('sleep 5', { timeoutMs: 300 }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(slow instanceof ShellSessionError && slow.timedOut, `past the bound: ${String(slow)}`);
  t.notOk(s.alive, 'and the session is closed (its next frame could not be told from a late one)');
  const after = await s.run('true', { timeoutMs: 1000 }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(after instanceof ShellSessionError, 'later commands are refused with the reason');
  const broken = new ShellSession(spawn('sh', ['-c', 'echo not a shell session; exit 1'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  const e = await broken.whenReady(5000).then(
    () => null,
    (err: unknown) => err,
  );
  t.ok(e instanceof ShellSessionError, `a session that does not answer as a shell: ${String(e)}`);
});

test('shell pool: commands share a few sessions; a session that dies is replaced', async (t) => {
  let opened = 0;
  const pool = new ShellPool(() => {
    opened++;
    return localShell();
  }, 2);
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.run(`sleep 0.2; echo ${i}`, { timeoutMs: 5000 })));
  t.deepEqual(
    results.map((r) => r.stdout),
    ['0\n', '1\n', '2\n', '3\n', '4\n', '5\n'],
    'each command gets its own result',
  );
  t.equal(opened, 2, 'six commands, two sessions');
  const killed = await pool.run('kill -9 $$', { timeoutMs: 5000 }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(killed instanceof ShellSessionError, `the command that killed its session: ${String(killed)}`);
  t.equal((await pool.run('echo again', { timeoutMs: 5000 })).stdout, 'again\n', 'the pool goes on');
  pool.close();
});

test('shell session: the command text quotes nothing it should not', (t) => {
  const text = commandText('abc', 'echo "$x"', 'in');
  t.match(text, /^xtv_s='echo "\$x"'\n/, 'the script single-quoted: no expansion');
  t.match(commandText('abc', "echo 'a b'"), /^xtv_s='echo '\\''a b'\\'''\n/, 'its own single quotes closed, escaped and reopened');
  t.match(text, /base64 -d > "\$xtv_d\/i" <<'XTV-END-abc'\naW4=\nXTV-END-abc\n/, 'the input as base64');
  t.end();
});
