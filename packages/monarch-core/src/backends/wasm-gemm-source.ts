// WebAssembly (SIMD) source of monarch-core's block-diagonal and order-2 Monarch products on the tfjs-wasm heap.
// tfjs-wasm's matMul (XNNPACK) only takes whole contiguous 2-D operands, so a block-diagonal product there is a split
// of x, one matMul per block and a concat, and an order-2 Monarch product adds digit transposes between its factors:
// those copies, not the matMuls, cost 60–90 % of the time. These loops read every block's operand straight from the
// row layout (a block of x is a column range with x's row stride) and write the permuted layout directly.
//
// Two register-tiled micro-kernels (f32x4 multiply + add, 4 lanes):
// - `$gemm{MR}`: MR rows × 8 outputs, C[i, j] += A[i, k]·B[k, j] over k, A's scalars splat, B packed in panels of 8
//   columns ([K, 8] contiguous, zero-padded): y = x·W for one block (blockGemm, Monarch's first factor).
// - `$lane{MR}x{MS}`: MR rows × MS outputs × 4 adjacent BLOCKS per vector. Monarch's second factor reads
//   out1[b, r·Lb + l] and writes y[b, s·Lb + l]: both are contiguous along the block index l, so its vectors run
//   over l (4 blocks at once, each lane with its own weights W'[s, r, l], packed [S, R, Lb]); no transposes.
//
// Every pointer and stride is a byte offset into the heap. The loops run over work units [lo, hi) of `rowChunk`
// rows so that wasm-parallel.ts can split them over its helper threads (each unit writes its own rows only).
// The binary is committed as base64 in wasm-gemm-binary.ts; regenerate it with
// `node --import tsx packages/monarch-core/scripts/build-wasm-simd.ts` (a test checks it matches this source).

/**
 * Floats of padding after each row of the Monarch scratch t [rows, K·Q + pad]: with row strides of a multiple of
 * 4 KiB (n = 4096) and the second factor's column stride of Lb·4 bytes, a micro-kernel's rows all fell into the same
 * few L1 sets and evicted each other.
 */
export const MONARCH_SCRATCH_PAD = 16;

/** Output columns of one packed weight panel (two f32x4 vectors). */
export const GEMM_PANEL = 8;

/** Rows of the gemm micro-kernel's main tile (4 × 8 outputs = 8 accumulators; 6 rows measured slower: spills). */
const GEMM_ROWS = 4;

const v = (name: string) => `(local.get ${name})`;
const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
const mul = (a: string, b: string) => `(i32.mul ${a} ${b})`;

/**
 * `$gemm{rows}`: C[rows, 8] = A[rows, K]·P[K, 8] (P one packed panel); stores `nc` ≤ 8 columns of each row.
 * Params: a (row 0 of A at column 0), lda, p, kb = K·4, c, ldc, nc.
 */
function gemmMicro(rows: number): string {
  const acc: string[] = [];
  for (let i = 0; i < rows; i++) acc.push(`$c${i}0`, `$c${i}1`);
  let body = '';
  for (let i = 1; i < rows; i++) body += `(local.set $a${i} ${add(v(`$a${i - 1}`), v('$lda'))})\n    `;
  /** One k step at k + `ahead` (static load offsets). */
  const step = (ahead: number) => {
    let text = `(local.set $b0 (v128.load offset=${32 * ahead} ${v('$p')}))\n      (local.set $b1 (v128.load offset=${32 * ahead + 16} ${v('$p')}))\n`;
    for (let i = 0; i < rows; i++) {
      text += `      (local.set $s (v128.load32_splat offset=${4 * ahead} ${add(v(`$a${i}`), v('$o'))}))\n`;
      text += `      (local.set $c${i}0 (f32x4.add ${v(`$c${i}0`)} (f32x4.mul ${v('$s')} ${v('$b0')})))\n`;
      text += `      (local.set $c${i}1 (f32x4.add ${v(`$c${i}1`)} (f32x4.mul ${v('$s')} ${v('$b1')})))\n`;
    }
    return text;
  };
  let full = '';
  let part = '';
  for (let i = 0; i < rows; i++) {
    const row = i === 0 ? v('$c') : add(v('$c'), mul(v('$ldc'), `(i32.const ${i})`));
    full += `(v128.store ${row} ${v(`$c${i}0`)}) (v128.store offset=16 ${row} ${v(`$c${i}1`)})\n      `;
    part += `(call $storePart ${row} ${v(`$c${i}0`)} ${v(`$c${i}1`)} ${v('$nc')})\n      `;
  }
  const aLocals = Array.from({ length: rows - 1 }, (_, i) => `(local $a${i + 1} i32)`).join(' ');
  return `(func $gemm${rows} (param $a0 i32) (param $lda i32) (param $p i32) (param $kb i32) (param $c i32) (param $ldc i32) (param $nc i32)
    ${aLocals} (local $o i32) (local $b0 v128) (local $b1 v128) (local $s v128) ${acc.map((a) => `(local ${a} v128)`).join(' ')}
    ${body}(if (i32.and ${v('$kb')} (i32.const 4)) (then ;; odd K: one step first, then pairs
${step(0)}      (local.set $p (i32.add ${v('$p')} (i32.const 32)))
      (local.set $o (i32.const 4))))
    (if (i32.lt_u ${v('$o')} ${v('$kb')}) (then (loop $k
${step(0)}${step(1)}      (local.set $p (i32.add ${v('$p')} (i32.const 64)))
      (local.set $o (i32.add ${v('$o')} (i32.const 8)))
      (br_if $k (i32.lt_u ${v('$o')} ${v('$kb')})))))
    (if (i32.eq ${v('$nc')} (i32.const 8))
      (then ${full})
      (else ${part})))`;
}

/**
 * `$lane{rows}x{outs}`: for 4 adjacent blocks l..l+3 (the vector lanes), Y[i, j] = Σ_r T[i, r]·W[j, r] with T's
 * and W's r-steps `step` bytes apart. Params: t (row 0, r 0), lt (row stride), w (out 0, r 0), lw (out stride),
 * step, end = R·step, y (row 0, out 0), ly (row stride), sy (out stride).
 */
function laneMicro(rows: number, outs: number): string {
  const acc: string[] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < outs; j++) acc.push(`$y${i}${j}`);
  let setup = '';
  for (let i = 1; i < rows; i++) setup += `(local.set $t${i} ${add(v(`$t${i - 1}`), v('$lt'))})\n    `;
  for (let j = 1; j < outs; j++) setup += `(local.set $w${j} ${add(v(`$w${j - 1}`), v('$lw'))})\n    `;
  let step = '';
  for (let j = 0; j < outs; j++) step += `      (local.set $b${j} (v128.load ${add(v(`$w${j}`), v('$o'))}))\n`;
  for (let i = 0; i < rows; i++) {
    step += `      (local.set $s (v128.load ${add(v(`$t${i}`), v('$o'))}))\n`;
    for (let j = 0; j < outs; j++) step += `      (local.set $y${i}${j} (f32x4.add ${v(`$y${i}${j}`)} (f32x4.mul ${v('$s')} ${v(`$b${j}`)})))\n`;
  }
  let store = '';
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < outs; j++) {
      store += `(v128.store ${add(v('$y'), add(mul(v('$ly'), `(i32.const ${i})`), mul(v('$sy'), `(i32.const ${j})`)))} ${v(`$y${i}${j}`)})\n    `;
    }
  }
  const locals = [
    ...Array.from({ length: rows - 1 }, (_, i) => `(local $t${i + 1} i32)`),
    ...Array.from({ length: outs - 1 }, (_, j) => `(local $w${j + 1} i32)`),
    ...Array.from({ length: outs }, (_, j) => `(local $b${j} v128)`),
    ...acc.map((a) => `(local ${a} v128)`),
  ].join(' ');
  return `(func $lane${rows}x${outs} (param $t0 i32) (param $lt i32) (param $w0 i32) (param $lw i32) (param $step i32) (param $end i32) (param $y i32) (param $ly i32) (param $sy i32)
    (local $o i32) (local $s v128) ${locals}
    ${setup}(loop $r
${step}      (local.set $o (i32.add ${v('$o')} ${v('$step')}))
      (br_if $r (i32.lt_u ${v('$o')} ${v('$end')})))
    ${store})`;
}

/** Stores lanes [0, n) of the 8 values (v0, v1) at c (n < 8: a panel's last, partial columns). */
const STORE_PART = `(func $storePart (param $c i32) (param $v0 v128) (param $v1 v128) (param $n i32)
    ${Array.from({ length: 7 }, (_, j) => `(if (i32.gt_u ${v('$n')} (i32.const ${j})) (then (f32.store offset=${4 * j} ${v('$c')} (f32x4.extract_lane ${j % 4} ${v(j < 4 ? '$v0' : '$v1')}))))`).join('\n    ')})`;

/**
 * `$gemm`: C[rows, N] = A[rows, K]·W[K, N] with W packed as ⌈N/8⌉ panels [K, 8]: panel by panel (it stays in L1),
 * row tiles of 4 inside, then single rows.
 */
const GEMM = `(func $gemm (param $a i32) (param $lda i32) (param $p i32) (param $kb i32) (param $c i32) (param $ldc i32) (param $rows i32) (param $n i32)
    (local $j i32) (local $i i32) (local $nc i32) (local $ai i32) (local $ci i32)
    (loop $panel
      (local.set $nc (i32.sub ${v('$n')} ${v('$j')}))
      (if (i32.gt_u ${v('$nc')} (i32.const 8)) (then (local.set $nc (i32.const 8))))
      (local.set $i (i32.const 0))
      (local.set $ai ${v('$a')})
      (local.set $ci (i32.add ${v('$c')} (i32.shl ${v('$j')} (i32.const 2))))
      (block $tailRows (loop $tile
        (br_if $tailRows (i32.gt_u (i32.add ${v('$i')} (i32.const ${GEMM_ROWS})) ${v('$rows')}))
        (call $gemm${GEMM_ROWS} ${v('$ai')} ${v('$lda')} ${v('$p')} ${v('$kb')} ${v('$ci')} ${v('$ldc')} ${v('$nc')})
        (local.set $ai (i32.add ${v('$ai')} (i32.shl ${v('$lda')} (i32.const 2))))
        (local.set $ci (i32.add ${v('$ci')} (i32.shl ${v('$ldc')} (i32.const 2))))
        (local.set $i (i32.add ${v('$i')} (i32.const ${GEMM_ROWS})))
        (br $tile)))
      (block $done (loop $row
        (br_if $done (i32.ge_u ${v('$i')} ${v('$rows')}))
        (call $gemm1 ${v('$ai')} ${v('$lda')} ${v('$p')} ${v('$kb')} ${v('$ci')} ${v('$ldc')} ${v('$nc')})
        (local.set $ai (i32.add ${v('$ai')} ${v('$lda')}))
        (local.set $ci (i32.add ${v('$ci')} ${v('$ldc')}))
        (local.set $i (i32.add ${v('$i')} (i32.const 1)))
        (br $row)))
      (local.set $p (i32.add ${v('$p')} (i32.shl ${v('$kb')} (i32.const 3))))
      (local.set $j (i32.add ${v('$j')} (i32.const 8)))
      (br_if $panel (i32.lt_u ${v('$j')} ${v('$n')}))))`;

/** One lane micro-kernel call for `rows` × `outs` at row i, output s (locals of $lane). */
/**
 * Blocks per group of the second factor: the inner loop walks a group's 4-block vectors side by side, so each cache
 * line of out1 and W' (16 floats) is used whole while it is in L1.
 */
const LANE_GROUP = 16;

/** One lane micro-kernel call for `rows` × `outs` at row i, output s, block offset lo (locals of $lane). */
const laneCall = (rows: number, outs: number) =>
  `(call $lane${rows}x${outs} (i32.add ${v('$tl')} (i32.add (i32.mul ${v('$i')} ${v('$lt')}) ${v('$lo')})) ${v('$lt')} (i32.add ${v('$ws')} ${v('$lo')}) ${v('$lw')} ${v('$step')} ${v('$end')} ` +
  `(i32.add ${v('$ys')} (i32.add (i32.mul ${v('$i')} ${v('$ly')}) ${v('$lo')})) ${v('$ly')} ${v('$step')})`;

/** The group's 4-block vectors for one row tile: lo = 0, 16, … < gw bytes. */
const laneVectors = (rows: number, outs: number) => `(local.set $lo (i32.const 0))
            (loop $vec${rows}x${outs}
              ${laneCall(rows, outs)}
              (local.set $lo (i32.add ${v('$lo')} (i32.const 16)))
              (br_if $vec${rows}x${outs} (i32.lt_u ${v('$lo')} ${v('$gw')})))`;

/** Row loop of $lane for `outs` outputs: tiles of 4 rows, then single rows. */
const laneRows = (outs: number) => `(local.set $i (i32.const 0))
          (block $tail${outs} (loop $tile${outs}
            (br_if $tail${outs} (i32.gt_u (i32.add ${v('$i')} (i32.const 4)) ${v('$rows')}))
            ${laneVectors(4, outs)}
            (local.set $i (i32.add ${v('$i')} (i32.const 4)))
            (br $tile${outs})))
          (block $done${outs} (loop $row${outs}
            (br_if $done${outs} (i32.ge_u ${v('$i')} ${v('$rows')}))
            ${laneVectors(1, outs)}
            (local.set $i (i32.add ${v('$i')} (i32.const 1)))
            (br $row${outs})))`;

/**
 * `$lane`: Monarch's second factor on `rows` rows: y[i, s·Lb + l] = Σ_r t[i, r·Lb + l]·W'[s, r, l], W' packed
 * [S, R, Lb] (Lb a multiple of 4). Blocks in groups of LANE_GROUP; per group, outputs in pairs, row tiles of 4, and
 * the group's 4-block vectors innermost.
 */
const LANE = `(func $lane (param $t i32) (param $lt i32) (param $w i32) (param $y i32) (param $ly i32) (param $rows i32) (param $Lb i32) (param $R i32) (param $S i32)
    (local $l i32) (local $s i32) (local $i i32) (local $step i32) (local $end i32) (local $lw i32) (local $ws i32) (local $ys i32) (local $tl i32)
    (local $lo i32) (local $gw i32)
    (local.set $step (i32.shl ${v('$Lb')} (i32.const 2)))
    (local.set $end (i32.mul ${v('$R')} ${v('$step')}))
    (local.set $lw ${v('$end')})
    (loop $group
      ;; gw = the group's width in bytes: min(LANE_GROUP, Lb − l) blocks
      (local.set $gw (i32.shl (i32.sub ${v('$Lb')} ${v('$l')}) (i32.const 2)))
      (if (i32.gt_u ${v('$gw')} (i32.const ${4 * LANE_GROUP})) (then (local.set $gw (i32.const ${4 * LANE_GROUP}))))
      (local.set $s (i32.const 0))
      (local.set $tl (i32.add ${v('$t')} (i32.shl ${v('$l')} (i32.const 2))))
      (block $oddOut (loop $pair
        (br_if $oddOut (i32.gt_u (i32.add ${v('$s')} (i32.const 2)) ${v('$S')}))
        (local.set $ws (i32.add ${v('$w')} (i32.add (i32.mul ${v('$s')} ${v('$lw')}) (i32.shl ${v('$l')} (i32.const 2)))))
        (local.set $ys (i32.add ${v('$y')} (i32.add (i32.mul ${v('$s')} ${v('$step')}) (i32.shl ${v('$l')} (i32.const 2)))))
        ${laneRows(2)}
        (local.set $s (i32.add ${v('$s')} (i32.const 2)))
        (br $pair)))
      (if (i32.lt_u ${v('$s')} ${v('$S')}) (then
        (local.set $ws (i32.add ${v('$w')} (i32.add (i32.mul ${v('$s')} ${v('$lw')}) (i32.shl ${v('$l')} (i32.const 2)))))
        (local.set $ys (i32.add ${v('$y')} (i32.add (i32.mul ${v('$s')} ${v('$step')}) (i32.shl ${v('$l')} (i32.const 2)))))
        ${laneRows(1)}))
      (local.set $l (i32.add ${v('$l')} (i32.const ${LANE_GROUP})))
      (br_if $group (i32.lt_u ${v('$l')} ${v('$Lb')}))))`;

/**
 * An export's loop over its share of work units: for u in [lo, hi), rows r0 = u·chunk .. r0 + rr with
 * rr = min(chunk, rows − r0), then `body`. Uses the export's params $lo, $hi, $chunk, $rows and locals $u, $r0, $rr.
 */
const rowChunkUnits = (body: string) => `(local.set $u ${v('$lo')})
    (block $done (loop $unit
      (br_if $done (i32.ge_u ${v('$u')} ${v('$hi')}))
      (local.set $r0 (i32.mul ${v('$u')} ${v('$chunk')}))
      (local.set $rr (i32.sub ${v('$rows')} ${v('$r0')}))
      (if (i32.gt_u ${v('$rr')} ${v('$chunk')}) (then (local.set $rr ${v('$chunk')})))
      ${body}
      (local.set $u (i32.add ${v('$u')} (i32.const 1)))
      (br $unit)))`;

/** The locals (names) of a block-diagonal factor applied to one row chunk by {@link blockFactor}. */
interface BlockFactor {
  /** Number of blocks. */
  blocks: string;
  /** The chunk's first input row, and the input row stride (bytes). */
  a: string;
  lda: string;
  /** Inputs and outputs of one block (floats). */
  blockIn: string;
  blockOut: string;
  /** The packed blocks, and the bytes of one packed block. */
  packed: string;
  packedBytes: string;
  /** The chunk's first output row, and the output row stride (bytes). */
  c: string;
  ldc: string;
}

/**
 * `$gemm` for every block k of a block-diagonal factor on the chunk's $rr rows: block k's columns of A times its
 * packed panels, into block k's columns of C (local $k).
 */
const blockFactor = (f: BlockFactor) => `(local.set $k (i32.const 0))
      (loop $block
        (call $gemm (i32.add ${v(f.a)} (i32.shl (i32.mul ${v('$k')} ${v(f.blockIn)}) (i32.const 2))) ${v(f.lda)}
          (i32.add ${v(f.packed)} (i32.mul ${v('$k')} ${v(f.packedBytes)})) (i32.shl ${v(f.blockIn)} (i32.const 2))
          (i32.add ${v(f.c)} (i32.shl (i32.mul ${v('$k')} ${v(f.blockOut)}) (i32.const 2))) ${v(f.ldc)} ${v('$rr')} ${v(f.blockOut)})
        (local.set $k (i32.add ${v('$k')} (i32.const 1)))
        (br_if $block (i32.lt_u ${v('$k')} ${v(f.blocks)})))`;

/**
 * The module's text. `shared` picks the memory import: threaded tfjs-wasm has a shared memory (with a maximum), the
 * single-threaded build a plain one, and an import must match.
 *
 * Exports (all offsets and pointers in bytes, units = chunks of `rowChunk` rows, [lo, hi) a share of them):
 * - blockGemm(x, p, y, rows, numBlocks, K, N, rowChunk, lo, hi): y[:, k·N + j] = Σ_i x[:, k·K + i]·W_k[i, j], the
 *   blocks W_k [K, N] packed one after another as ⌈N/8⌉ panels [K, 8] (packGemmBlocks in wasm-gemm-kernel.ts).
 * - monarch(x, p1, p2, t, y, rows, K, P, Q, Lb, R, S, rowChunk, lo, hi): out1 = blockGemm(x, p1) into the scratch
 *   t [rows, K·Q + MONARCH_SCRATCH_PAD], then y[:, s·Lb + l] = Σ_r out1[:, r·Lb + l]·W'[s, r, l] with p2 = W' [S, R, Lb].
 */
export function gemmWat(shared: boolean): string {
  return `(module
  (import "env" "memory" (memory 0${shared ? ' 65536 shared' : ''}))
  ${STORE_PART}
  ${gemmMicro(GEMM_ROWS)}
  ${gemmMicro(1)}
  ${laneMicro(4, 2)}
  ${laneMicro(1, 2)}
  ${laneMicro(4, 1)}
  ${laneMicro(1, 1)}
  ${GEMM}
  ${LANE}
  (func $blockGemm (export "blockGemm") (param $x i32) (param $p i32) (param $y i32) (param $rows i32) (param $nb i32) (param $K i32) (param $N i32) (param $chunk i32) (param $lo i32) (param $hi i32)
    (local $u i32) (local $r0 i32) (local $rr i32) (local $k i32) (local $xs i32) (local $ys i32) (local $bytes i32) (local $xr i32) (local $yr i32)
    (local.set $xs (i32.shl (i32.mul ${v('$nb')} ${v('$K')}) (i32.const 2)))
    (local.set $ys (i32.shl (i32.mul ${v('$nb')} ${v('$N')}) (i32.const 2)))
    ;; one packed block: ⌈N/8⌉ panels of K·8 floats
    (local.set $bytes (i32.shl (i32.mul (i32.and (i32.add ${v('$N')} (i32.const 7)) (i32.const -8)) ${v('$K')}) (i32.const 2)))
    ${rowChunkUnits(`(local.set $xr (i32.add ${v('$x')} (i32.mul ${v('$r0')} ${v('$xs')})))
      (local.set $yr (i32.add ${v('$y')} (i32.mul ${v('$r0')} ${v('$ys')})))
      ${blockFactor({ blocks: '$nb', a: '$xr', lda: '$xs', blockIn: '$K', blockOut: '$N', packed: '$p', packedBytes: '$bytes', c: '$yr', ldc: '$ys' })}`)})
  (func (export "monarch") (param $x i32) (param $p1 i32) (param $p2 i32) (param $t i32) (param $y i32) (param $rows i32)
    (param $K i32) (param $P i32) (param $Q i32) (param $Lb i32) (param $R i32) (param $S i32) (param $chunk i32) (param $lo i32) (param $hi i32)
    (local $u i32) (local $r0 i32) (local $rr i32) (local $ts i32) (local $ys i32) (local $xs i32) (local $k i32) (local $bytes i32) (local $xr i32) (local $tr i32)
    (local.set $xs (i32.shl (i32.mul ${v('$K')} ${v('$P')}) (i32.const 2)))
    (local.set $ts (i32.shl (i32.add (i32.mul ${v('$K')} ${v('$Q')}) (i32.const ${MONARCH_SCRATCH_PAD})) (i32.const 2)))
    (local.set $ys (i32.shl (i32.mul ${v('$Lb')} ${v('$S')}) (i32.const 2)))
    ;; one packed block of the first factor: ⌈Q/8⌉ panels of P·8 floats
    (local.set $bytes (i32.shl (i32.mul (i32.and (i32.add ${v('$Q')} (i32.const 7)) (i32.const -8)) ${v('$P')}) (i32.const 2)))
    ${rowChunkUnits(`;; the chunk's first factor into its rows of t (still in cache for the second)
      (local.set $xr (i32.add ${v('$x')} (i32.mul ${v('$r0')} ${v('$xs')})))
      (local.set $tr (i32.add ${v('$t')} (i32.mul ${v('$r0')} ${v('$ts')})))
      ${blockFactor({ blocks: '$K', a: '$xr', lda: '$xs', blockIn: '$P', blockOut: '$Q', packed: '$p1', packedBytes: '$bytes', c: '$tr', ldc: '$ts' })}
      (call $lane ${v('$tr')} ${v('$ts')} ${v('$p2')}
        (i32.add ${v('$y')} (i32.mul ${v('$r0')} ${v('$ys')})) ${v('$ys')} ${v('$rr')} ${v('$Lb')} ${v('$R')} ${v('$S')})`)})
)`;
}
