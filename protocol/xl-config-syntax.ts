// String values in xl's config syntax, for every writer of an xl config: the
// harness's xl driver (harness/toolstack/xl/xl-config.ts) and the XenAPI
// double in dom0 (dom0/xapi-double/src/xl-hypervisor.ts). Pure.

/**
 * The escapes xl's config reader turns back into the same byte (tools/libs/util/libxlu_cfg.c
 * xlu__cfgl_dequote: \\ \" \' \a \b \f \n \r \t \v). Its numeric escapes (\xHH, \ooo) are not
 * used: the hex one wants more digits than it reads and the octal one parses in base 10.
 */
const XL_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

/** Control characters xl's config syntax cannot spell (NUL, 0x01-0x06, 0x0e-0x1f, DEL): no escape above reads back as them. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
export const XL_UNQUOTABLE = /[\x00-\x06\x0e-\x1f\x7f]/;

/**
 * A string value in xl's config syntax: quoted, with every character that could end the string or
 * the line (a quote, a backslash, a newline or another control character) escaped, so that no value
 * can add a line or a setting to the config. The control characters xl cannot spell are refused.
 */
export function quoteXlString(value: string): string {
  if (XL_UNQUOTABLE.test(value)) throw new Error(`value ${JSON.stringify(value)} holds a control character xl's config syntax cannot carry`);
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is escaped
  return `"${value.replace(/[\\"\x07\b\f\n\r\t\v]/g, (c) => XL_ESCAPES[c]!)}"`;
}
