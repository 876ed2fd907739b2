// HTTP(S) front of the endpoint: JSON-RPC on /jsonrpc, XML-RPC on / (and on
// any other POST path, as XAPI does; the xen-api client posts to /xmlrpc).
// Bodies are bounded; every failure to parse becomes an API error in the
// request's own protocol; nothing a client sends can throw out of here.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { XenApi } from './api.ts';
import { ApiError, toApiError } from './errors.ts';
import { formatJsonRpcResponse, parseJsonRpcCall } from './jsonrpc.ts';
import { formatXmlRpcResponse, parseXmlRpcCall } from './xmlrpc.ts';

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpOptions {
  /** Called once per request with method name and outcome (never the parameters: they can hold the password). */
  onCall?: (line: string) => void;
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooBig ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(null));
  });
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The request handler shared by the HTTP and HTTPS servers. */
export function makeHandler(api: XenApi, opts: HttpOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const log = opts.onCall ?? (() => {});
  return (req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'GET') {
        send(res, 200, 'text/plain', 'xtv XAPI test double: JSON-RPC on POST /jsonrpc, XML-RPC on POST /\n');
        return;
      }
      if (req.method !== 'POST') {
        send(res, 405, 'text/plain', 'POST only\n');
        return;
      }
      const body = await readBody(req);
      const json = path === '/jsonrpc' || (req.headers['content-type'] ?? '').startsWith('application/json');
      const t0 = Date.now();
      if (json) {
        let call: ReturnType<typeof parseJsonRpcCall> | null = null;
        try {
          if (body === null) throw new ApiError('XMLRPC_UNMARSHAL_FAILURE', [`request larger than ${MAX_BODY_BYTES} bytes`]);
          call = parseJsonRpcCall(body);
          const value = await api.call(call.method, call.params);
          send(res, 200, 'application/json', formatJsonRpcResponse(call, { ok: true, value }));
          log(`json ${call.method} ok ${Date.now() - t0} ms`);
        } catch (err) {
          const e = toApiError(err);
          const extra = err as { jsonRpcCode?: number; id?: string | number | null; version?: '1.0' | '2.0' };
          const head = call ?? { id: extra.id ?? null, version: extra.version ?? '2.0' };
          send(
            res,
            200,
            'application/json',
            formatJsonRpcResponse(head, { ok: false, error: e, ...(extra.jsonRpcCode !== undefined ? { jsonRpcCode: extra.jsonRpcCode } : {}) }),
          );
          log(`json ${call?.method ?? '(unparsed)'} ${e.code} ${Date.now() - t0} ms`);
        }
        return;
      }
      let method = '(unparsed)';
      try {
        if (body === null) throw new ApiError('XMLRPC_UNMARSHAL_FAILURE', [`request larger than ${MAX_BODY_BYTES} bytes`]);
        const call = await parseXmlRpcCall(body);
        method = call.method;
        const value = await api.call(call.method, call.params);
        send(res, 200, 'text/xml', formatXmlRpcResponse({ ok: true, value }));
        log(`xml ${method} ok ${Date.now() - t0} ms`);
      } catch (err) {
        const e = toApiError(err);
        send(res, 200, 'text/xml', formatXmlRpcResponse({ ok: false, error: e }));
        log(`xml ${method} ${e.code} ${Date.now() - t0} ms`);
      }
    })().catch(() => {
      // Only a bug in the code above gets here; answer something rather than hang.
      send(res, 500, 'text/plain', 'internal error\n');
    });
  };
}

function tune(server: Server): Server {
  // event.from waits up to its timeout (the client asks for 60 s); leave room.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

export function createHttp(api: XenApi, opts: HttpOptions = {}): Server {
  return tune(createHttpServer(makeHandler(api, opts)));
}

export function createHttps(api: XenApi, tls: { key: string | Buffer; cert: string | Buffer }, opts: HttpOptions = {}): Server {
  return tune(createHttpsServer({ key: tls.key, cert: tls.cert }, makeHandler(api, opts)));
}

/** Listens and resolves with the bound port (0 picks a free one). */
export function listen(server: Server, port: number, host = '0.0.0.0'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}
