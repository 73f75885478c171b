//! Where a microkernel writes ([`OutTile`], shared by every level), and the AVX-512 kernels'
//! (f32 and bf16) output-tile epilogue: adds the bias on the first k block, and the previous
//! partial sums on later ones (or a residual on the first), and stores with column masks.

use std::arch::x86_64::*;

use super::NR;

/// Where a microkernel call writes its ROWS×NR (or ROWS×cols) tile of the output.
pub(super) struct OutTile {
    /// Top-left output element.
    pub(super) c: *mut f32,
    /// Output row stride, in elements.
    pub(super) ldc: usize,
    /// Valid columns in this tile, 1..=NR.
    pub(super) cols: usize,
    /// `bias[j0..]` for the tile's first column, added once (with the first k block), or null.
    pub(super) bias: *const f32,
    /// Added to the tile, or null: the output itself on every k block after the first (the
    /// partial sums so far); on the first, a residual the product adds onto, if any.
    pub(super) addend: *const f32,
    /// Row stride of `addend`, in elements.
    pub(super) ld_addend: usize,
}

impl OutTile {
    /// The part of this tile from column `offset` on (`offset < cols`): where the AVX2
    /// kernel writes the second half of a panel.
    pub(super) fn columns_after(&self, offset: usize) -> OutTile {
        debug_assert!(offset < self.cols);
        // SAFETY: column `offset` lies in the tile (offset < cols), so every pointer that
        // addresses the tile's columns stays in its allocation.
        let shift = |at: *const f32| unsafe { at.add(offset) };
        OutTile {
            // SAFETY: as just said.
            c: unsafe { self.c.add(offset) },
            ldc: self.ldc,
            cols: self.cols - offset,
            bias: if self.bias.is_null() {
                self.bias
            } else {
                shift(self.bias)
            },
            addend: if self.addend.is_null() {
                self.addend
            } else {
                shift(self.addend)
            },
            ld_addend: self.ld_addend,
        }
    }
}

/// Lane masks for the two 16-column halves of a tile with `cols` valid columns.
fn column_masks(cols: usize) -> [__mmask16; 2] {
    let lanes = |n: usize| {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
    [lanes(cols), lanes(cols.saturating_sub(16))]
}

/// Starts fetching the output tile into L1 so the epilogue's loads do not wait on memory
/// (SSE only: the AVX-512 and AVX2 kernels share it).
///
/// # Safety
/// `out.addend`, when not null, addresses ROWS rows (stride `out.ld_addend`) of `out.cols`
/// readable f32s, as [`store`] requires.
#[inline]
pub(super) unsafe fn prefetch<const ROWS: usize>(out: &OutTile) {
    if !out.addend.is_null() {
        for r in 0..ROWS {
            // SAFETY: both addresses are elements of the tile (row r < ROWS, its first and its
            // last valid column, cols >= 1), so the `add`s stay inside the allocation; a
            // prefetch does not access memory architecturally.
            unsafe {
                let row = out.addend.add(r * out.ld_addend);
                _mm_prefetch::<_MM_HINT_T0>(row.cast());
                _mm_prefetch::<_MM_HINT_T0>(row.add(out.cols - 1).cast());
            }
        }
    }
}

/// Writes the accumulators `acc` (row r, half h = columns 16h..16h+16) to `out`.
///
/// Only the `out.cols` valid columns of a row are read or written. In a tile of at most 16
/// columns the second half's address lies past them, possibly past the end of the buffer
/// (the last row of a product whose n is 16 or less past a multiple of 32, e.g. a head of
/// width 72): it is computed with `wrapping_add` and used only under an all-zero mask.
///
/// # Safety
/// The CPU supports avx512f; `out.c` addresses ROWS rows (stride `out.ldc`) of `out.cols`
/// writable f32s; `out.addend`, when not null, as many readable ones (stride `out.ld_addend`;
/// it may be `out.c` itself); `out.bias`, when not null, `out.cols` readable f32s.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store<const ROWS: usize>(acc: &[[__m512; 2]; ROWS], out: &OutTile) {
    debug_assert!(out.cols >= 1 && out.cols <= NR);
    let masks = column_masks(out.cols);
    let full = out.cols == NR;
    let bias = if out.bias.is_null() {
        [_mm512_setzero_ps(); 2]
    } else {
        // SAFETY: `bias` holds `cols` readable values and each load is masked to those of its
        // half (lanes outside a mask are not accessed). `bias + 16` is past them when
        // cols <= 16, hence `wrapping_add`; its mask is then zero and it reads nothing.
        unsafe {
            [
                _mm512_maskz_loadu_ps(masks[0], out.bias),
                _mm512_maskz_loadu_ps(masks[1], out.bias.wrapping_add(16)),
            ]
        }
    };
    for (r, row) in acc.iter().enumerate() {
        for (h, &v) in row.iter().enumerate() {
            // SAFETY: row r < ROWS starts inside the tile, so the `add` to it stays in the
            // allocation; its half h may not when cols <= 16 (see above), hence
            // `wrapping_add`. Whole-vector accesses happen only when cols == NR, where both
            // halves are in the tile; otherwise they are masked to the row's valid columns of
            // half h (none, for h = 1 when cols <= 16), and lanes outside a mask are not
            // accessed.
            unsafe {
                let dst = out.c.add(r * out.ldc).wrapping_add(16 * h);
                let mut sum = _mm512_add_ps(v, bias[h]);
                if !out.addend.is_null() {
                    let src = out.addend.add(r * out.ld_addend).wrapping_add(16 * h);
                    let held = if full {
                        _mm512_loadu_ps(src)
                    } else {
                        _mm512_maskz_loadu_ps(masks[h], src)
                    };
                    sum = _mm512_add_ps(sum, held);
                }
                if full {
                    _mm512_storeu_ps(dst, sum);
                } else {
                    _mm512_mask_storeu_ps(dst, masks[h], sum);
                }
            }
        }
    }
}
