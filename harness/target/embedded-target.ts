// The embedded host (harness/host) as a HostTarget: the same SSH into dom0,
// with the host's own errors mapped onto the target's.
import type { ChildProcess } from 'node:child_process';
import { EmbeddedHost, HostCommandError, HostUnreachableError } from '../host/embedded-host.ts';
import { TargetCommandError, TargetUnreachableError, type HostTarget, type TargetExecOptions, type TargetExecResult } from './target.ts';

export class EmbeddedTarget implements HostTarget {
  readonly kind = 'embedded' as const;
  readonly description: string;

  constructor(readonly host: EmbeddedHost) {
    this.description = `embedded host (state dir ${host.stateDir})`;
  }

  async exec(command: string, opts: TargetExecOptions = {}): Promise<TargetExecResult> {
    try {
      return await this.host.exec(command, opts);
    } catch (err) {
      throw mapError(err);
    }
  }

  async copyTo(localPath: string, remotePath: string, opts: { timeoutMs?: number; mode?: string } = {}): Promise<void> {
    try {
      await this.host.copyTo(localPath, remotePath, opts);
    } catch (err) {
      throw mapError(err);
    }
  }

  spawn(command: string): ChildProcess {
    return this.host.spawn(command);
  }

  async close(): Promise<void> {
    // The SSH master belongs to the host's state directory and expires on its own; the host keeps running.
  }
}

function mapError(err: unknown): unknown {
  if (err instanceof HostUnreachableError) return new TargetUnreachableError(err.message);
  if (err instanceof HostCommandError) return new TargetCommandError(err.command, err.result);
  return err;
}
