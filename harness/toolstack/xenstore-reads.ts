// Reading a guest's xenstore nodes from dom0's shell, for both drivers: the
// paths they accept, and many keys in one xenstore-read process (processes
// are what costs in an emulated dom0), its escaped output decoded.

/** xenstore paths the drivers accept: relative to the domain's home, plain segments, no "..". */
const REL_PATH = /^[A-Za-z0-9_.:@-]+(\/[A-Za-z0-9_.:@-]+)*$/;

export function checkRelPath(rel: string): void {
  if (!REL_PATH.test(rel) || rel.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`bad xenstore path ${JSON.stringify(rel)}: relative to the domain's home, segments of A-Z a-z 0-9 _ . : @ -`);
  }
}

/**
 * The shell lines that read `keys` (checked with checkRelPath: they go in
 * unquoted) under /local/domain/$d, as few xenstore-read runs as the absent
 * keys allow: each run prints MARKER, then one escaped value per line, and
 * "MARKER end", or "MARKER absent KEY" where it stopped; the next run starts
 * after KEY. `retry`: when `retry.key` is the one absent, run `retry.once`
 * (which may set $d anew) and read again, once.
 */
export function readManyLoop(marker: string, keys: readonly string[], retry?: { key: string; once: string }): string[] {
  keys.forEach(checkRelPath);
  return [
    `xtv_retry=${retry ? 1 : ''}`,
    `set -- ${keys.join(' ')}`,
    'while [ $# -gt 0 ]; do',
    '  p=; for k in "$@"; do p="$p /local/domain/$d/$k"; done',
    `  echo ${marker}`,
    // xenstore-read stops at the first key it cannot read and names it on stderr.
    '  { err=$(xenstore-read $p 2>&1 >&3); } 3>&1',
    `  [ $? -eq 0 ] && { echo "${marker} end"; break; }`,
    '  bad=${err##*/local/domain/$d/}',
    ...(retry ? [`  if [ "$xtv_retry" ] && [ "$bad" = ${retry.key} ]; then xtv_retry=; ${retry.once}; continue; fi`] : []),
    `  echo "${marker} absent $bad"`,
    '  while [ $# -gt 0 ]; do k=$1; shift; [ "$k" = "$bad" ] && break; done',
    'done',
  ];
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
 * Parses the output of readManyScript: after each line MARKER come the
 * values (one escaped line each) of the keys still to read, in order, then
 * "MARKER end", or "MARKER absent KEY" when xenstore-read stopped at KEY.
 */
export function parseReadMany(stdout: string, marker: string, keys: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = Object.fromEntries(keys.map((k) => [k, null]));
  let remaining = [...keys];
  let inBlock = false;
  for (const line of stdout.split('\n')) {
    if (line === marker) {
      inBlock = true;
      continue;
    }
    if (!inBlock) continue;
    if (line === `${marker} end`) break;
    if (line.startsWith(`${marker} absent `)) {
      const bad = line.slice(`${marker} absent `.length);
      const at = remaining.indexOf(bad);
      remaining = at >= 0 ? remaining.slice(at + 1) : [];
      inBlock = false;
      continue;
    }
    const key = remaining.shift();
    if (key !== undefined) out[key] = unsanitise(line);
  }
  return out;
}
