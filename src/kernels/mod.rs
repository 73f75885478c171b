//! Fast CPU matrix products `out = x · Wᵀ (+ bias)` for SigLIP inference, in f32 or bf16
//! (f32 accumulation), with AVX-512 microkernels chosen at run time.
//!
//! Design (BLIS-style, tuned for Zen 4: 32 KiB L1d, 1 MiB L2 per core):
//! * W (n×k) is packed once into panels of [`NR`] = 32 columns, k-major inside a panel
//!   (f32: `[k][32]`; bf16: `[k/2][32][2]`, adjacent k pairs interleaved for `vdpbf16ps`).
//! * The microkernel keeps an MR×32 tile (MR = 14 rows, 28 zmm accumulators) in registers;
//!   per k step it loads two zmm of the W panel and broadcasts one x value (f32) or one
//!   bf16 pair (bf16) per row.
//! * Blocking, outer to inner: row blocks of 112 rows (their 112×512 output block stays in
//!   L2 across k blocks), column blocks of nc = 512, k blocks of kc (256 f32 / 768 bf16: the
//!   kc×nc W block, 512 or 768 KiB, stays in L2), 14-row strips (the strip's kc slice, 14 or
//!   21 KiB, stays in L1 while it sweeps the block's 16 panels).
//!   Each row block of x is first copied (f32) or rounded (bf16) once into a per-thread
//!   buffer whose row stride is padded by a cache line, so a strip's rows do not collide in
//!   L1 sets (k = 3072 f32 is 12 KiB).
//! * Threads split the rows of x (in MR-row strips) or, for few rows, the W panels.
//!
//! Without avx512f and avx512bw (+avx512bf16 for bf16), and on other architectures,
//! [`PackedRhs::pack`] returns `None` and the caller keeps its fallback path.
#![allow(unsafe_code)]
// Off x86_64 only the fallback paths remain; the packing and blocking code is unused there.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

/// Expands `$step!(r)` for r = 0..14 ([`MR`]), so that every accumulator index in a
/// microkernel is a constant and the 28 accumulators stay in registers. Left as a loop, the
/// row loop was unrolled or not depending on how the crate happened to be split into codegen
/// units: one unrelated change made the accumulators spill and the server twice as slow.
#[cfg(target_arch = "x86_64")]
macro_rules! for_each_row {
    ($step:ident) => {
        $step!(0);
        $step!(1);
        $step!(2);
        $step!(3);
        $step!(4);
        $step!(5);
        $step!(6);
        $step!(7);
        $step!(8);
        $step!(9);
        $step!(10);
        $step!(11);
        $step!(12);
        $step!(13);
    };
}

pub mod activations;
pub mod attention;
#[cfg(target_arch = "x86_64")]
mod bf16;
#[cfg(target_arch = "x86_64")]
mod f32;
mod pack;
#[cfg(target_arch = "x86_64")]
mod tile;

use std::cell::RefCell;
use std::ops::Range;

use activations::RowNorm;
pub use pack::{bf16_to_f32, f32_to_bf16};
use pack::{AlignedBuf, RhsView};
#[cfg(target_arch = "x86_64")]
use tile::OutTile;

/// Rows of the microkernel tile.
const MR: usize = 14;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(MR == 14, "for_each_row! expands exactly MR rows");
/// Columns of the microkernel tile and of a packed W panel (two zmm of f32).
const NR: usize = 32;
/// Depth of a k block for f32 (a 14×kc x strip is 14 KiB, a kc×32 panel 32 KiB).
const KC_F32: usize = 256;
/// Depth of a k block for bf16 (even): the hidden width 768 in one block, so each output tile
/// is stored once; 2.5% faster on the image tower than 512 (a 14×768 strip is 21 KiB).
const KC_BF16: usize = 768;
/// Strips per row block: the 112×512 output block (224 KiB) stays in L2 across k blocks.
const MC_STRIPS: usize = 8;
/// Panels per column block: the kc×(32·NC_PANELS) W block (512 KiB f32, 768 KiB bf16) stays
/// in L2.
const NC_PANELS: usize = 16;

/// Which element type the packed right-hand side holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 products and sums.
    F32,
    /// bf16 products (x and W rounded to nearest even), f32 sums.
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

impl std::fmt::Debug for PackedRhs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRhs")
            .field("n", &self.n)
            .field("k", &self.k)
            .field("precision", &self.precision())
            .finish()
    }
}

/// Packed panels, by element type.
enum Panels {
    F32(AlignedBuf<f32>),
    Bf16(AlignedBuf<u16>),
}

/// A right-hand matrix packed once for the microkernel (e.g. a Linear layer's weight).
pub struct PackedRhs {
    panels: Panels,
    n: usize,
    k: usize,
}

impl PackedRhs {
    /// Packs `w`, read as an n×k matrix with element (j, p) at w[j*row_stride + p*col_stride]
    /// (a PyTorch Linear weight [out=n, in=k] is row_stride=k, col_stride=1).
    /// Returns None when this CPU lacks the needed instructions (avx512f (+avx512bf16 for Bf16)).
    /// (avx512bw is also required; every CPU with avx512bf16 or Zen 4/Skylake-X has it.)
    ///
    /// # Panics
    /// If `w` is too short for the given shape and strides.
    pub fn pack(
        w: &[f32],
        n: usize,
        k: usize,
        row_stride: usize,
        col_stride: usize,
        precision: Precision,
    ) -> Option<Self> {
        if !cpu_supports(precision) {
            return None;
        }
        assert!(col_stride > 0 || k <= 1, "col_stride 0 with k > 1");
        if n > 0 && k > 0 {
            assert!(
                (n - 1) * row_stride + (k - 1) * col_stride < w.len(),
                "w too short for {n}×{k}"
            );
        }
        let view = RhsView {
            w,
            row_stride,
            col_stride,
        };
        let panels = match precision {
            Precision::F32 => Panels::F32(pack::pack_f32(view, n, k)),
            Precision::Bf16 => Panels::Bf16(pack::pack_bf16(view, n, k)),
        };
        Some(Self { panels, n, k })
    }

    /// Output columns (rows of W).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Inner dimension (columns of W).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Element type of the packed panels.
    pub fn precision(&self) -> Precision {
        match self.panels {
            Panels::F32(_) => Precision::F32,
            Panels::Bf16(_) => Precision::Bf16,
        }
    }
}

/// Whether the `precision` kernels run here: this CPU has their instructions, and the
/// environment does not switch them off (`SIGLIP_CPU_KERNELS=off` falls back to candle's
/// products everywhere, for comparison and troubleshooting).
pub fn cpu_supports(precision: Precision) -> bool {
    static SWITCHED_OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *SWITCHED_OFF.get_or_init(|| {
        std::env::var("SIGLIP_CPU_KERNELS").is_ok_and(|v| v.eq_ignore_ascii_case("off"))
    });
    !off && cpu_has_instructions(precision)
}

/// Whether this CPU has the instructions the `precision` kernels need.
#[cfg(target_arch = "x86_64")]
fn cpu_has_instructions(precision: Precision) -> bool {
    let base = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw");
    match precision {
        Precision::F32 => base,
        Precision::Bf16 => base && is_x86_feature_detected!("avx512bf16"),
    }
}

/// The kernels are AVX-512 only: elsewhere every product stays on candle's path.
#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_instructions(_: Precision) -> bool {
    false
}

/// out[i, j] = sum_p x[i, p] * W[j, p] (+ bias[j]) for i < m, j < n.
/// x is m×k row-major contiguous (row stride k); out is m×n row-major with row stride `out_stride` (>= n).
/// For Bf16, x is rounded to bf16 (round-to-nearest-even) as it is packed; accumulation is f32.
/// Splits the work over `threads` threads (on the rayon pool; 0 and 1 both mean the calling thread).
///
/// # Panics
/// If a slice is too short for the shapes, or `out_stride < n`.
pub fn matmul(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    out: &mut [f32],
    out_stride: usize,
    threads: usize,
) {
    let n = rhs.n;
    check_operands(x, m, rhs, bias);
    assert!(out_stride >= n, "out_stride {out_stride} < n {n}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out.len() >= (m - 1) * out_stride + n,
        "out too short for {m}×{n}"
    );
    // SAFETY: `out` holds the m×n region at row stride `out_stride` (checked above).
    unsafe {
        matmul_raw(
            Lhs::rows(x, m, rhs.k, rhs.k, None),
            rhs,
            bias,
            out.as_mut_ptr(),
            out_stride,
            threads,
            false,
        )
    }
}

/// out[i, j] += sum_p x[i, p] * W[j, p] (+ bias[j]): [`matmul`] added onto what `out` holds
/// (a residual connection, with no separate pass over memory).
///
/// # Panics
/// As [`matmul`].
pub fn matmul_add(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    out: &mut [f32],
    out_stride: usize,
    threads: usize,
) {
    let n = rhs.n;
    check_operands(x, m, rhs, bias);
    assert!(out_stride >= n, "out_stride {out_stride} < n {n}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out.len() >= (m - 1) * out_stride + n,
        "out too short for {m}×{n}"
    );
    // SAFETY: `out` holds the m×n region at row stride `out_stride` (checked above), all of
    // it initialised.
    unsafe {
        matmul_raw(
            Lhs::rows(x, m, rhs.k, rhs.k, None),
            rhs,
            bias,
            out.as_mut_ptr(),
            out_stride,
            threads,
            true,
        )
    }
}

/// [`matmul`] into a new m×n row-major vector, which is written once and never zeroed first
/// (zeroing the outputs cost about 4% of the bf16 image tower). With `norm`, each row of x
/// is LayerNormed as it is packed (x itself is left as it is), which saves the LayerNorm its
/// own pass over memory.
///
/// # Panics
/// If `x` or `bias` is too short for the shapes, or `norm` is not k wide.
pub fn matmul_to_vec(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    norm: Option<RowNorm>,
    threads: usize,
) -> Vec<f32> {
    check_operands(x, m, rhs, bias);
    let len = m * rhs.n;
    let mut out = Vec::with_capacity(len);
    if len > 0 {
        // SAFETY: the vector's capacity holds the m×n region at row stride n, and
        // `matmul_raw` writes every element of it before `set_len` exposes them.
        unsafe {
            matmul_raw(
                Lhs::rows(x, m, rhs.k, rhs.k, norm),
                rhs,
                bias,
                out.as_mut_ptr(),
                rhs.n,
                threads,
                false,
            );
            out.set_len(len);
        }
    }
    out
}

/// The left operand of a product: m rows of k values, row i at `x[i * stride..]`, each
/// LayerNormed as it is packed when `norm` is given.
#[derive(Clone, Copy)]
struct Lhs<'a> {
    x: &'a [f32],
    m: usize,
    stride: usize,
    norm: Option<RowNorm<'a>>,
}

impl<'a> Lhs<'a> {
    /// `m` rows of `k` values of x at row stride `stride`.
    ///
    /// # Panics
    /// If `x` is too short for them, or `norm` is not k wide.
    fn rows(x: &'a [f32], m: usize, k: usize, stride: usize, norm: Option<RowNorm<'a>>) -> Self {
        assert!(
            m == 0 || (m - 1) * stride + k <= x.len(),
            "x too short for {m}×{k} at stride {stride}"
        );
        if let Some(norm) = norm {
            assert!(
                norm.gamma.len() == k && norm.beta.len() == k,
                "norm is not {k} wide"
            );
        }
        Self { x, m, stride, norm }
    }

    /// Row `i`, `k` values.
    fn row(&self, i: usize, k: usize) -> &'a [f32] {
        &self.x[i * self.stride..][..k]
    }
}

/// The shape checks shared by [`matmul`] and [`matmul_to_vec`].
fn check_operands(x: &[f32], m: usize, rhs: &PackedRhs, bias: Option<&[f32]>) {
    assert!(x.len() >= m * rhs.k, "x too short for {m}×{}", rhs.k);
    if let Some(b) = bias {
        assert!(b.len() >= rhs.n, "bias shorter than n");
    }
}

/// Writes every element of the m×n output at `out` (row stride `ldc`); reads it only when
/// `add_to_out`.
///
/// # Safety
/// m, n > 0; `out` addresses m rows of n writable f32s at row stride `ldc` >= n (initialised
/// when `add_to_out`); `bias`, if any, holds n values; `lhs` is k wide.
unsafe fn matmul_raw(
    lhs: Lhs,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    out: *mut f32,
    ldc: usize,
    threads: usize,
    add_to_out: bool,
) {
    let (m, n, k) = (lhs.m, rhs.n, rhs.k);
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let at = i * ldc + j;
                let bias = bias.map_or(0.0, |b| b[j]);
                // SAFETY: (i, j) lies in the output region (this function's contract).
                unsafe {
                    out.add(at).write(if add_to_out {
                        *out.add(at) + bias
                    } else {
                        bias
                    })
                };
            }
        }
        return;
    }
    let job = Job {
        lhs,
        rhs,
        bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
        out: OutPtr(out),
        ldc,
        add_to_out,
    };
    let parts = split_work(m, pack::panel_count(n), threads.max(1));
    match parts.as_slice() {
        [(rows, panels)] => job.run(rows.clone(), panels.clone()),
        _ => rayon::scope(|s| {
            for (rows, panels) in &parts[1..] {
                let job = &job;
                s.spawn(move |_| job.run(rows.clone(), panels.clone()));
            }
            job.run(parts[0].0.clone(), parts[0].1.clone());
        }),
    }
}

/// Splits rows (in whole MR strips) over threads when there are enough of them, else panels.
///
/// One part per thread: each part streams all of W through the cache, so finer parts (for
/// work stealing) cost memory bandwidth; 4 parts per thread made the image tower 20% slower.
fn split_work(m: usize, panels: usize, threads: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let strips = m.div_ceil(MR);
    if strips >= 2 * threads {
        even_ranges(strips, threads)
            .map(|s| (s.start * MR..(s.end * MR).min(m), 0..panels))
            .collect()
    } else {
        even_ranges(panels, threads.min(panels))
            .map(|p| (0..m, p))
            .collect()
    }
}

/// `count` items cut into `parts` contiguous ranges whose sizes differ by at most one.
fn even_ranges(count: usize, parts: usize) -> impl Iterator<Item = Range<usize>> {
    (0..parts).map(move |t| t * count / parts..(t + 1) * count / parts)
}

/// The output pointer, shared by threads that write disjoint tiles.
struct OutPtr(*mut f32);
// SAFETY: threads only write disjoint (row, panel) regions of the output, see `split_work`.
unsafe impl Sync for OutPtr {}

/// One matmul call's operands, validated by [`matmul`].
struct Job<'a> {
    lhs: Lhs<'a>,
    rhs: &'a PackedRhs,
    bias: *const f32,
    out: OutPtr,
    ldc: usize,
    /// The first k block adds onto the output instead of overwriting it.
    add_to_out: bool,
}
// SAFETY: `bias` is only read; `out` writes are disjoint per thread (see `OutPtr`).
unsafe impl Sync for Job<'_> {}

impl Job<'_> {
    /// The output tile for rows from `i0` and panel `q`, at k block offset `pc`.
    #[cfg(target_arch = "x86_64")]
    fn out_tile(&self, i0: usize, q: usize, pc: usize) -> OutTile {
        let j0 = q * NR;
        OutTile {
            // SAFETY: i0 < m and j0 < n, checked against `out.len()` in `matmul`.
            c: unsafe { self.out.0.add(i0 * self.ldc + j0) },
            ldc: self.ldc,
            cols: (self.rhs.n - j0).min(NR),
            // SAFETY: j0 < n <= bias.len() when not null.
            bias: if self.bias.is_null() || pc > 0 {
                std::ptr::null()
            } else {
                unsafe { self.bias.add(j0) }
            },
            accumulate: pc > 0 || self.add_to_out,
        }
    }

    /// Computes output rows `rows` × panels `panels`.
    fn run(&self, rows: Range<usize>, panels: Range<usize>) {
        debug_assert!(rows.end <= self.lhs.m);
        #[cfg(target_arch = "x86_64")]
        match &self.rhs.panels {
            Panels::F32(w) => self.run_f32(w.as_slice(), rows, panels),
            Panels::Bf16(w) => self.run_bf16(w.as_slice(), rows, panels),
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no PackedRhs is made without the kernels ({rows:?}, {panels:?})")
    }

    /// Visits the strips of one row block × `panels` in cache-blocking order: column blocks
    /// of NC_PANELS panels (the row block's output stays in L2 across k blocks), then k
    /// blocks of `kc_max`, then strips of MR rows.
    #[cfg(target_arch = "x86_64")]
    fn for_each_strip(
        &self,
        block: Range<usize>,
        panels: Range<usize>,
        kc_max: usize,
        mut visit: impl FnMut(Strip),
    ) {
        let k = self.rhs.k;
        for col_block in panels.clone().step_by(NC_PANELS) {
            let col_block = col_block..(col_block + NC_PANELS).min(panels.end);
            for pc in (0..k).step_by(kc_max) {
                for i0 in block.clone().step_by(MR) {
                    visit(Strip {
                        i0,
                        rows: (block.end - i0).min(MR),
                        pc,
                        kc: (k - pc).min(kc_max),
                        panels: col_block.clone(),
                    });
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn run_f32(&self, w: &[f32], rows: Range<usize>, panels: Range<usize>) {
        let k = self.rhs.k;
        let panel_len = pack::panel_len(k, Precision::F32);
        let ld = padded_stride(k, 16);
        with_row_block(&ROW_BLOCK_F32, rows.len().min(ROW_BLOCK) * ld, |buf| {
            for block in row_blocks(rows) {
                for (i, dst) in block.clone().zip(buf.chunks_exact_mut(ld)) {
                    let row = self.lhs.row(i, k);
                    match &self.lhs.norm {
                        Some(norm) => norm.apply(row, &mut dst[..k]),
                        None => dst[..k].copy_from_slice(row),
                    }
                }
                let a = buf.as_ptr();
                self.for_each_strip(block.clone(), panels.clone(), KC_F32, |s| {
                    let lhs = f32::LhsRows {
                        // SAFETY: the strip's rows lie in the block, pc < k <= ld.
                        a: unsafe { a.add((s.i0 - block.start) * ld + s.pc) },
                        lda: ld,
                    };
                    let kernel = f32::KERNELS[s.rows - 1];
                    for q in s.panels {
                        let panel = w[q * panel_len + s.pc * NR..].as_ptr();
                        // SAFETY: the CPU has avx512f (checked when packing); the panel has kc
                        // rows of NR from pc; lhs holds `rows` rows of kc; the out tile is in
                        // bounds.
                        unsafe { kernel(&lhs, panel, s.kc, &self.out_tile(s.i0, q, s.pc)) };
                    }
                });
            }
        });
    }

    #[cfg(target_arch = "x86_64")]
    fn run_bf16(&self, w: &[u16], rows: Range<usize>, panels: Range<usize>) {
        let k = self.rhs.k;
        let panel_len = pack::panel_len(k, Precision::Bf16);
        let ld = padded_stride(k, 32);
        // One normalised row at a time, when a LayerNorm comes first.
        let mut normed = vec![0f32; if self.lhs.norm.is_some() { k } else { 0 }];
        with_row_block(&ROW_BLOCK_BF16, rows.len().min(ROW_BLOCK) * ld, |buf| {
            for block in row_blocks(rows) {
                // Rounds `rows` rows of k at `src` (row stride `stride`) into `dst`.
                let round = |src: &[f32], stride: usize, rows: usize, dst: &mut [u16]| {
                    assert!(src.len() >= (rows - 1) * stride + k && dst.len() >= rows * ld);
                    // SAFETY: the CPU has avx512f/bw/bf16 (checked when packing); `src` holds
                    // `rows` rows of k at `stride`, `dst` as many rows of ld >= k rounded up
                    // to even.
                    unsafe {
                        bf16::round_rows(src.as_ptr(), stride, rows, k, dst.as_mut_ptr(), ld)
                    };
                };
                match &self.lhs.norm {
                    Some(norm) => {
                        for (i, dst) in block.clone().zip(buf.chunks_exact_mut(ld)) {
                            norm.apply(self.lhs.row(i, k), &mut normed);
                            round(&normed, k, 1, dst);
                        }
                    }
                    None => {
                        let stride = self.lhs.stride;
                        round(
                            &self.lhs.x[block.start * stride..],
                            stride,
                            block.len(),
                            buf,
                        )
                    }
                }
                let a = buf.as_ptr();
                self.for_each_strip(block.clone(), panels.clone(), KC_BF16, |s| {
                    let pairs = s.kc.div_ceil(2);
                    let lhs = bf16::LhsRows {
                        // SAFETY: the strip's rows lie in the block, pc < k <= ld.
                        a: unsafe { a.add((s.i0 - block.start) * ld + s.pc) },
                        lda: ld,
                    };
                    let kernel = bf16::KERNELS[s.rows - 1];
                    for q in s.panels {
                        let panel = w[q * panel_len + s.pc * NR..].as_ptr();
                        // SAFETY: the panel has `pairs` rows of 2·NR from pc (pc is even);
                        // lhs rows hold 2·pairs values from pc; the out tile is in bounds.
                        unsafe { kernel(&lhs, panel, pairs, &self.out_tile(s.i0, q, s.pc)) };
                    }
                });
            }
        });
    }
}

/// Rows per row block: MC_STRIPS strips, whose 112×512 output block stays in L2 across k blocks.
#[cfg(target_arch = "x86_64")]
const ROW_BLOCK: usize = MR * MC_STRIPS;

/// `rows` cut into row blocks of [`ROW_BLOCK`] rows (the last may be shorter).
#[cfg(target_arch = "x86_64")]
fn row_blocks(rows: Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let end = rows.end;
    rows.step_by(ROW_BLOCK)
        .map(move |start| start..(start + ROW_BLOCK).min(end))
}

/// A row stride of at least `k` (rounded up to `lanes`, a cache line of elements) plus one
/// cache line, so the 14 rows of a strip fall into different L1 sets even when k·size is a
/// multiple of 4 KiB (k = 3072 in f32).
#[cfg(target_arch = "x86_64")]
fn padded_stride(k: usize, lanes: usize) -> usize {
    k.next_multiple_of(lanes) + lanes
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Each thread's copy of its current row block of x, reused across products.
    static ROW_BLOCK_F32: RefCell<AlignedBuf<f32>> = RefCell::new(AlignedBuf::zeroed(0));
    /// Each thread's current row block of x rounded to bf16.
    static ROW_BLOCK_BF16: RefCell<AlignedBuf<u16>> = RefCell::new(AlignedBuf::zeroed(0));
}

/// Runs `f` on this thread's row-block buffer, grown to at least `len` elements.
///
/// x is copied (f32) or rounded (bf16) once per row block into it, instead of once per
/// column block: the bf16 rounding of the image tower's fc1 input was done 6 times over.
#[cfg(target_arch = "x86_64")]
fn with_row_block<T: pack::Plain>(
    key: &'static std::thread::LocalKey<RefCell<AlignedBuf<T>>>,
    len: usize,
    f: impl FnOnce(&mut [T]),
) {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.as_slice().len() < len {
                *buf = AlignedBuf::zeroed(len);
            }
            f(&mut buf.as_mut_slice()[..len]);
        }
        // Not expected (a product does not run another on its own thread), but safe.
        Err(_) => f(AlignedBuf::zeroed(len).as_mut_slice()),
    });
}

/// One microkernel strip: output rows i0..i0+rows over `panels`, k block pc..pc+kc.
struct Strip {
    i0: usize,
    rows: usize,
    pc: usize,
    kc: usize,
    panels: Range<usize>,
}
