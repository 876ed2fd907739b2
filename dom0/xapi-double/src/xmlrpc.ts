// XML-RPC as XAPI speaks it (ocaml/doc/wire-protocol.md), I/O-free.
//
// Requests are parsed with xml2js into its generic tree and then converted by
// hand, checking every shape, so that any malformed body becomes one
// XMLRPC_UNMARSHAL_FAILURE and never a crash. Responses are XAPI's struct
// {Status: "Success", Value} or {Status: "Failure", ErrorDescription: [code,
// ...params]}, written without any whitespace between elements: the xen-api
// client parses with trim off and would read whitespace as a value.
import { Parser } from 'xml2js';
import { ApiError, errors } from './errors.ts';
import { XapiDate, type XapiValue } from './values.ts';

export interface RpcCall {
  method: string;
  params: unknown[];
}

/** Deepest nesting of values accepted (XAPI's own types nest a few levels at most). */
const MAX_DEPTH = 32;

type Node = unknown;

function isObject(n: Node): n is Record<string, unknown> {
  return typeof n === 'object' && n !== null && !Array.isArray(n);
}

/** The text of an element as xml2js gives it: a string, or {_: text, $: attrs}. */
function textOf(n: Node, what: string): string {
  if (typeof n === 'string') return n;
  if (isObject(n)) {
    const keys = Object.keys(n).filter((k) => k !== '$');
    if (keys.length === 0) return '';
    if (keys.length === 1 && keys[0] === '_' && typeof n._ === 'string') return n._;
  }
  throw errors.unmarshal(`${what}: expected text`);
}

function onlyChild(n: Node, name: string, what: string): Node {
  if (!isObject(n)) throw errors.unmarshal(`${what}: expected <${name}>`);
  const v = n[name];
  if (!Array.isArray(v) || v.length !== 1) throw errors.unmarshal(`${what}: expected one <${name}>`);
  return v[0];
}

function children(n: Node, name: string): Node[] {
  if (!isObject(n)) return [];
  const v = n[name];
  return Array.isArray(v) ? v : [];
}

/** Converts an xml2js <value> node to a JS value. */
export function valueFromXml(n: Node, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw errors.unmarshal('values nested too deeply');
  if (typeof n === 'string') return n; // <value>text</value>: a string
  if (!isObject(n)) throw errors.unmarshal('bad <value>');
  const keys = Object.keys(n).filter((k) => k !== '$');
  if (keys.length === 0) return '';
  if (keys.length === 1 && keys[0] === '_') return textOf(n, 'value');
  const typed = keys.filter((k) => k !== '_');
  if (typed.length !== 1) throw errors.unmarshal(`<value> must hold one type, found ${typed.map((k) => `<${k}>`).join(', ')}`);
  const type = typed[0]!;
  const inner = n[type];
  if (!Array.isArray(inner) || inner.length !== 1) throw errors.unmarshal(`<value> must hold one <${type}>`);
  const body = inner[0];
  switch (type) {
    case 'string':
      return textOf(body, 'string');
    case 'int':
    case 'i4':
    case 'i8': {
      const t = textOf(body, type).trim();
      if (!/^[-+]?\d{1,18}$/.test(t)) throw errors.unmarshal(`bad <${type}> ${JSON.stringify(t.slice(0, 40))}`);
      return Number(t);
    }
    case 'double': {
      const t = textOf(body, 'double').trim();
      const v = Number(t);
      if (t === '' || !Number.isFinite(v)) throw errors.unmarshal(`bad <double> ${JSON.stringify(t.slice(0, 40))}`);
      return v;
    }
    case 'boolean': {
      const t = textOf(body, 'boolean').trim();
      if (t !== '0' && t !== '1') throw errors.unmarshal(`bad <boolean> ${JSON.stringify(t.slice(0, 40))}`);
      return t === '1';
    }
    case 'dateTime.iso8601':
      return textOf(body, 'dateTime.iso8601');
    case 'base64':
      return Buffer.from(textOf(body, 'base64'), 'base64').toString('utf8');
    case 'nil':
      return null;
    case 'array': {
      const data = onlyChild(body, 'data', 'array');
      if (typeof data === 'string' && data.trim() === '') return [];
      return children(data, 'value').map((v) => valueFromXml(v, depth + 1));
    }
    case 'struct': {
      const out: Record<string, unknown> = {};
      if (typeof body === 'string' && body.trim() === '') return out;
      for (const m of children(body, 'member')) {
        const name = textOf(onlyChild(m, 'name', 'member'), 'member name');
        const value = onlyChild(m, 'value', `member ${name}`);
        if (name === '__proto__') continue;
        out[name] = valueFromXml(value, depth + 1);
      }
      return out;
    }
    default:
      throw errors.unmarshal(`unknown XML-RPC type <${type}>`);
  }
}

/** Parses a <methodCall> body. Throws ApiError(XMLRPC_UNMARSHAL_FAILURE) on anything malformed. */
export async function parseXmlRpcCall(body: string): Promise<RpcCall> {
  let tree: unknown;
  try {
    // A fresh parser per call: xml2js parsers keep state. No entity
    // expansion beyond XML's five, no external entities (sax does neither).
    tree = await new Parser({ explicitArray: true, trim: false, async: false, strict: true }).parseStringPromise(body);
  } catch (err) {
    throw errors.unmarshal(`not well-formed XML: ${String(err instanceof Error ? err.message : err).split('\n')[0]}`);
  }
  if (!isObject(tree) || !('methodCall' in tree)) throw errors.unmarshal('expected <methodCall>');
  const call = tree.methodCall;
  const methodName = textOf(onlyChild(call, 'methodName', 'methodCall'), 'methodName').trim();
  if (methodName === '') throw errors.unmarshal('empty <methodName>');
  const params: unknown[] = [];
  const paramsNodes = isObject(call) ? call.params : undefined;
  if (paramsNodes !== undefined) {
    if (!Array.isArray(paramsNodes) || paramsNodes.length !== 1) throw errors.unmarshal('expected one <params>');
    const p = paramsNodes[0];
    if (!(typeof p === 'string' && p.trim() === '')) {
      for (const param of children(p, 'param')) params.push(valueFromXml(onlyChild(param, 'value', 'param')));
    }
  }
  return { method: methodName, params };
}

function escapeXml(s: string): string {
  // XML 1.0 cannot carry most control characters at all; drop them rather than emit invalid XML.
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
  );
}

/** One <value> element, XAPI style: strings and ints as plain text (ints are int64 strings). */
export function formatXmlValue(v: XapiValue | null | undefined): string {
  if (v === null || v === undefined) return '<value></value>';
  if (typeof v === 'string') return `<value>${escapeXml(v)}</value>`;
  if (typeof v === 'number') {
    return Number.isInteger(v) ? `<value>${v}</value>` : `<value><double>${v}</double></value>`;
  }
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (v instanceof XapiDate) return `<value><dateTime.iso8601>${v.toXapiString()}</dateTime.iso8601></value>`;
  if (Array.isArray(v)) return `<value><array><data>${v.map(formatXmlValue).join('')}</data></array></value>`;
  const members = Object.entries(v)
    .map(([k, x]) => `<member><name>${escapeXml(k)}</name>${formatXmlValue(x)}</member>`)
    .join('');
  return `<value><struct>${members}</struct></value>`;
}

/** A whole response document: XAPI's Success/Failure struct. */
export function formatXmlRpcResponse(outcome: { ok: true; value: XapiValue } | { ok: false; error: ApiError }): string {
  const struct: Record<string, XapiValue> = outcome.ok
    ? { Status: 'Success', Value: outcome.value }
    : { Status: 'Failure', ErrorDescription: [outcome.error.code, ...outcome.error.params] };
  return `<?xml version="1.0"?><methodResponse><params><param>${formatXmlValue(struct)}</param></params></methodResponse>`;
}

/** A <methodCall> document (for tests and the harness's own probes). */
export function formatXmlRpcCall(method: string, params: XapiValue[]): string {
  return `<?xml version="1.0"?><methodCall><methodName>${escapeXml(method)}</methodName><params>${params.map((p) => `<param>${formatXmlValue(p)}</param>`).join('')}</params></methodCall>`;
}

export { ApiError };
