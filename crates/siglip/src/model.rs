//! SigLIP in candle: both towers, the embeddings and the logits.
//!
//! Mirrors transformers' `SiglipModel` (modeling_siglip.py). Each tower is callable on its
//! own so that text embeddings can be cached and batched apart from images.

mod dense;
mod encoder;
mod norm;
mod ops;
mod text;
mod vision;
mod weights;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::error::Context;

pub use crate::config::{ModelKind, SiglipConfig};
pub use siglip_kernels::Dtype;
use text::TextTower;
use vision::VisionTower;

/// A loaded SigLIP model.
#[derive(Debug)]
pub struct SiglipModel {
    config: SiglipConfig,
    vision: VisionTower,
    text: TextTower,
    /// `exp(logit_scale)`.
    logit_scale: f32,
    logit_bias: f32,
    device: Device,
}

/// Whether products in `dtype` can run on `device`: bf16 needs the CPU and its AVX-512 kernels
/// with AVX512-BF16. Checked when a model loads, and by the server before it listens.
pub fn check_dtype(dtype: Dtype, device: &Device) -> crate::error::Result<()> {
    if dtype == Dtype::Bf16 {
        crate::error::ensure!(
            device.is_cpu(),
            "dtype bf16 is implemented for the CPU only; use f32 on CUDA"
        );
        crate::error::ensure!(
            siglip_kernels::cpu_supports(Dtype::Bf16),
            "dtype bf16 needs the AVX-512 kernels and AVX512-BF16: this CPU has {} \
             (bf16 products: {}) and the kernels run at cpu_isa {}; use f32",
            siglip_kernels::isa::detected(),
            if siglip_kernels::isa::has_bf16_products() {
                "yes"
            } else {
                "no"
            },
            siglip_kernels::isa::active()
        );
    }
    Ok(())
}

impl SiglipModel {
    /// Loads weights from one or more safetensors files (shards are merged), as f32; the
    /// matrix products multiply in `dtype`.
    pub fn load(
        config: SiglipConfig,
        weights: &[PathBuf],
        device: &Device,
        dtype: Dtype,
    ) -> crate::error::Result<Self> {
        check_dtype(dtype, device)?;
        let files = weights::SafetensorsFiles::open(weights)?;
        let vb = VarBuilder::from_backend(Box::new(files), DType::F32, device.clone());
        Self::new(config, dtype, vb).context("the weights do not match config.json")
    }

    /// Builds the model from a `VarBuilder` rooted at the checkpoint's top level.
    pub fn new(config: SiglipConfig, dtype: Dtype, vb: VarBuilder) -> candle_core::Result<Self> {
        let vision = VisionTower::new(
            &config.vision_config,
            config.kind(),
            dtype,
            vb.pp("vision_model"),
        )?;
        let text = TextTower::new(&config.text_config, dtype, vb.pp("text_model"))?;
        let scalar = |name: &str| -> candle_core::Result<f32> {
            vb.get(1, name)?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()
                .map(|v| v[0])
        };
        Ok(Self {
            logit_scale: scalar("logit_scale")?.exp(),
            logit_bias: scalar("logit_bias")?,
            device: vb.device().clone(),
            config,
            vision,
            text,
        })
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &SiglipConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The vision architecture.
    pub fn kind(&self) -> ModelKind {
        self.config.kind()
    }

    /// `(height, width)` of the pixel input a fixed-resolution vision tower expects.
    pub fn image_size(&self) -> (usize, usize) {
        self.config.vision_config.image_size.hw()
    }

    /// `exp(logit_scale)`.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// `logit_bias`.
    pub fn logit_bias(&self) -> f32 {
        self.logit_bias
    }

    /// Width of both embeddings.
    pub fn embedding_size(&self) -> usize {
        self.config.vision_config.hidden_size
    }

    /// Unnormalised image features (`get_image_features`) of `[batch, 3, H, W]` pixels.
    pub fn image_features(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        on_compute_pool(|| self.vision.forward(pixels))
    }

    /// Unnormalised image features of NaFlex images: `patches` `[total, channels * patch *
    /// patch]` holds each image's `rows * cols` patches in turn, `grids` their `(rows, cols)`.
    pub fn patch_features(
        &self,
        patches: &Tensor,
        grids: &[(usize, usize)],
    ) -> candle_core::Result<Tensor> {
        on_compute_pool(|| self.vision.forward_patches(patches, grids))
    }

    /// Unnormalised text features (`get_text_features`) of `[batch, seq]` u32 ids.
    pub fn text_features(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        on_compute_pool(|| self.text.forward(input_ids))
    }

    /// L2-normalised image embeddings, `[batch, embedding]`.
    pub fn image_embeddings(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        l2_normalize(&self.image_features(pixels)?)
    }

    /// L2-normalised image embeddings of NaFlex images (see [`SiglipModel::patch_features`]).
    pub fn patch_embeddings(
        &self,
        patches: &Tensor,
        grids: &[(usize, usize)],
    ) -> candle_core::Result<Tensor> {
        l2_normalize(&self.patch_features(patches, grids)?)
    }

    /// L2-normalised text embeddings, `[batch, embedding]`.
    pub fn text_embeddings(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        l2_normalize(&self.text_features(input_ids)?)
    }

    /// One logit: `exp(logit_scale) * image · text + logit_bias`, for two L2-normalised
    /// embeddings. The one place the formula is written.
    pub fn logit(&self, image: &[f32], text: &[f32]) -> f32 {
        let cosine: f32 = image.iter().zip(text).map(|(a, b)| a * b).sum();
        cosine * self.logit_scale + self.logit_bias
    }
}

/// `x / ||x||₂` along the last dimension, as transformers does (no epsilon).
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// Runs a tower's forward pass on one of rayon's threads, the ones its products run on.
///
/// Called from outside the pool, every parallel product would hand its work to the pool and
/// put the calling thread to sleep until it is done: a sleep and a wake-up per product, and
/// the pool's second thread woken from sleep each time. From inside, a product runs one part
/// itself and the other thread, still spinning from the last one, takes the other.
fn on_compute_pool<R: Send>(forward: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| forward())
}
