// The xl branch of connectToolstack: --host ssh://… → a dom0 target → an
// XlDriver, after checking that the host answers and has xl.
import type { ConnectOptions } from '../connect.ts';
import { ConnectionError } from '../driver.ts';
import { XlDriver, type XlDriverOptions } from './xl-driver.ts';
import { openTarget, parseSshUrl, type SshUrl } from '../../remote/open-target.ts';

export async function connectXl(opts: ConnectOptions & { driver?: XlDriverOptions }): Promise<XlDriver> {
  if (/^https?:\/\//.test(opts.host)) {
    throw new ConnectionError(
      `the xl toolstack is reached over SSH: use --host ssh://[USER@]HOST[:PORT] (${opts.host} is a XAPI address; use --toolstack xapi)`,
    );
  }
  let url: SshUrl;
  try {
    url = parseSshUrl(opts.host);
  } catch (err) {
    throw new ConnectionError((err as Error).message, { cause: err });
  }
  const target = openTarget(url, {
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
  let probe;
  try {
    probe = await target.exec('command -v xl >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/usr/lib/xen/bin command -v xl', { timeoutMs: 30_000 });
  } catch (err) {
    await target.close();
    throw new ConnectionError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (probe.code !== 0) {
    await target.close();
    throw new ConnectionError(`${target.description} has no 'xl' command on root's PATH: is it a Xen host with xen-utils installed?`);
  }
  return new XlDriver(target, { ...opts.driver, ...(opts.noConsoleLog ? { consoleLog: false } : {}) });
}
