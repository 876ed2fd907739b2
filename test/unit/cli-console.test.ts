// #15 item 16: `xtv console NAME` prints the end of the guest's console as
// dom0 logged it, its control characters shown rather than acted on; a host
// that keeps no console logs says so (exit 1).
import test from 'tape';
import { textForTerminal } from '../../harness/report/escape.ts';
import { runCli } from './cli-capture.ts';

test('textForTerminal: lines and tabs kept, escape sequences and C1 shown', (t) => {
  t.equal(textForTerminal('a\tb\r\nc\u001b[2Jd\u009be\u202ef\n'), 'a\tb\nc\\x1b[2Jd\\x9be\\u202ef\n');
  t.end();
});

test('xtv console: usage', async (t) => {
  const h = await runCli(['console', '--help']);
  t.equal(h.code, 0);
  t.ok(h.out.startsWith('usage: xtv console'), 'its usage');
  const bad = await runCli(['console', 'vm', '--bytes', '0', '--host', 'ssh://root@127.0.0.1:1']);
  t.equal(bad.code, 2, '--bytes 0: usage error');
  t.match(bad.err, /--bytes wants a positive whole number/);
  const top = await runCli(['--help']);
  t.match(top.out, /^ {2}console /m, 'listed in xtv --help');
  t.end();
});
