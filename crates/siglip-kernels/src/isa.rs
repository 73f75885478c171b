//! Which instruction-set level the kernels run at: the best this CPU has, or a lower one asked
//! for (`SIGLIP_CPU_ISA`, the server's `cpu_isa`), so that every path can be tested and
//! measured on one machine, as `ONEDNN_MAX_CPU_ISA` does for oneDNN.
//!
//! - `avx512`: the AVX-512 microkernels (avx512f + avx512bw, and AVX2 + FMA below them; bf16
//!   products also need avx512bf16).
//! - `avx2`: the AVX2 + FMA microkernels, f32 only.
//! - `generic`: none of ours; the products and attention stay on candle's path, and the
//!   element-wise kernels are compiled for baseline x86-64 (SSE2) or the target's default.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuIsa {
    /// No kernels of ours: candle's products, portable element-wise loops.
    Generic,
    /// AVX2 + FMA (x86-64-v3): f32 products.
    Avx2,
    /// AVX-512 (avx512f + avx512bw): f32 products, and bf16 where avx512bf16 exists.
    Avx512,
}

impl CpuIsa {
    /// The name the settings and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// Every level, lowest first.
    pub const ALL: [CpuIsa; 3] = [Self::Generic, Self::Avx2, Self::Avx512];
}

impl std::fmt::Display for CpuIsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A requested level: `auto` (the best this CPU has) or a level at most that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsaRequest {
    /// The best level this CPU has.
    #[default]
    Auto,
    /// This level, which the CPU must have.
    Level(CpuIsa),
}

impl std::str::FromStr for IsaRequest {
    type Err = String;

    /// `auto`, `avx512`, `avx2` or `generic`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        if text == "auto" {
            return Ok(Self::Auto);
        }
        CpuIsa::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .map(Self::Level)
            .ok_or_else(|| {
                format!("unknown cpu_isa {text:?}: expected auto, avx512, avx2 or generic")
            })
    }
}

impl std::fmt::Display for IsaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Level(level) => level.fmt(f),
        }
    }
}

/// The best level this CPU has.
pub fn detected() -> CpuIsa {
    #[cfg(target_arch = "x86_64")]
    {
        // Each level includes the ones below it: a CPU with AVX-512 but no FMA (none is
        // known, but a VM's CPUID may say anything) stays at generic.
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return CpuIsa::Generic;
        }
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
            CpuIsa::Avx512
        } else {
            CpuIsa::Avx2
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    CpuIsa::Generic
}

/// Whether this CPU multiplies bf16 pairs in hardware (avx512bf16), which the bf16 products
/// need on top of [`CpuIsa::Avx512`].
pub fn has_bf16_products() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        detected() == CpuIsa::Avx512 && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The level in use, as a [`CpuIsa`] discriminant plus one; 0 until it is first read or set.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Sets the level the kernels run at. Call it before loading a model: weights packed for one
/// level keep the microkernels of that level.
///
/// # Errors
/// If the level is above what this CPU has.
pub fn request(request: IsaRequest) -> Result<CpuIsa, String> {
    let level = resolve(request)?;
    ACTIVE.store(level as u8 + 1, Ordering::Relaxed);
    Ok(level)
}

/// The level `request` means on this CPU.
fn resolve(request: IsaRequest) -> Result<CpuIsa, String> {
    let best = detected();
    match request {
        IsaRequest::Auto => Ok(best),
        IsaRequest::Level(level) if level <= best => Ok(level),
        IsaRequest::Level(level) => Err(format!(
            "cpu_isa {level} is above what this CPU has ({best})"
        )),
    }
}

/// The level the kernels run at: the one last [`request`]ed, else `SIGLIP_CPU_ISA` from the
/// environment (read once), else the best this CPU has.
///
/// # Panics
/// If nothing was requested and `SIGLIP_CPU_ISA` is set to something this CPU cannot run: a
/// test run asked for a level it would silently not test. (The server checks the setting
/// and calls [`request`] before anything runs.)
pub fn active() -> CpuIsa {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => {
            let from_env = std::env::var("SIGLIP_CPU_ISA")
                .ok()
                .map(|text| text.parse::<IsaRequest>())
                .transpose()
                .and_then(|request| resolve(request.unwrap_or_default()));
            let level = from_env.unwrap_or_else(|error| panic!("SIGLIP_CPU_ISA: {error}"));
            // A `request` made meanwhile wins; a concurrent first read resolves the same value.
            match ACTIVE.compare_exchange(0, level as u8 + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => level,
                Err(stored) => CpuIsa::ALL[usize::from(stored) - 1],
            }
        }
        stored => CpuIsa::ALL[usize::from(stored) - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_print_back() {
        for text in ["auto", "avx512", "avx2", "generic"] {
            let request: IsaRequest = text.parse().unwrap();
            assert_eq!(request.to_string(), text);
        }
        assert_eq!(" AVX2 ".parse(), Ok(IsaRequest::Level(CpuIsa::Avx2)));
        assert!("sse4"
            .parse::<IsaRequest>()
            .unwrap_err()
            .contains("expected auto"));
    }

    #[test]
    fn a_level_above_the_cpu_is_refused() {
        assert_eq!(resolve(IsaRequest::Auto), Ok(detected()));
        assert_eq!(
            resolve(IsaRequest::Level(CpuIsa::Generic)),
            Ok(CpuIsa::Generic)
        );
        if detected() < CpuIsa::Avx512 {
            let error = resolve(IsaRequest::Level(CpuIsa::Avx512)).unwrap_err();
            assert!(error.contains("above what this CPU has"), "{error}");
        }
    }
}
