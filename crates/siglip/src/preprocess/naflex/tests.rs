//! Unit tests of the parent module.

use super::*;

#[test]
fn target_size_follows_transformers() {
    // (height, width, max_num_patches) -> (height, width) from transformers 5.24's
    // get_image_size_for_max_num_patches at patch 16.
    let cases = [
        ((1, 1, 1), (16, 16)),
        ((1, 1, 256), (112, 112)),
        ((1, 1, 1024), (112, 112)),
        ((7, 513, 64), (16, 1024)),
        ((7, 513, 256), (32, 2048)),
        ((1000, 10, 1024), (4800, 48)),
        ((224, 224, 256), (256, 256)),
        ((480, 640, 256), (224, 288)),
        ((480, 640, 1024), (432, 576)),
        ((3, 2, 256), (304, 208)),
        ((1, 100_000, 256), (16, 4096)),
        // No scale fits: the lower bound 1e-6 stays, and the budget is exceeded.
        ((1, 1_000_000_000, 1), (16, 1008)),
    ];
    for ((height, width, budget), want) in cases {
        let got = target_size(height, width, 16, budget);
        assert_eq!(got, want, "{height}x{width} at {budget}");
    }
}

#[test]
fn reads_hub_configs() {
    assert_eq!(
        PatchPreprocessor::from_json("{}").unwrap(),
        PatchPreprocessor::default()
    );
    let hub = r#"{"do_convert_rgb": null, "do_normalize": true, "do_rescale": true,
        "do_resize": true, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "image_processor_type": "Siglip2ImageProcessorFast", "max_num_patches": 64,
        "patch_size": 14, "processor_class": "Siglip2Processor", "resample": null,
        "rescale_factor": 0.00392156862745098, "size": null, "do_pad": true}"#;
    let config = PatchPreprocessor::from_json(hub).unwrap();
    assert_eq!(
        (config.patch_size, config.max_num_patches, config.resample),
        (14, 64, Resample::Bilinear)
    );
    assert_eq!(config.rescale_factor, 1.0 / 255.0);
    for bad in [
        r#"{"patch_size": 0}"#,
        r#"{"patch_size": 16.5}"#,
        r#"{"max_num_patches": -1}"#,
        r#"{"resample": 0}"#,
        r#"{"image_std": "0.5"}"#,
    ] {
        assert!(
            matches!(
                PatchPreprocessor::from_json(bad),
                Err(ConfigError::Field { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn patches_are_row_major_then_y_x_channel() {
    // 4x2 pixels, patch 2, no resize: two patches side by side.
    let data: Vec<u8> = (0..24).collect();
    let rgb = RgbImage::from_raw(4, 2, data).unwrap();
    let config = PatchPreprocessor {
        patch_size: 2,
        do_resize: false,
        do_rescale: false,
        do_normalize: false,
        ..PatchPreprocessor::default()
    };
    let patches = config.patches(&rgb, 1).unwrap();
    assert_eq!(patches.grid, (1, 2));
    assert_eq!((patches.num_patches(), patches.patch_len()), (2, 12));
    let pixel = |x: usize, y: usize| (0..3).map(move |c| ((y * 4 + x) * 3 + c) as f32);
    let mut want = Vec::new();
    for x0 in [0, 2] {
        for y in 0..2 {
            for x in x0..x0 + 2 {
                want.extend(pixel(x, y));
            }
        }
    }
    assert_eq!(patches.values, want);
}

#[test]
fn resizes_to_the_target_and_normalises() {
    let rgb = RgbImage::from_pixel(30, 10, image::Rgb([255, 0, 51]));
    let config = PatchPreprocessor::default();
    let patches = config.patches(&rgb, 6).unwrap();
    let (height, width) = target_size(10, 30, 16, 6);
    assert_eq!(patches.grid, (height / 16, width / 16));
    assert_eq!(patches.grid, (1, 3));
    let want = [1.0, -1.0, (51.0f64 / 255.0) as f32 / 0.5 - 1.0];
    assert!(patches.values.chunks_exact(3).all(|p| p == want));
    assert_eq!(patches.values.len(), 3 * 16 * 16 * 3);
}

#[test]
fn refuses_what_transformers_cannot_do() {
    let config = PatchPreprocessor::default();
    let rgb = RgbImage::new(32, 48);
    assert_eq!(config.patches(&rgb, 0), Err(PatchError::NoPatchBudget));
    let fixed = PatchPreprocessor {
        do_resize: false,
        ..config
    };
    assert_eq!(fixed.patches(&rgb, 1).unwrap().grid, (3, 2));
    let ragged = RgbImage::new(32, 47);
    assert_eq!(
        fixed.patches(&ragged, 256),
        Err(PatchError::NotWholePatches {
            width: 32,
            height: 47,
            patch_size: 16
        })
    );
    let huge_patch = PatchPreprocessor {
        patch_size: 1 << 33,
        ..PatchPreprocessor::default()
    };
    assert!(matches!(
        huge_patch.output_size(&rgb, 1),
        Err(PatchError::TooLarge { .. })
    ));
}
