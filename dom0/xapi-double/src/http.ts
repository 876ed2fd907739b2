// HTTP(S) front of the endpoint: JSON-RPC on /jsonrpc, XML-RPC on / (and on
// any other POST path, as XAPI does; the xen-api client posts to /xmlrpc).
// Every failure to parse becomes an API error in the request's own protocol;
// nothing a client sends can throw out of here. What a client may hold is
// bounded (HttpLimits): the body's size, the number of connections, and the
// time the request (headers and body) may take to arrive. A call's own run
// time is not bounded here: event.from waits up to its timeout and
// VM.clean_shutdown up to XAPI's 1200 s, after the body has arrived.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { XenApi } from './api.ts';
import { toApiError } from './errors.ts';
import { formatJsonRpcResponse, parseJsonRpcCall } from './jsonrpc.ts';
import { formatXmlRpcResponse, parseXmlRpcCall } from './xmlrpc.ts';

export interface HttpLimits {
  /**
   * Largest request body (bytes); default 4 MiB. A larger one is answered 413 and the connection
   * closed as soon as it is known: at once from Content-Length, else when the bytes read cross it,
   * without reading the rest. (XAPI: api_server.ml callback reads with
   * `Http_svr.read_body ~limit:Constants.http_limit_max_rpc_size`, 300 KiB, checked against
   * Content-Length before reading; it answers an HTTP 500 and closes.)
   */
  maxBodyBytes: number;
  /**
   * Connections open at once, per server (HTTP and HTTPS each); default 64. One more is closed at
   * once, unanswered (net.Server maxConnections). (XAPI: Http_svr.start ~conn_limit,
   * xapi_globs.ml conn_limit_tcp = 800, which makes the extra ones wait instead.)
   */
  maxConnections: number;
  /**
   * Time a request may take to arrive, headers and body, from the connection or the end of the
   * previous response (ms); default 60 s. A slower one is answered 408 and closed. It does not
   * bound the call itself: once the body is in, event.from and the power operations wait as long
   * as they must. (XAPI: xapi_globs.ml header_total_timeout_tcp = 60 s for the headers;
   * Http_svr.read_request answers 408.) TLS handshakes get the same time.
   */
  requestTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { maxBodyBytes: 4 * 1024 * 1024, maxConnections: 64, requestTimeoutMs: 60_000 };

export interface HttpOptions {
  /** Called once per request with method name and outcome (never the parameters: they can hold the password). */
  onCall?: (line: string) => void;
  /** Over DEFAULT_HTTP_LIMITS. */
  limits?: Partial<HttpLimits>;
}

/** Answers 413 and closes the connection without reading what is left of the body. */
function refuseTooBig(req: IncomingMessage, res: ServerResponse, max: number): void {
  req.removeAllListeners('data');
  req.pause();
  if (res.headersSent || res.destroyed) {
    req.socket.destroy();
    return;
  }
  const text = `413 error: request body larger than ${max} bytes\n`;
  res.on('finish', () => req.socket.destroy());
  res.writeHead(413, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text), Connection: 'close' });
  res.end(text);
}

/** The body, or null when it was too big (already answered) or the connection failed. */
function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<string | null> {
  return new Promise((resolve) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) {
      refuseTooBig(req, res, max);
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (v: string | null) => {
      if (!done) resolve(v);
      done = true;
    };
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size <= max) {
        chunks.push(c);
        return;
      }
      refuseTooBig(req, res, max);
      finish(null);
    });
    req.on('end', () => finish(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => finish(null));
    req.on('close', () => finish(null));
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
  const maxBody = opts.limits?.maxBodyBytes ?? DEFAULT_HTTP_LIMITS.maxBodyBytes;
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
      const body = await readBody(req, res, maxBody);
      if (body === null) {
        log(`${req.method} ${path}: body over ${maxBody} bytes or connection lost; not read further`);
        return;
      }
      const json = path === '/jsonrpc' || (req.headers['content-type'] ?? '').startsWith('application/json');
      const t0 = Date.now();
      if (json) {
        let call: ReturnType<typeof parseJsonRpcCall> | null = null;
        try {
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

/** node:http's own bounds for these limits (createServer options). */
function serverOptions(l: HttpLimits): ServerOptions {
  return {
    // Headers and body within requestTimeoutMs; checked every quarter of it (at most every second).
    requestTimeout: l.requestTimeoutMs,
    headersTimeout: l.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(l.requestTimeoutMs / 4))),
    keepAliveTimeout: 65_000,
  };
}

function tune(server: Server, l: HttpLimits): Server {
  server.maxConnections = l.maxConnections;
  // A call runs as long as it must once its request is in (event.from, power operations).
  server.timeout = 0;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // A request too slow to arrive: 408 and closed, as Http_svr.read_request answers a Timeout.
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable) {
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
      return;
    }
    socket.destroy();
  });
  return server;
}

function limitsOf(opts: HttpOptions): HttpLimits {
  return { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
}

export function createHttp(api: XenApi, opts: HttpOptions = {}): Server {
  const l = limitsOf(opts);
  return tune(createHttpServer(serverOptions(l), makeHandler(api, opts)), l);
}

export function createHttps(api: XenApi, tls: { key: string | Buffer; cert: string | Buffer }, opts: HttpOptions = {}): Server {
  const l = limitsOf(opts);
  return tune(createHttpsServer({ ...serverOptions(l), key: tls.key, cert: tls.cert, handshakeTimeout: l.requestTimeoutMs }, makeHandler(api, opts)), l);
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
