// The part of the `xen-api` npm package (Xen Orchestra's XenAPI client, plain
// JavaScript) that xtv uses, typed. See node_modules/xen-api/index.mjs.
declare module 'xen-api' {
  import type { EventEmitter } from 'node:events';

  export interface XapiRecord {
    readonly $id: string;
    readonly $ref: string;
    readonly $type: string;
    [field: string]: unknown;
  }

  export interface XapiClientOptions {
    url: string;
    auth?: { user: string; password: string };
    allowUnauthorized?: boolean;
    /** false: no event loop; an array: only these types. */
    watchEvents?: boolean | string[];
    transport?: 'auto' | 'json-rpc' | 'xml-rpc';
    callTimeout?: number;
    httpInactivityTimeout?: number;
    eventPollDelay?: number;
    debounce?: number;
    readOnly?: boolean;
  }

  export interface XapiCollection extends EventEmitter {
    readonly all: Record<string, XapiRecord>;
  }

  export class Xapi extends EventEmitter {
    constructor(opts: XapiClientOptions);
    readonly status: 'connected' | 'connecting' | 'disconnected';
    readonly objects: XapiCollection;
    readonly objectsFetched: Promise<void>;
    readonly pool: XapiRecord | null;
    readonly sessionId: string;
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
    callAsync<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
    getAllRecords(type: string): Promise<XapiRecord[]>;
    getRecord(type: string, ref: string): Promise<XapiRecord>;
    getObject(idOrUuidOrRef: string, defaultValue?: unknown): XapiRecord;
    getObjectByRef(ref: string, defaultValue?: unknown): XapiRecord;
    barrier(ref?: string): Promise<XapiRecord | undefined>;
  }

  export function createClient(opts: XapiClientOptions): Xapi;
}

// The client's own XML parser, used by the codec tests to read what the endpoint writes.
declare module '@vates/xml/parse' {
  export function parseXml(xml: string, opts?: { normalize?: boolean; strict?: boolean; trim?: boolean }): unknown;
}
declare module '@vates/xml-rpc/parser' {
  export const xmlRpcParser: { parse(node: unknown): unknown; parse_value(node: unknown): unknown };
}
