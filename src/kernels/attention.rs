//! Multi-head scaled dot-product attention without a mask, on row-major f32 slices.
//!
//! One task per (sequence, head): `S = (Q·scale)·Kᵀ`, a row softmax, `O = S·V`, each
//! product through [`super::matmul`] on one thread, the tasks spread over the threads.
//! Queries, keys and values are read in place from the projection outputs (a fused
//! q;k;v matrix is three column ranges of one buffer), so nothing is transposed.

use super::activations::softmax_rows;
use super::{matmul, PackedRhs, Precision};

/// A `[batch, rows, ...]` activation holding one column block of `heads * dim` values per row.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    /// The whole buffer.
    pub data: &'a [f32],
    /// Rows per sequence.
    pub rows: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Column where head 0 starts.
    pub offset: usize,
}

impl Heads<'_> {
    /// Start of row 0 of `head` in sequence `seq`.
    fn start(&self, seq: usize, head: usize, dim: usize) -> usize {
        seq * self.rows * self.row_stride + self.offset + head * dim
    }
}

/// The shape of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Sequences in the batch.
    pub batch: usize,
    /// Heads.
    pub heads: usize,
    /// Width of one head.
    pub dim: usize,
}

/// Attention of `q` over `k`/`v`, written to `out` as `[batch, q.rows, heads * dim]`.
///
/// Returns `false` (and writes nothing) when this CPU lacks the kernels for `precision`.
pub fn attend(
    shape: AttentionShape,
    q: Heads,
    k: Heads,
    v: Heads,
    precision: Precision,
    out: &mut [f32],
    threads: usize,
) -> bool {
    let AttentionShape { batch, heads, dim } = shape;
    let width = heads * dim;
    let tasks = batch * heads;
    let threads = threads.clamp(1, tasks.max(1));
    let per_thread = tasks.div_ceil(threads);
    let results: Vec<Option<Vec<f32>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * per_thread..((t + 1) * per_thread).min(tasks);
                scope.spawn(move || {
                    let mut head_out = Vec::with_capacity(range.len() * q.rows * dim);
                    for task in range {
                        let (seq, head) = (task / heads, task % heads);
                        let mut one = vec![0f32; q.rows * dim];
                        if !attend_one(seq, head, dim, q, k, v, precision, &mut one) {
                            return None;
                        }
                        head_out.extend_from_slice(&one);
                    }
                    Some(head_out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("attention worker panicked"))
            .collect()
    });
    let mut task = 0;
    for chunk in results {
        let Some(chunk) = chunk else { return false };
        for one in chunk.chunks_exact(q.rows * dim) {
            let (seq, head) = (task / heads, task % heads);
            for (row, values) in one.chunks_exact(dim).enumerate() {
                let at = (seq * q.rows + row) * width + head * dim;
                out[at..at + dim].copy_from_slice(values);
            }
            task += 1;
        }
    }
    true
}

/// One head of one sequence into `out`, `[q.rows, dim]`.
#[allow(clippy::too_many_arguments)]
fn attend_one(
    seq: usize,
    head: usize,
    dim: usize,
    q: Heads,
    k: Heads,
    v: Heads,
    precision: Precision,
    out: &mut [f32],
) -> bool {
    let scale = (dim as f32).powf(-0.5);
    let q_start = q.start(seq, head, dim);
    let scaled_q: Vec<f32> = (0..q.rows)
        .flat_map(|row| {
            let at = q_start + row * q.row_stride;
            q.data[at..at + dim].iter().map(|x| x * scale)
        })
        .collect();
    let k_start = k.start(seq, head, dim);
    let Some(keys) = PackedRhs::pack(&k.data[k_start..], k.rows, dim, k.row_stride, 1, precision)
    else {
        return false;
    };
    let mut scores = vec![0f32; q.rows * k.rows];
    matmul(&scaled_q, q.rows, &keys, None, &mut scores, k.rows, 1);
    softmax_rows(&mut scores, k.rows);
    // O = S·V: V read as the n×k matrix Vᵀ (n = dim, k = key rows).
    let v_start = v.start(seq, head, dim);
    let Some(values) = PackedRhs::pack(&v.data[v_start..], dim, v.rows, 1, v.row_stride, precision)
    else {
        return false;
    };
    matmul(&scores, q.rows, &values, None, out, dim, 1);
    true
}
