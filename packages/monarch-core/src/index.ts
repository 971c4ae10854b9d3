/**
 * Monarch matrix math for TensorFlow.js.
 *
 * The bottom of the Monarch Mixer package graph (monarch-core → m2-layers → m2-bert / m2-gpt / m2-vision):
 * block-diagonal and Monarch products, Monarch projection, the DFT written as a Monarch product, long
 * convolutions built from real matrix products (differentiable on every backend), float64 references,
 * checkpoint I/O and backend set-up.
 *
 * @packageDocumentation
 */

export { M2Error, ShapeError, ConfigError, InvalidArgumentError, FileFormatError, BackendError } from './errors.js';
export type { M2ErrorDetails } from './errors.js';
