// Validation of model inputs at the public boundary.
import type * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, ShapeError } from '@monarch-mixer/monarch-core';

/**
 * Checks a batch of token ids: rank 2, int32, 1 ≤ L ≤ maxLength, every id in [0, vocabSize).
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
  const values = ids.dataSync();
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0 || values[i] >= vocabSize) {
      throw new InvalidArgumentError(`${who}: token id ${values[i]} is outside the vocabulary [0, ${vocabSize}).`, {
        parameter: 'ids',
        value: values[i],
      });
    }
  }
}
