import type { Command } from 'commander';

/** Registers the `m2 train …` commands. */
export function registerTrainCommands(group: Command): void {
  void group;
}
