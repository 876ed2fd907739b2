// #15: a --timeout past what a Node timer holds (2^31-1 ms) would fire at once; it is refused instead.
import test from 'tape';
import { seconds } from '../../harness/cli/common.ts';

test('--timeout: seconds, bounded by what a timer holds', (t) => {
  t.equal(seconds('timeout', '90', 30), 90_000);
  t.equal(seconds('timeout', undefined, 30), 30_000, 'default');
  t.equal(seconds('timeout', '2147483', 30), 2_147_483_000, 'about 24.8 days: kept');
  t.throws(() => seconds('timeout', '2147484', 30), /--timeout: at most 2147483 seconds/, 'past it: refused, not fired at once');
  t.throws(() => seconds('timeout', '1e9', 30), /wants a number of seconds/);
  t.end();
});
