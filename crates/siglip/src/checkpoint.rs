//! A loaded checkpoint: the model with the tokenizer and image preprocessor that belong to it,
//! and the one path from pixels and prompts to embeddings and logits that the server's queues
//! and the command line both run.

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::config::SiglipConfig;
use crate::error::{bail, ensure, Context, Result};
use crate::files::{self, ModelFiles};
use crate::model::{Dtype, SiglipModel};
use crate::preprocess::Preprocessor;
use crate::tokenizer::SiglipTokenizer;
use crate::zero_shot::{self, LabelScore};

/// An L2-normalised embedding, shared between the caller and caches without copying.
pub type Embedding = Arc<[f32]>;

/// Everything needed to turn images and prompts into SigLIP embeddings and logits.
#[derive(Debug)]
pub struct Checkpoint {
    /// Both towers.
    pub model: SiglipModel,
    /// Prompt to ids.
    pub tokenizer: SiglipTokenizer,
    /// Decoded image to pixel values.
    pub preprocessor: Preprocessor,
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

    /// Loads resolved files onto `device`.
    pub fn from_files(files: &ModelFiles, device: &Device, dtype: Dtype) -> Result<Self> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        let config = SiglipConfig::from_json(&read(&files.config)?)
            .with_context(|| format!("parsing {}", files.config.display()))?;
        let preprocessor = Preprocessor::from_json(&read(&files.preprocessor)?)
            .with_context(|| format!("parsing {}", files.preprocessor.display()))?;
        ensure!(
            preprocessor.do_resize,
            "preprocessor_config.json has do_resize = false; SigLIP needs a fixed input size"
        );
        let (height, width) = config.vision_config.image_size.hw();
        ensure!(
            (preprocessor.height as usize, preprocessor.width as usize) == (height, width),
            "preprocessor_config.json resizes to {}x{} but the vision tower expects {width}x{height}",
            preprocessor.width,
            preprocessor.height
        );
        let tokenizer = SiglipTokenizer::load(
            &files.tokenizer,
            files.tokenizer_config.as_deref(),
            config.text_config.max_position_embeddings,
        )?;
        ensure!(
            tokenizer.vocab_size() <= config.text_config.vocab_size,
            "the tokenizer has {} pieces but the text tower only {} embeddings",
            tokenizer.vocab_size(),
            config.text_config.vocab_size
        );
        let model = SiglipModel::load(config, &files.weights, device, dtype)?;
        Ok(Self {
            model,
            tokenizer,
            preprocessor,
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
        let pixels = images.iter().map(|image| self.pixels(image)).collect();
        let images = self.embed_pixels(pixels)?;
        Ok(images
            .iter()
            .map(|image| zero_shot::rank(&self.logits(image, &texts), top_k))
            .collect())
    }

    /// Pixel values of one image, CHW, as the image tower reads them.
    pub fn pixels(&self, image: &RgbImage) -> Vec<f32> {
        self.preprocessor.pixel_values(image)
    }

    /// Image embeddings of a batch of [`Checkpoint::pixels`], in one pass of the image tower.
    pub fn embed_pixels(&self, batch: Vec<Vec<f32>>) -> Result<Vec<Embedding>> {
        let (h, w) = self.model.image_size();
        let n = batch.len();
        let data: Vec<f32> = batch.concat();
        let pixels = Tensor::from_vec(data, (n, 3, h, w), self.model.device())?;
        rows(self.model.image_embeddings(&pixels)?)
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

    /// Pixel values of `images`, `[n, 3, H, W]` on the model's device.
    pub fn pixel_batch(&self, images: &[RgbImage]) -> Result<Tensor> {
        let (h, w) = self.model.image_size();
        let per_image = 3 * h * w;
        let mut data = vec![0f32; images.len() * per_image];
        for (image, out) in images.iter().zip(data.chunks_exact_mut(per_image)) {
            self.preprocessor.pixel_values_into(image, out);
        }
        Ok(Tensor::from_vec(
            data,
            (images.len(), 3, h, w),
            self.model.device(),
        )?)
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
