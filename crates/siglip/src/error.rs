//! The library's one error type. The server turns each kind into an HTTP status in one place;
//! the command line prints the message.

use crate::image_decode::DecodeError;
use crate::preprocess::PatchError;
use crate::zero_shot::RequestError;

/// What can go wrong in loading a checkpoint or classifying with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A checkpoint's files are missing, unreadable, malformed or inconsistent with each other.
    /// The message names the file and what is wrong with it.
    #[error("{0}")]
    Checkpoint(String),
    /// Reading a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An image could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Labels or template break the zero-shot rules.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An image cannot be cut into NaFlex patches.
    #[error(transparent)]
    Patches(#[from] PatchError),
    /// A tower failed while running.
    #[error("the model failed: {0}")]
    Model(#[from] candle_core::Error),
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::Checkpoint(format!("invalid JSON: {error}"))
    }
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to an error, as "what: why" (as `anyhow::Context` would).
pub(crate) trait Context<T> {
    /// Wraps the error with `what`.
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
    /// Wraps the error with `what()`, built only on failure.
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Checkpoint(format!("{what}: {e}")))
    }
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::Checkpoint(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error::Checkpoint(what.to_string()))
    }
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| Error::Checkpoint(what().to_string()))
    }
}

/// Returns [`Error::Checkpoint`] with a formatted message.
macro_rules! bail {
    ($($message:tt)+) => {
        return Err($crate::error::Error::Checkpoint(format!($($message)+)))
    };
}

/// Returns [`Error::Checkpoint`] unless `condition` holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            $crate::error::bail!($($message)+);
        }
    };
}

pub(crate) use {bail, ensure};
