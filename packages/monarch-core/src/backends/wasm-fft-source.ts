// WebAssembly (SIMD) source of monarch-core's FFT long convolution for the wasm backend (the CPU analogue of
// webgpu-long-conv.ts): per row, y = irfft(rfft(u, N)·K̂)[:L] + D⊙u as ONE pass over a small scratch block: real
// input packed as N/2 complex values, radix-4 Stockham stages (a radix-2 one when log2(N/2) is odd), the real-FFT
// split fused with the spectrum product and the inverse's real packing, the same forward FFT for the inverse (by
// conjugation), unpacking + D⊙u on the way out. O(N log N) instead of the Monarch DFT's O(N·√N) matMuls, and the
// data never leaves the heap. The same pieces make kernel spectra (taps placed on the circle here) and the kernels'
// gradient (Σ_b rfft(dy)·conj rfft(u), inverted once per channel group).
//
// Vectorisation: the four SIMD lanes hold four channels (rows c0..c0+3 of one batch element), so every butterfly is
// scalar-shaped code on f32x4 values and the twiddles are splats. A complex "element" j of the scratch is 32 bytes:
// re of the 4 lanes, then im of the 4 lanes. Spectra are stored the same way: [⌈C/4⌉, N/2 + 1, re4 | im4] floats.
//
// Scaling: the forward split works with doubled X (no 1/2), and spectra are stored as K̂/(2N) so that the inverse
// comes out with its 1/N.
//
// The binary is committed as base64 in wasm-fft-binary.ts (no compiler at run time); regenerate it with
// `node --import tsx packages/monarch-core/scripts/build-wasm-simd.ts` after editing this file (a test checks that
// the committed bytes are this source compiled by wabt).

const g = (name: string) => `(local.get $${name})`;
const set = (name: string, value: string) => `(local.set $${name} ${value})`;
const f4 = (op: string, ...xs: string[]) => `(f32x4.${op} ${xs.join(' ')})`;
const i32 = (op: string, ...xs: string[]) => `(i32.${op} ${xs.join(' ')})`;
const c = (v: number) => `(i32.const ${v})`;
const load = (addr: string, offset = 0) => `(v128.load offset=${offset} ${addr})`;
const store = (addr: string, offset: number, value: string) => `(v128.store offset=${offset} ${addr} ${value})`;
const splat = (v: string) => `(v128.const f32x4 ${v} ${v} ${v} ${v})`;

/** `(local $a v128) …` for complex names (each name → name_r, name_i). */
function complexLocals(...names: string[]): string {
  return names.map((n) => `(local $${n}r v128) (local $${n}i v128)`).join(' ');
}

/** Loads complex element at `addr` into locals `name`r / `name`i. */
function loadComplex(name: string, addr: string): string {
  return `${set(`${name}r`, load(addr))} ${set(`${name}i`, load(addr, 16))}`;
}

/** dst = a + b, or a − b. */
function addComplex(dst: string, a: string, b: string, op: 'add' | 'sub'): string {
  return `${set(`${dst}r`, f4(op, g(`${a}r`), g(`${b}r`)))} ${set(`${dst}i`, f4(op, g(`${a}i`), g(`${b}i`)))}`;
}

/** Stores (re, im) expressions at `addr` + offset·32. */
function storeComplex(addr: string, re: string, im: string): string {
  return `${store(addr, 0, re)} ${store(addr, 16, im)}`;
}

/** Real and imaginary parts of a·w (complex locals). */
function mulParts(a: string, w: string): [string, string] {
  return [
    f4('sub', f4('mul', g(`${a}r`), g(`${w}r`)), f4('mul', g(`${a}i`), g(`${w}i`))),
    f4('add', f4('mul', g(`${a}r`), g(`${w}i`)), f4('mul', g(`${a}i`), g(`${w}r`))),
  ];
}

/** Splat twiddle (float32 pair at byte address `addr`) into complex local `name`. */
function loadTwiddle(name: string, addr: string): string {
  return `${set(`${name}r`, `(f32x4.splat (f32.load ${addr}))`)} ${set(`${name}i`, `(f32x4.splat (f32.load offset=4 ${addr}))`)}`;
}

/** `for (name = from; name < to; name++) { body }` with labels from the name. */
function loop(name: string, from: string, to: string, body: string, step = 1): string {
  return `${set(name, from)}
    (block $done_${name} (loop $next_${name}
      (br_if $done_${name} ${i32('ge_u', g(name), to)})
      ${body}
      ${set(name, i32('add', g(name), c(step)))}
      (br $next_${name})))`;
}

/**
 * $fft: forward complex FFT of M (a power of two) four-lane elements, Stockham (out of place, natural order in
 * and out), ping-ponging between $x and $y; returns the buffer holding the result. Twiddles: float32 pairs
 * W_M^j = (cos 2πj/M, −sin 2πj/M), j < M, at $tw. Stage with sub-length n and stride s (n·s = M), m = n/4:
 * y[q + s(4p + k)] = W_n^{kp} · Σ_r x[q + s(p + r·m)]·(−i)^{kr}.
 */
const FFT = `
  (func $fft (param $x i32) (param $y i32) (param $tw i32) (param $M i32) (result i32)
    (local $n i32) (local $s i32) (local $m i32) (local $p i32) (local $q i32) (local $t i32)
    (local $in i32) (local $out i32) (local $sm i32) (local $ss i32) (local $tmp i32)
    ${complexLocals('w1', 'w2', 'w3', 'a0', 'a1', 'a2', 'a3', 't0', 't1', 't2', 't3', 'b')}
    ${set('n', g('M'))}
    ${set('s', c(1))}
    (block $done_stage (loop $next_stage
      (br_if $done_stage ${i32('lt_u', g('n'), c(4))})
      ${set('m', i32('shr_u', g('n'), c(2)))}
      ${set('sm', i32('shl', i32('mul', g('s'), g('m')), c(5)))}
      ${set('ss', i32('shl', g('s'), c(5)))}
      ${loop('p', c(0), g('m'), `
        ${set('t', i32('shl', i32('mul', g('p'), g('s')), c(3)))}
        ${loadTwiddle('w1', i32('add', g('tw'), g('t')))}
        ${loadTwiddle('w2', i32('add', g('tw'), i32('shl', g('t'), c(1))))}
        ${loadTwiddle('w3', i32('add', g('tw'), i32('mul', g('t'), c(3))))}
        ${set('in', i32('add', g('x'), i32('shl', i32('mul', g('s'), g('p')), c(5))))}
        ${set('out', i32('add', g('y'), i32('shl', i32('mul', g('s'), i32('shl', g('p'), c(2))), c(5))))}
        ${loop('q', c(0), g('s'), `
          ${loadComplex('a0', g('in'))}
          ${loadComplex('a1', i32('add', g('in'), g('sm')))}
          ${loadComplex('a2', i32('add', g('in'), i32('shl', g('sm'), c(1))))}
          ${loadComplex('a3', i32('add', g('in'), i32('mul', g('sm'), c(3))))}
          ${addComplex('t0', 'a0', 'a2', 'add')}
          ${addComplex('t1', 'a0', 'a2', 'sub')}
          ${addComplex('t2', 'a1', 'a3', 'add')}
          ;; t3 = −i·(a1 − a3)
          ${set('t3r', f4('sub', g('a1i'), g('a3i')))}
          ${set('t3i', f4('sub', g('a3r'), g('a1r')))}
          ${storeComplex(g('out'), f4('add', g('t0r'), g('t2r')), f4('add', g('t0i'), g('t2i')))}
          ${addComplex('b', 't1', 't3', 'add')}
          ${storeComplex(i32('add', g('out'), g('ss')), ...mulParts('b', 'w1'))}
          ${addComplex('b', 't0', 't2', 'sub')}
          ${storeComplex(i32('add', g('out'), i32('shl', g('ss'), c(1))), ...mulParts('b', 'w2'))}
          ${addComplex('b', 't1', 't3', 'sub')}
          ${storeComplex(i32('add', g('out'), i32('mul', g('ss'), c(3))), ...mulParts('b', 'w3'))}
          ${set('in', i32('add', g('in'), c(32)))}
          ${set('out', i32('add', g('out'), c(32)))}`)}`)}
      ${set('tmp', g('x'))} ${set('x', g('y'))} ${set('y', g('tmp'))}
      ${set('n', g('m'))}
      ${set('s', i32('shl', g('s'), c(2)))}
      (br $next_stage)))
    (if ${i32('eq', g('n'), c(2))} (then
      ${set('ss', i32('shl', g('s'), c(5)))}
      ${set('in', g('x'))}
      ${set('out', g('y'))}
      ${loop('q', c(0), g('s'), `
        ${loadComplex('a0', g('in'))}
        ${loadComplex('a1', i32('add', g('in'), g('ss')))}
        ${storeComplex(g('out'), f4('add', g('a0r'), g('a1r')), f4('add', g('a0i'), g('a1i')))}
        ${storeComplex(i32('add', g('out'), g('ss')), f4('sub', g('a0r'), g('a1r')), f4('sub', g('a0i'), g('a1i')))}
        ${set('in', i32('add', g('in'), c(32)))}
        ${set('out', i32('add', g('out'), c(32)))}`)}
      ${set('tmp', g('x'))} ${set('x', g('y'))} ${set('y', g('tmp'))}))
    ${g('x')})`;

/** f32x4 lanes [i, j, k, l] of the pair (a, b) (0–3 from a, 4–7 from b), as an i8x16.shuffle. */
function shuffle(a: string, b: string, lanes: number[]): string {
  const bytes = lanes.flatMap((lane) => [0, 1, 2, 3].map((k) => 4 * lane + k));
  return `(i8x16.shuffle ${bytes.join(' ')} ${a} ${b})`;
}

/** 4×4 transpose of v128 locals r0..r3 into t0..t3 (via h0..h3): t_k lane l = r_l lane k. */
const TRANSPOSE = `
      ${set('h0', shuffle(g('r0'), g('r1'), [0, 4, 1, 5]))}
      ${set('h1', shuffle(g('r2'), g('r3'), [0, 4, 1, 5]))}
      ${set('h2', shuffle(g('r0'), g('r1'), [2, 6, 3, 7]))}
      ${set('h3', shuffle(g('r2'), g('r3'), [2, 6, 3, 7]))}
      ${set('t0', shuffle(g('h0'), g('h1'), [0, 1, 4, 5]))}
      ${set('t1', shuffle(g('h0'), g('h1'), [2, 3, 6, 7]))}
      ${set('t2', shuffle(g('h2'), g('h3'), [0, 1, 4, 5]))}
      ${set('t3', shuffle(g('h2'), g('h3'), [2, 3, 6, 7]))}`;
const TRANSPOSE_LOCALS = [0, 1, 2, 3].map((k) => `(local $r${k} v128) (local $h${k} v128) (local $t${k} v128)`).join(' ');

/** The byte offset of float i of a lane in the element layout: (i >> 1)·32 + (i & 1)·16. */
const elementOffset = (i: string) => i32('add', i32('shl', i32('shr_u', i, c(1)), c(5)), i32('shl', i32('and', i, c(1)), c(4)));

/**
 * $load: packs up to four real rows (lane l: floats at $src + l·$stride, $len of them) as M complex elements
 * z[j] = x[2j] + i·x[2j+1] into $dst, zero beyond $len. Four floats of the four rows at a time: samples i..i+3 are
 * the four consecutive vectors at $dst + i·16 after a 4×4 transpose (unused lanes repeat the last row).
 */
const LOAD = `
  (func $load (param $dst i32) (param $src i32) (param $stride i32) (param $lanes i32) (param $len i32) (param $M i32)
    (local $j i32) (local $l i32) (local $i i32) (local $to i32) (local $from i32) (local $vec i32)
    (local $s1 i32) (local $s2 i32) (local $s3 i32) ${TRANSPOSE_LOCALS}
    ${set('vec', i32('and', g('len'), c(-4)))}
    ${loop('j', i32('shl', g('vec'), c(4)), i32('shl', g('M'), c(5)), `${store(i32('add', g('dst'), g('j')), 0, splat('0'))}`, 16)}
    ${set('s1', i32('mul', `(select ${c(1)} ${i32('sub', g('lanes'), c(1))} ${i32('gt_u', g('lanes'), c(1))})`, g('stride')))}
    ${set('s2', i32('mul', `(select ${c(2)} ${i32('sub', g('lanes'), c(1))} ${i32('gt_u', g('lanes'), c(2))})`, g('stride')))}
    ${set('s3', i32('mul', `(select ${c(3)} ${i32('sub', g('lanes'), c(1))} ${i32('gt_u', g('lanes'), c(3))})`, g('stride')))}
    ${loop('i', c(0), g('vec'), `
      ${set('from', i32('add', g('src'), i32('shl', g('i'), c(2))))}
      ${set('r0', load(g('from')))}
      ${set('r1', load(i32('add', g('from'), g('s1'))))}
      ${set('r2', load(i32('add', g('from'), g('s2'))))}
      ${set('r3', load(i32('add', g('from'), g('s3'))))}
      ${TRANSPOSE}
      ${set('to', i32('add', g('dst'), i32('shl', g('i'), c(4))))}
      ${store(g('to'), 0, g('t0'))} ${store(g('to'), 16, g('t1'))} ${store(g('to'), 32, g('t2'))} ${store(g('to'), 48, g('t3'))}`, 4)}
    ${loop('l', c(0), g('lanes'), `
      ${set('to', i32('add', g('dst'), i32('shl', g('l'), c(2))))}
      ${set('from', i32('add', g('src'), i32('mul', g('l'), g('stride'))))}
      ${loop('i', g('vec'), g('len'), `
        (f32.store ${i32('add', g('to'), elementOffset(g('i')))} (f32.load ${i32('add', g('from'), i32('shl', g('i'), c(2)))}))`)}`)})`;

/**
 * $unpack: the inverse's output rows. $R holds conj(y_even + i·y_odd) (the inverse ran as a forward FFT of the
 * conjugate), so x[2j] = re, x[2j+1] = −im; writes out[l][i] = x[i] + d[l]·u[l][i] for i < $len (no D when $skip
 * is 0). Four samples of the four lanes at a time (a 4×4 transpose), the last len mod 4 one by one.
 */
const UNPACK = `
  (func $unpack (param $R i32) (param $out i32) (param $src i32) (param $skip i32) (param $stride i32) (param $lanes i32) (param $len i32)
    (local $l i32) (local $i i32) (local $d f32) (local $v f32) (local $from i32) (local $row i32) (local $to i32) (local $vec i32)
    (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128) ${TRANSPOSE_LOCALS}
    ${set('vec', i32('and', g('len'), c(-4)))}
    (if ${g('skip')} (then
      ${[0, 1, 2, 3].map((k) => set(`d${k}`, `(if (result v128) ${i32('gt_u', g('lanes'), c(k))} (then (f32x4.splat (f32.load offset=${4 * k} ${g('skip')}))) (else ${splat('0')}))`)).join('\n      ')}))
    ${loop('i', c(0), g('vec'), `
      ${set('from', i32('add', g('R'), i32('shl', g('i'), c(4))))}
      ${set('r0', load(g('from')))}
      ${set('r1', f4('neg', load(g('from'), 16)))}
      ${set('r2', load(g('from'), 32))}
      ${set('r3', f4('neg', load(g('from'), 48)))}
      ${TRANSPOSE}
      ${[0, 1, 2, 3].map((k) => `
      (if ${i32('gt_u', g('lanes'), c(k))} (then
        ${set('to', i32('add', i32('mul', c(k), g('stride')), i32('shl', g('i'), c(2))))}
        (if ${g('skip')} (then ${set(`t${k}`, f4('add', g(`t${k}`), f4('mul', g(`d${k}`), load(i32('add', g('src'), g('to'))))))}))
        ${store(i32('add', g('out'), g('to')), 0, g(`t${k}`))}))`).join('')}`, 4)}
    ${loop('l', c(0), g('lanes'), `
      ${set('d', `(if (result f32) ${g('skip')} (then (f32.load ${i32('add', g('skip'), i32('shl', g('l'), c(2)))})) (else (f32.const 0)))`)}
      ${set('from', i32('add', g('R'), i32('shl', g('l'), c(2))))}
      ${set('row', i32('mul', g('l'), g('stride')))}
      ${loop('i', g('vec'), g('len'), `
        ${set('v', `(f32.load ${i32('add', g('from'), elementOffset(g('i')))})`)}
        ${set('v', `(select (f32.neg ${g('v')}) ${g('v')} ${i32('and', g('i'), c(1))})`)}
        ${set('to', i32('add', g('row'), i32('shl', g('i'), c(2))))}
        (if ${g('skip')} (then ${set('v', `(f32.add ${g('v')} (f32.mul ${g('d')} (f32.load ${i32('add', g('src'), g('to'))})))`)}))
        (f32.store ${i32('add', g('out'), g('to'))} ${g('v')})`)}`)})`;

/**
 * $place: up to four kernel rows placed on the N-point circle as M complex elements (like $load): lane l gets
 * head[l][t] at position t (t < $headLen) and tail[l][t] (or tail[l][tailLen − 1 − t] when $reverse) at position
 * $tailAt + t (t < $tailLen); zero elsewhere and in unused lanes. Strides are bytes between rows.
 */
const PLACE = `
  (func $place (param $dst i32) (param $head i32) (param $headLen i32) (param $headStride i32) (param $tail i32) (param $tailLen i32)
      (param $tailStride i32) (param $tailAt i32) (param $reverse i32) (param $lanes i32) (param $M i32)
    (local $j i32) (local $l i32) (local $t i32) (local $to i32) (local $from i32)
    ${loop('j', c(0), i32('shl', g('M'), c(5)), `${store(i32('add', g('dst'), g('j')), 0, splat('0'))}`, 16)}
    ${loop('l', c(0), g('lanes'), `
      ${set('to', i32('add', g('dst'), i32('shl', g('l'), c(2))))}
      ${set('from', i32('add', g('head'), i32('mul', g('l'), g('headStride'))))}
      ${loop('t', c(0), g('headLen'), `
        (f32.store ${i32('add', g('to'), elementOffset(g('t')))} (f32.load ${i32('add', g('from'), i32('shl', g('t'), c(2)))}))`)}
      ${set('from', i32('add', g('tail'), i32('mul', g('l'), g('tailStride'))))}
      ${loop('t', c(0), g('tailLen'), `
        (f32.store ${i32('add', g('to'), elementOffset(i32('add', g('tailAt'), g('t'))))}
          (f32.load ${i32('add', g('from'), i32('shl', `(select ${i32('sub', i32('sub', g('tailLen'), c(1)), g('t'))} ${g('t')} ${g('reverse')})`, c(2)))}))`)}`)})`;

/**
 * The real-FFT split for the pair (k, M − k) from Z = FFT(z) at $R: a = Z[k], b = conj Z[M − k],
 * E = a + b, O = −i(a − b), P = W_N^k·O; 2X[k] = E + P, 2X[M − k] = conj(E − P). Leaves (xk, xm) in locals.
 */
function split(): string {
  return `
        ${loadComplex('a', i32('add', g('R'), i32('shl', g('k'), c(5))))}
        ${loadComplex('z', i32('add', g('R'), i32('shl', g('km'), c(5))))}
        ${loadTwiddle('w', i32('add', g('tw2'), i32('shl', g('k'), c(3))))}
        ${set('er', f4('add', g('ar'), g('zr')))}
        ${set('ei', f4('sub', g('ai'), g('zi')))}
        ;; O = −i·(a − conj z) = (im(a) + im(z), −(re(a) − re(z)))
        ${set('or', f4('add', g('ai'), g('zi')))}
        ${set('oi', f4('sub', g('zr'), g('ar')))}
        ${set('pr', mulParts('o', 'w')[0])}
        ${set('pi', mulParts('o', 'w')[1])}
        ${set('xkr', f4('add', g('er'), g('pr')))}
        ${set('xki', f4('add', g('ei'), g('pi')))}
        ${set('xmr', f4('sub', g('er'), g('pr')))}
        ${set('xmi', f4('sub', g('pi'), g('ei')))}`;
}

const SPLIT_LOCALS = `(local $k i32) (local $km i32) (local $half i32) ${complexLocals('a', 'z', 'w', 'e', 'o', 'p', 'xk', 'xm')}`;

/**
 * $spectrum: from Z = FFT(z) of a real row (at $R), X[k] for k = 0..M, times $scale, stored at $K as M + 1
 * complex elements.
 */
const ANALYSE = `
  (func $analyse (param $R i32) (param $K i32) (param $tw2 i32) (param $M i32) (param $scale v128)
    ${SPLIT_LOCALS}
    ${loadComplex('a', g('R'))}
    ;; 2X[0] = 2(re + im), 2X[M] = 2(re − im), both real
    ${storeComplex(g('K'), f4('mul', f4('mul', f4('add', g('ar'), g('ai')), splat('2')), g('scale')), splat('0'))}
    ${storeComplex(i32('add', g('K'), i32('shl', g('M'), c(5))), f4('mul', f4('mul', f4('sub', g('ar'), g('ai')), splat('2')), g('scale')), splat('0'))}
    ${set('half', i32('shr_u', g('M'), c(1)))}
    ${loop('k', c(1), i32('add', g('half'), c(1)), `
      ${set('km', i32('sub', g('M'), g('k')))}
      ${split()}
      ${storeComplex(i32('add', g('K'), i32('shl', g('k'), c(5))), f4('mul', g('xkr'), g('scale')), f4('mul', g('xki'), g('scale')))}
      ${storeComplex(i32('add', g('K'), i32('shl', g('km'), c(5))), f4('mul', g('xmr'), g('scale')), f4('mul', g('xmi'), g('scale')))}`)})`;

/** The inverse's real packing for the pair (k, M − k) from Y[k], Y[M − k] (locals yk, ym) and w = W_N^k: see $product. */
const PACK_INVERSE = `
      ;; S = Y[k] + conj Y[M−k], D = Y[k] − conj Y[M−k]
      ${set('sr', f4('add', g('ykr'), g('ymr')))}
      ${set('si', f4('sub', g('yki'), g('ymi')))}
      ${set('dr', f4('sub', g('ykr'), g('ymr')))}
      ${set('di', f4('add', g('yki'), g('ymi')))}
      ;; Q = i·conj(w)·D: conj(w)·D = (wr·dr + wi·di, wr·di − wi·dr); times i → (−(wr·di − wi·dr), wr·dr + wi·di)
      ${set('qr', f4('sub', f4('mul', g('wi'), g('dr')), f4('mul', g('wr'), g('di'))))}
      ${set('qi', f4('add', f4('mul', g('wr'), g('dr')), f4('mul', g('wi'), g('di'))))}
      ;; stored conjugated: conj(S + Q) at k, S − Q at M − k
      ${storeComplex(i32('add', g('W'), i32('shl', g('k'), c(5))), f4('add', g('sr'), g('qr')), f4('neg', f4('add', g('si'), g('qi'))))}
      ${storeComplex(i32('add', g('W'), i32('shl', g('km'), c(5))), f4('sub', g('sr'), g('qr')), f4('sub', g('si'), g('qi')))}`;

/** k = 0 of the inverse's packing: conj Z'[0] = conj((Y0 + YM) + i(Y0 − YM)) to $W (locals y0, yM). */
const PACK_INVERSE_0 = storeComplex(g('W'),
  f4('sub', f4('add', g('y0r'), g('yMr')), f4('sub', g('y0i'), g('yMi'))),
  f4('neg', f4('add', f4('add', g('y0i'), g('yMi')), f4('sub', g('y0r'), g('yMr')))));

/**
 * $synth: the inverse's real packing of a half spectrum Y[0..M] at $Y (Hermitian: the spectrum of a real row) into
 * conj Z' at $W, as $product does after its product.
 */
const SYNTH = `
  (func $synth (param $Y i32) (param $W i32) (param $tw2 i32) (param $M i32)
    (local $k i32) (local $km i32) (local $half i32) ${complexLocals('w', 'yk', 'ym', 's', 'd', 'q', 'y0', 'yM')}
    ${loadComplex('y0', g('Y'))}
    ${loadComplex('yM', i32('add', g('Y'), i32('shl', g('M'), c(5))))}
    ${PACK_INVERSE_0}
    ${set('half', i32('shr_u', g('M'), c(1)))}
    ${loop('k', c(1), i32('add', g('half'), c(1)), `
      ${set('km', i32('sub', g('M'), g('k')))}
      ${loadTwiddle('w', i32('add', g('tw2'), i32('shl', g('k'), c(3))))}
      ${loadComplex('yk', i32('add', g('Y'), i32('shl', g('k'), c(5))))}
      ${loadComplex('ym', i32('add', g('Y'), i32('shl', g('km'), c(5))))}
      ${PACK_INVERSE}`)})`;

/**
 * $product: the spectrum product and the inverse's real packing. From Z = FFT(z) at $R and the kernel spectrum at
 * $K (conjugated when $sign = −1): Y[k] = X[k]·K[k] (doubled X, K stored /2N); with c = conj Y[M − k]:
 * S = Y[k] + c, D = Y[k] − c, Q = i·conj(W_N^k)·D; Z'[k] = S + Q, Z'[M − k] = conj(S − Q). Writes conj Z' to $W
 * (the inverse runs as a forward FFT of the conjugate).
 */
const PRODUCT = `
  (func $product (param $R i32) (param $W i32) (param $K i32) (param $tw2 i32) (param $M i32) (param $sign v128)
    ${SPLIT_LOCALS} ${complexLocals('kk', 'km', 'yk', 'ym', 's', 'd', 'q', 'y0', 'yM')} (local $x0 v128) (local $xM v128)
    ;; k = 0: 2X[0] = 2(re + im), 2X[M] = 2(re − im); Z'[0] = (Y0 + YM) + i(Y0 − YM)
    ${loadComplex('a', g('R'))}
    ${set('x0', f4('mul', f4('add', g('ar'), g('ai')), splat('2')))}
    ${set('xM', f4('mul', f4('sub', g('ar'), g('ai')), splat('2')))}
    ${loadComplex('kk', g('K'))}
    ${loadComplex('km', i32('add', g('K'), i32('shl', g('M'), c(5))))}
    ${set('y0r', f4('mul', g('x0'), g('kkr')))}
    ${set('y0i', f4('mul', f4('mul', g('x0'), g('kki')), g('sign')))}
    ${set('yMr', f4('mul', g('xM'), g('kmr')))}
    ${set('yMi', f4('mul', f4('mul', g('xM'), g('kmi')), g('sign')))}
    ${PACK_INVERSE_0}
    ${set('half', i32('shr_u', g('M'), c(1)))}
    ${loop('k', c(1), i32('add', g('half'), c(1)), `
      ${set('km', i32('sub', g('M'), g('k')))}
      ${split()}
      ${loadComplex('kk', i32('add', g('K'), i32('shl', g('k'), c(5))))}
      ${loadComplex('km', i32('add', g('K'), i32('shl', g('km'), c(5))))}
      ${set('kki', f4('mul', g('kki'), g('sign')))}
      ${set('kmi', f4('mul', g('kmi'), g('sign')))}
      ${set('ykr', mulParts('xk', 'kk')[0])}
      ${set('yki', mulParts('xk', 'kk')[1])}
      ${set('ymr', mulParts('xm', 'km')[0])}
      ${set('ymi', mulParts('xm', 'km')[1])}
      ${PACK_INVERSE}`)})`;

/** The calling thread's scratch block index (its own: threads claim units dynamically, wasm-parallel.ts). */
const SLOT = g('slot');

/**
 * The module's text. `shared` picks the memory import (threaded tfjs-wasm has a shared memory, the single-threaded
 * build a plain one; an import must match). Exports (pointers are byte offsets into the tfjs heap; M = N/2 is a
 * power of two; the calling thread's scratch block is 2·M·32 bytes at $scratch + slot·2·M·32; units [lo, hi)):
 * - spectrum(head, headLen, headStride, tail, tailLen, tailStride, tailAt, reverse, dst, scratch, tw, C, M, slot,
 *   lo, hi): kernel rows placed on the N-circle ($place: head at 0, tail at tailAt, reversed or not) →
 *   K̂/(2N) at dst [⌈C/4⌉, M + 1, 8]; units = channel groups of four.
 * - conv(u, spec, skip, out, scratch, tw, C, L, M, conj, slot, lo, hi): u [B, C, L] → out [B, C, L],
 *   out = irfft(rfft(u, N)·K̂)[:L] (+ D⊙u when skip ≠ 0; K̂ conjugated when conj ≠ 0); units = (b, channel group).
 * - kernelGrad(u, dy, out, scratch, tw, B, C, L, M, slot, lo, hi): the kernel's gradient on the N-circle,
 *   out [C, N] = Σ_b circular correlation of dy with u (irfft(Σ_b rfft(dy)·conj rfft(u))); scratch slots of
 *   4·(M + 1)·32 bytes; units = channel groups of four.
 * Twiddles at tw: W_M^j for j < M, then W_N^k for k ≤ M/2, float32 (cos, −sin) pairs.
 */
export function fftWat(shared: boolean): string {
  return `(module
  (import "env" "memory" (memory 0${shared ? ' 65536 shared' : ''}))
  ${FFT}
  ${LOAD}
  ${UNPACK}
  ${PLACE}
  ${ANALYSE}
  ${PRODUCT}
  ${SYNTH}
  (func (export "spectrum") (param $head i32) (param $headLen i32) (param $headStride i32) (param $tail i32) (param $tailLen i32)
      (param $tailStride i32) (param $tailAt i32) (param $reverse i32) (param $dst i32) (param $scratch i32) (param $tw i32) (param $C i32)
      (param $M i32) (param $slot i32) (param $lo i32) (param $hi i32)
    (local $grp i32) (local $c0 i32) (local $lanes i32) (local $A i32) (local $B i32) (local $R i32) (local $scale v128)
    ${set('A', i32('add', g('scratch'), i32('mul', SLOT, i32('shl', g('M'), c(6)))))}
    ${set('B', i32('add', g('A'), i32('shl', g('M'), c(5))))}
    ;; 2X·scale = K̂/(2N): scale = 1/(4N) = 1/(8M)
    ${set('scale', `(f32x4.splat (f32.div (f32.const 1) (f32.convert_i32_u ${i32('shl', g('M'), c(3))})))`)}
    ${loop('grp', g('lo'), g('hi'), `
      ${set('c0', i32('shl', g('grp'), c(2)))}
      ${set('lanes', i32('sub', g('C'), g('c0')))}
      (if ${i32('gt_u', g('lanes'), c(4))} (then ${set('lanes', c(4))}))
      (call $place ${g('A')} ${i32('add', g('head'), i32('mul', g('c0'), g('headStride')))} ${g('headLen')} ${g('headStride')}
        ${i32('add', g('tail'), i32('mul', g('c0'), g('tailStride')))} ${g('tailLen')} ${g('tailStride')} ${g('tailAt')} ${g('reverse')} ${g('lanes')} ${g('M')})
      ${set('R', `(call $fft ${g('A')} ${g('B')} ${g('tw')} ${g('M')})`)}
      (call $analyse ${g('R')} ${i32('add', g('dst'), i32('mul', g('grp'), i32('shl', i32('add', g('M'), c(1)), c(5))))} ${i32('add', g('tw'), i32('shl', g('M'), c(3)))} ${g('M')} ${g('scale')})`)})
  (func (export "conv") (param $u i32) (param $spec i32) (param $skip i32) (param $out i32) (param $scratch i32) (param $tw i32)
      (param $C i32) (param $L i32) (param $M i32) (param $conj i32) (param $slot i32) (param $lo i32) (param $hi i32)
    (local $unit i32) (local $groups i32) (local $b i32) (local $grp i32) (local $c0 i32) (local $lanes i32)
    (local $A i32) (local $B i32) (local $R i32) (local $W i32) (local $row i32) (local $sign v128)
    ${set('A', i32('add', g('scratch'), i32('mul', SLOT, i32('shl', g('M'), c(6)))))}
    ${set('B', i32('add', g('A'), i32('shl', g('M'), c(5))))}
    ${set('groups', i32('shr_u', i32('add', g('C'), c(3)), c(2)))}
    ${set('sign', `(if (result v128) ${g('conj')} (then ${splat('-1')}) (else ${splat('1')}))`)}
    ${loop('unit', g('lo'), g('hi'), `
      ${set('b', i32('div_u', g('unit'), g('groups')))}
      ${set('grp', i32('sub', g('unit'), i32('mul', g('b'), g('groups'))))}
      ${set('c0', i32('shl', g('grp'), c(2)))}
      ${set('lanes', i32('sub', g('C'), g('c0')))}
      (if ${i32('gt_u', g('lanes'), c(4))} (then ${set('lanes', c(4))}))
      ;; byte offset of row (b, c0)
      ${set('row', i32('shl', i32('mul', i32('add', i32('mul', g('b'), g('C')), g('c0')), g('L')), c(2)))}
      (call $load ${g('A')} ${i32('add', g('u'), g('row'))} ${i32('shl', g('L'), c(2))} ${g('lanes')} ${g('L')} ${g('M')})
      ${set('R', `(call $fft ${g('A')} ${g('B')} ${g('tw')} ${g('M')})`)}
      ${set('W', i32('sub', i32('add', g('A'), g('B')), g('R')))}
      (call $product ${g('R')} ${g('W')} ${i32('add', g('spec'), i32('mul', g('grp'), i32('shl', i32('add', g('M'), c(1)), c(5))))} ${i32('add', g('tw'), i32('shl', g('M'), c(3)))} ${g('M')} ${g('sign')})
      ${set('R', `(call $fft ${g('W')} ${g('R')} ${g('tw')} ${g('M')})`)}
      (call $unpack ${g('R')} ${i32('add', g('out'), g('row'))} ${i32('add', g('u'), g('row'))}
        (if (result i32) ${g('skip')} (then ${i32('add', g('skip'), i32('shl', g('c0'), c(2)))}) (else ${c(0)}))
        ${i32('shl', g('L'), c(2))} ${g('lanes')} ${g('L')})`)})
  (func (export "kernelGrad") (param $u i32) (param $dy i32) (param $out i32) (param $scratch i32) (param $tw i32)
      (param $B i32) (param $C i32) (param $L i32) (param $M i32) (param $slot i32) (param $lo i32) (param $hi i32)
    (local $grp i32) (local $b i32) (local $c0 i32) (local $lanes i32) (local $A i32) (local $Bf i32) (local $U i32) (local $S i32)
    (local $R i32) (local $G i32) (local $row i32) (local $k i32) (local $at i32) (local $size i32) (local $scale v128) ${complexLocals('gg', 'uu')}
    ;; slot: four blocks of M + 1 elements: A, B (FFT ping-pong; G lands in the free one), U, S (Σ_b G·conj U)
    ${set('size', i32('shl', i32('add', g('M'), c(1)), c(5)))}
    ${set('A', i32('add', g('scratch'), i32('mul', SLOT, i32('shl', g('size'), c(2)))))}
    ${set('Bf', i32('add', g('A'), g('size')))}
    ${set('U', i32('add', g('Bf'), g('size')))}
    ${set('S', i32('add', g('U'), g('size')))}
    ;; 2U·2G·scale = G·conj(U)/N: the inverse then comes out as the plain circular correlation
    ${set('scale', `(f32x4.splat (f32.div (f32.const 1) (f32.convert_i32_u ${i32('shl', g('M'), c(3))})))`)}
    ${loop('grp', g('lo'), g('hi'), `
      ${set('c0', i32('shl', g('grp'), c(2)))}
      ${set('lanes', i32('sub', g('C'), g('c0')))}
      (if ${i32('gt_u', g('lanes'), c(4))} (then ${set('lanes', c(4))}))
      ${loop('k', c(0), g('size'), `${store(i32('add', g('S'), g('k')), 0, splat('0'))}`, 16)}
      ${loop('b', c(0), g('B'), `
        ${set('row', i32('shl', i32('mul', i32('add', i32('mul', g('b'), g('C')), g('c0')), g('L')), c(2)))}
        (call $load ${g('A')} ${i32('add', g('u'), g('row'))} ${i32('shl', g('L'), c(2))} ${g('lanes')} ${g('L')} ${g('M')})
        ${set('R', `(call $fft ${g('A')} ${g('Bf')} ${g('tw')} ${g('M')})`)}
        (call $analyse ${g('R')} ${g('U')} ${i32('add', g('tw'), i32('shl', g('M'), c(3)))} ${g('M')} ${splat('1')})
        (call $load ${g('A')} ${i32('add', g('dy'), g('row'))} ${i32('shl', g('L'), c(2))} ${g('lanes')} ${g('L')} ${g('M')})
        ${set('R', `(call $fft ${g('A')} ${g('Bf')} ${g('tw')} ${g('M')})`)}
        ${set('G', i32('sub', i32('add', g('A'), g('Bf')), g('R')))}
        (call $analyse ${g('R')} ${g('G')} ${i32('add', g('tw'), i32('shl', g('M'), c(3)))} ${g('M')} ${g('scale')})
        ;; S += G·conj(U)
        ${loop('k', c(0), g('size'), `
          ${loadComplex('gg', i32('add', g('G'), g('k')))}
          ${loadComplex('uu', i32('add', g('U'), g('k')))}
          ${set('at', i32('add', g('S'), g('k')))}
          ${storeComplex(g('at'),
    f4('add', load(g('at')), f4('add', f4('mul', g('ggr'), g('uur')), f4('mul', g('ggi'), g('uui')))),
    f4('add', load(g('at'), 16), f4('sub', f4('mul', g('ggi'), g('uur')), f4('mul', g('ggr'), g('uui')))))}`, 32)}`)}
      (call $synth ${g('S')} ${g('A')} ${i32('add', g('tw'), i32('shl', g('M'), c(3)))} ${g('M')})
      ${set('R', `(call $fft ${g('A')} ${g('Bf')} ${g('tw')} ${g('M')})`)}
      (call $unpack ${g('R')} ${i32('add', g('out'), i32('shl', i32('mul', g('c0'), g('M')), c(3)))} ${c(0)} ${c(0)} ${i32('shl', g('M'), c(3))} ${g('lanes')} ${i32('shl', g('M'), c(1))})`)})
)
`;
}
