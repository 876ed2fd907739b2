// JSON-RPC as XAPI speaks it on /jsonrpc, I/O-free. Version 2.0 requests get
// {jsonrpc, result | error: {code, message: CODE, data: params}, id}; version 1.0
// requests (no "jsonrpc" member) get {result, error, id} with the error as
// [CODE, ...params], as old XAPI did. The xen-api client reads both.
import { ApiError, errors } from './errors.ts';
import type { RpcCall } from './xmlrpc.ts';
import type { XapiValue } from './values.ts';

export interface JsonRpcCall extends RpcCall {
  id: string | number | null;
  version: '1.0' | '2.0';
}

/** Parses a request body. Throws ApiError on malformed input; `id`/`version` are then best effort for the answer. */
export function parseJsonRpcCall(body: string): JsonRpcCall {
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch (err) {
    throw Object.assign(errors.unmarshal(`not JSON: ${err instanceof Error ? err.message : String(err)}`), { jsonRpcCode: -32700 });
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw Object.assign(errors.unmarshal('a JSON-RPC request is an object'), { jsonRpcCode: -32600 });
  }
  const m = msg as Record<string, unknown>;
  const version = m.jsonrpc === undefined ? '1.0' : m.jsonrpc === '2.0' ? '2.0' : null;
  const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  if (version === null) throw Object.assign(errors.unmarshal('jsonrpc must be "2.0" or absent'), { jsonRpcCode: -32600, id });
  if (typeof m.method !== 'string' || m.method === '') {
    throw Object.assign(errors.unmarshal('missing method'), { jsonRpcCode: -32600, id, version });
  }
  let params: unknown[];
  if (m.params === undefined) params = [];
  else if (Array.isArray(m.params)) params = m.params;
  else throw Object.assign(errors.unmarshal('params must be an array'), { jsonRpcCode: -32602, id, version });
  return { method: m.method, params, id, version };
}

/** XAPI's JSON-RPC error code for API errors. */
const API_ERROR_CODE = 1;

export function formatJsonRpcResponse(
  call: { id: string | number | null; version: '1.0' | '2.0' },
  outcome: { ok: true; value: XapiValue } | { ok: false; error: ApiError; jsonRpcCode?: number },
): string {
  if (call.version === '1.0') {
    return JSON.stringify(
      outcome.ok ? { result: outcome.value, error: null, id: call.id } : { result: null, error: [outcome.error.code, ...outcome.error.params], id: call.id },
    );
  }
  return JSON.stringify(
    outcome.ok
      ? { jsonrpc: '2.0', result: outcome.value, id: call.id }
      : { jsonrpc: '2.0', error: { code: outcome.jsonRpcCode ?? API_ERROR_CODE, message: outcome.error.code, data: outcome.error.params }, id: call.id },
  );
}
