//! siglip-kernels: the CPU hot spots of SigLIP inference on plain slices; the workspace's only
//! `unsafe` code, every block with its SAFETY comment.
//!
//! Fast CPU matrix products `out = x · Wᵀ (+ bias)` for SigLIP inference, in f32 or bf16
//! (f32 accumulation), with AVX-512 or AVX2 microkernels chosen at run time ([`isa`]).
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
//! * Threads split the rows of x (in strips of the tile's height) or, for few rows, the W
//!   panels ([`job`]).
//!
//! On CPUs with AVX2 and FMA but no AVX-512 ([`CpuIsa::Avx2`]), f32 products run a 6×16
//! microkernel over the same panels, half a panel per call ([`avx2`]), in strips of 6 rows.
//! Without either (or at `generic`), and on other architectures, [`PackedRhs::pack`] returns
//! `None` and the caller keeps its fallback path; bf16 products need avx512bf16.
#![allow(unsafe_code)]
// Off x86_64 only the fallback paths remain; the packing and blocking code is unused there.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

/// Expands `$step!(r)` for r = 0..14 ([`MR`]), so that every accumulator index in a
/// microkernel is a constant and the 28 accumulators stay in registers. Left as a loop, whether
/// the row loop is unrolled depends on how the crate is split into codegen units, and spilled
/// accumulators halve the products' speed.
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
mod avx2;
#[cfg(target_arch = "x86_64")]
mod bf16;
pub mod blocking;
pub mod calibrate;
#[cfg(target_arch = "x86_64")]
mod exp;
#[cfg(target_arch = "x86_64")]
mod f32;
pub mod isa;
#[cfg(target_arch = "x86_64")]
mod job;
pub mod memory;
mod pack;
#[cfg(target_arch = "x86_64")]
mod tile;

use activations::RowNorm;
#[cfg(target_arch = "x86_64")]
pub use exp::{gelu_tanh_f32, gelu_tanh_for_bf16};
pub use isa::{CpuIsa, IsaRequest};
pub use pack::{bf16_to_f32, f32_to_bf16};
use pack::{AlignedBuf, RhsView};

/// Rows of the microkernel tile.
const MR: usize = 14;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(MR == 14, "for_each_row! expands exactly MR rows");
/// Columns of the microkernel tile and of a packed W panel (two zmm of f32).
const NR: usize = 32;

/// Which element type the packed right-hand side holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// f32 products and sums.
    F32,
    /// bf16 products (x and W rounded to nearest even), f32 sums.
    Bf16,
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;

    /// `f32` or `bf16`, as the `dtype` setting spells them.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!("unknown dtype {other:?}: expected f32 or bf16")),
        }
    }
}

impl std::fmt::Debug for PackedRhs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRhs")
            .field("n", &self.n)
            .field("k", &self.k)
            .field("dtype", &self.dtype())
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
    /// The level whose microkernels multiply by it: the active one when it was packed.
    isa: CpuIsa,
}

impl PackedRhs {
    /// Packs `w`, read as an n×k matrix with element (j, p) at w[j*row_stride + p*col_stride]
    /// (a PyTorch Linear weight [out=n, in=k] is row_stride=k, col_stride=1).
    /// Returns None when the kernels do not run for `dtype` here ([`cpu_supports`]).
    ///
    /// # Panics
    /// If `w` is too short for the given shape and strides.
    pub fn pack(
        w: &[f32],
        n: usize,
        k: usize,
        row_stride: usize,
        col_stride: usize,
        dtype: Dtype,
    ) -> Option<Self> {
        let isa = isa::active();
        if !supports(isa, dtype) {
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
        let panels = match dtype {
            Dtype::F32 => Panels::F32(pack::pack_f32(view, n, k)),
            Dtype::Bf16 => Panels::Bf16(pack::pack_bf16(view, n, k)),
        };
        Some(Self { panels, n, k, isa })
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
    pub fn dtype(&self) -> Dtype {
        match self.panels {
            Panels::F32(_) => Dtype::F32,
            Panels::Bf16(_) => Dtype::Bf16,
        }
    }
}

/// Whether the `dtype` kernels run here, at the active level ([`isa::active`]): f32 at
/// AVX2 and above, bf16 at AVX-512 on a CPU with avx512bf16.
pub fn cpu_supports(dtype: Dtype) -> bool {
    supports(isa::active(), dtype)
}

/// Whether the `dtype` kernels run at level `isa` on this CPU.
fn supports(isa: CpuIsa, dtype: Dtype) -> bool {
    match dtype {
        Dtype::F32 => isa >= CpuIsa::Avx2,
        Dtype::Bf16 => isa == CpuIsa::Avx512 && isa::has_bf16_products(),
    }
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
    into_slice(x, m, rhs, bias, out, out_stride, threads, false);
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
    into_slice(x, m, rhs, bias, out, out_stride, threads, true);
}

/// [`matmul`] (or, with `add_to_out`, [`matmul_add`]) after checking the output's size.
#[allow(clippy::too_many_arguments)]
fn into_slice(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    out: &mut [f32],
    out_stride: usize,
    threads: usize,
    add_to_out: bool,
) {
    let n = rhs.n;
    check_bias(rhs, bias);
    let lhs = Lhs::rows(x, m, rhs.k, rhs.k, None);
    assert!(out_stride >= n, "out_stride {out_stride} < n {n}");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out.len() >= (m - 1) * out_stride + n,
        "out too short for {m}×{n}"
    );
    let out = out.as_mut_ptr();
    let residual = add_to_out.then_some(Residual {
        at: out,
        stride: out_stride,
    });
    // SAFETY: `out` holds the m×n region at row stride `out_stride` (checked above), all of
    // it initialised; the residual is that same region.
    unsafe { matmul_raw(lhs, rhs, bias, out, out_stride, threads, residual, None) }
}

/// [`matmul`] (no bias, out at row stride n) with the cache blocking `sizes` rather than the
/// active one: the calibration's timed product.
///
/// # Panics
/// As [`matmul`].
fn matmul_blocked(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    out: &mut [f32],
    threads: usize,
    sizes: blocking::Blocking,
) {
    let lhs = Lhs::rows(x, m, rhs.k, rhs.k, None);
    if m == 0 || rhs.n == 0 || rhs.k == 0 {
        return;
    }
    assert!(out.len() >= m * rhs.n, "out too short for {m}×{}", rhs.n);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `out` holds the m×n region at row stride n (checked above); k > 0.
    unsafe {
        job::run(
            lhs,
            rhs,
            None,
            (out.as_mut_ptr(), rhs.n),
            threads,
            None,
            None,
            sizes,
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no PackedRhs is made without the kernels ({threads} threads, {sizes})")
}

/// [`matmul`] into a new m×n row-major vector, which is written once and never zeroed first
/// (zeroing the outputs cost about 4% of the bf16 image tower). With `norm`, each row of x
/// is LayerNormed as it is packed (x itself is left as it is), which saves the LayerNorm its
/// own pass over memory. `epilogue` (an activation) runs in place on each stretch of output
/// row as soon as it is complete, while it is still in cache.
///
/// # Panics
/// If `x` or `bias` is too short for the shapes, or `norm` is not k wide.
pub fn matmul_to_vec(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    norm: Option<RowNorm>,
    epilogue: Option<fn(&mut [f32])>,
    threads: usize,
) -> Vec<f32> {
    check_bias(rhs, bias);
    let lhs = Lhs::rows(x, m, rhs.k, rhs.k, norm);
    fresh_output(lhs, rhs, bias, None, epilogue, threads)
}

/// `residual + x·Wᵀ + bias` into a new m×n row-major vector: the residual connection of
/// [`matmul_add`] without first copying the residual to the output (the output tiles read
/// it as they are stored).
///
/// # Panics
/// If `x`, `bias` or `residual` (m×n, contiguous) is too short for the shapes.
pub fn matmul_add_to_vec(
    x: &[f32],
    m: usize,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    residual: &[f32],
    threads: usize,
) -> Vec<f32> {
    check_bias(rhs, bias);
    let lhs = Lhs::rows(x, m, rhs.k, rhs.k, None);
    assert!(
        residual.len() >= m * rhs.n,
        "residual too short for {m}×{}",
        rhs.n
    );
    let residual = Residual {
        at: residual.as_ptr(),
        stride: rhs.n,
    };
    fresh_output(lhs, rhs, bias, Some(residual), None, threads)
}

/// The product into a new m×n vector (row stride n), written once and never zeroed.
///
/// `lhs`, `bias` and `residual` (m×n at stride n) are checked by the callers.
fn fresh_output(
    lhs: Lhs,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    residual: Option<Residual>,
    epilogue: Option<fn(&mut [f32])>,
    threads: usize,
) -> Vec<f32> {
    let len = lhs.m * rhs.n;
    let mut out = Vec::with_capacity(len);
    if len > 0 {
        // SAFETY: the vector's capacity holds the m×n region at row stride n, and
        // `matmul_raw` writes every element of it before `set_len` exposes them.
        unsafe {
            let at = out.as_mut_ptr();
            matmul_raw(lhs, rhs, bias, at, rhs.n, threads, residual, epilogue);
            out.set_len(len);
        }
    }
    out
}

/// A matrix a product adds onto: its m×n region at `at`, row stride `stride` (it may be the
/// output itself).
#[derive(Clone, Copy)]
struct Residual {
    at: *const f32,
    stride: usize,
}
// SAFETY: only read, by the threads of one product, while the product runs (within the
// lifetime of the slice it came from); where it is the output itself, each thread reads
// only the elements it writes.
unsafe impl Sync for Residual {}
unsafe impl Send for Residual {}

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

/// Checks that `bias`, if any, covers the n outputs (x is checked by [`Lhs::rows`]).
fn check_bias(rhs: &PackedRhs, bias: Option<&[f32]>) {
    if let Some(b) = bias {
        assert!(b.len() >= rhs.n, "bias shorter than n");
    }
}

/// Writes every element of the m×n output at `out` (row stride `ldc`), adding `residual` if
/// given. `epilogue` then runs in place on every stretch of output row.
///
/// # Safety
/// m, n > 0; `out` addresses m rows of n writable f32s at row stride `ldc` >= n; `residual`,
/// if any, m rows of n readable ones (it may be `out` itself, initialised); `bias`, if any,
/// holds n values (see [`check_bias`]); `lhs` is k wide.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_raw(
    lhs: Lhs,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    out: *mut f32,
    ldc: usize,
    threads: usize,
    residual: Option<Residual>,
    epilogue: Option<fn(&mut [f32])>,
) {
    let (m, n, k) = (lhs.m, rhs.n, rhs.k);
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let bias = bias.map_or(0.0, |b| b[j]);
                // SAFETY: (i, j) lies in the output and residual regions (this function's
                // contract).
                unsafe {
                    let held = residual.map_or(0.0, |r| *r.at.add(i * r.stride + j));
                    out.add(i * ldc + j).write(held + bias)
                };
            }
            if let Some(epilogue) = epilogue {
                // SAFETY: row i of the output region, just written.
                epilogue(unsafe { std::slice::from_raw_parts_mut(out.add(i * ldc), n) });
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from this function's contract.
    unsafe {
        job::run(
            lhs,
            rhs,
            bias,
            (out, ldc),
            threads,
            residual,
            epilogue,
            blocking::active(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no PackedRhs is made without the kernels ({threads} threads)")
}
