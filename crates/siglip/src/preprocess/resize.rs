//! Pillow's `Image.resize(size, filter)` for 8-bit RGB, byte for byte, with the bilinear and
//! bicubic filters.
//!
//! A port of Pillow 13's `libImaging/Resample.c` (8-bit path): `precompute_coeffs` with
//! `bilinear_filter` or `bicubic_filter`, `normalize_coeffs_8bpc`,
//! `ImagingResampleHorizontal_8bpc`, `ImagingResampleVertical_8bpc` and the pass ordering of
//! `ImagingResampleInner`. The arithmetic is Pillow's; only the loop structure differs, for
//! speed. The filter only shapes the taps: both passes are the same code for every filter.

use std::ops::Range;

use image::RgbImage;

/// Fixed-point fraction bits of Pillow's 8-bit resampling (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Rounding term every accumulator starts from (`1 << (PRECISION_BITS - 1)`).
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// A Pillow resampling filter this port reproduces, named by its `resample` code (PIL's
/// `Image.Resampling`), the number `preprocessor_config.json` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resample {
    /// `Image.BILINEAR` (2): the triangle `1 - |x|`, support 1. SigLIP 2's filter.
    Bilinear = 2,
    /// `Image.BICUBIC` (3): Keys' cubic with `a = -0.5`, support 2. SigLIP's filter.
    Bicubic = 3,
}

impl Resample {
    /// The codes [`Resample::from_code`] accepts, for error messages.
    pub const SUPPORTED: &'static str = "2 (bilinear) or 3 (bicubic)";

    /// The filter of PIL's `resample` code, if this port implements it.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            2 => Some(Self::Bilinear),
            3 => Some(Self::Bicubic),
            _ => None,
        }
    }
}

/// Resizes `src` to `width` x `height` with Pillow's `Image.resize(size, Image.BICUBIC)`:
/// [`resize`] with [`Resample::Bicubic`].
pub fn resize_bicubic(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize(src, width, height, Resample::Bicubic)
}

/// Resizes `src` to `width` x `height` with Pillow's `Image.resize(size, filter)`.
///
/// The filter's support widened by the downscale factor (antialiasing), weights normalised and
/// rounded to 22-bit fixed point, one pass per axis, each rounded and clipped to `u8`. As in
/// Pillow 13: the horizontal pass runs first, over only the source rows the vertical
/// pass reads, unless the height shrinks by more than twice as many pixels as the width, in which
/// case the vertical pass runs first (Pillow 12 and older always go horizontal first). An axis
/// whose size does not change is not filtered, and an image already at the target size comes
/// back as an unfiltered copy. A zero dimension gives an empty image.
pub fn resize(src: &RgbImage, width: u32, height: u32, filter: Resample) -> RgbImage {
    let (src_width, src_height) = src.dimensions();
    if (src_width, src_height) == (width, height) {
        return src.clone();
    }
    if width == 0 || height == 0 || src_width == 0 || src_height == 0 {
        return RgbImage::new(width, height);
    }
    let horizontal = (width != src_width).then(|| Taps::new(filter, src_width, width));
    let vertical = (height != src_height).then(|| Taps::new(filter, src_height, height));
    let shrink_y = i64::from(src_height) - i64::from(height);
    let shrink_x = i64::from(src_width) - i64::from(width);
    let vertical_first = shrink_y > 0 && shrink_y > shrink_x * 2;

    let src_rows = src.as_raw().as_slice();
    let all_rows = 0..src_height as usize;
    let data = match (horizontal, vertical) {
        (Some(horizontal), Some(vertical)) if vertical_first => {
            let rows = vertical_pass(src_rows, src_width, 0, &vertical);
            horizontal_pass(&rows, src_width, 0..height as usize, &horizontal)
        }
        (Some(horizontal), Some(vertical)) => {
            // Only the source rows the vertical pass reads go through the horizontal pass.
            let span = vertical.source_span();
            let rows = horizontal_pass(src_rows, src_width, span.clone(), &horizontal);
            vertical_pass(&rows, width, span.start, &vertical)
        }
        (Some(horizontal), None) => horizontal_pass(src_rows, src_width, all_rows, &horizontal),
        (None, Some(vertical)) => vertical_pass(src_rows, src_width, 0, &vertical),
        (None, None) => src_rows.to_vec(),
    };
    RgbImage::from_raw(width, height, data).expect("buffer sized width * height * 3")
}

/// `ImagingResampleHorizontal_8bpc` over source `rows` of `src` (rows of `src_width` pixels).
///
/// Rows go two at a time through [`resample_row_pair`]; an odd last row is paired with itself.
fn horizontal_pass(src: &[u8], src_width: u32, rows: Range<usize>, taps: &Taps) -> Vec<u8> {
    let src_row_len = src_width as usize * 3;
    let out_row_len = taps.len() * 3;
    let mut out = vec![0u8; rows.len() * out_row_len];
    let mut packed = vec![[0u64; 3]; src_width as usize];
    let mut spare_row = Vec::new();
    let src = &src[rows.start * src_row_len..rows.end * src_row_len];
    for (pair, out_pair) in src
        .chunks(2 * src_row_len)
        .zip(out.chunks_mut(2 * out_row_len))
    {
        let (row_a, row_b) = pair.split_at(src_row_len);
        let row_b = if row_b.is_empty() { row_a } else { row_b };
        for ((slot, a), b) in packed
            .iter_mut()
            .zip(row_a.chunks_exact(3))
            .zip(row_b.chunks_exact(3))
        {
            // Spelled out: `[0, 1, 2].map(..)` is a call that inlining does not always remove.
            let word = |c: usize| u64::from(a[c]) | (u64::from(b[c]) << 32);
            *slot = [word(0), word(1), word(2)];
        }
        let (out_a, out_b) = out_pair.split_at_mut(out_row_len);
        let out_b = if out_b.is_empty() {
            spare_row.resize(out_row_len, 0);
            &mut spare_row[..]
        } else {
            out_b
        };
        resample_row_pair(&packed, taps, out_a, out_b);
    }
    out
}

/// Two output rows of the horizontal pass, one 64-bit multiply per tap and channel.
///
/// Each word of `packed` holds a channel's sample of row a in its low 32 bits and of row b in
/// its high 32 bits. With the weight `k` sign-extended, `word * k` is `a*k + (b*k << 32)` modulo
/// 2^64, so the accumulated word is `A + (B << 32)` modulo 2^64 where `A` and `B` are Pillow's two
/// sums. Both fit an `i32` (as they must in Pillow's `int` accumulators), hence `A` is the low
/// half read as `i32`, and `B` the high half once `A` (sign-extended) is taken off.
fn resample_row_pair(packed: &[[u64; 3]], taps: &Taps, out_a: &mut [u8], out_b: &mut [u8]) {
    let outputs = out_a.chunks_exact_mut(3).zip(out_b.chunks_exact_mut(3));
    for (xx, (pixel_a, pixel_b)) in outputs.enumerate() {
        let (start, weights) = taps.output(xx);
        let mut acc = [0u64; 3];
        for (words, &k) in packed[start..start + weights.len()].iter().zip(weights) {
            let k = i64::from(k) as u64;
            for (acc, &word) in acc.iter_mut().zip(words) {
                *acc = acc.wrapping_add(word.wrapping_mul(k));
            }
        }
        for (c, &acc) in acc.iter().enumerate() {
            let sum_a = acc as u32 as i32;
            let sum_b = (acc.wrapping_sub(i64::from(sum_a) as u64) >> 32) as u32 as i32;
            pixel_a[c] = clip8(HALF.wrapping_add(sum_a));
            pixel_b[c] = clip8(HALF.wrapping_add(sum_b));
        }
    }
}

/// `ImagingResampleVertical_8bpc`: `rows` holds source rows `first_row..` of `width` pixels.
///
/// Each output row accumulates whole source rows (contiguous `u8` times one weight), a loop
/// the compiler vectorises.
fn vertical_pass(rows: &[u8], width: u32, first_row: usize, taps: &Taps) -> Vec<u8> {
    let row_len = width as usize * 3;
    let mut out = vec![0u8; taps.len() * row_len];
    let mut acc = vec![0i32; row_len];
    for (yy, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let (start, weights) = taps.output(yy);
        let window = &rows[(start - first_row) * row_len..][..weights.len() * row_len];
        acc.fill(HALF);
        for (src_row, &k) in window.chunks_exact(row_len).zip(weights) {
            for (a, &p) in acc.iter_mut().zip(src_row) {
                *a = a.wrapping_add(i32::from(p) * k);
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Pillow's `clip8`: drop the fraction bits, clamp to `0..=255`.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The fixed-point filter of one axis, as `precompute_coeffs` + `normalize_coeffs_8bpc` build it:
/// output `i` reads `counts[i]` source pixels from `starts[i]`, with the weights
/// `weights[i * ksize..][..counts[i]]`.
struct Taps {
    starts: Vec<usize>,
    counts: Vec<usize>,
    weights: Vec<i32>,
    ksize: usize,
}

impl Taps {
    /// Pillow's `filter` taps for resampling `in_size` source pixels onto `out_size` (both > 0).
    fn new(filter: Resample, in_size: u32, out_size: u32) -> Self {
        // Pillow's `struct filter`: the function and its support at scale 1.
        match filter {
            Resample::Bilinear => Self::with_filter(bilinear_filter, 1.0, in_size, out_size),
            Resample::Bicubic => Self::with_filter(bicubic_filter, 2.0, in_size, out_size),
        }
    }

    /// `precompute_coeffs` + `normalize_coeffs_8bpc` for the filter `weight` of half-width
    /// `support` (one copy per filter, so each weight call is inlined).
    fn with_filter(weight: impl Fn(f64) -> f64, support: f64, in_size: u32, out_size: u32) -> Self {
        // Pillow computes the box width `in1 - in0` in f32, then divides in f64.
        let scale = f64::from(in_size as f32) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;

        let out_size = out_size as usize;
        let mut taps = Taps {
            starts: Vec::with_capacity(out_size),
            counts: Vec::with_capacity(out_size),
            weights: vec![0; out_size * ksize],
            ksize,
        };
        let mut k = vec![0f64; ksize];
        for (xx, fixed) in taps.weights.chunks_exact_mut(ksize).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates towards zero, as `as` does.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) - xmin;
            let count = xmax.clamp(0, ksize as i64) as usize;
            let mut ww = 0.0;
            for (x, w) in k[..count].iter_mut().enumerate() {
                *w = weight(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
                ww += *w;
            }
            for (&w, fixed) in k[..count].iter().zip(fixed.iter_mut()) {
                let w = if ww != 0.0 { w / ww } else { w };
                // Rounded half away from zero, then truncated, as `normalize_coeffs_8bpc` does.
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                *fixed = if w < 0.0 {
                    (scaled - 0.5) as i32
                } else {
                    (scaled + 0.5) as i32
                };
            }
            taps.starts.push(xmin as usize);
            taps.counts.push(count);
        }
        taps
    }

    /// Number of output pixels.
    fn len(&self) -> usize {
        self.starts.len()
    }

    /// First source index and weights of output `i`.
    #[inline]
    fn output(&self, i: usize) -> (usize, &[i32]) {
        (
            self.starts[i],
            &self.weights[i * self.ksize..][..self.counts[i]],
        )
    }

    /// `ybox_first..ybox_last`: the source indices some output reads.
    fn source_span(&self) -> Range<usize> {
        let last = self.len() - 1;
        self.starts[0]..self.starts[last] + self.counts[last]
    }
}

/// Pillow's `bilinear_filter` (triangle).
fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's `bicubic_filter` (Keys cubic, `a = -0.5`), same operation order.
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, data: &[u8]) -> RgbImage {
        RgbImage::from_raw(width, height, data.to_vec()).unwrap()
    }

    const ROW: [u8; 12] = [0, 10, 250, 85, 20, 240, 170, 30, 5, 255, 40, 0];

    #[test]
    fn matches_pillow_on_a_row() {
        // Expected values from Pillow 13's `Image.resize(..., Image.BICUBIC)`.
        let src = image(4, 1, &ROW);
        assert_eq!(
            resize_bicubic(&src, 2, 1).as_raw(),
            &[50, 16, 225, 205, 34, 22]
        );
        assert_eq!(
            resize_bicubic(&src, 3, 1).as_raw(),
            &[16, 12, 255, 128, 25, 122, 239, 38, 0]
        );
        let up = [
            0, 9, 251, 14, 12, 253, 60, 17, 255, 106, 23, 192, 149, 28, 53, 195, 33, 0,
        ];
        assert_eq!(&resize_bicubic(&src, 8, 1).as_raw()[..18], &up);
    }

    #[test]
    fn runs_the_vertical_pass_first_when_height_shrinks_most() {
        // 2x6 -> 4x2: width grows, height shrinks, so Pillow 13 filters vertically first.
        let data: Vec<u8> = (0..36u32).map(|i| (i * 37 % 256) as u8).collect();
        let got = resize_bicubic(&image(2, 6, &data), 4, 2);
        let want = [
            154, 92, 51, 130, 95, 77, 83, 101, 129, 59, 104, 155, //
            130, 175, 186, 133, 151, 150, 139, 104, 78, 142, 80, 42,
        ];
        assert_eq!(got.as_raw(), &want);
    }

    #[test]
    fn bilinear_matches_pillow() {
        // Expected values from Pillow 13's `Image.resize(..., Image.BILINEAR)`.
        let src = image(4, 1, &ROW);
        let bilinear = |s: &RgbImage, w, h| resize(s, w, h, Resample::Bilinear);
        assert_eq!(bilinear(&src, 2, 1).as_raw(), &[61, 17, 211, 194, 33, 36]);
        assert_eq!(
            bilinear(&src, 3, 1).as_raw(),
            &[25, 13, 247, 128, 25, 123, 230, 37, 1]
        );
        let up = [
            0, 10, 250, 21, 13, 248, 64, 18, 243, 106, 23, 181, 149, 28, 64, 191, 33, 4, 234, 38,
            1, 255, 40, 0,
        ];
        assert_eq!(bilinear(&src, 8, 1).as_raw(), &up);
        // 2x6 -> 5x1: the vertical pass first (horizontal first would give other values).
        let data: Vec<u8> = (0..36u32).map(|i| (i * 37 % 256) as u8).collect();
        let want = [
            138, 132, 117, 134, 128, 115, 120, 114, 109, 106, 100, 102, 102, 96, 100,
        ];
        assert_eq!(bilinear(&image(2, 6, &data), 5, 1).as_raw(), &want);
    }

    #[test]
    fn same_size_is_an_unfiltered_copy_and_constant_images_stay_constant() {
        let src = image(4, 1, &ROW);
        assert_eq!(resize_bicubic(&src, 4, 1), src);
        let flat = RgbImage::from_pixel(37, 23, image::Rgb([200, 3, 91]));
        for filter in [Resample::Bilinear, Resample::Bicubic] {
            for (w, h) in [(1, 1), (5, 90), (384, 384), (37, 7), (11, 23)] {
                let out = resize(&flat, w, h, filter);
                assert!(
                    out.pixels().all(|p| p.0 == [200, 3, 91]),
                    "{filter:?} {w}x{h}"
                );
            }
        }
        assert_eq!(resize_bicubic(&src, 0, 3).dimensions(), (0, 3));
    }

    #[test]
    fn taps_are_normalised_fixed_point_weights() {
        let cases = [(1000, 384), (7, 513), (384, 384), (1, 48), (513, 7)];
        for ((inp, out), filter) in cases
            .into_iter()
            .flat_map(|c| [(c, Resample::Bilinear), (c, Resample::Bicubic)])
        {
            let taps = Taps::new(filter, inp, out);
            for i in 0..taps.len() {
                let (start, weights) = taps.output(i);
                assert!(start + weights.len() <= inp as usize);
                let sum: i32 = weights.iter().sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= weights.len() as i32);
            }
        }
    }
}
