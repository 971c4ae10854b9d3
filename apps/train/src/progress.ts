// The progress bar of a training run (cli-progress on stderr): step, loss, throughput and ETA. Without a TTY
// it prints a plain line every few seconds instead, so logs of long runs still show progress.
// cli-progress 3.12 ships no types and @types/cli-progress stops at 3.11: the local declaration is referenced here
// so that every program that compiles this file (apps/train, apps/cli, apps/bench) finds it.
/// <reference path="./cli-progress.d.ts" />
import cliProgress from 'cli-progress';

/** A progress display that can be switched off. */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private timeBased = false;

  /**
   * @param enabled - Show anything at all.
   * @param unit - `tokens` or `samples` (shown as tok/s or samples/s).
   */
  constructor(private readonly enabled: boolean, private readonly unit: string) {}

  /** Starts the bar at `step` of `steps` (or of `maxMinutes` when `steps` is unbounded). */
  start(steps: number, step: number, maxMinutes?: number): void {
    if (!this.enabled) return;
    this.timeBased = !Number.isFinite(steps);
    const unit = this.unit === 'tokens' ? 'tok/s' : 'samples/s';
    this.bar = new cliProgress.SingleBar({
      format: `{bar} {percentage}% | step {step}${this.timeBased ? '' : '/{total}'} | loss {loss} | {rate} ${unit} | ETA {eta_formatted}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      hideCursor: true,
      etaBuffer: 20,
      fps: 5,
    }, cliProgress.Presets.shades_classic);
    const total = this.timeBased ? Math.round((maxMinutes ?? 1) * 60) : steps;
    this.bar.start(total, this.timeBased ? 0 : step, { step, loss: '-', rate: '-' });
  }

  /** Moves the bar after a step. */
  update(step: number, loss: number, rate: number, elapsedSeconds: number): void {
    this.bar?.update(this.timeBased ? Math.round(elapsedSeconds) : step, { step, loss: loss.toFixed(4), rate: rate.toFixed(1) });
  }

  /** Prints a line above the bar. */
  log(line: string): void {
    if (!this.enabled) return;
    process.stderr.write(`\n${line}\n`);
  }

  /** Removes the bar (idempotent). */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
