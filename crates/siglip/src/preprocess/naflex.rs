//! SigLIP 2 NaFlex preprocessing, exactly as `Siglip2ImageProcessorPil`: the image resized to
//! whole patches within a patch budget, its aspect ratio about kept, then cut into flattened
//! patches.
//!
//! transformers' steps for one image (`image_processing_pil_siglip2.py`):
//! 1. the size: [`target_size`], a binary search over one scale for both sides;
//! 2. Pillow's resize with `resample` (bilinear), as SigLIP's fixed-size resize;
//! 3. rescale and normalise as SigLIP does (the same `PilBackend` arithmetic);
//! 4. `convert_image_to_patches`: `[rows * cols, patch * patch * 3]`, patches in row-major grid
//!    order, each patch's values in `(y, x, channel)` order;
//! 5. padding to `max_num_patches` rows, with `pixel_attention_mask` and `spatial_shapes`.
//!
//! [`PatchPreprocessor::patches`] does 1 to 4 and gives the grid (`spatial_shapes`); it leaves
//! out the padding rows, whose only reader is the mask: the vision tower takes the grid.

use std::borrow::Cow;

use image::RgbImage;

use super::json::{self, Field};
use super::{resize, value_table, ConfigError, Resample};

/// `Siglip2ImageProcessorPil`'s settings, as read from a hub `preprocessor_config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPreprocessor {
    /// Side of a square patch in pixels (`patch_size`).
    pub patch_size: usize,
    /// The patch budget of a request that names none (`max_num_patches`). Each call of
    /// [`PatchPreprocessor::patches`] takes its own.
    pub max_num_patches: usize,
    /// The resize filter (`resample`).
    pub resample: Resample,
    /// Multiplier applied to each `u8` sample, in f64, before the cast to f32 (`rescale_factor`).
    pub rescale_factor: f64,
    /// Per-channel mean subtracted after rescaling (`image_mean`).
    pub image_mean: [f32; 3],
    /// Per-channel divisor applied after the mean (`image_std`).
    pub image_std: [f32; 3],
    /// Resize to [`target_size`] (`do_resize`); off, the image must already be whole patches.
    pub do_resize: bool,
    /// Multiply by `rescale_factor` (`do_rescale`).
    pub do_rescale: bool,
    /// Subtract `image_mean` and divide by `image_std` (`do_normalize`).
    pub do_normalize: bool,
    /// `do_convert_rgb`, as [`super::Preprocessor::do_convert_rgb`]: whether a colour key turns
    /// white before this step. Off by default here: `Siglip2ImageProcessorPil` leaves it `None`.
    pub do_convert_rgb: bool,
}

impl Default for PatchPreprocessor {
    /// `Siglip2ImageProcessorPil`'s class defaults: patch 16, 256 patches, bilinear, 1/255,
    /// mean = std = 0.5, resize, rescale and normalise on, `do_convert_rgb` unset.
    fn default() -> Self {
        Self {
            patch_size: 16,
            max_num_patches: 256,
            resample: Resample::Bilinear,
            rescale_factor: 1.0 / 255.0,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            do_convert_rgb: false,
        }
    }
}

/// One image's patches: what `Siglip2ImageProcessorPil` gives before padding.
#[derive(Clone, Debug, PartialEq)]
pub struct Patches {
    /// `[rows * cols, patch * patch * 3]` row-major: patches in row-major grid order, each one's
    /// values in `(y, x, channel)` order (`convert_image_to_patches`'s `pixel_values` rows).
    pub values: Vec<f32>,
    /// `(rows, cols)` of the patch grid (`spatial_shapes`).
    pub grid: (usize, usize),
}

impl Patches {
    /// Number of patches, `rows * cols` (at least 1 from [`PatchPreprocessor::patches`]).
    pub fn num_patches(&self) -> usize {
        self.grid.0 * self.grid.1
    }

    /// Values per patch, `patch * patch * 3` (0 for an empty grid).
    pub fn patch_len(&self) -> usize {
        self.values
            .len()
            .checked_div(self.num_patches())
            .unwrap_or(0)
    }
}

/// Why an image cannot be cut into patches.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// A patch budget of 0 (transformers would still give one patch, with an empty mask).
    #[error("max_num_patches must be at least 1")]
    NoPatchBudget,
    /// `do_resize` is off and the image is not a whole number of patches, which transformers'
    /// `reshape` refuses.
    #[error(
        "the image is {width}x{height} pixels and preprocessor_config.json turns resizing off: \
         both sides must be non-zero multiples of the patch size {patch_size}"
    )]
    NotWholePatches {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// The configured patch side.
        patch_size: usize,
    },
    /// The size for this budget does not fit an image (a side over `u32::MAX` pixels).
    #[error("{max_num_patches} patches make an image of {width}x{height} pixels, too large")]
    TooLarge {
        /// Width of the target size.
        width: usize,
        /// Height of the target size.
        height: usize,
        /// The budget asked for.
        max_num_patches: usize,
    },
}

impl PatchPreprocessor {
    /// Reads a Hugging Face `preprocessor_config.json` of a NaFlex checkpoint; missing keys keep
    /// [`PatchPreprocessor::default`].
    ///
    /// `patch_size` and `max_num_patches` must be positive integers; `resample` 2 (bilinear)
    /// or 3 (bicubic), `null` meaning bilinear as in transformers' PIL resize. `rescale_factor`,
    /// `image_mean`, `image_std` and the `do_*` flags read as for [`super::Preprocessor`].
    /// `size`, `do_center_crop` and `do_pad` are ignored, as `Siglip2ImageProcessorPil`
    /// ignores them.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for (key, value) in json::object(text)?.iter() {
            let field = Field { key, value };
            match key.as_str() {
                "patch_size" => config.patch_size = field.positive_integer()?,
                "max_num_patches" => config.max_num_patches = field.positive_integer()?,
                "resample" => config.resample = field.resample(Some(Resample::Bilinear))?,
                "rescale_factor" => config.rescale_factor = field.number()?,
                "image_mean" => config.image_mean = field.per_channel()?,
                "image_std" => config.image_std = field.per_channel()?,
                "do_resize" => config.do_resize = field.flag()?,
                "do_rescale" => config.do_rescale = field.flag()?,
                "do_normalize" => config.do_normalize = field.flag()?,
                "do_convert_rgb" => config.do_convert_rgb = field.flag()?,
                _ => {}
            }
        }
        Ok(config)
    }

    /// Width and height that `rgb` is cut into patches at: [`target_size`] for
    /// `max_num_patches`, or the image's own size when `do_resize` is off.
    ///
    /// Errors for a `max_num_patches` of 0, an image that is not whole patches with `do_resize`
    /// off, and a target size beyond `u32`.
    pub fn output_size(
        &self,
        rgb: &RgbImage,
        max_num_patches: usize,
    ) -> Result<(u32, u32), PatchError> {
        if max_num_patches == 0 {
            return Err(PatchError::NoPatchBudget);
        }
        let (width, height) = rgb.dimensions();
        if !self.do_resize {
            let whole = |side: u32| side > 0 && (side as usize).is_multiple_of(self.patch_size);
            if !(whole(width) && whole(height)) {
                return Err(PatchError::NotWholePatches {
                    width,
                    height,
                    patch_size: self.patch_size,
                });
            }
            return Ok((width, height));
        }
        let (target_height, target_width) = target_size(
            height as usize,
            width as usize,
            self.patch_size,
            max_num_patches,
        );
        match (u32::try_from(target_width), u32::try_from(target_height)) {
            (Ok(width), Ok(height)) => Ok((width, height)),
            _ => Err(PatchError::TooLarge {
                width: target_width,
                height: target_height,
                max_num_patches,
            }),
        }
    }

    /// `rgb`'s patches for a budget of `max_num_patches`, bit-identical to the unpadded rows
    /// of `Siglip2ImageProcessorPil(max_num_patches=...)`'s `pixel_values`, with its
    /// `spatial_shapes` as the grid.
    ///
    /// `max_num_patches` is the request's (the configured one is
    /// [`PatchPreprocessor::max_num_patches`]); 0 is an error, and bounding it is the
    /// caller's. Resizing keeps at most `max_num_patches` patches, except for a side over
    /// `patch_size` million pixels, which the search's smallest scale (1e-6) still leaves
    /// larger; with `do_resize` off, the grid is the image's, whatever the budget.
    pub fn patches(&self, rgb: &RgbImage, max_num_patches: usize) -> Result<Patches, PatchError> {
        let (width, height) = self.output_size(rgb, max_num_patches)?;
        let resized = if rgb.dimensions() == (width, height) {
            Cow::Borrowed(rgb)
        } else {
            Cow::Owned(resize(rgb, width, height, self.resample))
        };
        let patch = self.patch_size;
        let (rows, cols) = (height as usize / patch, width as usize / patch);
        let table = value_table(
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize
                .then_some((self.image_mean, self.image_std)),
        );
        let row_len = width as usize * 3;
        let pixels = resized.as_raw();
        let mut values = Vec::with_capacity(rows * cols * patch * patch * 3);
        for grid_row in 0..rows {
            for grid_col in 0..cols {
                for y in grid_row * patch..(grid_row + 1) * patch {
                    let start = y * row_len + grid_col * patch * 3;
                    for pixel in pixels[start..start + patch * 3].chunks_exact(3) {
                        let value = |c: usize| table[c][usize::from(pixel[c])];
                        values.extend([value(0), value(1), value(2)]);
                    }
                }
            }
        }
        Ok(Patches {
            values,
            grid: (rows, cols),
        })
    }
}

/// `get_image_size_for_max_num_patches`: the `(height, width)` that an image of `height` x
/// `width` pixels is resized to, for patches of `patch_size` and a budget of `max_num_patches`.
///
/// transformers' binary search, step for step in f64: the scale runs from 1e-6 to 100 while the
/// interval is at least 1e-5 wide; each side becomes `max(patch, ceil(side * scale / patch) *
/// patch)`; a scale whose patch count fits the budget raises the lower bound, otherwise it
/// lowers the upper one; the result is the final lower bound's size. Hence a 1x1 image becomes
/// 112x112 (scale just under 100) however large the budget, and a side over `patch_size`
/// million pixels can exceed the budget (no scale fits, the lower bound stays 1e-6). Exact
/// for budgets and patch counts under 2^53.
pub fn target_size(
    height: usize,
    width: usize,
    patch_size: usize,
    max_num_patches: usize,
) -> (usize, usize) {
    const EPS: f64 = 1e-5;
    let scaled = |scale: f64, side: usize| {
        let patches = (side as f64 * scale / patch_size as f64).ceil() as usize;
        patches.saturating_mul(patch_size).max(patch_size)
    };
    let (mut scale_min, mut scale_max) = (EPS / 10.0, 100.0);
    while scale_max - scale_min >= EPS {
        let scale = (scale_min + scale_max) / 2.0;
        let rows = scaled(scale, height) / patch_size;
        let cols = scaled(scale, width) / patch_size;
        if rows as f64 * cols as f64 <= max_num_patches as f64 {
            scale_min = scale;
        } else {
            scale_max = scale;
        }
    }
    (scaled(scale_min, height), scaled(scale_min, width))
}

#[cfg(test)]
mod tests;
