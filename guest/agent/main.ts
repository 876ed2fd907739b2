// Entry point of the guest agent bundle (dist/agent/xtv-agent.js), run by the
// image's /init as `exec /bin/qjs --std -m /xtv/agent.js`: the agent is PID 1.
// If PID 1 exits the kernel panics, so nothing here may end the process:
// every failure is caught, printed on the console and retried.
import { Agent } from './agent.ts';
import { createQjsPlatform } from './platform-qjs.ts';
import { serve } from './run.ts';
import { consoleLine } from './report.ts';
import { describeError } from './store.ts';

const KEEPALIVE_MS = 3_600_000;

function main(): void {
  const platform = createQjsPlatform();
  const fatal = (where: string, e: unknown): void =>
    platform.consoleLine(
      consoleLine(Date.now(), 'error', [
        ['where', where],
        ['message', describeError(e)],
      ]),
    );
  // A timer that re-arms itself keeps QuickJS's event loop alive even if
  // every other handler is gone (qjs exits when it has nothing left to wait for).
  const keepAlive = (): void => {
    platform.setTimer(KEEPALIVE_MS, keepAlive);
  };
  keepAlive();
  let agent: Agent;
  try {
    agent = new Agent({ platform });
  } catch (e) {
    fatal('start', e);
    return;
  }
  // serve() loops for ever and catches everything; should it ever settle, start it again.
  const run = (): void => {
    serve(platform, agent).then(
      () => platform.setTimer(1000, run),
      (e) => {
        fatal('serve', e);
        platform.setTimer(1000, run);
      },
    );
  };
  run();
}

main();
