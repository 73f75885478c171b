//! The image side of a checkpoint: the processor of its kind, what it makes of a decoded image
//! ([`Pixels`]), and the image tower's pass over a batch of them.

use candle_core::Tensor;
use image::RgbImage;

use super::{rows, Checkpoint, Embedding, LoadOptions};
use crate::config::{ModelKind, SiglipConfig};
use crate::error::{bail, ensure, Result};
use crate::image_decode::ColourKey;
use crate::preprocess::{ConfigError, PatchError, PatchPreprocessor, Patches, Preprocessor};

/// The image processor of a checkpoint's kind.
#[derive(Debug, Clone)]
pub enum ImageProcessor {
    /// `SiglipImageProcessor`: a fixed-size square, CHW.
    Fixed(Preprocessor),
    /// `Siglip2ImageProcessor`: aspect ratio kept, up to `max_num_patches` patches.
    Naflex {
        /// The processor's settings.
        processor: PatchPreprocessor,
        /// Patches per image when a request names none.
        max_num_patches: usize,
    },
}

/// One preprocessed image, as its image tower reads it.
#[derive(Debug, Clone)]
pub enum Pixels {
    /// CHW pixel values at the tower's fixed size.
    Fixed(Vec<f32>),
    /// A NaFlex image's flattened patches and their grid.
    Patches(Patches),
}

impl Checkpoint {
    /// How decoding must treat a colour key for this checkpoint's image processor (its
    /// `do_convert_rgb`).
    pub fn colour_key(&self) -> ColourKey {
        let whiten = match &self.image_processor {
            ImageProcessor::Fixed(processor) => processor.do_convert_rgb,
            ImageProcessor::Naflex { processor, .. } => processor.do_convert_rgb,
        };
        if whiten {
            ColourKey::Whiten
        } else {
            ColourKey::Keep
        }
    }

    /// NaFlex: patches per image when a request names none; `None` for a fixed size.
    pub fn default_max_num_patches(&self) -> Option<usize> {
        match &self.image_processor {
            ImageProcessor::Fixed(_) => None,
            ImageProcessor::Naflex {
                max_num_patches, ..
            } => Some(*max_num_patches),
        }
    }

    /// Sets the CPU kernels' cache blocking as `request` says, for products in `dtype` on the
    /// products' threads. Where it calls for a calibration, that times this checkpoint's
    /// image-tower MLP products for one image (its tokens × hidden → intermediate, and back),
    /// which take most of the tower's time; the calibration is returned.
    pub fn choose_cpu_blocking(
        &self,
        request: siglip_kernels::blocking::BlockingRequest,
        dtype: crate::model::Dtype,
    ) -> Option<siglip_kernels::calibrate::Calibration> {
        let threads = candle_core::utils::get_num_threads();
        siglip_kernels::calibrate::apply(request, dtype, &self.calibration_shapes(), threads)
    }

    /// The image tower's MLP products for one image.
    fn calibration_shapes(&self) -> [siglip_kernels::calibrate::Shape; 2] {
        let vision = &self.model.config().vision_config;
        let m = self
            .default_max_num_patches()
            .unwrap_or_else(|| vision.fixed_patches());
        let (hidden, intermediate) = (vision.hidden_size, vision.intermediate_size);
        [(hidden, intermediate), (intermediate, hidden)]
            .map(|(k, n)| siglip_kernels::calibrate::Shape { m, k, n })
    }

    /// One image as the image tower reads it. `max_num_patches` overrides a NaFlex
    /// checkpoint's default (it must be at least 1); a fixed-size one ignores it.
    pub fn pixels(
        &self,
        image: &RgbImage,
        max_num_patches: Option<usize>,
    ) -> Result<Pixels, PatchError> {
        Ok(match &self.image_processor {
            ImageProcessor::Fixed(processor) => Pixels::Fixed(processor.pixel_values(image)),
            ImageProcessor::Naflex {
                processor,
                max_num_patches: default,
            } => Pixels::Patches(processor.patches(image, max_num_patches.unwrap_or(*default))?),
        })
    }

    /// Image embeddings of a batch of [`Checkpoint::pixels`], in one pass of the image tower.
    /// NaFlex images of any shapes share the pass, packed without padding.
    pub fn embed_pixels(&self, batch: Vec<Pixels>) -> Result<Vec<Embedding>> {
        let n = batch.len();
        let device = self.model.device();
        let mut fixed = Vec::new();
        let mut patches = Vec::new();
        let mut grids = Vec::new();
        for pixels in batch {
            match pixels {
                Pixels::Fixed(values) => fixed.extend(values),
                Pixels::Patches(image) => {
                    patches.extend(image.values);
                    grids.push(image.grid);
                }
            }
        }
        let embeddings = match self.model.kind() {
            ModelKind::FixedResolution => {
                let (h, w) = self.model.image_size();
                ensure!(
                    grids.is_empty() && fixed.len() == n * 3 * h * w,
                    "a fixed-size tower was given NaFlex patches"
                );
                let pixels = Tensor::from_vec(fixed, (n, 3, h, w), device)?;
                self.model.image_embeddings(&pixels)?
            }
            ModelKind::Naflex => {
                ensure!(
                    fixed.is_empty() && grids.len() == n,
                    "a NaFlex tower was given a fixed-size pixel grid"
                );
                let rows: usize = grids.iter().map(|(r, c)| r * c).sum();
                let width = patches.len() / rows.max(1);
                let patches = Tensor::from_vec(patches, (rows, width), device)?;
                self.model.patch_embeddings(&patches, &grids)?
            }
        };
        rows(embeddings)
    }

    /// Pixel values of `images` for a fixed-size tower, `[n, 3, H, W]` on the model's device.
    pub fn pixel_batch(&self, images: &[RgbImage]) -> Result<Tensor> {
        let ImageProcessor::Fixed(preprocessor) = &self.image_processor else {
            bail!("a NaFlex checkpoint has no fixed pixel grid: use pixels and embed_pixels");
        };
        let (h, w) = self.model.image_size();
        let per_image = 3 * h * w;
        let mut data = vec![0f32; images.len() * per_image];
        for (image, out) in images.iter().zip(data.chunks_exact_mut(per_image)) {
            preprocessor.pixel_values_into(image, out);
        }
        Ok(Tensor::from_vec(
            data,
            (images.len(), 3, h, w),
            self.model.device(),
        )?)
    }
}

/// The image processor for `config`'s kind, from `preprocessor_config.json`'s text.
pub(super) fn image_processor(
    config: &SiglipConfig,
    json: &str,
    options: LoadOptions,
) -> Result<ImageProcessor> {
    let vision = &config.vision_config;
    match config.kind() {
        ModelKind::FixedResolution => {
            let preprocessor = Preprocessor::from_json(json).map_err(config_error)?;
            ensure!(
                preprocessor.do_resize,
                "do_resize = false; a fixed-resolution SigLIP needs a fixed input size"
            );
            let (height, width) = vision.image_size.hw();
            ensure!(
                (preprocessor.height as usize, preprocessor.width as usize) == (height, width),
                "it resizes to {}x{} but the vision tower expects {width}x{height}",
                preprocessor.width,
                preprocessor.height
            );
            Ok(ImageProcessor::Fixed(preprocessor))
        }
        ModelKind::Naflex => {
            let processor = PatchPreprocessor::from_json(json).map_err(config_error)?;
            let (patch, _) = vision.patch_size.hw();
            ensure!(
                processor.patch_size == patch,
                "its patch_size {} differs from the vision tower's {patch}",
                processor.patch_size
            );
            let max_num_patches = options.max_num_patches.unwrap_or(processor.max_num_patches);
            ensure!(max_num_patches >= 1, "max_num_patches must be at least 1");
            Ok(ImageProcessor::Naflex {
                processor,
                max_num_patches,
            })
        }
    }
}

/// A `preprocessor_config.json` problem as a checkpoint error.
fn config_error(error: ConfigError) -> crate::Error {
    crate::Error::Checkpoint(error.to_string())
}
