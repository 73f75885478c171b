//! Decoded RGB image -> normalised `f32` pixels, exactly as transformers' PIL processors.
//!
//! transformers resizes the `u8` image with Pillow's `Image.resize(size, resample)` ([`resize`],
//! a port of `libImaging/Resample.c` with the bilinear and bicubic filters), then computes
//! `f32(u8 as f64 * rescale_factor)` and `(x - mean) / std` in f32. Both processors here do the
//! same with the same rounding, so their output is bit-identical to transformers' PIL path for
//! the same decoded pixels:
//! - [`Preprocessor`] (`SiglipImageProcessorPil`, SigLIP and SigLIP 2 FixRes): a fixed size,
//!   CHW;
//! - [`PatchPreprocessor`] (`Siglip2ImageProcessorPil`, SigLIP 2 NaFlex): the aspect ratio kept
//!   within a patch budget, flattened patches (the `naflex` module).
//!
//! Settings come from the model's `preprocessor_config.json`.

mod json;
mod naflex;
mod resize;

use std::borrow::Cow;

use image::RgbImage;

use json::Field;
pub use naflex::{target_size, PatchError, PatchPreprocessor, Patches};
pub use resize::{resize, resize_bicubic, Resample};
use serde_json::Value;

/// `SiglipImageProcessorPil`'s settings, as read from a hub `preprocessor_config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocessor {
    /// Output width in pixels (`size.width`).
    pub width: u32,
    /// Output height in pixels (`size.height`).
    pub height: u32,
    /// The resize filter (`resample`): bicubic for SigLIP, bilinear for SigLIP 2 FixRes.
    pub resample: Resample,
    /// Multiplier applied to each `u8` sample, in f64, before the cast to f32 (`rescale_factor`).
    pub rescale_factor: f64,
    /// Per-channel mean subtracted after rescaling (`image_mean`).
    pub image_mean: [f32; 3],
    /// Per-channel divisor applied after the mean (`image_std`).
    pub image_std: [f32; 3],
    /// Resize to `width` x `height` with PIL bicubic (`do_resize`).
    pub do_resize: bool,
    /// Multiply by `rescale_factor` (`do_rescale`).
    pub do_rescale: bool,
    /// Subtract `image_mean` and divide by `image_std` (`do_normalize`).
    pub do_normalize: bool,
    /// `do_convert_rgb`: the processor's `convert_to_rgb` paints a colour key (PNG `tRNS`, GIF
    /// transparent index) white. Not applied here, on decoded pixels: it tells the decoder
    /// whether to (`image_decode::decode_rgb` always does). A `null` in the file turns it off.
    pub do_convert_rgb: bool,
}

impl Default for Preprocessor {
    /// `SiglipImageProcessor`'s class defaults: 224x224, bicubic, 1/255, mean = std = 0.5, all
    /// steps on.
    fn default() -> Self {
        Self {
            width: 224,
            height: 224,
            resample: Resample::Bicubic,
            rescale_factor: 1.0 / 255.0,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            do_convert_rgb: true,
        }
    }
}

/// Why a `preprocessor_config.json` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The text is not JSON, or not a JSON object.
    #[error("preprocessor_config.json is not a valid JSON object: {0}")]
    Json(String),
    /// A key holds a value SigLIP's PIL processor would reject or that this port does not
    /// reproduce.
    #[error("preprocessor_config.json: `{key}` {problem}")]
    Field {
        /// The offending key.
        key: String,
        /// What is wrong with its value.
        problem: String,
    },
}

impl Preprocessor {
    /// Reads a Hugging Face `preprocessor_config.json`; missing keys keep [`Preprocessor::default`].
    ///
    /// `size` may be `{"height", "width"}` or `[height, width]`. `{"shortest_edge"}` (or a bare
    /// number, which transformers reads as `shortest_edge`) is rejected: SigLIP's processor then
    /// keeps the aspect ratio instead of producing a fixed-size image. `resample` must be 2
    /// (bilinear) or 3 (bicubic). `image_mean` / `image_std` may be one number or three. A
    /// `null` `do_*` flag means false, as in Python; other `null`s are rejected (a `null`
    /// `resample` makes transformers refuse to resize). Center cropping and padding
    /// (`do_center_crop`, `do_pad`), which SigLIP does not use, are rejected when enabled.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for (key, value) in json::object(text)?.iter() {
            let field = Field { key, value };
            match key.as_str() {
                "size" => {
                    (config.height, config.width) =
                        fixed_size(value).map_err(|e| field.error(e))?;
                }
                "resample" => config.resample = field.resample(None)?,
                "rescale_factor" => config.rescale_factor = field.number()?,
                "image_mean" => config.image_mean = field.per_channel()?,
                "image_std" => config.image_std = field.per_channel()?,
                "do_resize" => config.do_resize = field.flag()?,
                "do_rescale" => config.do_rescale = field.flag()?,
                "do_normalize" => config.do_normalize = field.flag()?,
                "do_convert_rgb" => config.do_convert_rgb = field.flag()?,
                "do_center_crop" | "do_pad" if field.flag()? => {
                    return Err(field.error("is not supported: SigLIP neither crops nor pads"));
                }
                _ => {}
            }
        }
        Ok(config)
    }

    /// Width and height of the output for `rgb`: the configured size, or the image's own size
    /// when `do_resize` is off (as in transformers).
    pub fn output_size(&self, rgb: &RgbImage) -> (u32, u32) {
        if self.do_resize {
            (self.width, self.height)
        } else {
            rgb.dimensions()
        }
    }

    /// `pixel_values` for one image: CHW `f32`, `3 * height * width` long (see
    /// [`Preprocessor::output_size`]), bit-identical to `SiglipImageProcessorPil`.
    pub fn pixel_values(&self, rgb: &RgbImage) -> Vec<f32> {
        let (width, height) = self.output_size(rgb);
        let mut out = vec![0f32; 3 * width as usize * height as usize];
        self.pixel_values_into(rgb, &mut out);
        out
    }

    /// Writes [`Preprocessor::pixel_values`] into `out`, e.g. one image's slot of a batch.
    ///
    /// # Panics
    ///
    /// If `out.len()` is not `3 * width * height` of [`Preprocessor::output_size`].
    pub fn pixel_values_into(&self, rgb: &RgbImage, out: &mut [f32]) {
        let (width, height) = self.output_size(rgb);
        let resized = if rgb.dimensions() == (width, height) {
            Cow::Borrowed(rgb)
        } else {
            Cow::Owned(resize(rgb, width, height, self.resample))
        };
        let plane = width as usize * height as usize;
        assert_eq!(
            out.len(),
            3 * plane,
            "pixel buffer must hold 3 x {width} x {height}"
        );
        let table = self.value_table();
        let (red, rest) = out.split_at_mut(plane);
        let (green, blue) = rest.split_at_mut(plane);
        let planes = red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut());
        for (((r, g), b), p) in planes.zip(resized.as_raw().chunks_exact(3)) {
            *r = table[0][usize::from(p[0])];
            *g = table[1][usize::from(p[1])];
            *b = table[2][usize::from(p[2])];
        }
    }

    /// The output value of every `u8` sample per channel (see [`value_table`]).
    fn value_table(&self) -> [[f32; 256]; 3] {
        value_table(
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize
                .then_some((self.image_mean, self.image_std)),
        )
    }
}

/// The output value of every `u8` sample per channel, computed as transformers' `PilBackend`
/// does: `rescale` multiplies in f64 then casts to f32, `normalize` works in f32 (on the
/// sample cast to f32 when there is no rescale). `normalize` is `(mean, std)`.
fn value_table(rescale: Option<f64>, normalize: Option<([f32; 3], [f32; 3])>) -> [[f32; 256]; 3] {
    let mut table = [[0f32; 256]; 3];
    for (channel, values) in table.iter_mut().enumerate() {
        for (sample, value) in values.iter_mut().enumerate() {
            let mut x = sample as f32;
            if let Some(factor) = rescale {
                x = (sample as f64 * factor) as f32;
            }
            if let Some((mean, std)) = normalize {
                x = (x - mean[channel]) / std[channel];
            }
            *value = x;
        }
    }
    table
}

/// `(height, width)` from a `size` value, or why it is not a fixed size.
fn fixed_size(value: &Value) -> Result<(u32, u32), &'static str> {
    let dimension = |v: Option<&Value>| {
        v.and_then(Value::as_f64)
            .filter(|d| d.fract() == 0.0 && *d >= 1.0 && *d <= f64::from(u32::MAX))
            .map(|d| d as u32)
            .ok_or("must give height and width as positive integers")
    };
    match value {
        Value::Object(fields) => {
            let get = |name: &str| fields.get(name);
            let aspect_keys = ["shortest_edge", "longest_edge", "max_height", "max_width"];
            if aspect_keys.iter().any(|k| get(k).is_some()) {
                return Err(
                    "keeps the aspect ratio (shortest_edge and the like); SigLIP needs \
                            {\"height\", \"width\"}",
                );
            }
            Ok((dimension(get("height"))?, dimension(get("width"))?))
        }
        Value::Array(items) if items.len() == 2 => {
            Ok((dimension(items.first())?, dimension(items.get(1))?))
        }
        Value::Number(_) => Err(
            "is a single number, which transformers reads as shortest_edge \
                                (aspect ratio kept); SigLIP needs {\"height\", \"width\"}",
        ),
        _ => Err("must be {\"height\": H, \"width\": W}"),
    }
}

#[cfg(test)]
mod tests;
