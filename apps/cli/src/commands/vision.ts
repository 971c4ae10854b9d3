import type { Command } from 'commander';

/** Registers the `m2 vision …` commands. */
export function registerVisionCommands(group: Command): void {
  void group;
}
