import type { Command } from 'commander';

/** Registers the `m2 bench …` commands. */
export function registerBenchCommands(group: Command): void {
  void group;
}
