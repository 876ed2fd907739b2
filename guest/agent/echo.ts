// The echo: the floor of the benchmark (bench/). dom0 writes any value to
// data/xtv/ping; the guest writes the same bytes to data/xtv/pong at once.
// No decoding, no queue, no report, no console line: one watch event, one
// read, one write. That is exactly the xenstore round trip every agent
// reaction also pays, so "agent reaction / echo" measures what the agent
// itself adds (decoding, its serial queue, acknowledging).
//
// It lives apart from the agent's logic on purpose: it owns no control node
// and changes nothing the tests assert on. data/ is writable by the guest and
// by dom0, which is why the nodes live there.
import { errorCode, type AgentStore } from './store.ts';
import { PING_NODE, PONG_NODE } from '../../protocol/echo-nodes.ts';

export const ECHO_TOKEN = 'xtv:echo';

/**
 * Starts echoing on `store`: watches PING_NODE and, on every event, copies its
 * value to PONG_NODE. Resolves once the watch is registered (its first event
 * echoes a ping already there, if any). Failures go to `onError` and never
 * stop the echo; an absent ping (the watch's first event, or a removal) is
 * not a failure. Returns the function that stops listening.
 */
export async function startEcho(store: AgentStore, onError: (where: string, e: unknown) => void): Promise<() => void> {
  const stop = store.onWatch((_path, token) => {
    if (token !== ECHO_TOKEN) return;
    // Not awaited: the listener runs inside the client's dispatcher.
    store
      .readBytes(PING_NODE)
      .then((value) => store.write(PONG_NODE, value))
      .catch((e: unknown) => {
        if (errorCode(e) !== 'ENOENT') onError('echo', e);
      });
  });
  try {
    await store.watch(PING_NODE, ECHO_TOKEN);
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}
