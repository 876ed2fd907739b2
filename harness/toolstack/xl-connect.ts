// The xl branch of connectToolstack: --host embedded | ssh://… → a HostTarget
// → an XlDriver, after checking that the host answers and has xl.
import { ConnectionError } from './driver.ts';
import { XlDriver, type XlDriverOptions } from './xl.ts';
import { openTarget, parseHostSpec, type OpenTargetOptions } from '../target/open-target.ts';
import { TargetUnreachableError } from '../target/target.ts';

export interface XlConnectOptions extends OpenTargetOptions {
  /** embedded | ssh://[USER@]HOST[:PORT] */
  host: string;
  driver?: XlDriverOptions;
}

export async function connectXl(opts: XlConnectOptions): Promise<XlDriver> {
  if (/^https?:\/\//.test(opts.host)) {
    throw new ConnectionError(`the xl toolstack is reached over SSH: use --host embedded or ssh://[USER@]HOST[:PORT] (${opts.host} is a XAPI address; use --toolstack xapi)`);
  }
  let target;
  try {
    target = await openTarget(parseHostSpec(opts.host), opts);
  } catch (err) {
    if (err instanceof TargetUnreachableError) throw new ConnectionError(err.message, err);
    if (err instanceof Error && err.message.startsWith('--host')) throw new ConnectionError(err.message, err);
    throw err;
  }
  let probe;
  try {
    probe = await target.exec('command -v xl >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/usr/lib/xen/bin command -v xl', { timeoutMs: 30_000 });
  } catch (err) {
    throw new ConnectionError(err instanceof Error ? err.message : String(err), err);
  }
  if (probe.code !== 0) {
    throw new ConnectionError(`${target.description} has no 'xl' command on root's PATH: is it a Xen host with xen-utils installed?`);
  }
  return new XlDriver(target, opts.driver);
}
