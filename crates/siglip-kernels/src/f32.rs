//! The AVX-512 f32 microkernel (the AVX2 one is in `avx2`): a ROWS×32 output tile (ROWS ≤ 14)
//! held in 2·ROWS zmm accumulators, each k step broadcasting one x element per row and loading
//! one 32-wide row of a W panel.

use std::arch::x86_64::*;

use super::tile::{prefetch, store, OutTile};
use super::{MR, NR};

/// The left operand of one microkernel call: ROWS rows of x starting at `a`, row stride `lda`.
pub(super) struct LhsRows {
    pub(super) a: *const f32,
    pub(super) lda: usize,
}

/// A microkernel specialised for its row count.
pub(super) type Kernel = unsafe fn(&LhsRows, *const f32, usize, &OutTile);

/// `KERNELS[r - 1]` computes a tile of r rows.
pub(super) const KERNELS: [Kernel; MR] = [
    kernel::<1>,
    kernel::<2>,
    kernel::<3>,
    kernel::<4>,
    kernel::<5>,
    kernel::<6>,
    kernel::<7>,
    kernel::<8>,
    kernel::<9>,
    kernel::<10>,
    kernel::<11>,
    kernel::<12>,
    kernel::<13>,
    kernel::<14>,
];

/// out[r, c] (+)= Σ_{p<kc} lhs[r, p] · panel[p, c] for r < ROWS, c < out.cols.
///
/// # Safety
/// The CPU supports avx512f; `lhs` addresses ROWS rows of `kc` readable f32s; `panel` addresses
/// `kc` rows of NR readable f32s; `out` as required by [`store`].
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const ROWS: usize>(lhs: &LhsRows, panel: *const f32, kc: usize, out: &OutTile) {
    // SAFETY: forwarded from this function's contract.
    unsafe { prefetch::<ROWS>(out) };
    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
    for p in 0..kc {
        // SAFETY: p < kc, so the panel row and the x elements read are in bounds (see above).
        unsafe {
            let w = panel.add(p * NR);
            let w0 = _mm512_loadu_ps(w);
            let w1 = _mm512_loadu_ps(w.add(16));
            macro_rules! step {
                ($r:literal) => {
                    if $r < ROWS {
                        let x = _mm512_set1_ps(*lhs.a.add($r * lhs.lda + p));
                        acc[$r][0] = _mm512_fmadd_ps(x, w0, acc[$r][0]);
                        acc[$r][1] = _mm512_fmadd_ps(x, w1, acc[$r][1]);
                    }
                };
            }
            for_each_row!(step);
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { store(&acc, out) }
}
