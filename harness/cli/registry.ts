import type { Command } from './command.ts';

// Every subcommand, in the order `xtv --help` lists them. Loaded lazily so
// that `xtv --help` stays fast and one broken module cannot hide the others.
export const commands: Array<{ name: string; summary: string; load: () => Promise<Command> }> = [];

export function registerCommand(name: string, summary: string, load: () => Promise<Command>): void {
  commands.push({ name, summary, load });
}
