//! A loaded checkpoint: the model with the tokenizer and image preprocessor that belong to it,
//! and the batching of their outputs into the tensors each tower reads.

use std::path::Path;

use anyhow::Context;
use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::model::files::{self, ModelFiles};
use crate::model::{Precision, SiglipConfig, SiglipModel};
use crate::preprocess::Preprocessor;
use crate::tokenizer::SiglipTokenizer;

/// Everything needed to turn images and prompts into SigLIP embeddings.
#[derive(Debug)]
pub struct Checkpoint {
    /// The id the model is served under: the hub id, or the directory's name.
    pub name: String,
    /// Both towers.
    pub model: SiglipModel,
    /// Prompt to ids.
    pub tokenizer: SiglipTokenizer,
    /// Decoded image to pixel values.
    pub preprocessor: Preprocessor,
}

impl Checkpoint {
    /// Loads `model` (a local directory or a hub id) onto `device`, multiplying in `precision`.
    pub fn load(
        model: &str,
        revision: Option<&str>,
        device: &Device,
        precision: Precision,
    ) -> anyhow::Result<Self> {
        let files = files::resolve(model, revision)?;
        Self::from_files(&files, served_name(model), device, precision)
    }

    /// Loads resolved files onto `device`, to be served as `name`.
    pub fn from_files(
        files: &ModelFiles,
        name: String,
        device: &Device,
        precision: Precision,
    ) -> anyhow::Result<Self> {
        let config = SiglipConfig::from_json(&std::fs::read_to_string(&files.config)?)
            .with_context(|| format!("parsing {}", files.config.display()))?;
        let preprocessor = Preprocessor::from_json(&std::fs::read_to_string(&files.preprocessor)?)
            .with_context(|| format!("parsing {}", files.preprocessor.display()))?;
        anyhow::ensure!(
            preprocessor.do_resize,
            "preprocessor_config.json has do_resize = false; SigLIP needs a fixed input size"
        );
        let (height, width) = config.vision_config.image_size.hw();
        anyhow::ensure!(
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
        anyhow::ensure!(
            tokenizer.vocab_size() <= config.text_config.vocab_size,
            "the tokenizer has {} pieces but the text tower only {} embeddings",
            tokenizer.vocab_size(),
            config.text_config.vocab_size
        );
        let model = SiglipModel::load(config, &files.weights, device, precision)?;
        Ok(Self {
            name,
            model,
            tokenizer,
            preprocessor,
        })
    }

    /// Pixel values of `images`, `[n, 3, H, W]` on the model's device.
    pub fn pixel_batch(&self, images: &[RgbImage]) -> anyhow::Result<Tensor> {
        let (h, w) = (
            self.preprocessor.height as usize,
            self.preprocessor.width as usize,
        );
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
    pub fn id_batch(&self, prompts: &[String]) -> anyhow::Result<Tensor> {
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

impl Checkpoint {
    /// `logits_per_image` of `images` against `prompts`, `[images][prompts]`.
    pub fn logits(&self, images: &[RgbImage], prompts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let image_embeds = self.model.image_embeddings(&self.pixel_batch(images)?)?;
        let text_embeds = self.model.text_embeddings(&self.id_batch(prompts)?)?;
        Ok(self.model.logits(&image_embeds, &text_embeds)?.to_vec2()?)
    }
}

/// The served id: a local directory by its last component, a hub id as given.
pub fn served_name(model: &str) -> String {
    let path = Path::new(model);
    match path.file_name().and_then(|n| n.to_str()) {
        Some(name) if path.is_dir() => name.to_string(),
        _ => model.to_string(),
    }
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> anyhow::Result<Device> {
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
                None => anyhow::bail!("bad device {other:?}: expected cpu, cuda or cuda:N"),
            };
            cuda_device(ordinal)
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> anyhow::Result<Device> {
    Device::new_cuda(ordinal).with_context(|| format!("cannot open CUDA device {ordinal}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> anyhow::Result<Device> {
    anyhow::bail!("this siglip-server was built without CUDA support (cargo feature `cuda`)")
}
