// Types for the parts of QuickJS's built-in 'os' and 'std' modules that
// platform-qjs.ts uses. The agent imports them as 'qjs:os' / 'qjs:std' (names
// that cannot clash with Node's own 'os' typings); scripts/build-agent.mjs
// rewrites both to the real 'os' and 'std' imports in the bundle.
declare module 'qjs:os' {
  export const O_RDONLY: number;
  export const O_WRONLY: number;
  export const O_RDWR: number;
  export function open(filename: string, flags: number, mode?: number): number;
  export function close(fd: number): number;
  export function read(fd: number, buffer: ArrayBuffer, offset: number, length: number): number;
  export function write(fd: number, buffer: ArrayBuffer, offset: number, length: number): number;
  /** A bigint offset returns a bigint (the new position, or a negative errno). */
  export function seek(fd: number, offset: bigint, whence: number): bigint;
  export function setReadHandler(fd: number, fn: (() => void) | null): void;
  export function setTimeout(fn: () => void, delay: number): unknown;
  export function clearTimeout(handle: unknown): void;
  export function readlink(path: string): [string, number];
  export function exec(args: string[], options?: { block?: boolean; usePath?: boolean }): number;
}

declare module 'qjs:std' {
  export interface FILE {
    puts(s: string): void;
    flush(): void;
  }
  export const out: FILE;
  export const err: FILE;
  export const SEEK_SET: number;
  export function getenv(name: string): string | undefined;
  export function strerror(errno: number): string;
}
