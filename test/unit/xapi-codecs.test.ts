// The endpoint's XML-RPC and JSON-RPC codecs: XAPI's shapes, golden text, and
// the xen-api client's own XML parser reading what we write.
import test from 'tape';
import { parseXml } from '@vates/xml/parse';
import { xmlRpcParser } from '@vates/xml-rpc/parser';
import { ApiError } from '../../dom0/xapi-double/src/errors.ts';
import { formatJsonRpcResponse, parseJsonRpcCall } from '../../dom0/xapi-double/src/jsonrpc.ts';
import { XapiDate } from '../../dom0/xapi-double/src/values.ts';
import { formatXmlRpcCall, formatXmlRpcResponse, formatXmlValue, parseXmlRpcCall } from '../../dom0/xapi-double/src/xmlrpc.ts';

async function unmarshalError(body: string): Promise<string> {
  try {
    await parseXmlRpcCall(body);
    return 'parsed';
  } catch (err) {
    return err instanceof ApiError ? err.code : `threw ${String(err)}`;
  }
}

test('XML-RPC: a call with every value type parses', async (t) => {
  const body = `<?xml version="1.0"?>
<methodCall>
  <methodName>VM.create</methodName>
  <params>
    <param><value><string>OpaqueRef:s</string></value></param>
    <param><value>plain</value></param>
    <param><value><int>42</int></value></param>
    <param><value><i4>-7</i4></value></param>
    <param><value><double>60.1</double></value></param>
    <param><value><boolean>1</boolean></value></param>
    <param><value><array><data><value>a</value><value><i4>2</i4></value></data></array></value></param>
    <param><value><struct><member><name>k</name><value>v</value></member><member><name>n</name><value><struct></struct></value></member></struct></value></param>
    <param><value/></param>
    <param><value><array><data/></array></value></param>
    <param><value><string>&lt;x&gt; &amp; y</string></value></param>
  </params>
</methodCall>`;
  const call = await parseXmlRpcCall(body);
  t.equal(call.method, 'VM.create');
  t.deepEqual(call.params, ['OpaqueRef:s', 'plain', 42, -7, 60.1, true, ['a', 2], { k: 'v', n: {} }, '', [], '<x> & y']);
});

test('XML-RPC: malformed documents are one XMLRPC_UNMARSHAL_FAILURE each', async (t) => {
  const cases = [
    '',
    'not xml',
    '<methodCall>',
    '<methodCall></methodCall>',
    '<foo/>',
    '<methodCall><methodName></methodName></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><int>abc</int></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><weird>1</weird></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><int>1</int><string>2</string></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><struct><member><value>v</value></member></struct></value></param></params></methodCall>',
    `<methodCall><methodName>x</methodName><params><param>${'<value><array><data>'.repeat(100)}${'</data></array></value>'.repeat(100)}</param></params></methodCall>`,
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><methodCall><methodName>&b;</methodName></methodCall>',
  ];
  for (const c of cases) t.equal(await unmarshalError(c), 'XMLRPC_UNMARSHAL_FAILURE', JSON.stringify(c.slice(0, 60)));
});

test('XML-RPC: responses are XAPI structs with no whitespace, read back by the xen-api client parser', (t) => {
  const ok = formatXmlRpcResponse({ ok: true, value: { a: 'x<y', n: 5, f: 1.5, b: true, l: ['p', 'q'], e: {} } });
  t.equal(
    ok,
    '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct><member><name>a</name><value>x&lt;y</value></member><member><name>n</name><value>5</value></member><member><name>f</name><value><double>1.5</double></value></member><member><name>b</name><value><boolean>1</boolean></value></member><member><name>l</name><value><array><data><value>p</value><value>q</value></data></array></value></member><member><name>e</name><value><struct></struct></value></member></struct></value></member></struct></value></param></params></methodResponse>',
  );
  const parsed = xmlRpcParser.parse(parseXml(ok, { normalize: false, trim: false })) as { params: [Record<string, unknown>] };
  t.deepEqual(
    parsed.params[0],
    { Status: 'Success', Value: { a: 'x<y', n: '5', f: 1.5, b: true, l: ['p', 'q'], e: {} } },
    'ints are int64 strings, as in XAPI',
  );
  const fail = formatXmlRpcResponse({ ok: false, error: new ApiError('HANDLE_INVALID', ['VM', 'OpaqueRef:x']) });
  const f = xmlRpcParser.parse(parseXml(fail, { normalize: false, trim: false })) as { params: [Record<string, unknown>] };
  t.deepEqual(f.params[0], { Status: 'Failure', ErrorDescription: ['HANDLE_INVALID', 'VM', 'OpaqueRef:x'] });
  t.end();
});

test('XML-RPC: a task result value reads back the way the client reads task results', (t) => {
  const v = formatXmlValue('OpaqueRef:abc');
  t.equal(xmlRpcParser.parse_value(parseXml(`${v}\n`, { normalize: false, trim: false })), 'OpaqueRef:abc');
  t.equal(formatXmlValue(new XapiDate(new Date(Date.UTC(2026, 10, 23, 9, 5, 7)))), '<value><dateTime.iso8601>20261123T09:05:07Z</dateTime.iso8601></value>');
  t.end();
});

test('XML-RPC: what we format as a call, we parse back', async (t) => {
  const body = formatXmlRpcCall('event.from', ['OpaqueRef:s', ['VM', 'pool'], '00000000000000000001', 60.1]);
  t.deepEqual(await parseXmlRpcCall(body), { method: 'event.from', params: ['OpaqueRef:s', ['VM', 'pool'], '00000000000000000001', 60.1] });
});

test('JSON-RPC: 2.0 and 1.0 requests, results and errors in XAPI form', (t) => {
  const c2 = parseJsonRpcCall('{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","x"],"id":0}');
  t.deepEqual({ ...c2 }, { method: 'session.login_with_password', params: ['root', 'x'], id: 0, version: '2.0' });
  t.equal(formatJsonRpcResponse(c2, { ok: true, value: 'OpaqueRef:s' }), '{"jsonrpc":"2.0","result":"OpaqueRef:s","id":0}');
  t.equal(
    formatJsonRpcResponse(c2, { ok: false, error: new ApiError('SESSION_AUTHENTICATION_FAILED', ['root', 'Authentication failure']) }),
    '{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_AUTHENTICATION_FAILED","data":["root","Authentication failure"]},"id":0}',
  );
  const c1 = parseJsonRpcCall('{"method":"VM.get_all","params":["s"],"id":"a"}');
  t.equal(c1.version, '1.0');
  t.equal(formatJsonRpcResponse(c1, { ok: false, error: new ApiError('X', ['p']) }), '{"result":null,"error":["X","p"],"id":"a"}');
  t.equal(formatJsonRpcResponse(c1, { ok: true, value: { d: new XapiDate(new Date(0)) } }), '{"result":{"d":"19700101T00:00:00Z"},"error":null,"id":"a"}');
  for (const bad of [
    '',
    '{',
    '[]',
    'null',
    '"x"',
    '{"jsonrpc":"1.5","method":"a","id":1}',
    '{"jsonrpc":"2.0","id":1}',
    '{"jsonrpc":"2.0","method":"a","params":{},"id":1}',
  ]) {
    t.throws(
      () => parseJsonRpcCall(bad),
      (e: unknown) => e instanceof ApiError && e.code === 'XMLRPC_UNMARSHAL_FAILURE',
      JSON.stringify(bad),
    );
  }
  t.end();
});
