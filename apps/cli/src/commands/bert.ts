import type { Command } from 'commander';

/** Registers the `m2 bert …` commands. */
export function registerBertCommands(group: Command): void {
  void group;
}
