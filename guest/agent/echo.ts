// The echo: the floor of the benchmark (bench/). dom0 writes any value to
// data/xtv/ping; the guest writes the same bytes to data/xtv/pong at once.
// No decoding, no report, no console line: one watch event, one read, one
// write (a burst of events shares copies, see below). That is exactly the xenstore round trip every agent
// reaction also pays, so "agent reaction / echo" measures what the agent
// itself adds (decoding, its serial queue, acknowledging).
//
// A flood of pings must not crowd out the agent, which shares the connection
// (and, in the guest, its one request in flight: XENBUS_DEVICE_MAX_IN_FLIGHT
// in xenstore/transport.ts): a copy per event put 4,000 requests ahead of the
// agent's acknowledgement when 2,000 pings came quickly. So the echo
// coalesces as the agent's own tasks do (serial-queue.ts): one copy in
// flight, and events during it only ask for one more copy after it, which
// reads the latest ping. A single ping still costs exactly one read and one
// write, at once; the last ping of a burst is always echoed.
//
// It lives apart from the agent's logic on purpose: it owns no control node
// and changes nothing the tests assert on. data/ is writable by the guest and
// by dom0, which is why the nodes live there.
import { errorCode, type AgentStore } from './store.ts';
import { SerialQueue } from './serial-queue.ts';
import { PING_NODE, PONG_NODE } from '../../protocol/echo-nodes.ts';

export const ECHO_TOKEN = 'xtv:echo';

/**
 * Starts echoing on `store`: watches PING_NODE and copies its value to
 * PONG_NODE after each event, one copy at a time (events during a copy make
 * one more copy follow it). Resolves once the watch is registered (its first
 * event echoes a ping already there, if any). Failures go to `onError` and
 * never stop the echo; an absent ping (the watch's first event, or a removal)
 * is not a failure. Returns the function that stops listening.
 */
export async function startEcho(store: AgentStore, onError: (where: string, e: unknown) => void): Promise<() => void> {
  // Its own queue, not the agent's: the echo never waits behind the agent's work.
  const copies = new SerialQueue((_task, e) => {
    if (errorCode(e) !== 'ENOENT') onError('echo', e);
  });
  const copy = async (): Promise<void> => {
    await store.write(PONG_NODE, await store.readBytes(PING_NODE));
  };
  const stop = store.onWatch((_path, token) => {
    // The listener runs inside the client's dispatcher: schedule() only queues, never throws.
    if (token === ECHO_TOKEN) copies.schedule('copy', copy);
  });
  try {
    await store.watch(PING_NODE, ECHO_TOKEN);
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}
