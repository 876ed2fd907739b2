// The config file format of xapi and xenopsd (/etc/xapi.conf,
// /etc/xenopsd.conf, their .conf.d directories), as xcp-idl's Config_file
// reads it (ocaml/xapi-idl/lib/xcp_service.ml; the same reader in
// xapi-project/xcp-idl v1.96.0 on the 1.249 line): everything from `#` on is
// a comment, trailing blanks go, the first `KEY = VALUE` on the line counts
// (KEY: no blank, no `=`), one pair of matching quotes around VALUE goes.
// Shared by the XenAPI test double (which takes its timeouts from these
// files, as xenopsd does) and the harness (which reads a host's timeouts
// there). Pure functions.

/** The settings of one file, last line winning (Config_file.parse applies each line in turn). */
export function parseXcpConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const stripped = line.replace(/#.*$/, '').replace(/[ \t]+$/, '');
    const m = /([^= \t]+)[ \t]*=[ \t]*(.*)/.exec(stripped);
    if (!m) continue;
    let value = m[2]!;
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0]) value = value.slice(1, -1);
    out.set(m[1]!, value);
  }
  return out;
}

/**
 * OCaml's float_of_string for the decimal forms (digits with `_`, a fraction, an exponent);
 * null for anything else. (OCaml also takes hexadecimal floats, nan and inf: no timeout of
 * a test host needs them, and they are refused here.)
 */
export function floatOfString(v: string): number | null {
  if (!/^[-+]?(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][-+]?\d[\d_]*)?$/.test(v)) return null;
  return Number(v.replace(/_/g, ''));
}
