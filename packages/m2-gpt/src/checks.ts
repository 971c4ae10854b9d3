// Validation of model inputs at the public boundary.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, ShapeError } from '@monarch-mixer/monarch-core';

/**
 * Checks a batch of token ids: rank 2, int32, 1 ≤ L ≤ maxLength, every id in [0, vocabSize). The values are read back
 * synchronously, except on webgpu, where Node has no synchronous read: there the caller checks the ids it made on
 * the host ({@link checkIdValues}; `m2 train gpt` checks its token stream once, before training).
 * @throws ShapeError or InvalidArgumentError (one line).
 */
export function checkIds(who: string, ids: tf.Tensor, vocabSize: number, maxLength: number): void {
  if (ids.rank !== 2) {
    throw new ShapeError(`${who}: ids must be [batch, length], got shape [${ids.shape.join(', ')}].`, { parameter: 'ids' });
  }
  if (ids.dtype !== 'int32') {
    throw new InvalidArgumentError(`${who}: ids must be int32, got ${ids.dtype}.`, { parameter: 'ids', value: ids.dtype });
  }
  const length = ids.shape[1] ?? 0;
  if (length < 1 || length > maxLength) {
    throw new ShapeError(`${who}: sequence length must be in [1, ${maxLength}] (maxLength), got ${length}.`, {
      parameter: 'ids',
      value: length,
    });
  }
  if (tf.getBackend() !== 'webgpu') checkIdValues(who, ids.dataSync(), vocabSize);
}

/**
 * Checks token ids given on the host: every id an integer in [0, vocabSize).
 *
 * @param who - The caller, for the message.
 * @param values - The ids.
 * @param vocabSize - The model's vocabulary size V.
 * @throws InvalidArgumentError (one line) naming the first bad id.
 * @example
 * checkIdValues('M2Gpt', [464, 3290], 50257); // passes
 */
export function checkIdValues(who: string, values: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < values.length; i++) {
    const id = values[i]!;
    if (!Number.isInteger(id)) {
      throw new InvalidArgumentError(`${who}: token id ${id} is not an integer.`, { parameter: 'ids', value: id });
    }
    if (id < 0 || id >= vocabSize) {
      throw new InvalidArgumentError(`${who}: token id ${id} is outside the vocabulary [0, ${vocabSize}).`, { parameter: 'ids', value: id });
    }
  }
}
