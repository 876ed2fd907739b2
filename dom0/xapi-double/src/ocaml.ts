// How OCaml prints the values that reach XAPI's error parameters: xapi and
// xenopsd build several of them with the OCaml standard library
// (string_of_float, Printexc.to_string), and a client sees those strings.
// Pure functions.

/** OCaml's `string_of_float` (stdlib.ml: valid_float_lexem (sprintf "%.12g" f)): 1200 → "1200.", 0.5 → "0.5". */
export function stringOfFloat(f: number): string {
  if (Number.isNaN(f)) return 'nan';
  if (!Number.isFinite(f)) return f > 0 ? 'inf' : '-inf';
  const s = formatG12(f);
  // valid_float_lexem: a lexeme of digits (and a sign) only gets a trailing dot.
  return /^-?\d+$/.test(s) ? `${s}.` : s;
}

/** C's %.12g. */
function formatG12(f: number): string {
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const [mantissa, expText] = f.toExponential(11).split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 12) {
    const m = mantissa!.includes('.') ? mantissa!.replace(/0+$/, '').replace(/\.$/, '') : mantissa!;
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const fixed = f.toFixed(Math.max(0, 11 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/** A string as OCaml's `%S` writes it (Bytes.escaped: printable ASCII kept, the rest as \ddd). */
export function ocamlStringLiteral(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    switch (b) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x09:
        out += '\\t';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x08:
        out += '\\b';
        break;
      default:
        out += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`;
    }
  }
  return `${out}"`;
}

/** `Printexc.to_string` of an exception with one string argument, e.g. Failure("x"). */
export function printedException(constructor: string, arg: string): string {
  return `${constructor}(${ocamlStringLiteral(arg)})`;
}

/** The errno names Unix.Unix_error prints (unix.ml's printer) for the codes Node reports. */
export function printedUnixError(code: string, call: string, arg: string): string {
  return `Unix.Unix_error(Unix.${code}, ${ocamlStringLiteral(call)}, ${ocamlStringLiteral(arg)})`;
}
