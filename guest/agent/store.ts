// The slice of the xenstore client the agent uses. The agent is written
// against this interface rather than the client class so that its logic can
// be read (and faked) on its own; xenstore/client.ts satisfies it.

/** Operations available both directly and inside a transaction. */
export interface StoreOps {
  readBytes(path: string): Promise<Uint8Array>;
  write(path: string, value: string | Uint8Array): Promise<void>;
  rm(path: string): Promise<void>;
}

export interface AgentStore extends StoreOps {
  watch(path: string, token: string): Promise<void>;
  unwatch(path: string, token: string): Promise<void>;
  /** Subscribes to watch events; returns the unsubscribe function. */
  onWatch(listener: (path: string, token: string) => void): () => void;
  /** Runs body in one transaction (retried by the client on EAGAIN). */
  transaction<T>(body: (tx: StoreOps) => Promise<T>): Promise<T>;
  /** Called once when the connection ends (the runner then reconnects). */
  onClose(listener: (err?: Error) => void): () => void;
  close(): void;
}

/** The xenstore error name carried by an error (ENOENT, EACCES, ...), if any. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** A one-line description of any thrown value. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  try {
    return String(e);
  } catch {
    return 'unprintable error';
  }
}

/** The node's bytes, or null when it does not exist. */
export async function tryReadBytes(store: StoreOps, path: string): Promise<Uint8Array | null> {
  try {
    return await store.readBytes(path);
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return null;
    throw e;
  }
}
