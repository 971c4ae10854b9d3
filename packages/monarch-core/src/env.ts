// Environment switches (Node's process.env), read safely where there is no `process` (browsers, workers).

/**
 * An environment setting, or undefined where none is set or there is no `process` (browsers).
 *
 * @param name - The variable's name, e.g. `M2_MIXER_CHANNEL_FIRST`.
 * @returns Its value, or undefined.
 * @example
 * envSetting('M2_FUSED_LONG_CONV'); // → '0' when the fused webgpu kernels are switched off
 */
export function envSetting(name: string): string | undefined {
  return typeof process === 'undefined' ? undefined : process.env?.[name];
}

/** Whether `M2_FUSED_LONG_CONV=0` switches the fused webgpu kernels off (for comparisons with the stock-op path). */
export function fusedKernelsOff(): boolean {
  return envSetting('M2_FUSED_LONG_CONV') === '0';
}
