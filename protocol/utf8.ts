// UTF-8 for code that must also run under QuickJS, which has no TextEncoder or
// TextDecoder. Both functions give exactly what the WHATWG Encoding standard
// gives (Node's TextEncoder / TextDecoder with fatal: false), so a value read
// from xenstore decodes the same in the guest and in the harness.

/** UTF-8 bytes of a JS string. Lone surrogates become U+FFFD (EF BF BD). */
export function encodeUtf8(text: string): Uint8Array {
  // Worst case is 3 bytes per UTF-16 code unit (a surrogate pair is 2 units -> 4 bytes).
  const out = new Uint8Array(text.length * 3);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      out[n++] = cp;
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
      const lo = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      } else cp = 0xfffd;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x800) {
      out[n++] = 0xc0 | (cp >> 6);
      out[n++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      out[n++] = 0xe0 | (cp >> 12);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
    } else {
      out[n++] = 0xf0 | (cp >> 18);
      out[n++] = 0x80 | ((cp >> 12) & 0x3f);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
    }
  }
  return out.slice(0, n);
}

/**
 * Text of UTF-8 bytes. Never throws: each maximal invalid subsequence becomes
 * one U+FFFD, as the WHATWG decoder does (overlong forms, surrogates, code
 * points above U+10FFFF, stray continuation bytes, truncated sequences).
 */
export function decodeUtf8(bytes: Uint8Array): string {
  const units: number[] = [];
  let text = '';
  const flush = (): void => {
    // String.fromCharCode.apply has an argument-count limit; flush in chunks.
    text += String.fromCharCode.apply(null, units);
    units.length = 0;
  };
  const emit = (cp: number): void => {
    if (cp < 0x10000) units.push(cp);
    else {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    }
    if (units.length >= 4096) flush();
  };

  let needed = 0; // continuation bytes still expected
  let seen = 0;
  let cp = 0;
  let lower = 0x80; // allowed range of the next continuation byte
  let upper = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (needed === 0) {
      if (b <= 0x7f) emit(b);
      else if (b >= 0xc2 && b <= 0xdf) {
        needed = 1;
        cp = b & 0x1f;
      } else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) lower = 0xa0; // overlong
        if (b === 0xed) upper = 0x9f; // surrogates
        needed = 2;
        cp = b & 0x0f;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) lower = 0x90; // overlong
        if (b === 0xf4) upper = 0x8f; // above U+10FFFF
        needed = 3;
        cp = b & 0x07;
      } else emit(0xfffd);
      continue;
    }
    if (b < lower || b > upper) {
      // The sequence so far is one error; the offending byte starts afresh.
      needed = seen = cp = 0;
      lower = 0x80;
      upper = 0xbf;
      emit(0xfffd);
      i--;
      continue;
    }
    lower = 0x80;
    upper = 0xbf;
    cp = (cp << 6) | (b & 0x3f);
    if (++seen === needed) {
      emit(cp);
      needed = seen = cp = 0;
    }
  }
  if (needed !== 0) emit(0xfffd);
  flush();
  return text;
}
