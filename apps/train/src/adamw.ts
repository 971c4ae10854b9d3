// AdamW with decoupled weight decay (Loshchilov & Hutter, arXiv:1711.05101) over plain tf.Variables, with
// parameter groups that carry their own learning rate and weight decay (the M2 filter groups of
// m2-architecture.md §2.11), and a state (m, v, step) that a checkpoint can store and restore bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';

/** A parameter group: parameters whose name matches get this peak learning rate and weight decay. */
export interface ParameterGroup {
  /** Group name (logged). */
  name: string;
  /** Which parameters belong here (first matching group wins; the rest fall into the default group). */
  match: (parameterName: string) => boolean;
  /** Peak learning rate of the group (multiplied by the schedule). */
  lr: number;
  /** Weight decay of the group. */
  weightDecay: number;
}

/** How the decoupled decay is scaled. */
export type WeightDecayMode = 'torch' | 'composer';

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** Peak learning rate of the default group. */
  lr: number;
  /** Weight decay of the default group. Default 0. */
  weightDecay?: number;
  /** β₁. Default 0.9. */
  beta1?: number;
  /** β₂. Default 0.98 (the original M2 recipes). */
  beta2?: number;
  /** ε added to √v̂. Default 1e-6 (the original M2 recipes). */
  epsilon?: number;
  /**
   * `torch` (default): p ← p·(1 − lr_t·wd), PyTorch's AdamW. `composer`: p ← p·(1 − wd·lr_t/lr_peak), composer's
   * DecoupledAdamW used by the original M2-BERT yamls (there wd 1e-5 is an absolute per-step decay).
   */
  weightDecayMode?: WeightDecayMode;
  /** Extra groups, tried in order. */
  groups?: ParameterGroup[];
}

/** Serialisable optimiser state: the step count and the two moment tensors of every parameter. */
export interface AdamWState {
  /** Number of updates applied so far. */
  step: number;
  /** First moments m by parameter name. */
  firstMoments: Map<string, tf.Tensor>;
  /** Second moments v by parameter name. */
  secondMoments: Map<string, tf.Tensor>;
}

interface Slot {
  group: { name: string; lr: number; weightDecay: number };
  m: tf.Variable;
  v: tf.Variable;
}

/**
 * The M2 optimiser groups of §2.11 for parameter names in the original key style: children of
 * `implicit_filter` (its Linears and the shared Sin `freq`) get lr 1e-3 and wd 0.1; the filters' positional
 * features `z` get lr 1e-5 and wd 0; everything else, including `implicit_filter_rev`, stays in the default group.
 *
 * @example
 * m2FilterGroups()[0].match('blocks.0.mixer.filter_fn.implicit_filter.1.freq'); // → true
 * m2FilterGroups()[0].match('bert.encoder.layer.0.attention.filter_fn.implicit_filter_rev.0.weight'); // → false
 */
export function m2FilterGroups(): ParameterGroup[] {
  return [
    { name: 'filter-z', match: (name) => /(^|\.)pos_emb\.z$|(^|\.)z$/.test(name), lr: 1e-5, weightDecay: 0 },
    { name: 'implicit-filter', match: (name) => /(^|\.)implicit_filter\./.test(name), lr: 1e-3, weightDecay: 0.1 },
  ];
}

/**
 * AdamW with decoupled weight decay and parameter groups.
 *
 * For each parameter p with gradient g at step t, with η = lr_group · multiplier:
 * p ← p·(1 − decay); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − η/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
 *
 * @example
 * const opt = new AdamW(new Map([['w', w]]), { lr: 1e-3, weightDecay: 0.01 });
 * opt.applyGradients(new Map([['w', grad]]), 1); // one update at the peak learning rate
 */
export class AdamW {
  private readonly slots = new Map<string, Slot>();
  private readonly options: Required<Omit<AdamWOptions, 'groups'>>;
  private currentStep = 0;

  /**
   * @param parameters - Trainable variables by name.
   * @param options - {@link AdamWOptions}.
   * @throws InvalidArgumentError on a non-positive lr, β outside [0, 1) or a negative decay.
   */
  constructor(readonly parameters: Map<string, tf.Variable>, options: AdamWOptions) {
    this.options = {
      lr: options.lr,
      weightDecay: options.weightDecay ?? 0,
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.98,
      epsilon: options.epsilon ?? 1e-6,
      weightDecayMode: options.weightDecayMode ?? 'torch',
    };
    const { lr, weightDecay, beta1, beta2, epsilon } = this.options;
    if (!(lr > 0) || !(weightDecay >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(epsilon > 0)) {
      throw new InvalidArgumentError(
        `AdamW: need lr > 0, weightDecay ≥ 0, betas in [0, 1), epsilon > 0; got lr ${lr}, wd ${weightDecay}, betas ${beta1}/${beta2}, eps ${epsilon}.`,
      );
    }
    const groups = options.groups ?? [];
    for (const [name, variable] of parameters) {
      const group = groups.find((g) => g.match(name)) ?? { name: 'default', lr, weightDecay };
      // tf.variable shares the initial tensor's data but leaves that tensor alive: tidy frees it (variables are kept).
      this.slots.set(name, {
        group: { name: group.name, lr: group.lr, weightDecay: group.weightDecay },
        m: tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
        v: tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
      });
    }
  }

  /** Updates applied so far. */
  get step(): number {
    return this.currentStep;
  }

  /** Which group each parameter landed in (for logs and tests). */
  groupOf(name: string): string | undefined {
    return this.slots.get(name)?.group.name;
  }

  /** Number of parameters per group. */
  groupSizes(): Record<string, number> {
    const sizes: Record<string, number> = {};
    for (const [name, slot] of this.slots) sizes[slot.group.name] = (sizes[slot.group.name] ?? 0) + this.parameters.get(name)!.size;
    return sizes;
  }

  /**
   * Applies one update.
   * @param gradients - Gradient per parameter name (parameters without one are left alone, moments included).
   * @param multiplier - Learning-rate multiplier from the schedule.
   */
  applyGradients(gradients: Map<string, tf.Tensor>, multiplier: number): void {
    this.currentStep += 1;
    const t = this.currentStep;
    const { beta1, beta2, epsilon, weightDecayMode } = this.options;
    const biasCorrection1 = 1 - beta1 ** t;
    const sqrtBiasCorrection2 = Math.sqrt(1 - beta2 ** t);
    tf.tidy(() => {
      for (const [name, slot] of this.slots) {
        const g = gradients.get(name);
        if (!g) continue;
        const p = this.parameters.get(name)!;
        const lrT = slot.group.lr * multiplier;
        const decay = weightDecayMode === 'torch' ? lrT * slot.group.weightDecay : multiplier * slot.group.weightDecay;
        const m = tf.add(tf.mul(slot.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(slot.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denominator = tf.add(tf.div(tf.sqrt(v), sqrtBiasCorrection2), epsilon);
        const decayed = decay === 0 ? p : tf.mul(p, 1 - decay);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denominator), lrT / biasCorrection1)));
        slot.m.assign(m);
        slot.v.assign(v);
      }
    });
  }

  /** A copy of the state (caller disposes the tensors). */
  getState(): AdamWState {
    const firstMoments = new Map<string, tf.Tensor>();
    const secondMoments = new Map<string, tf.Tensor>();
    for (const [name, slot] of this.slots) {
      firstMoments.set(name, tf.clone(slot.m));
      secondMoments.set(name, tf.clone(slot.v));
    }
    return { step: this.currentStep, firstMoments, secondMoments };
  }

  /**
   * Restores a state saved by {@link getState} (tensors are copied, not taken).
   * @throws InvalidArgumentError when a parameter's moments are missing or misshapen.
   */
  setState(state: AdamWState): void {
    for (const [name, slot] of this.slots) {
      const m = state.firstMoments.get(name);
      const v = state.secondMoments.get(name);
      if (!m || !v || !sameShape(m.shape, slot.m.shape) || !sameShape(v.shape, slot.v.shape)) {
        throw new InvalidArgumentError(`AdamW.setState: moments of "${name}" are missing or not of shape [${slot.m.shape.join(', ')}].`);
      }
      slot.m.assign(m);
      slot.v.assign(v);
    }
    this.currentStep = state.step;
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const slot of this.slots.values()) {
      slot.m.dispose();
      slot.v.dispose();
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Scales gradients so that their global L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`:
 * coefficient maxNorm / (norm + 1e-6), capped at 1).
 *
 * @param gradients - Gradients by name (not disposed).
 * @param maxNorm - Largest allowed global norm; `Infinity` only measures.
 * @returns The norm before clipping and the clipped gradients (new tensors; caller disposes). Asynchronous: the norm
 *   is read back without `dataSync`, which webgpu in Node does not have.
 * @example
 * (await clipByGlobalNorm(new Map([['a', tf.tensor([3, 4])]]), 1)).norm; // → 5
 */
export async function clipByGlobalNorm(gradients: Map<string, tf.Tensor>, maxNorm: number): Promise<{ norm: number; clipped: Map<string, tf.Tensor> }> {
  // tf.addN over every gradient: on webgpu, setupBackend's AddN guard splits the inputs (one dispatch binds ≤ 7).
  const squares = tf.tidy(() => tf.addN([...gradients.values()].map((g) => tf.sum(tf.square(g)))));
  let norm: number;
  try {
    norm = Math.sqrt((await squares.data())[0]);
  } finally {
    squares.dispose();
  }
  const coefficient = Number.isFinite(maxNorm) ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  const clipped = new Map<string, tf.Tensor>();
  for (const [name, g] of gradients) clipped.set(name, coefficient === 1 ? tf.clone(g) : tf.mul(g, coefficient));
  return { norm, clipped };
}
