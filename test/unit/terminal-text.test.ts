// #15 item 5: guest-written text reaches the terminal through xtv send, xtv
// watch and the progress lines; C1 controls (U+009B is a CSI on its own) and
// bidirectional overrides must not pass as they are.
import test from 'tape';
import { jsonForTerminal, oneLine } from '../../harness/report/escape.ts';

test('oneLine: C0, DEL, C1 and bidi controls become spaces', (t) => {
  t.equal(oneLine('a\u001b[2Jb\u009b2Jc\u202eevil\u2066d\u007fe'), 'a [2Jb 2Jc evil d e');
  t.equal(oneLine('plain text, é ☃'), 'plain text, é ☃', 'printable text as it is');
  t.end();
});

test('jsonForTerminal: JSON that is the same value, with every terminal control escaped', (t) => {
  const v = 'x\u001b[31my\u009b31mz\u202ew\u2028';
  const s = jsonForTerminal({ v });
  // eslint-disable-next-line no-control-regex
  t.notOk(/[\u0000-\u001f\u007f-\u009f\u2028\u202e]/.test(s), s);
  t.deepEqual(JSON.parse(s), { v }, 'it parses back to the same value');
  t.end();
});
