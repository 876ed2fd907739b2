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

/** One line, printable: for TAP lines and terminal tables. */
export function oneLine(s: string, max = 200): string {
  const flat = s
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001F\u007F]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
