// Reading a guest's xenstore nodes from dom0's shell, for both drivers: the
// paths they accept, and the output of dom0-scripts/read-many.sh (many keys
// in one xenstore-read process: processes are what costs in an emulated
// dom0), its escaped values decoded.
import { frames, lastFrame } from './dom0-script.ts';
import type { XenstoredDomain } from './driver.ts';

/** xenstore paths the drivers accept: relative to the domain's home, plain segments, no "..". */
const REL_PATH = /^[A-Za-z0-9_.:@-]+(\/[A-Za-z0-9_.:@-]+)*$/;

export function checkRelPath(rel: string): void {
  if (!REL_PATH.test(rel) || rel.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`bad xenstore path ${JSON.stringify(rel)}: relative to the domain's home, segments of A-Z a-z 0-9 _ . : @ -`);
  }
}

/**
 * Undoes xenstore-read's escaping (xs_sanitise_value: printable ASCII as is,
 * \\ \t \n \r, \xHH, and octal \ooo for small codes), giving the bytes back as
 * UTF-8 text. One value per line is what makes reading many keys in one
 * process possible: no value can break the framing.
 */
export function unsanitise(line: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 0x5c || i + 1 >= line.length) {
      bytes.push(...Buffer.from(line[i]!, 'utf8'));
      continue;
    }
    const n = line[i + 1]!;
    const simple: Record<string, number> = { '\\': 0x5c, t: 0x09, n: 0x0a, r: 0x0d };
    if (n in simple) {
      bytes.push(simple[n]!);
      i++;
    } else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
      bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      const m = /^[0-7]{1,3}/.exec(line.slice(i + 1));
      if (m) {
        bytes.push(parseInt(m[0], 8) & 0xff);
        i += m[0].length;
      } else {
        bytes.push(0x5c);
      }
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses the output of dom0-scripts/read-many.sh: each frame "values" holds
 * one escaped line per key still to read, in order, up to the key named by a
 * following frame "absent KEY" (the read resumes after it), or all of them
 * when "end" follows. A key never read is null.
 */
export function parseReadMany(stdout: string, marker: string, keys: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = Object.fromEntries(keys.map((k) => [k, null]));
  let pending = [...keys];
  for (const f of frames(stdout, marker)) {
    if (f.word === 'values')
      f.lines.forEach((line, i) => {
        if (i < pending.length) out[pending[i]!] = unsanitise(line);
      });
    else if (f.word === 'absent') pending = pending.slice(pending.indexOf(f.text) + 1);
    else if (f.word === 'end') break;
  }
  return out;
}

/**
 * The output of dom0-scripts/xenstored-domains.sh: every domain xenstored
 * holds a home for (/local/domain/D), with the name in it (null: none, or
 * the home went while it was read).
 */
export function parseXenstoredDomains(stdout: string, marker: string): XenstoredDomain[] {
  const fs = frames(stdout, marker);
  const list = fs.find((f) => f.word === 'list');
  if (!list) throw new Error('xenstored-domains.sh printed no list');
  const ids = list.text.split(' ').filter((w) => w !== '');
  if (ids.some((w) => !/^\d+$/.test(w))) throw new Error(`xenstore-list /local/domain gave a name that is no domid: ${JSON.stringify(list.text)}`);
  const names = new Map<string, string | null>(ids.map((d) => [d, null]));
  for (const f of fs) {
    if (f.word !== 'names') continue;
    const run = f.text.split(' ');
    f.lines.forEach((line, i) => {
      if (i < run.length) names.set(run[i]!, unsanitise(line));
    });
  }
  return ids.map((d) => ({ domid: Number(d), name: names.get(d) ?? null }));
}

/** The dom0 time write-clock.sh wrote (its "clock MS" frame); an error naming `call` without one. */
export function clockFrame(call: string, stdout: string, marker: string): number {
  const ms = Number(lastFrame(stdout, marker, 'clock'));
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error(`${call}: dom0 did not say which time it wrote`);
  return ms;
}
