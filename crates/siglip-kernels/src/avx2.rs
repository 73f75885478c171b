//! The f32 microkernel for CPUs with AVX2 and FMA but no AVX-512 (AMD Zen 2 and 3, Intel
//! before Skylake-X and its desktop parts): a ROWS×16 output tile (ROWS ≤ 6) in 2·ROWS ymm
//! accumulators, each k step broadcasting one x element per row and loading 16 columns of a
//! W panel.
//!
//! The panels are the AVX-512 kernels' (32 columns, k-major), so packing does not depend on
//! the level: the kernel covers one half of a panel per call. With 16 ymm registers, 6×16 is
//! the tile that fits (12 accumulators, 2 W vectors, 1 broadcast), as in BLIS's Haswell
//! kernel; a 3×32 tile would need 17.

use std::arch::x86_64::*;

use super::f32::LhsRows;
use super::tile::{prefetch, OutTile};

/// Rows of the AVX2 tile.
pub(super) const MR: usize = 6;
/// Columns of the AVX2 tile: half a packed panel.
pub(super) const HALF: usize = 16;

/// A microkernel specialised for its row count: `lhs`, a half panel (rows of [`super::NR`]
/// floats, 16 read from each), kc, the out tile (at most 16 columns).
pub(super) type Kernel = unsafe fn(&LhsRows, *const f32, usize, &OutTile);

/// `KERNELS[r - 1]` computes a tile of r rows.
pub(super) const KERNELS: [Kernel; MR] = [
    kernel::<1>,
    kernel::<2>,
    kernel::<3>,
    kernel::<4>,
    kernel::<5>,
    kernel::<6>,
];

/// out[r, c] (+)= Σ_{p<kc} lhs[r, p] · panel[p, c] for r < ROWS, c < out.cols (≤ 16).
///
/// # Safety
/// The CPU supports avx2 and fma; `lhs` addresses ROWS rows of `kc` readable f32s; `panel`
/// addresses `kc` rows (stride NR) of 16 readable f32s; `out` as required by [`store`].
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const ROWS: usize>(lhs: &LhsRows, panel: *const f32, kc: usize, out: &OutTile) {
    // SAFETY: forwarded from this function's contract (prefetching needs only SSE).
    unsafe { prefetch::<ROWS>(out) };
    let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
    for p in 0..kc {
        // SAFETY: p < kc, so the panel row and the x elements read are in bounds (see above).
        unsafe {
            let w = panel.add(p * super::NR);
            let w0 = _mm256_loadu_ps(w);
            let w1 = _mm256_loadu_ps(w.add(8));
            macro_rules! step {
                ($r:literal) => {
                    if $r < ROWS {
                        let x = _mm256_broadcast_ss(&*lhs.a.add($r * lhs.lda + p));
                        acc[$r][0] = _mm256_fmadd_ps(x, w0, acc[$r][0]);
                        acc[$r][1] = _mm256_fmadd_ps(x, w1, acc[$r][1]);
                    }
                };
            }
            for_each_row!(step);
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { store(&acc, out) }
}

/// Writes the accumulators `acc` (row r, half h = columns 8h..8h+8) to `out`, adding the
/// bias and the addend as [`super::tile::store`] does.
///
/// Only the `out.cols` valid columns of a row are read or written. A full tile is stored with
/// whole vectors; a narrower one (the last columns of an output) goes through a 16-float buffer
/// on the stack, so nothing past the valid columns is touched: AMD leaves it to the
/// implementation whether masked-out lanes of `vmaskmovps` may fault, and its masked stores
/// are slow.
///
/// # Safety
/// The CPU supports avx2; `out.cols` is 1..=16; `out.c` addresses ROWS rows (stride `out.ldc`)
/// of `out.cols` writable f32s; `out.addend`, when not null, as many readable ones (stride
/// `out.ld_addend`; it may be `out.c` itself); `out.bias`, when not null, `out.cols` readable
/// f32s.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store<const ROWS: usize>(acc: &[[__m256; 2]; ROWS], out: &OutTile) {
    debug_assert!(out.cols >= 1 && out.cols <= HALF);
    let cols = out.cols;
    // The valid columns of a bias or an addend row, zero past them.
    let padded = |src: *const f32| {
        let mut row = [0f32; HALF];
        // SAFETY: `src` holds `cols` readable values (this function's contract).
        unsafe { std::ptr::copy_nonoverlapping(src, row.as_mut_ptr(), cols) };
        row
    };
    let bias = if out.bias.is_null() {
        [0f32; HALF]
    } else {
        padded(out.bias)
    };
    // SAFETY: `bias` is a local array of 16.
    let bias = unsafe {
        [
            _mm256_loadu_ps(bias.as_ptr()),
            _mm256_loadu_ps(bias.as_ptr().add(8)),
        ]
    };
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: row r < ROWS of the tile (this function's contract); the addend row is
        // read before the output row is written, which matters where they are the same.
        unsafe {
            let dst = out.c.add(r * out.ldc);
            let held = (!out.addend.is_null()).then(|| out.addend.add(r * out.ld_addend));
            if cols == HALF {
                for (h, &v) in row.iter().enumerate() {
                    let mut sum = _mm256_add_ps(v, bias[h]);
                    if let Some(src) = held {
                        sum = _mm256_add_ps(sum, _mm256_loadu_ps(src.add(8 * h)));
                    }
                    _mm256_storeu_ps(dst.add(8 * h), sum);
                }
                continue;
            }
            let mut line = held.map_or([0f32; HALF], padded);
            for (h, &v) in row.iter().enumerate() {
                let at = line.as_mut_ptr().add(8 * h);
                let sum = _mm256_add_ps(_mm256_add_ps(v, bias[h]), _mm256_loadu_ps(at));
                _mm256_storeu_ps(at, sum);
            }
            std::ptr::copy_nonoverlapping(line.as_ptr(), dst, cols);
        }
    }
}
