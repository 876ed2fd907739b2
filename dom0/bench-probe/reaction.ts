// The reaction trials, run in dom0 against xenstored (or, in the unit tests,
// against the in-memory test xenstored with the real agent as the guest).
//
// Three measurements, each "dom0 writes a node → dom0 sees the guest's answer":
//   floor     data/xtv/ping → data/xtv/pong holds the same value (guest/agent/echo.ts:
//             one watch event, one read, one write; nothing else)
//   testing   control/testing ← BENCH_TESTING_MESSAGE → the agent acknowledges with ""
//   shutdown  control/shutdown ← "poweroff" → the agent acknowledges with ""
// The testing message is an onshutdown command with action "ignore", so the
// shutdown request that follows is acknowledged and ignored: the guest keeps
// running and the next round can start. A round is floor, testing, floor,
// shutdown: the trials of the compared measurements are interleaved, so the
// machine's noise hits them alike, and every agent trial has a floor trial
// just before it to be compared with.
//
// Between trials the probe waits until the agent has finished the event (its
// report's event-seq moved on), so no trial queues behind the previous one.
import { REPORT_DIR, SHUTDOWN_NODE, TESTING_NODE } from '../../protocol/control.ts';
import { PING_NODE, PONG_NODE } from '../../protocol/echo-nodes.ts';
import type { XenstoreClient } from '../../xenstore/client.ts';
import { NodeWatch, WatchTimeoutError, type Clock } from './node-watch.ts';

export const BENCH_TESTING_MESSAGE = '{"when":"onshutdown","ack":"ok","action":"ignore"}';
export const BENCH_SHUTDOWN_REQUEST = 'poweroff';

export type SampleKind = 'floor' | 'testing' | 'shutdown';

/**
 * The agent acknowledged, but its report (data/xtv/) did not show the event
 * it should have: seen on real xenstored when a report transaction fails (the
 * agent then rewrites the report at its next event). The round is discarded
 * and the probe re-synchronizes; the result counts these.
 */
export class ReportGlitchError extends Error {
  override name = 'ReportGlitchError';
}

/** One timed trial, in the order they ran. */
export interface Sample {
  round: number;
  kind: SampleKind;
  ms: number;
}

export interface ReactionOptions {
  /** Bound on each answer from the guest. */
  ackTimeoutMs: number;
  now: Clock;
  /** Makes ping values unique across runs (a pong left by an earlier run must never count). */
  runId: string;
}

/** The safety check before a shutdown request failed: nothing was sent. */
export class NoPendingError extends Error {
  override name = 'NoPendingError';
}

export class ReactionProbe {
  private pings = 0;
  private rounds = 0;

  private constructor(
    private readonly xs: XenstoreClient,
    private readonly home: string,
    private readonly opts: ReactionOptions,
    private readonly w: { shutdown: NodeWatch; testing: NodeWatch; pong: NodeWatch; seq: NodeWatch },
    private seq: number,
  ) {}

  /**
   * Prepares domain `domid` (whose agent must be ready): control/testing and
   * data/xtv/ping exist and belong to the guest, the watches are set, and one
   * untimed echo proves the floor works.
   */
  static async open(xs: XenstoreClient, domid: number, opts: ReactionOptions): Promise<ReactionProbe> {
    const home = `/local/domain/${domid}`;
    // Created by dom0 and handed to the guest, as the harness does: the agent
    // must be able to write its "" acknowledgement, and the echo to read.
    for (const node of [TESTING_NODE, PING_NODE]) {
      await xs.write(`${home}/${node}`, '');
      await xs.setPerms(`${home}/${node}`, [`n${domid}`]);
    }
    const opened: NodeWatch[] = [];
    const watch = async (node: string, token: string) => {
      const w = await NodeWatch.open(xs, `${home}/${node}`, token, opts.now);
      opened.push(w);
      return w;
    };
    try {
      const w = {
        shutdown: await watch(SHUTDOWN_NODE, 'xtv-bench:shutdown'),
        testing: await watch(TESTING_NODE, 'xtv-bench:testing'),
        pong: await watch(PONG_NODE, 'xtv-bench:pong'),
        seq: await watch(`${REPORT_DIR}/event-seq`, 'xtv-bench:seq'),
      };
      const seq = Number((await xs.tryRead(`${home}/${REPORT_DIR}/event-seq`)) ?? '0');
      if (!Number.isInteger(seq)) throw new Error(`${home}/${REPORT_DIR}/event-seq is not a number`);
      const probe = new ReactionProbe(xs, home, opts, w, seq);
      try {
        await probe.floor();
      } catch (e) {
        throw new Error(`the guest does not echo ${PING_NODE} to ${PONG_NODE} (is the image built with guest/agent/echo.ts?): ${message(e)}`);
      }
      return probe;
    } catch (e) {
      await Promise.all(opened.map((x) => x.close()));
      throw e;
    }
  }

  /** dom0 writes a fresh value to ping; resolves with the ms until pong holds it. */
  async floor(): Promise<number> {
    const value = `${this.opts.runId}-${++this.pings}`;
    return this.timed(this.w.pong, (v) => v === value, `${this.home}/${PING_NODE}`, value, 'the echo of ping');
  }

  /** dom0 writes the onshutdown/ignore command; resolves with the ms until the agent's "" ack. */
  async testing(): Promise<number> {
    const done = this.reported();
    const ms = await this.timed(this.w.testing, (v) => v === '', `${this.home}/${TESTING_NODE}`, BENCH_TESTING_MESSAGE, `the ack of ${TESTING_NODE}`).catch(
      (e) => {
        this.w.seq.cancel('trial failed');
        throw e;
      },
    );
    await done;
    // The next shutdown request must find the command pending, or the agent would power off.
    const pending = await this.xs.tryRead(`${this.home}/${REPORT_DIR}/pending`);
    if (!pending) throw new ReportGlitchError(`after the testing message the report shows nothing pending (data/xtv/pending is ${JSON.stringify(pending)})`);
    return ms;
  }

  /**
   * Armed before a message: resolves once the report's event-seq has moved
   * past the last one seen (it may jump: a report that failed is rewritten
   * whole at the next event). No move within the bound: ReportGlitchError.
   */
  private reported(): Promise<void> {
    const expected = this.seq + 1;
    const p = this.w.seq
      .waitFor((v) => Number(v) >= expected, this.opts.ackTimeoutMs, `the agent's report of event ${expected}`)
      .then(
        async () => {
          this.seq = Number(await this.xs.tryRead(`${this.home}/${REPORT_DIR}/event-seq`));
        },
        (e: Error) => {
          throw e instanceof WatchTimeoutError ? new ReportGlitchError(e.message) : e;
        },
      );
    p.catch(() => undefined);
    return p;
  }

  /**
   * After a ReportGlitchError: learns the report's event-seq again and sends
   * the testing message (untimed) until the report shows it pending, so that
   * the next round starts from a known state. Bounded: 3 attempts.
   */
  async resync(): Promise<void> {
    let last: unknown = null;
    for (let attempt = 1; attempt <= 3; attempt++) {
      this.seq = Number((await this.xs.tryRead(`${this.home}/${REPORT_DIR}/event-seq`)) ?? '0');
      try {
        await this.testing();
        return;
      } catch (e) {
        if (!(e instanceof ReportGlitchError)) throw e;
        last = e;
      }
    }
    throw new Error(`could not get the agent's report back in step after 3 attempts: ${message(last)}`);
  }

  /** dom0 writes "poweroff" (with the ignore command pending); resolves with the ms until the agent's "" ack. */
  async shutdown(): Promise<number> {
    const pending = await this.xs.tryRead(`${this.home}/${REPORT_DIR}/pending`);
    if (!pending) throw new NoPendingError('no command pending in the agent; a shutdown request would power the guest off');
    const done = this.reported();
    const ms = await this.timed(this.w.shutdown, (v) => v === '', `${this.home}/${SHUTDOWN_NODE}`, BENCH_SHUTDOWN_REQUEST, `the ack of ${SHUTDOWN_NODE}`).catch(
      (e) => {
        this.w.seq.cancel('trial failed');
        throw e;
      },
    );
    await done;
    const [action, node] = await Promise.all(['event-action', 'event-node'].map((k) => this.xs.tryRead(`${this.home}/${REPORT_DIR}/${k}`)));
    if (node !== SHUTDOWN_NODE || action !== 'ignore') {
      throw new ReportGlitchError(
        `after the shutdown request the report shows event-node ${JSON.stringify(node)}, event-action ${JSON.stringify(action)} (expected ${SHUTDOWN_NODE}, ignore)`,
      );
    }
    return ms;
  }

  /** One round: floor, testing, floor, shutdown. Throws ReportGlitchError when the round cannot count (see resync). */
  async round(): Promise<Sample[]> {
    const round = ++this.rounds;
    const out: Sample[] = [];
    out.push({ round, kind: 'floor', ms: await this.floor() });
    out.push({ round, kind: 'testing', ms: await this.testing() });
    out.push({ round, kind: 'floor', ms: await this.floor() });
    out.push({ round, kind: 'shutdown', ms: await this.shutdown() });
    return out;
  }

  /** Events the agent has finished since open() (for the run's sanity check). */
  get agentEvents(): number {
    return this.seq;
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.w).map((w) => w.close()));
  }

  private async timed(watch: NodeWatch, accept: (v: string | null) => boolean, path: string, value: string, what: string): Promise<number> {
    const answered = watch.waitFor(accept, this.opts.ackTimeoutMs, what);
    answered.catch(() => undefined);
    const t0 = this.opts.now();
    try {
      await this.xs.write(path, value);
    } catch (e) {
      watch.cancel('write failed');
      throw new Error(`writing ${path}: ${message(e)}`);
    }
    return (await answered) - t0;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
