// Escaping for every output format. Case data carries hostile strings (guest
// messages, console lines, toolstack errors), so nothing is written unescaped.

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** XML 1.0 cannot carry most control characters even escaped: they become U+FFFD. */
export function escapeXml(s: string): string {
  return escapeHtml(
    // eslint-disable-next-line no-control-regex
    s.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'),
  );
}

/**
 * What a terminal may act on rather than show: C0 controls, DEL, the C1
 * controls U+0080-U+009F (U+009B is a CSI on its own), the bidirectional
 * overrides and isolates (which reorder what follows), and the line and
 * paragraph separators.
 */
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;

/**
 * A value as JSON that is also safe on a terminal: JSON.stringify escapes C0
 * but leaves C1 and the bidirectional controls as they are; these become
 * \uXXXX too. For guest-written values the CLI prints (xtv send, xtv watch).
 */
export function jsonForTerminal(value: unknown): string {
  return JSON.stringify(value).replace(TERMINAL_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Many lines of a guest's text (its console) for a terminal: newlines and
 * tabs kept, carriage returns dropped, every other control shown as \xHH or
 * \uXXXX instead of acted on.
 */
export function textForTerminal(s: string): string {
  return s
    .replace(/\r/g, '')
    .replace(TERMINAL_CONTROLS, (c) =>
      c === '\n' || c === '\t'
        ? c
        : c.charCodeAt(0) < 0x100
          ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
          : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
}

/** One line, printable: for TAP lines and terminal tables. */
export function oneLine(s: string, max = 200): string {
  const flat = s.replace(TERMINAL_CONTROLS, ' ').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
