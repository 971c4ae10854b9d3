import type { Command } from 'commander';

/** Registers the `m2 gpt …` commands. */
export function registerGptCommands(group: Command): void {
  void group;
}
