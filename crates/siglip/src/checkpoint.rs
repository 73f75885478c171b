//! A loaded checkpoint: the model with the tokenizer and image preprocessor that belong to it,
//! and the one path from pixels and prompts to embeddings and logits that the server's queues
//! and the command line both run. Fixed-resolution checkpoints (SigLIP 1, SigLIP 2 FixRes)
//! read a square pixel grid; NaFlex ones (SigLIP 2 naflex) read each image as its own number
//! of patches ([`Pixels`]).

mod images;
mod summary;

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::config::{ModelKind, SiglipConfig};
use crate::error::{bail, ensure, Context, Result};
use crate::files::{self, ModelFiles};
use crate::model::{Dtype, SiglipModel};
use crate::tokenizer::{PromptTokenizer, TextLowercase};
use crate::zero_shot::{self, LabelScore};

pub use images::{ImageProcessor, Pixels};
pub use summary::Summary;

/// An L2-normalised embedding, shared between the caller and caches without copying.
pub type Embedding = Arc<[f32]>;

/// Everything needed to turn images and prompts into SigLIP embeddings and logits.
#[derive(Debug)]
pub struct Checkpoint {
    /// Both towers.
    pub model: SiglipModel,
    /// Prompt to ids.
    pub tokenizer: PromptTokenizer,
    /// Decoded image to what the image tower reads.
    pub image_processor: ImageProcessor,
}

/// What a checkpoint is loaded with besides its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// What the products multiply in.
    pub dtype: Dtype,
    /// Prompt lowercasing.
    pub text_lowercase: TextLowercase,
    /// NaFlex: patches per image by default, instead of the checkpoint's `max_num_patches`.
    pub max_num_patches: Option<usize>,
}

impl LoadOptions {
    /// `dtype`, and the checkpoint's own settings for everything else.
    pub fn new(dtype: Dtype) -> Self {
        Self {
            dtype,
            text_lowercase: TextLowercase::Auto,
            max_num_patches: None,
        }
    }
}

impl Checkpoint {
    /// Loads `model` (a local directory or a hub id) onto `device`, multiplying in `dtype`.
    pub fn load(
        model: &str,
        revision: Option<&str>,
        device: &Device,
        dtype: Dtype,
    ) -> Result<Self> {
        Self::from_files(&files::resolve(model, revision)?, device, dtype)
    }

    /// Loads resolved files onto `device`, with the checkpoint's own settings.
    pub fn from_files(files: &ModelFiles, device: &Device, dtype: Dtype) -> Result<Self> {
        Self::from_files_with(files, device, LoadOptions::new(dtype))
    }

    /// Loads resolved files onto `device` with `options`.
    pub fn from_files_with(
        files: &ModelFiles,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        let config = SiglipConfig::from_json(&read(&files.config)?)
            .with_context(|| format!("parsing {}", files.config.display()))?;
        let preprocessor_json = read(&files.preprocessor)?;
        let image_processor = images::image_processor(&config, &preprocessor_json, options)
            .with_context(|| format!("parsing {}", files.preprocessor.display()))?;
        // transformers lowercases every NaFlex prompt (`Siglip2Tokenizer`), whatever
        // `do_lower_case` says; `auto` does the same there.
        let text_lowercase = match (options.text_lowercase, config.kind()) {
            (TextLowercase::Auto, ModelKind::Naflex) => TextLowercase::On,
            (setting, _) => setting,
        };
        let tokenizer = PromptTokenizer::load(
            &files.tokenizer,
            files.tokenizer_config.as_deref(),
            config.text_config.max_position_embeddings,
            text_lowercase,
        )?;
        ensure!(
            tokenizer.vocab_size() <= config.text_config.vocab_size,
            "the tokenizer has {} pieces but the text tower only {} embeddings",
            tokenizer.vocab_size(),
            config.text_config.vocab_size
        );
        let model = SiglipModel::load(config, &files.weights, device, options.dtype)?;
        Ok(Self {
            model,
            tokenizer,
            image_processor,
        })
    }

    /// Each image ranked against `labels` under `template`: the zero-shot pipeline in one call.
    /// `top_k` keeps the best k labels per image.
    pub fn classify(
        &self,
        images: &[RgbImage],
        labels: &[String],
        template: &str,
        top_k: Option<usize>,
    ) -> Result<Vec<Vec<LabelScore>>> {
        let prompts = zero_shot::prompts(labels, template)?;
        let texts = self.embed_prompts(&prompts)?;
        let pixels = images
            .iter()
            .map(|image| self.pixels(image, None))
            .collect::<Result<_, _>>()?;
        let images = self.embed_pixels(pixels)?;
        Ok(images
            .iter()
            .map(|image| zero_shot::rank(&self.logits(image, &texts), top_k))
            .collect())
    }

    /// Text embeddings of a batch of prompts, in one pass of the text tower.
    pub fn embed_prompts(&self, prompts: &[String]) -> Result<Vec<Embedding>> {
        rows(self.model.text_embeddings(&self.id_batch(prompts)?)?)
    }

    /// One image's logits against each text: `exp(logit_scale) * image · text + logit_bias`.
    pub fn logits(&self, image: &[f32], texts: &[Embedding]) -> Vec<f32> {
        texts
            .iter()
            .map(|text| self.model.logit(image, text))
            .collect()
    }

    /// Token ids of `prompts`, `[n, 64]` on the model's device.
    pub fn id_batch(&self, prompts: &[String]) -> Result<Tensor> {
        let len = self.tokenizer.max_length();
        let ids: Vec<u32> = prompts
            .iter()
            .flat_map(|p| self.tokenizer.encode(p))
            .collect();
        Ok(Tensor::from_vec(
            ids,
            (prompts.len(), len),
            self.model.device(),
        )?)
    }
}

/// A `[n, width]` tensor as n embeddings.
fn rows(embeddings: Tensor) -> Result<Vec<Embedding>> {
    Ok(embeddings
        .to_vec2::<f32>()?
        .into_iter()
        .map(Embedding::from)
        .collect())
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec.trim() {
        "cpu" => Ok(Device::Cpu),
        other => {
            let ordinal = match other.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse::<usize>().ok())
                    .with_context(|| {
                        format!("bad device {other:?}: expected cpu, cuda or cuda:N")
                    })?,
                None => bail!("bad device {other:?}: expected cpu, cuda or cuda:N"),
            };
            cuda_device(ordinal)
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).with_context(|| format!("cannot open CUDA device {ordinal}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> Result<Device> {
    bail!("this siglip-server was built without CUDA support (cargo feature `cuda`)")
}
