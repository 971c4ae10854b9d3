// Input checks shared by the math ops. Each throws ONE line naming the op, the tensor, what was expected and
// what came in. Messages are built only on failure.
import type { Tensor } from '@tensorflow/tfjs-core';
import { InvalidArgumentError, ShapeError } from './errors.js';

/** Formats a shape as `[2, 3]`. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Checks that `value` is a tfjs tensor of a float dtype. */
export function checkTensor(op: string, name: string, value: unknown): asserts value is Tensor {
  const t = value as Tensor | null | undefined;
  if (t === null || t === undefined || typeof t !== 'object' || !Array.isArray((t as Tensor).shape) || typeof (t as Tensor).dtype !== 'string') {
    throw new InvalidArgumentError(`${op}: ${name} must be a tf.Tensor, got ${describe(value)}`, { parameter: name });
  }
  if (t.isDisposed) throw new InvalidArgumentError(`${op}: ${name} has been disposed`, { parameter: name });
  if (t.dtype !== 'float32') {
    throw new InvalidArgumentError(`${op}: ${name} must be float32, got ${t.dtype}`, { parameter: name, value: t.dtype });
  }
}

/** Checks a tensor's rank (exact, or at least `min`). */
export function checkRank(op: string, name: string, t: Tensor, rank: number | { min: number }, what = ''): void {
  const ok = typeof rank === 'number' ? t.rank === rank : t.rank >= rank.min;
  if (!ok) {
    const expected = typeof rank === 'number' ? `rank ${rank}` : `rank ≥ ${rank.min}`;
    throw new ShapeError(`${op}: ${name} must have ${expected}${what ? ` ${what}` : ''}, got shape ${shapeText(t.shape)}`, {
      parameter: name,
      value: t.shape,
    });
  }
}

/** Checks one dimension of a tensor. */
export function checkDim(op: string, name: string, t: Tensor, axis: number, expected: number, why: string): void {
  const dim = t.shape[axis < 0 ? t.rank + axis : axis];
  if (dim !== expected) {
    const axisName = axis === -1 ? 'last dim' : `dim ${axis}`;
    throw new ShapeError(`${op}: ${name} ${axisName} must be ${expected} (${why}), got ${dim} (shape ${shapeText(t.shape)})`, {
      parameter: name,
      value: t.shape,
    });
  }
}

/** Checks that a number is a positive integer. */
export function checkPositiveInt(op: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${op}: ${name} must be a positive integer, got ${describe(value)}`, { parameter: name, value });
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `"${value}"`;
  return String(value);
}
