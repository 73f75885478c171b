//! `preprocessor_config.json` values read as transformers' image processors read them, shared by
//! both processors' `from_json`.

use serde_json::{Map, Value};

use super::{ConfigError, Resample};

/// The top-level object of a `preprocessor_config.json`.
pub(super) fn object(text: &str) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ConfigError::Json("the top level is not an object".into())),
        Err(e) => Err(ConfigError::Json(e.to_string())),
    }
}

/// One key of the file and its value.
pub(super) struct Field<'a> {
    pub key: &'a str,
    pub value: &'a Value,
}

impl Field<'_> {
    /// [`ConfigError::Field`] for this key.
    pub fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            key: self.key.to_owned(),
            problem: problem.into(),
        }
    }

    /// A `do_*` flag: `null` is false, as Python's `if None:`.
    pub fn flag(&self) -> Result<bool, ConfigError> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(self.error("must be true, false or null")),
        }
    }

    /// Any JSON number.
    pub fn number(&self) -> Result<f64, ConfigError> {
        self.value
            .as_f64()
            .ok_or_else(|| self.error("must be a number"))
    }

    /// An integer of at least 1 (`patch_size`, `max_num_patches`).
    pub fn positive_integer(&self) -> Result<usize, ConfigError> {
        self.value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n >= 1)
            .ok_or_else(|| self.error("must be a positive integer"))
    }

    /// One number for all three channels, or three (`image_mean`, `image_std`).
    pub fn per_channel(&self) -> Result<[f32; 3], ConfigError> {
        match self.value {
            Value::Number(v) => Ok([v.as_f64().unwrap_or(f64::NAN) as f32; 3]),
            Value::Array(items) if items.len() == 3 => {
                let mut out = [0f32; 3];
                for (o, item) in out.iter_mut().zip(items) {
                    *o = item
                        .as_f64()
                        .ok_or_else(|| self.error("must hold numbers"))?
                        as f32;
                }
                Ok(out)
            }
            _ => Err(self.error("must be a number or a list of 3 numbers")),
        }
    }

    /// PIL's `resample` code; `null` gives `if_null`, or an error where that is `None`.
    pub fn resample(&self, if_null: Option<Resample>) -> Result<Resample, ConfigError> {
        let filter = match self.value {
            Value::Null => if_null,
            value => value.as_i64().and_then(Resample::from_code),
        };
        filter.ok_or_else(|| {
            self.error(format!(
                "is {}; this port implements only {}",
                self.value,
                Resample::SUPPORTED
            ))
        })
    }
}
