// `m2 bench fftconv`: M2-BERT's bidirectional long convolution of u [batch 4, 32 channels, L] through
// monarch-core on the chosen backend, forward and forward+backward: its default path (the fused FFT kernels on wasm
// and webgpu, else the DFT as a Monarch product of real matMuls) and, where fused kernels exist, the Monarch path
// (M2_FUSED_LONG_CONV=0) timed interleaved with it; against the same forward through tf.spectral on the cpu backend
// (the only CPU backend with FFT kernels; it has no gradients). Both are checked against each other before timing.
import * as tf from '@tensorflow/tfjs-core';
import { bidirectionalConv, longConvPlan } from '@monarch-mixer/monarch-core';
import { timeInterleaved, timeIt } from '../harness.js';

/** One row of the `fftconv` suite (the schema the issue asks for). */
export interface FftconvRow {
  /** Backend that ran the Monarch convolution. */
  backend: string;
  /** Sequence length. */
  L: number;
  /** Median forward time, ms. */
  monarch_fwd_ms: number;
  /** Median forward + backward (gradients for u, kf, kr and D) time, ms. */
  monarch_fwdbwd_ms: number;
  /**
   * The same forward with M2_FUSED_LONG_CONV=0 (the Monarch-DFT path), timed interleaved with the default, on
   * backends whose default is a fused kernel (wasm, webgpu); null elsewhere.
   */
  stock_fwd_ms: number | null;
  /** The same forward + backward with M2_FUSED_LONG_CONV=0; null where there are no fused kernels. */
  stock_fwdbwd_ms: number | null;
  /** Median tf.spectral forward on the cpu backend, ms; null where skipped. */
  spectral_fwd_ms: number | null;
}

/** Options of {@link runFftconvSuite}. */
export interface FftconvOptions {
  /** Sequence lengths. */
  lengths: number[];
  /** Batch size. Default 4. */
  batch?: number;
  /** Channels. Default 32. */
  channels?: number;
  /** Longest L timed through tf.spectral (it is slow); longer lengths get null. Default 4096. */
  spectralMaxLength?: number;
  /** Timed runs per measurement. Default 5. */
  repeats?: number;
  /** From this L on, tf.spectral is timed by a single run (minutes each). Default 4096. */
  spectralSingleRunLength?: number;
  /** Progress lines go here. Default stderr. */
  log?: (line: string) => void;
}

/**
 * The same convolution through tf.spectral (complex64 rfft / irfft): forward only. One batch element at a time:
 * tfjs-cpu's broadcasting complex multiply returns NaN for the second and later batch elements.
 */
function spectralBidirectional(u: tf.Tensor3D, kf: tf.Tensor2D, kr: tf.Tensor2D, d: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => {
    const [, channels, length] = u.shape;
    const kernel = tf.concat([kf, tf.reverse(kr, 1)], 1); // [C, 2L]
    const kfreq = tf.spectral.rfft(kernel); // [C, L + 1]
    const perBatch = tf.unstack(u).map((ub) => {
      const y = tf.spectral.irfft(tf.mul(tf.spectral.rfft(ub, 2 * length), kfreq)); // [C, 2L]
      return tf.slice(y, [0, 0], [-1, length]);
    });
    return tf.add(tf.stack(perBatch), tf.mul(u, tf.reshape(d, [channels, 1])));
  });
}

/** Relative L2 distance ‖a − b‖ / ‖b‖ (for the pre-timing check). */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** Runs the suite on the active backend; switches to cpu for the tf.spectral timings and back. */
export async function runFftconvSuite(options: FftconvOptions): Promise<FftconvRow[]> {
  const { lengths, batch = 4, channels = 32, spectralMaxLength = 4096, repeats = 5, spectralSingleRunLength = 4096 } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const backend = tf.getBackend();
  const rows: FftconvRow[] = [];
  for (const length of lengths) {
    const plan = longConvPlan(length);
    const u = tf.randomNormal([batch, channels, length], 0, 1, 'float32', 1) as tf.Tensor3D;
    const kf = tf.randomNormal([channels, length], 0, 0.05, 'float32', 2) as tf.Tensor2D;
    const kr = tf.randomNormal([channels, length], 0, 0.05, 'float32', 3) as tf.Tensor2D;
    const d = tf.randomNormal([channels], 0, 1, 'float32', 4) as tf.Tensor1D;
    const probe = tf.randomNormal([batch, channels, length], 0, 1, 'float32', 5);
    const forward = () => bidirectionalConv(u, kf, kr, d);
    const gradients = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, e: tf.Tensor) =>
      tf.sum(tf.mul(bidirectionalConv(a as tf.Tensor3D, b as tf.Tensor2D, c as tf.Tensor2D, e as tf.Tensor1D), probe)),
    );
    const slow = length >= 8192;
    const fused = backend === 'wasm' || backend === 'webgpu';
    /** `run` with M2_FUSED_LONG_CONV=0 (the Monarch-DFT path), the setting restored after. */
    const stock = (run: () => tf.Tensor | tf.Tensor[]) => () => {
      const previous = process.env['M2_FUSED_LONG_CONV'];
      process.env['M2_FUSED_LONG_CONV'] = '0';
      try {
        return run();
      } finally {
        if (previous === undefined) delete process.env['M2_FUSED_LONG_CONV'];
        else process.env['M2_FUSED_LONG_CONV'] = previous;
      }
    };
    const backward = () => gradients([u, kf, kr, d]);
    const [fwd, stockFwd] = fused
      ? await timeInterleaved([{ label: `fwd L=${length}`, run: forward }, { label: `Monarch-path fwd L=${length}`, run: stock(forward) }], { repeats, warmup: 1 })
      : [await timeIt(`monarch fwd L=${length}`, forward, { repeats, warmup: 1 })];
    const bwdRepeats = { repeats: slow ? Math.min(repeats, 3) : repeats, warmup: 1 };
    const [fwdbwd, stockFwdbwd] = fused
      ? await timeInterleaved([{ label: `fwd+bwd L=${length}`, run: backward }, { label: `Monarch-path fwd+bwd L=${length}`, run: stock(backward) }], bwdRepeats)
      : [await timeIt(`monarch fwd+bwd L=${length}`, backward, bwdRepeats)];
    let spectral: number | null = null;
    if (length <= spectralMaxLength) {
      const monarchOut = forward();
      const values = { u: await u.data(), kf: await kf.data(), kr: await kr.data(), d: await d.data(), y: await monarchOut.data() };
      monarchOut.dispose();
      await tf.setBackend('cpu');
      try {
        const [uc, kfc, krc, dc] = [
          tf.tensor3d(values.u, u.shape),
          tf.tensor2d(values.kf, kf.shape),
          tf.tensor2d(values.kr, kr.shape),
          tf.tensor1d(values.d),
        ];
        // The first tf.spectral run is the check; at L ≥ spectralSingleRunLength (it takes minutes there) it is also
        // the only timed run. The cpu backend has nothing to warm up.
        const start = performance.now();
        const reference = spectralBidirectional(uc, kfc, krc, dc);
        const referenceValues = (await reference.data()) as Float32Array;
        const firstMs = performance.now() - start;
        reference.dispose();
        const err = relativeError(values.y as Float32Array, referenceValues);
        log(`check L=${length}: monarch (${backend}) vs tf.spectral (cpu) relative L2 ${err.toExponential(2)}`);
        if (!(err < 1e-4)) throw new Error(`bench fftconv: monarch and tf.spectral disagree at L=${length} (relative L2 ${err})`);
        if (length >= spectralSingleRunLength) {
          spectral = firstMs;
        } else {
          const t = await timeIt(`spectral fwd L=${length}`, () => spectralBidirectional(uc, kfc, krc, dc), { warmup: 0, repeats, budgetMs: 60_000 });
          spectral = t.medianMs;
        }
        tf.dispose([uc, kfc, krc, dc]);
      } finally {
        await tf.setBackend(backend);
      }
    }
    const row: FftconvRow = {
      backend,
      L: length,
      monarch_fwd_ms: round(fwd!.medianMs),
      monarch_fwdbwd_ms: round(fwdbwd!.medianMs),
      stock_fwd_ms: stockFwd === undefined ? null : round(stockFwd.medianMs),
      stock_fwdbwd_ms: stockFwdbwd === undefined ? null : round(stockFwdbwd.medianMs),
      spectral_fwd_ms: spectral === null ? null : round(spectral),
    };
    const stockText = stockFwd === undefined ? '' : ` (Monarch path: fwd ${row.stock_fwd_ms} ms, fwd+bwd ${row.stock_fwdbwd_ms} ms)`;
    log(
      `L=${length} (N=${plan.n}, radices ${plan.radices.join('·')}): fwd ${row.monarch_fwd_ms} ms, fwd+bwd ${row.monarch_fwdbwd_ms} ms${stockText}, ` +
        `spectral fwd ${row.spectral_fwd_ms ?? 'skipped'}${spectral === null ? '' : ` ms (×${(spectral / fwd.medianMs).toFixed(1)})`}`,
    );
    rows.push(row);
    tf.dispose([u, kf, kr, d, probe]);
  }
  return rows;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
