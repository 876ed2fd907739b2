// protocol/utf8.ts must agree exactly with the WHATWG encoder/decoder that
// Node has (QuickJS has none, so the guest uses ours).
import test from 'tape';
import { decodeUtf8, encodeUtf8 } from '../../protocol/utf8.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

let seed = 12345;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};

test('encodeUtf8: known strings', (t) => {
  const cases: Array<[string, number[]]> = [
    ['', []],
    ['A', [0x41]],
    ['é', [0xc3, 0xa9]],
    ['☃', [0xe2, 0x98, 0x83]],
    ['😀', [0xf0, 0x9f, 0x98, 0x80]],
    ['\ud800', [0xef, 0xbf, 0xbd]],
    ['\udc00x', [0xef, 0xbf, 0xbd, 0x78]],
    ['\0', [0]],
  ];
  for (const [s, bytes] of cases) t.deepEqual([...encodeUtf8(s)], bytes, JSON.stringify(s));
  t.end();
});

test('decodeUtf8: invalid sequences become U+FFFD as WHATWG says', (t) => {
  const cases: Array<[number[], string]> = [
    [[0x80], '\ufffd'],
    [[0xc0, 0xaf], '\ufffd\ufffd'], // overlong
    [[0xe0, 0x80, 0xaf], '\ufffd\ufffd\ufffd'],
    [[0xed, 0xa0, 0x80], '\ufffd\ufffd\ufffd'], // surrogate
    [[0xf4, 0x90, 0x80, 0x80], '\ufffd\ufffd\ufffd\ufffd'], // > U+10FFFF
    [[0xe2, 0x98], '\ufffd'], // truncated
    [[0xe2, 0x98, 0x41], '\ufffdA'],
    [[0xff, 0x41], '\ufffdA'],
    [[0xef, 0xbb, 0xbf, 0x41], '\ufeffA'], // a BOM is kept
  ];
  for (const [bytes, s] of cases) t.equal(decodeUtf8(Uint8Array.from(bytes)), s, bytes.map((b) => b.toString(16)).join(' '));
  t.end();
});

test('encodeUtf8 equals TextEncoder on random strings (lone surrogates included)', (t) => {
  let same = 0;
  const n = 3000;
  for (let k = 0; k < n; k++) {
    let s = '';
    const len = rand(40);
    for (let i = 0; i < len; i++) {
      const pick = rand(5);
      s += String.fromCharCode(pick === 0 ? rand(0x80) : pick === 1 ? rand(0x800) : pick === 2 ? 0xd800 + rand(0x800) : rand(0x10000));
    }
    if (Buffer.from(encodeUtf8(s)).equals(enc.encode(s))) same++;
    else t.fail(`differs on ${JSON.stringify(s)}`);
  }
  t.equal(same, n, `${n} random strings`);
  t.end();
});

test('decodeUtf8 equals TextDecoder on random bytes', (t) => {
  let same = 0;
  const n = 5000;
  for (let k = 0; k < n; k++) {
    const bytes = new Uint8Array(rand(30));
    // Bias towards bytes that start or continue multi-byte sequences.
    for (let i = 0; i < bytes.length; i++) bytes[i] = rand(3) === 0 ? rand(256) : 0x80 + rand(0x80);
    if (decodeUtf8(bytes) === dec.decode(bytes)) same++;
    else t.fail(`differs on ${Buffer.from(bytes).toString('hex')}`);
  }
  t.equal(same, n, `${n} random byte strings`);
  t.end();
});

test('round trip of a long text (chunked string building)', (t) => {
  const s = 'xenstore ☃ 😀 '.repeat(2000);
  t.equal(decodeUtf8(encodeUtf8(s)), s);
  t.end();
});
