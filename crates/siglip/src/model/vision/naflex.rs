//! NaFlex patch embeddings (`Siglip2VisionEmbeddings`): a linear layer over flattened patches,
//! plus the learned square grid of position embeddings resized to each image's patch grid.
//!
//! The resize is torch's `F.interpolate(mode="bilinear", align_corners=False, antialias=True)`
//! written as transformers 5.24 writes it: per axis, triangle weights whose support widens
//! with the downscale factor, normalised to sum 1; the resized grid is the outer product of a
//! row's and a column's weights times the grid. [`axis_weights`] does that arithmetic in f32,
//! in torch's order, so the positions agree with transformers' to float rounding of the sums.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::VisionConfig;
use crate::model::dense::Dense;
use siglip_kernels::Dtype;

/// `vision_model.embeddings` of a NaFlex checkpoint.
#[derive(Debug, Clone)]
pub struct NaflexEmbeddings {
    /// `patch_embedding`: `[hidden, channels * patch * patch]`.
    projection: Dense,
    /// `position_embedding`, `[side * side, hidden]`, row-major over the grid.
    positions: Tensor,
    /// Side of the square position grid.
    side: usize,
}

impl NaflexEmbeddings {
    /// Loads `patch_embedding` and `position_embedding` under `vb`.
    pub fn new(config: &VisionConfig, dtype: Dtype, vb: VarBuilder) -> Result<Self> {
        let (patch, _) = config.patch_size.hw();
        let inputs = config.num_channels * patch * patch;
        let side = config
            .position_grid_side()
            .ok_or_else(|| candle_core::Error::Msg("num_patches is not a square".into()))?;
        let h = config.hidden_size;
        Ok(Self {
            projection: Dense::load(inputs, h, dtype, vb.pp("patch_embedding"))?,
            positions: vb
                .pp("position_embedding")
                .get((side * side, h), "weight")?,
            side,
        })
    }

    /// Patches `[total, channels * patch * patch]` of images with `grids` `(rows, cols)` to
    /// the encoder's input `[1, total, hidden]`.
    pub fn forward(&self, patches: &Tensor, grids: &[(usize, usize)]) -> Result<Tensor> {
        let embedded = self.projection.forward(&patches.unsqueeze(0)?)?;
        let positions = grids
            .iter()
            .map(|&grid| self.resized_positions(grid))
            .collect::<Result<Vec<_>>>()?;
        embedded.broadcast_add(&Tensor::cat(&positions, 0)?.unsqueeze(0)?)
    }

    /// The position grid resized to `rows x cols`, `[rows * cols, hidden]`, row-major.
    fn resized_positions(&self, (rows, cols): (usize, usize)) -> Result<Tensor> {
        let side = self.side;
        let row_weights = axis_weights(side, rows);
        let col_weights = axis_weights(side, cols);
        let mut weights = Vec::with_capacity(rows * cols * side * side);
        for row in row_weights.chunks_exact(side) {
            for col in col_weights.chunks_exact(side) {
                for &r in row {
                    weights.extend(col.iter().map(|&c| r * c));
                }
            }
        }
        let weights =
            Tensor::from_vec(weights, (rows * cols, side * side), self.positions.device())?;
        weights.matmul(&self.positions)
    }
}

/// Antialiased bilinear weights from a `grid`-long axis to a `size`-long one, `[size, grid]`
/// row-major, in transformers' f32 arithmetic: `scale = grid / size`, support
/// `max(scale, 1)`, centre `(i + 0.5) * scale - 0.5`, weight `max(0, 1 - |j - centre| /
/// support)`, each row divided by its sum.
pub fn axis_weights(grid: usize, size: usize) -> Vec<f32> {
    let scale = grid as f32 / size as f32;
    let support = scale.max(1.0);
    let mut weights = Vec::with_capacity(size * grid);
    for i in 0..size {
        let center = (i as f32 + 0.5) * scale - 0.5;
        let row: Vec<f32> = (0..grid)
            .map(|j| (1.0 - (j as f32 - center).abs() / support).max(0.0))
            .collect();
        let sum: f32 = row.iter().sum();
        weights.extend(row.iter().map(|w| w / sum));
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::axis_weights;

    #[test]
    fn same_size_is_the_identity() {
        let weights = axis_weights(4, 4);
        for (i, row) in weights.chunks_exact(4).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                assert_eq!(w, f32::from(u8::from(i == j)));
            }
        }
    }

    #[test]
    fn rows_sum_to_one_up_and_down() {
        for (grid, size) in [(16, 1), (16, 7), (16, 74), (16, 256), (3, 2)] {
            for row in axis_weights(grid, size).chunks_exact(grid) {
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-6, "{grid} -> {size}: {sum}");
                assert!(row.iter().all(|w| *w >= 0.0));
            }
        }
    }

    #[test]
    fn shrinking_to_one_averages_the_whole_axis() {
        // scale 4, support 4, centre 1.5: weights 1 - |j - 1.5| / 4 for j in 0..4.
        let weights = axis_weights(4, 1);
        let raw = [0.625f32, 0.875, 0.875, 0.625];
        let sum: f32 = raw.iter().sum();
        for (w, r) in weights.iter().zip(raw) {
            assert!((w - r / sum).abs() < 1e-7);
        }
    }
}
