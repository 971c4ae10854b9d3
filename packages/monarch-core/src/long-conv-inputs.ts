/**
 * The input list of a long convolution's `tf.customGrad` (u, kernel, then the optional reverse kernel and skip),
 * shared by fft-conv.ts and the fused webgpu path (backends/webgpu-long-conv.ts). Internal: not exported from
 * index.ts.
 */
import type { Tensor } from '@tensorflow/tfjs-core';

/** The customGrad arguments of a long convolution, unpacked. */
export interface LongConvArgs {
  /** Input sequence [B, C, L]. */
  u: Tensor;
  /** Forward kernel [C, Lk]. */
  kernel: Tensor;
  /** Reverse kernel [C, Lr], when the convolution has one. */
  reverseKernel: Tensor | undefined;
  /** Skip weights D [C], when the convolution has them. */
  skip: Tensor | undefined;
  /** customGrad's `save` (the last argument). */
  save: (tensors: Tensor[]) => void;
}

/**
 * The customGrad inputs in order: [u, kernel (, reverseKernel) (, skip)].
 *
 * @param u - Input sequence [B, C, L].
 * @param kernel - Forward kernel [C, Lk].
 * @param reverseKernel - Optional reverse kernel [C, Lr].
 * @param skip - Optional skip weights [C].
 * @returns The list to spread into the customGrad op.
 * @example
 * op(...longConvInputs(u, kf, kr, d));
 */
export function longConvInputs(u: Tensor, kernel: Tensor, reverseKernel?: Tensor, skip?: Tensor): Tensor[] {
  const inputs: Tensor[] = [u, kernel];
  if (reverseKernel !== undefined) inputs.push(reverseKernel);
  if (skip !== undefined) inputs.push(skip);
  return inputs;
}

/**
 * Unpacks the arguments a customGrad function receives for the inputs of {@link longConvInputs}.
 *
 * @param args - The customGrad function's arguments (the inputs, then `save`).
 * @param hasReverse - Whether a reverse kernel was given.
 * @param hasSkip - Whether skip weights were given.
 * @returns The named inputs and `save`.
 * @example
 * tf.customGrad((...args) => { const { u, kernel, skip, save } = unpackLongConvArgs(args, false, true); ... });
 */
export function unpackLongConvArgs(args: unknown[], hasReverse: boolean, hasSkip: boolean): LongConvArgs {
  const [u, kernel] = args as Tensor[];
  return {
    u: u!,
    kernel: kernel!,
    reverseKernel: hasReverse ? (args[2] as Tensor) : undefined,
    skip: hasSkip ? (args[hasReverse ? 3 : 2] as Tensor) : undefined,
    save: args[args.length - 1] as (tensors: Tensor[]) => void,
  };
}
