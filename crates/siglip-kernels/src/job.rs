//! How one product runs: the output is split into one part per thread (rows, or W panels
//! when there are few rows); each part packs its rows of x once per row block (copied for
//! f32, rounded for bf16, LayerNormed when asked) into a per-thread buffer, then sweeps the
//! packed W panels block by block with the microkernels.

use std::cell::RefCell;
use std::ops::Range;

use super::blocking::Blocking;
use super::pack::{self, AlignedBuf};
use super::tile::OutTile;
use super::{avx2, bf16, f32, CpuIsa, Dtype, Lhs, PackedRhs, Panels, Residual, MR, NR};

/// Rows of a strip, the microkernel's tile height, at each level.
const fn strip_rows(isa: CpuIsa) -> usize {
    match isa {
        CpuIsa::Avx2 => avx2::MR,
        _ => MR,
    }
}

/// Runs the product on `threads` threads of the rayon pool (0 and 1: the calling thread),
/// blocked by `sizes`.
///
/// # Safety
/// As [`super::matmul_raw`], with k > 0.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run(
    lhs: Lhs,
    rhs: &PackedRhs,
    bias: Option<&[f32]>,
    (out, ldc): (*mut f32, usize),
    threads: usize,
    residual: Option<Residual>,
    epilogue: Option<fn(&mut [f32])>,
    sizes: Blocking,
) {
    let (m, n) = (lhs.m, rhs.n);
    let job = Job {
        rhs,
        bias,
        out: OutPtr(out),
        ldc,
        residual,
        epilogue,
        sizes,
    };
    let strips = m.div_ceil(strip_rows(rhs.isa));
    let parts = split_work(m, strips, pack::panel_count(n), threads.max(1));
    match parts.as_slice() {
        [(rows, panels)] => job.run(&lhs, rows.clone(), panels.clone()),
        _ => rayon::scope(|s| {
            for (rows, panels) in &parts[1..] {
                let (job, lhs) = (&job, &lhs);
                s.spawn(move |_| job.run(lhs, rows.clone(), panels.clone()));
            }
            job.run(&lhs, parts[0].0.clone(), parts[0].1.clone());
        }),
    }
}

/// Splits rows over threads when there are at least two strips per thread, else panels.
///
/// One part per thread: each part streams all of W through the cache, so finer parts (for
/// work stealing) cost memory bandwidth; 4 parts per thread make the image tower 20% slower.
fn split_work(
    m: usize,
    strips: usize,
    panels: usize,
    threads: usize,
) -> Vec<(Range<usize>, Range<usize>)> {
    if strips >= 2 * threads {
        // Rows, not whole strips: 577 rows as 21 and 20.2 strips left one thread idle for 4%
        // of every product.
        even_ranges(m, threads)
            .map(|rows| (rows, 0..panels))
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

/// One product's packed right-hand side and its output, validated by the public functions
/// of [`super`]; the left operand comes with each part of the work.
struct Job<'a> {
    rhs: &'a PackedRhs,
    bias: Option<&'a [f32]>,
    out: OutPtr,
    ldc: usize,
    /// What the first k block adds onto (it may be the output itself).
    residual: Option<Residual>,
    /// Applied in place to each stretch of an output row once its last k block is in, while
    /// it is still in cache.
    epilogue: Option<fn(&mut [f32])>,
    /// The cache blocking.
    sizes: Blocking,
}

impl Job<'_> {
    /// Rows per row block: whole strips of the level's tile height.
    fn row_block(&self) -> usize {
        self.sizes.row_strips * strip_rows(self.rhs.isa)
    }

    /// The output tile for rows from `i0` and panel `q`, at k block offset `pc`.
    fn out_tile(&self, i0: usize, q: usize, pc: usize) -> OutTile {
        let j0 = q * NR;
        // SAFETY: i0 < m and j0 < n: inside the output region (`run`'s contract).
        let c = unsafe { self.out.0.add(i0 * self.ldc + j0) };
        let (addend, ld_addend) = match self.residual {
            _ if pc > 0 => (c.cast_const(), self.ldc),
            // SAFETY: (i0, j0) lies in the residual's m×n region (`run`'s contract).
            Some(r) => (unsafe { r.at.add(i0 * r.stride + j0) }, r.stride),
            None => (std::ptr::null(), 0),
        };
        OutTile {
            c,
            ldc: self.ldc,
            cols: (self.rhs.n - j0).min(NR),
            bias: match self.bias {
                Some(bias) if pc == 0 => bias[j0..].as_ptr(),
                _ => std::ptr::null(),
            },
            addend,
            ld_addend,
        }
    }

    /// Computes output rows `rows` × panels `panels` of `lhs` times W.
    fn run(&self, lhs: &Lhs, rows: Range<usize>, panels: Range<usize>) {
        debug_assert!(rows.end <= lhs.m);
        match &self.rhs.panels {
            Panels::F32(w) => self.run_f32(lhs, w.as_slice(), rows, panels),
            Panels::Bf16(w) => self.run_bf16(lhs, w.as_slice(), rows, panels),
        }
    }

    /// Visits the strips of one row block × `panels` in cache-blocking order: column blocks
    /// of `nc_panels` panels (the row block's output stays in L2 across k blocks), then k
    /// blocks of `kc_max`, then strips of the level's tile height.
    fn for_each_strip(
        &self,
        block: Range<usize>,
        panels: Range<usize>,
        kc_max: usize,
        mut visit: impl FnMut(Strip),
    ) {
        let (k, mr, nc) = (self.rhs.k, strip_rows(self.rhs.isa), self.sizes.nc_panels);
        for col_block in panels.clone().step_by(nc) {
            let col_block = col_block..(col_block + nc).min(panels.end);
            for pc in (0..k).step_by(kc_max) {
                for i0 in block.clone().step_by(mr) {
                    let (rows, kc) = ((block.end - i0).min(mr), (k - pc).min(kc_max));
                    visit(Strip {
                        i0,
                        rows,
                        pc,
                        kc,
                        panels: col_block.clone(),
                    });
                    if pc + kc == k {
                        self.finish(i0..i0 + rows, &col_block);
                    }
                }
            }
        }
    }

    /// Applies the epilogue to output `rows` × the columns of `panels`, all k blocks in.
    fn finish(&self, rows: Range<usize>, panels: &Range<usize>) {
        let Some(epilogue) = self.epilogue else {
            return;
        };
        let j0 = panels.start * NR;
        let cols = (panels.end * NR).min(self.rhs.n) - j0;
        for i in rows {
            // SAFETY: row i, columns j0..j0+cols lie in the output region and in this thread's
            // part (parts are disjoint, see `split_work`); the kernels have written them.
            let row =
                unsafe { std::slice::from_raw_parts_mut(self.out.0.add(i * self.ldc + j0), cols) };
            epilogue(row);
        }
    }

    fn run_f32(&self, lhs: &Lhs, w: &[f32], rows: Range<usize>, panels: Range<usize>) {
        let k = self.rhs.k;
        let panel_len = pack::panel_len(k, Dtype::F32);
        let ld = padded_stride(k, 16);
        let (isa, rows_per_block) = (self.rhs.isa, self.row_block());
        with_row_block(&ROW_BLOCK_F32, rows.len().min(rows_per_block) * ld, |buf| {
            for block in row_blocks(rows, rows_per_block) {
                for (i, dst) in block.clone().zip(buf.chunks_exact_mut(ld)) {
                    let row = lhs.row(i, k);
                    match &lhs.norm {
                        Some(norm) => norm.apply(row, &mut dst[..k]),
                        None => dst[..k].copy_from_slice(row),
                    }
                }
                let a = buf.as_ptr();
                let kc = self.sizes.kc_f32;
                self.for_each_strip(block.clone(), panels.clone(), kc, |s| {
                    let lhs = f32::LhsRows {
                        // SAFETY: the strip's rows lie in the block, pc < k <= ld.
                        a: unsafe { a.add((s.i0 - block.start) * ld + s.pc) },
                        lda: ld,
                    };
                    for q in s.panels {
                        let panel = w[q * panel_len + s.pc * NR..].as_ptr();
                        let out = self.out_tile(s.i0, q, s.pc);
                        match isa {
                            // SAFETY: the CPU has avx512f (the level was active when packing);
                            // the panel has kc rows of NR from pc; lhs holds `rows` rows of
                            // kc; the out tile is in bounds.
                            CpuIsa::Avx512 => unsafe {
                                f32::KERNELS[s.rows - 1](&lhs, panel, s.kc, &out)
                            },
                            // SAFETY: as `half_panels` requires (the level was active when
                            // packing, so the CPU has avx2 and fma; rows ≤ 6 at that level).
                            CpuIsa::Avx2 => unsafe { half_panels(&lhs, panel, s.kc, s.rows, &out) },
                            CpuIsa::Generic => unreachable!("nothing is packed at generic"),
                        }
                    }
                });
            }
        });
    }

    fn run_bf16(&self, lhs: &Lhs, w: &[u16], rows: Range<usize>, panels: Range<usize>) {
        let k = self.rhs.k;
        let ld = padded_stride(k, 32);
        // One normalised row at a time, when a LayerNorm comes first.
        let mut normed = vec![0f32; if lhs.norm.is_some() { k } else { 0 }];
        let rows_per_block = self.row_block();
        with_row_block(
            &ROW_BLOCK_BF16,
            rows.len().min(rows_per_block) * ld,
            |buf| {
                for block in row_blocks(rows, rows_per_block) {
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
                    match &lhs.norm {
                        Some(norm) => {
                            for (i, dst) in block.clone().zip(buf.chunks_exact_mut(ld)) {
                                norm.apply(lhs.row(i, k), &mut normed);
                                round(&normed, k, 1, dst);
                            }
                        }
                        None => {
                            let stride = lhs.stride;
                            round(&lhs.x[block.start * stride..], stride, block.len(), buf)
                        }
                    }
                    // SAFETY: `buf` holds the block's rows at stride ld, rounded and zero-padded.
                    unsafe { self.sweep_bf16(w, (buf, ld), block, panels.clone()) };
                }
            },
        );
    }

    /// The bf16 microkernels over rows `block` × `panels`, x already rounded: row
    /// `block.start` at `a.0`, row stride `a.1` (even).
    ///
    /// # Safety
    /// The CPU has avx512f and avx512bf16; `a.0` holds the block's rows, each k values
    /// rounded up to even (the pad zero).
    unsafe fn sweep_bf16(
        &self,
        w: &[u16],
        (a, ld): (&[u16], usize),
        block: Range<usize>,
        panels: Range<usize>,
    ) {
        let k = self.rhs.k;
        assert!(a.len() >= (block.len() - 1) * ld + k.next_multiple_of(2));
        let panel_len = pack::panel_len(k, Dtype::Bf16);
        self.for_each_strip(block.clone(), panels, self.sizes.kc_bf16, |s| {
            let pairs = s.kc.div_ceil(2);
            let lhs = bf16::LhsRows {
                a: a[(s.i0 - block.start) * ld + s.pc..].as_ptr(),
                lda: ld,
            };
            let kernel = bf16::KERNELS[s.rows - 1];
            for q in s.panels {
                let panel = w[q * panel_len + s.pc * NR..].as_ptr();
                // SAFETY: the CPU has the instructions (this function's contract); the panel
                // has `pairs` rows of 2·NR from pc (pc is even); lhs rows hold 2·pairs values
                // from pc (asserted above); the out tile is in bounds.
                unsafe { kernel(&lhs, panel, pairs, &self.out_tile(s.i0, q, s.pc)) };
            }
        });
    }
}

/// The AVX2 microkernel over one packed panel: its first 16 columns, then the rest where the
/// output has them.
///
/// # Safety
/// The CPU has avx2 and fma; `panel` has kc rows of NR from the strip's k offset; `lhs` holds
/// `rows` (≤ 6) rows of kc; `out` is in bounds.
unsafe fn half_panels(
    lhs: &f32::LhsRows,
    panel: *const f32,
    kc: usize,
    rows: usize,
    out: &OutTile,
) {
    let kernel = avx2::KERNELS[rows - 1];
    let first = OutTile {
        cols: out.cols.min(avx2::HALF),
        ..*out
    };
    // SAFETY: each half panel has kc rows of NR, 16 read from each (the second starts 16 in);
    // each half tile is the out tile's first 16 columns or those after, only where it has them.
    unsafe {
        kernel(lhs, panel, kc, &first);
        if out.cols > avx2::HALF {
            kernel(
                lhs,
                panel.add(avx2::HALF),
                kc,
                &out.columns_after(avx2::HALF),
            );
        }
    }
}

/// `rows` cut into row blocks of `size` rows (the last may be shorter).
fn row_blocks(rows: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let end = rows.end;
    rows.step_by(size)
        .map(move |start| start..(start + size).min(end))
}

/// A row stride of at least `k` (rounded up to `lanes`, a cache line of elements) plus one
/// cache line, so the 14 rows of a strip fall into different L1 sets even when k·size is a
/// multiple of 4 KiB (k = 3072 in f32).
pub(super) fn padded_stride(k: usize, lanes: usize) -> usize {
    k.next_multiple_of(lanes) + lanes
}

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

/// out (m×n at row stride `ldc`) = a·Wᵀ for `m` rows of x already rounded to bf16, on the
/// calling thread: attention's softmax writes its weights in bf16 for the product with V,
/// so nothing rounds them a second time.
///
/// # Safety
/// The CPU supports avx512f and avx512bf16; `rhs` is bf16 with k > 0; `a` holds `m` rows at
/// row stride `lda` (even) of k values rounded up to even (the pad zero); `out` addresses m
/// rows of n writable f32s at row stride `ldc` >= n.
pub(super) unsafe fn rounded_rows_times(
    a: &[u16],
    lda: usize,
    m: usize,
    rhs: &PackedRhs,
    out: (*mut f32, usize),
) {
    let Panels::Bf16(w) = &rhs.panels else {
        unreachable!("a bf16 right-hand side (this function's contract)")
    };
    if m == 0 {
        return;
    }
    let job = Job {
        rhs,
        bias: None,
        out: OutPtr(out.0),
        ldc: out.1,
        residual: None,
        epilogue: None,
        sizes: super::blocking::active(),
    };
    let panels = 0..pack::panel_count(rhs.n);
    // SAFETY: forwarded from this function's contract.
    unsafe { job.sweep_bf16(w.as_slice(), (a, lda), 0..m, panels) };
}
