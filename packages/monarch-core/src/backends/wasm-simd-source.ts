// WebAssembly (SIMD) source of monarch-core's elementwise wasm kernels: the exact-erf GELU gate, erf, and a Monarch
// DFT stage's twiddle product fused with its digit transpose. The module imports tfjs-backend-wasm's own memory, so
// it works on tensors in place (pointers are byte offsets into the tfjs heap). The same loops in plain JavaScript
// ran at ~90–200 M elements/s; these run 4 lanes at a time without bounds checks.
//
// The binary is committed as base64 in wasm-simd-binary.ts (no compiler at run time); regenerate it with
// `node --import tsx packages/monarch-core/scripts/build-wasm-simd.ts` after editing this file (a test checks that
// the committed bytes are this source compiled by wabt).

/** erf's float32 rational approximation (Eigen / XLA): erf(x) ≈ x·P(x²)/Q(x²), x clamped to [−4, 4]. */
const P = ['-2.72614225801306e-10', '2.77068142495902e-8', '-2.10102402082508e-6', '-5.69250639462346e-5', '-7.34990630326855e-4', '-2.95459980854025e-3', '-1.60960333262415e-2'];
const Q = ['-1.45660718464996e-5', '-2.13374055278905e-4', '-1.68282697438203e-3', '-7.37332916720468e-3', '-1.42647390514189e-2'];

const splat = (c: string) => `(v128.const f32x4 ${c} ${c} ${c} ${c})`;

/** Horner steps acc = acc·x2 + c over coefficients (the first one starts acc). */
function horner(acc: string, coefficients: string[], vector: boolean): string {
  const [first, ...rest] = coefficients;
  const t = vector ? 'f32x4' : 'f32';
  const c = (v: string) => (vector ? splat(v) : `(f32.const ${v})`);
  let text = `(local.set ${acc} ${c(first!)})\n`;
  for (const k of rest) text += `    (local.set ${acc} (${t}.add (${t}.mul (local.get ${acc}) (local.get $x2)) ${c(k)}))\n`;
  return text;
}

/**
 * twiddleTranspose's inner loop over d < A: y[to] = x[from]·(c + i·s) as the given real and imaginary parts, then
 * near and t step by B·R, far by one. `tag` names the loop's labels ($doneTAG, $nextTAG).
 */
function twiddleLoop(tag: string, from: string, to: string, re: string, im: string): string {
  return `(block $done${tag} (loop $next${tag}
              (br_if $done${tag} (i32.ge_u (local.get $d) (local.get $A)))
              (local.set $re (f32.load (i32.add (local.get $xr) (local.get ${from}))))
              (local.set $im (f32.load (i32.add (local.get $xi) (local.get ${from}))))
              (local.set $c (f32.load (i32.add (local.get $tr) (local.get $t))))
              (local.set $s (f32.load (i32.add (local.get $ti) (local.get $t))))
              (f32.store (i32.add (local.get $yr) (local.get ${to})) ${re})
              (f32.store (i32.add (local.get $yi) (local.get ${to})) ${im})
              (local.set $near (i32.add (local.get $near) (local.get $step)))
              (local.set $t (i32.add (local.get $t) (local.get $step)))
              (local.set $far (i32.add (local.get $far) (i32.const 4)))
              (local.set $d (i32.add (local.get $d) (i32.const 1)))
              (br $next${tag})))`;
}

/**
 * The module's text. `shared` picks the memory import: threaded tfjs-wasm has a shared memory (with a maximum), the
 * single-threaded build a plain one, and an import must match.
 */
export function simdWat(shared: boolean): string {
  return `(module
  (import "env" "memory" (memory 0${shared ? ' 65536 shared' : ''}))
  (func $erf4 (param $x v128) (result v128)
    (local $v v128) (local $x2 v128) (local $p v128) (local $q v128)
    (local.set $v (f32x4.min (f32x4.max (local.get $x) ${splat('-4')}) ${splat('4')}))
    (local.set $x2 (f32x4.mul (local.get $v) (local.get $v)))
    ${horner('$p', P, true)}
    ${horner('$q', Q, true)}
    (f32x4.div (f32x4.mul (local.get $v) (local.get $p)) (local.get $q)))
  (func $erf1 (param $x f32) (result f32)
    (local $v f32) (local $x2 f32) (local $p f32) (local $q f32)
    (local.set $v (f32.min (f32.max (local.get $x) (f32.const -4)) (f32.const 4)))
    (local.set $x2 (f32.mul (local.get $v) (local.get $v)))
    ${horner('$p', P, false)}
    ${horner('$q', Q, false)}
    (f32.div (f32.mul (local.get $v) (local.get $p)) (local.get $q)))
  ;; out[i] = 0.5·g·(1 + erf(g/√2))·v for i in [lo, hi); g, v, out are byte offsets of float32 arrays.
  (func (export "geluGate") (param $g i32) (param $v i32) (param $out i32) (param $lo i32) (param $hi i32)
    (local $i i32) (local $a i32) (local $x v128) (local $s f32)
    (local.set $i (local.get $lo))
    (block $done4 (loop $next4
      (br_if $done4 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $hi)))
      (local.set $a (i32.shl (local.get $i) (i32.const 2)))
      (local.set $x (v128.load (i32.add (local.get $g) (local.get $a))))
      (v128.store (i32.add (local.get $out) (local.get $a))
        (f32x4.mul
          (f32x4.mul (f32x4.mul (local.get $x) ${splat('0.5')})
            (f32x4.add ${splat('1')} (call $erf4 (f32x4.mul (local.get $x) ${splat('0.7071067811865476')}))))
          (v128.load (i32.add (local.get $v) (local.get $a)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next4)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $hi)))
      (local.set $a (i32.shl (local.get $i) (i32.const 2)))
      (local.set $s (f32.load (i32.add (local.get $g) (local.get $a))))
      (f32.store (i32.add (local.get $out) (local.get $a))
        (f32.mul
          (f32.mul (f32.mul (local.get $s) (f32.const 0.5))
            (f32.add (f32.const 1) (call $erf1 (f32.mul (local.get $s) (f32.const 0.7071067811865476)))))
          (f32.load (i32.add (local.get $v) (local.get $a)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  ;; out[i] = erf(x[i]) for i in [lo, hi).
  (func (export "erf") (param $x i32) (param $out i32) (param $lo i32) (param $hi i32)
    (local $i i32) (local $a i32)
    (local.set $i (local.get $lo))
    (block $done4 (loop $next4
      (br_if $done4 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $hi)))
      (local.set $a (i32.shl (local.get $i) (i32.const 2)))
      (v128.store (i32.add (local.get $out) (local.get $a)) (call $erf4 (v128.load (i32.add (local.get $x) (local.get $a)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next4)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $hi)))
      (local.set $a (i32.shl (local.get $i) (i32.const 2)))
      (f32.store (i32.add (local.get $out) (local.get $a)) (call $erf1 (f32.load (i32.add (local.get $x) (local.get $a)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  ;; The tiled plane transpose (wasm-view-kernels.ts), units u = plane·rowTiles + row tile in [lo, hi):
  ;; dst[outBase + r·rowStrideOut + c] = src[inBase + r + c·colStrideIn]; bases = [inBase, outBase] i32 pairs
  ;; (elements) at byte offset $bases; src, dst are byte offsets; 32-bit words are copied as they are.
  (func (export "transpose") (param $src i32) (param $dst i32) (param $rows i32) (param $cols i32) (param $rowStrideOut i32)
      (param $colStrideIn i32) (param $tile i32) (param $rowTiles i32) (param $bases i32) (param $lo i32) (param $hi i32)
    (local $u i32) (local $plane i32) (local $r0 i32) (local $r1 i32) (local $c0 i32) (local $c1 i32) (local $r i32) (local $c i32)
    (local $inBase i32) (local $outBase i32) (local $i i32) (local $o i32) (local $step i32)
    (local.set $step (i32.shl (local.get $colStrideIn) (i32.const 2)))
    (local.set $u (local.get $lo))
    (block $doneU (loop $nextU
      (br_if $doneU (i32.ge_u (local.get $u) (local.get $hi)))
      (local.set $plane (i32.div_u (local.get $u) (local.get $rowTiles)))
      (local.set $r0 (i32.mul (i32.sub (local.get $u) (i32.mul (local.get $plane) (local.get $rowTiles))) (local.get $tile)))
      (local.set $r1 (i32.add (local.get $r0) (local.get $tile)))
      (if (i32.gt_u (local.get $r1) (local.get $rows)) (then (local.set $r1 (local.get $rows))))
      (local.set $inBase (i32.add (local.get $src) (i32.shl (i32.load (i32.add (local.get $bases) (i32.shl (local.get $plane) (i32.const 3)))) (i32.const 2))))
      (local.set $outBase (i32.add (local.get $dst) (i32.shl (i32.load offset=4 (i32.add (local.get $bases) (i32.shl (local.get $plane) (i32.const 3)))) (i32.const 2))))
      (local.set $c0 (i32.const 0))
      (block $doneC0 (loop $nextC0
        (br_if $doneC0 (i32.ge_u (local.get $c0) (local.get $cols)))
        (local.set $c1 (i32.add (local.get $c0) (local.get $tile)))
        (if (i32.gt_u (local.get $c1) (local.get $cols)) (then (local.set $c1 (local.get $cols))))
        (local.set $r (local.get $r0))
        (block $doneR (loop $nextR
          (br_if $doneR (i32.ge_u (local.get $r) (local.get $r1)))
          (local.set $i (i32.add (local.get $inBase) (i32.shl (i32.add (local.get $r) (i32.mul (local.get $c0) (local.get $colStrideIn))) (i32.const 2))))
          (local.set $o (i32.add (local.get $outBase) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $rowStrideOut)) (local.get $c0)) (i32.const 2))))
          (local.set $c (local.get $c0))
          (block $doneC (loop $nextC
            (br_if $doneC (i32.ge_u (local.get $c) (local.get $c1)))
            (i32.store (local.get $o) (i32.load (local.get $i)))
            (local.set $i (i32.add (local.get $i) (local.get $step)))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $nextC)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $nextR)))
        (local.set $c0 (local.get $c1))
        (br $nextC0)))
      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $nextU))))
  ;; A Monarch DFT stage's twiddle and digit transpose, units u = o·B + b in [lo, hi). Forward (inverse = 0):
  ;; x [O, A, B, R] → y [O, R, B, A], y = x·t[a, b, k]; inverse: x [O, R, B, A] → y [O, A, B, R], y = x·conj t[a, b, k].
  ;; The [O, R, B, A] side is walked contiguously along a, the [O, A, B, R] side with stride B·R.
  (func (export "twiddleTranspose") (param $xr i32) (param $xi i32) (param $tr i32) (param $ti i32) (param $yr i32) (param $yi i32)
      (param $A i32) (param $B i32) (param $R i32) (param $inverse i32) (param $lo i32) (param $hi i32)
    (local $u i32) (local $o i32) (local $b i32) (local $k i32) (local $d i32)
    (local $near i32) (local $t i32) (local $far i32) (local $step i32)
    (local $re f32) (local $im f32) (local $c f32) (local $s f32)
    (local.set $step (i32.shl (i32.mul (local.get $B) (local.get $R)) (i32.const 2)))
    (local.set $u (local.get $lo))
    (block $doneU (loop $nextU
      (br_if $doneU (i32.ge_u (local.get $u) (local.get $hi)))
      (local.set $o (i32.div_u (local.get $u) (local.get $B)))
      (local.set $b (i32.sub (local.get $u) (i32.mul (local.get $o) (local.get $B))))
      (local.set $k (i32.const 0))
      (block $doneK (loop $nextK
        (br_if $doneK (i32.ge_u (local.get $k) (local.get $R)))
        ;; byte offsets: near = ((o·A·B + b)·R + k)·4, t = (b·R + k)·4, far = ((o·R + k)·B + b)·A·4
        (local.set $near (i32.shl (i32.add (i32.mul (i32.add (i32.mul (i32.mul (local.get $o) (local.get $A)) (local.get $B)) (local.get $b)) (local.get $R)) (local.get $k)) (i32.const 2)))
        (local.set $t (i32.shl (i32.add (i32.mul (local.get $b) (local.get $R)) (local.get $k)) (i32.const 2)))
        (local.set $far (i32.shl (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $o) (local.get $R)) (local.get $k)) (local.get $B)) (local.get $b)) (local.get $A)) (i32.const 2)))
        (local.set $d (i32.const 0))
        (if (i32.eqz (local.get $inverse))
          (then
            ${twiddleLoop('F', '$near', '$far',
    '(f32.sub (f32.mul (local.get $re) (local.get $c)) (f32.mul (local.get $im) (local.get $s)))',
    '(f32.add (f32.mul (local.get $re) (local.get $s)) (f32.mul (local.get $im) (local.get $c)))')})
          (else
            ${twiddleLoop('I', '$far', '$near',
    '(f32.add (f32.mul (local.get $re) (local.get $c)) (f32.mul (local.get $im) (local.get $s)))',
    '(f32.sub (f32.mul (local.get $im) (local.get $c)) (f32.mul (local.get $re) (local.get $s)))')}))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $nextK)))
      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $nextU))))
)
`;
}
