//! The start-up calibration of the cache blocking: times candidate sizes on a model's largest
//! products, on this CPU and its threads, and of the candidates within a small margin of the
//! fastest keeps the one nearest the sizes in use, so that timing noise does not move the
//! choice.

use std::time::Instant;

use super::blocking::{self, Blocking, BlockingRequest, BlockingSource};
use super::{Dtype, PackedRhs};

/// A product to time: m rows of x (k wide) times an n×k W.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Rows of x (a batch-1 image's tokens).
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Output columns.
    pub n: usize,
}

/// One candidate's time.
#[derive(Clone, Copy, Debug)]
pub struct Trial {
    /// The sizes timed.
    pub sizes: Blocking,
    /// The fastest of the rounds, all shapes once each.
    pub seconds: f64,
}

/// What a calibration timed and what it chose.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The sizes kept.
    pub chosen: Blocking,
    /// Every candidate, in the order timed.
    pub trials: Vec<Trial>,
    /// The calibration's wall time, in seconds.
    pub seconds: f64,
}

/// Candidates within this fraction (2%) of the fastest count as tied: two timings of the same
/// sizes on a quiet machine differ by about 1%.
const MARGIN: f64 = 0.02;

/// Rounds per block size; each round times every candidate once, in turn, so that a slow
/// stretch of the machine falls on all of them.
const ROUNDS: usize = 3;

/// Chooses the blocking as `request` says and sets it ([`blocking::set`]): the measured sizes
/// where they were measured on this kind of CPU ([`blocking::measured_here`]) or pinned by the
/// settings, else a calibration on `shapes` with `threads` threads. Returns the calibration,
/// if one ran.
pub fn apply(
    request: BlockingRequest,
    dtype: Dtype,
    shapes: &[Shape],
    threads: usize,
) -> Option<Calibration> {
    let measured = Blocking::zen4(super::isa::active());
    let calibrate_here = match request {
        BlockingRequest::Pinned(sizes) => {
            blocking::set(sizes.over(measured), BlockingSource::Setting);
            return None;
        }
        BlockingRequest::Auto => !blocking::measured_here(),
        BlockingRequest::Calibrate => true,
    };
    let calibration = calibrate_here
        .then(|| calibrate(dtype, shapes, threads))
        .flatten();
    match &calibration {
        Some(calibration) => blocking::set(calibration.chosen, BlockingSource::Calibrated),
        None => blocking::set(measured, BlockingSource::Measured),
    }
    calibration
}

/// Times candidate k blocks, then column blocks, then row blocks, each around the best so far,
/// starting from the Zen 4 sizes. None when the `dtype` kernels do not run here or there is
/// nothing to time.
pub fn calibrate(dtype: Dtype, shapes: &[Shape], threads: usize) -> Option<Calibration> {
    let start = Instant::now();
    let mut products = shapes
        .iter()
        .filter(|s| s.m > 0 && s.k > 0 && s.n > 0)
        .map(|&shape| Product::new(shape, dtype))
        .collect::<Option<Vec<_>>>()?;
    if products.is_empty() {
        return None;
    }
    let mut chosen = Blocking::zen4(super::isa::active());
    // Faults the buffers in and wakes the thread pool.
    time(&mut products, chosen, threads);
    let mut trials = Vec::new();
    for block in [Block::K, Block::Columns, Block::Rows] {
        let candidates = block.candidates(chosen, dtype);
        let timed = time_candidates(&mut products, &candidates, threads);
        chosen = nearest_of_the_fastest(chosen, &timed);
        trials.extend(timed);
    }
    Some(Calibration {
        chosen,
        trials,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Which block's size the calibration varies, one at a time.
#[derive(Clone, Copy)]
enum Block {
    K,
    Columns,
    Rows,
}

impl Block {
    /// `sizes` with this size at half, three quarters, the same, one and a half and twice its
    /// value (at least 1; k blocks of bf16 even), each once.
    fn candidates(self, sizes: Blocking, dtype: Dtype) -> Vec<Blocking> {
        let value = match self {
            Self::K => sizes.kc(dtype),
            Self::Columns => sizes.nc_panels,
            Self::Rows => sizes.row_strips,
        };
        let usable = |v: usize| match (self, dtype) {
            (Self::K, Dtype::Bf16) => v.max(1).next_multiple_of(2),
            _ => v.max(1),
        };
        let mut values = [value / 2, value * 3 / 4, value, value * 3 / 2, value * 2]
            .map(usable)
            .to_vec();
        values.dedup();
        values
            .into_iter()
            .map(|value| match self {
                Self::K => sizes.with_kc(dtype, value),
                Self::Columns => Blocking {
                    nc_panels: value,
                    ..sizes
                },
                Self::Rows => Blocking {
                    row_strips: value,
                    ..sizes
                },
            })
            .collect()
    }
}

/// Of the candidates tied with the fastest (within [`MARGIN`]), the one nearest `current`
/// (the same sizes, then ×3/4 or ×1.5, then ×1/2 or ×2; the faster where two are as near), so
/// that a near tie does not move the choice from one run to the next.
fn nearest_of_the_fastest(current: Blocking, timed: &[Trial]) -> Blocking {
    let fastest = timed
        .iter()
        .map(|t| t.seconds)
        .fold(f64::INFINITY, f64::min);
    let distance = |sizes: &Blocking| {
        let (a, b) = (sizes.scale(), current.scale());
        (a.iter()
            .zip(&b)
            .map(|(x, y)| (x / y).ln().abs())
            .sum::<f64>()
            * 100.0)
            .round() as u64
    };
    timed
        .iter()
        .filter(|t| t.seconds <= fastest * (1.0 + MARGIN))
        .min_by(|a, b| {
            (distance(&a.sizes), a.seconds)
                .partial_cmp(&(distance(&b.sizes), b.seconds))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map_or(current, |t| t.sizes)
}

/// Each candidate's fastest time over [`ROUNDS`] rounds.
fn time_candidates(
    products: &mut [Product],
    candidates: &[Blocking],
    threads: usize,
) -> Vec<Trial> {
    let mut best = vec![f64::INFINITY; candidates.len()];
    for _ in 0..ROUNDS {
        for (sizes, best) in candidates.iter().zip(&mut best) {
            *best = best.min(time(products, *sizes, threads));
        }
    }
    candidates
        .iter()
        .zip(best)
        .map(|(&sizes, seconds)| Trial { sizes, seconds })
        .collect()
}

/// Seconds to run every product once with `sizes`.
fn time(products: &mut [Product], sizes: Blocking, threads: usize) -> f64 {
    let start = Instant::now();
    for product in products {
        super::matmul_blocked(
            &product.x,
            product.shape.m,
            &product.w,
            &mut product.out,
            threads,
            sizes,
        );
    }
    start.elapsed().as_secs_f64()
}

/// One product's operands (small values in [-0.5, 0.5)) and its output.
struct Product {
    shape: Shape,
    x: Vec<f32>,
    w: PackedRhs,
    out: Vec<f32>,
}

impl Product {
    fn new(shape: Shape, dtype: Dtype) -> Option<Self> {
        let values = |len: usize, seed: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * 7919 + seed) % 2003) as f32 / 2003.0 - 0.5)
                .collect()
        };
        let w = values(shape.n * shape.k, 1);
        Some(Self {
            shape,
            x: values(shape.m * shape.k, 2),
            w: PackedRhs::pack(&w, shape.n, shape.k, shape.k, 1, dtype)?,
            out: vec![0.0; shape.m * shape.n],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_times_every_block_size_and_keeps_a_timed_candidate() {
        if !super::super::cpu_supports(Dtype::F32) {
            return;
        }
        let shapes = [Shape {
            m: 40,
            k: 300,
            n: 70,
        }];
        let calibration = calibrate(Dtype::F32, &shapes, 2).unwrap();
        // 5 k blocks, then 5 column blocks and 5 row blocks around the best.
        assert_eq!(calibration.trials.len(), 15);
        assert!(calibration
            .trials
            .iter()
            .any(|t| t.sizes == calibration.chosen));
        assert!(calibration.trials.iter().all(|t| t.seconds > 0.0));
    }

    #[test]
    fn a_near_tie_keeps_the_nearest_sizes() {
        let current = Blocking::zen4(crate::CpuIsa::Avx512);
        let timed = |times: [(usize, f64); 5]| -> Vec<Trial> {
            times
                .map(|(kc, ms)| Trial {
                    sizes: current.with_kc(Dtype::F32, kc),
                    seconds: ms / 1e3,
                })
                .to_vec()
        };
        // 384 and 512 tie (0.1%), both 7% ahead of 256: the one nearer 256 is kept.
        let chosen = nearest_of_the_fastest(
            current,
            &timed([
                (128, 28.5),
                (192, 27.9),
                (256, 28.26),
                (384, 26.31),
                (512, 26.28),
            ]),
        );
        assert_eq!(chosen.kc_f32, 384);
        // The sizes in use within 2% of the fastest: kept.
        let chosen = nearest_of_the_fastest(
            current,
            &timed([
                (128, 28.5),
                (192, 27.9),
                (256, 26.7),
                (384, 26.31),
                (512, 26.28),
            ]),
        );
        assert_eq!(chosen, current);
        // One clearly fastest: taken, however far.
        let chosen = nearest_of_the_fastest(
            current,
            &timed([
                (128, 20.0),
                (192, 27.9),
                (256, 28.26),
                (384, 26.31),
                (512, 26.28),
            ]),
        );
        assert_eq!(chosen.kc_f32, 128);
    }

    #[test]
    fn candidates_are_distinct_and_at_least_one() {
        let sizes = Blocking {
            kc_f32: 256,
            kc_bf16: 768,
            nc_panels: 1,
            row_strips: 8,
        };
        let panels = Block::Columns.candidates(sizes, Dtype::F32);
        let panels: Vec<_> = panels.iter().map(|s| s.nc_panels).collect();
        assert_eq!(panels, [1, 2]);
        let strips = Block::Rows.candidates(sizes, Dtype::F32);
        let strips: Vec<_> = strips.iter().map(|s| s.row_strips).collect();
        assert_eq!(strips, [4, 6, 8, 12, 16]);
        let small_k = Block::K.candidates(
            Blocking {
                kc_bf16: 2,
                ..sizes
            },
            Dtype::Bf16,
        );
        let small_k: Vec<_> = small_k.iter().map(|s| s.kc_bf16).collect();
        assert_eq!(small_k, [2, 4]);
    }
}
