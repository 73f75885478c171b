//! `Norm`: a LayerNorm that the CPU products can also apply to their input rows as they pack
//! them ([`super::dense::Dense::forward_with`]), instead of in a pass of its own.

use std::sync::Arc;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use siglip_kernels::activations::RowNorm;

/// A LayerNorm (`weight`, `bias`) over the last dimension.
#[derive(Debug, Clone)]
pub struct Norm {
    layer: LayerNorm,
    gamma: Arc<Vec<f32>>,
    beta: Arc<Vec<f32>>,
    eps: f32,
}

impl Norm {
    /// Loads `weight` and `bias` `[width]` under `vb`.
    pub fn load(width: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let layer = candle_nn::layer_norm(width, eps, vb)?;
        let values = |t: &Tensor| -> Result<Arc<Vec<f32>>> {
            Ok(Arc::new(t.to_dtype(DType::F32)?.to_vec1()?))
        };
        let beta = match layer.bias() {
            Some(bias) => values(bias)?,
            None => Arc::new(vec![0.0; width]),
        };
        Ok(Self {
            gamma: values(layer.weight())?,
            beta,
            eps: eps as f32,
            layer,
        })
    }

    /// The parameters, for a product to apply row by row.
    pub fn rows(&self) -> RowNorm<'_> {
        RowNorm {
            gamma: &self.gamma,
            beta: &self.beta,
            eps: self.eps,
        }
    }
}

impl Module for Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layer.forward(x)
    }
}
