//! Unit tests of the parent module.

use super::*;

fn field_error(text: &str) -> String {
    match Preprocessor::from_json(text) {
        Err(ConfigError::Field { key, .. }) => key,
        other => panic!("{text}: expected a field error, got {other:?}"),
    }
}

#[test]
fn reads_hub_configs() {
    assert_eq!(
        Preprocessor::from_json("{}").unwrap(),
        Preprocessor::default()
    );
    let base = r#"{"do_normalize": true, "do_rescale": true, "do_resize": true,
        "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor", "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"height": 384, "width": 384}}"#;
    let config = Preprocessor::from_json(base).unwrap();
    assert_eq!((config.width, config.height), (384, 384));
    assert_eq!(config.rescale_factor, 1.0 / 255.0);
    let custom = r#"{"size": [40, 70], "image_mean": 0.25, "do_resize": null}"#;
    let config = Preprocessor::from_json(custom).unwrap();
    assert_eq!(
        (config.height, config.width, config.do_resize),
        (40, 70, false)
    );
    assert_eq!(config.image_mean, [0.25; 3]);
}

#[test]
fn reads_the_filter_and_colour_key_flag() {
    let default = Preprocessor::default();
    assert_eq!(
        (default.resample, default.do_convert_rgb),
        (Resample::Bicubic, true)
    );
    let fixres =
        r#"{"resample": 2, "do_convert_rgb": null, "size": {"height": 224, "width": 224}}"#;
    let config = Preprocessor::from_json(fixres).unwrap();
    assert_eq!(
        (config.resample, config.do_convert_rgb),
        (Resample::Bilinear, false)
    );
    match Preprocessor::from_json(r#"{"resample": 5}"#) {
        Err(error) => assert_eq!(
            error.to_string(),
            "preprocessor_config.json: `resample` is 5; this port implements only 2 (bilinear) \
             or 3 (bicubic)"
        ),
        Ok(config) => panic!("accepted {config:?}"),
    }
}

#[test]
fn rejects_what_siglip_would_not_produce() {
    assert_eq!(field_error(r#"{"size": {"shortest_edge": 384}}"#), "size");
    assert_eq!(field_error(r#"{"size": 384}"#), "size");
    assert_eq!(
        field_error(r#"{"size": {"height": 0, "width": 5}}"#),
        "size"
    );
    assert_eq!(field_error(r#"{"size": null}"#), "size");
    assert_eq!(field_error(r#"{"resample": 1}"#), "resample");
    assert_eq!(field_error(r#"{"resample": null}"#), "resample");
    assert_eq!(field_error(r#"{"image_std": [1, 2]}"#), "image_std");
    assert_eq!(field_error(r#"{"do_center_crop": true}"#), "do_center_crop");
    assert!(matches!(
        Preprocessor::from_json("[]"),
        Err(ConfigError::Json(_))
    ));
    assert!(matches!(
        Preprocessor::from_json("{"),
        Err(ConfigError::Json(_))
    ));
}

#[test]
fn values_follow_numpy_rounding() {
    let table = Preprocessor::default().value_table();
    assert_eq!(table[0][0], -1.0);
    assert_eq!(table[2][255], 1.0);
    // rescale: f64 product cast to f32; normalize: f32 arithmetic.
    let x = (128.0f64 * (1.0 / 255.0)) as f32;
    assert_eq!(table[1][128].to_bits(), ((x - 0.5) / 0.5).to_bits());
}

#[test]
fn pixel_values_are_planar_chw() {
    let rgb = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 255, 255]).unwrap();
    let config = Preprocessor {
        do_resize: false,
        ..Preprocessor::default()
    };
    assert_eq!(config.output_size(&rgb), (2, 1));
    assert_eq!(config.pixel_values(&rgb), [1.0, -1.0, -1.0, 1.0, -1.0, 1.0]);
    let resized = Preprocessor {
        width: 3,
        height: 2,
        ..config.clone()
    };
    let resized = Preprocessor {
        do_resize: true,
        ..resized
    };
    assert_eq!(resized.pixel_values(&rgb).len(), 3 * 3 * 2);
}

#[test]
#[should_panic(expected = "pixel buffer")]
fn pixel_values_into_checks_the_buffer() {
    let rgb = RgbImage::new(4, 4);
    Preprocessor::default().pixel_values_into(&rgb, &mut [0.0; 10]);
}
