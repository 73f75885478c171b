//! How the products are cut into blocks for the caches (k blocks, column blocks, row blocks),
//! and where those sizes come from: the ones measured on Zen 4, sizes the settings pin
//! (`SIGLIP_CPU_BLOCKING`, the server's `cpu_blocking`), or a short calibration at start-up
//! that times candidates on this CPU ([`calibrate`]).
//!
//! The sizes change no result within a k block; a different `kc` changes where partial sums
//! are stored, so results differ in the last bits between blockings (never between batched
//! and unbatched requests of one process, which share one blocking).

use std::sync::RwLock;

use super::CpuIsa;

/// The cache blocking of the products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Depth of a k block in f32 products: a strip's kc slice of x stays in L1.
    pub kc_f32: usize,
    /// Depth of a k block in bf16 products (even).
    pub kc_bf16: usize,
    /// W panels of 32 columns per column block: the kc × 32·nc W block stays in L2.
    pub nc_panels: usize,
    /// Strips (of the level's tile height) per row block: the row block's output stays in L2
    /// across k blocks.
    pub row_strips: usize,
}

impl Blocking {
    /// The sizes measured on Zen 4 (32 KiB L1d, 1 MiB L2): k blocks of 256 (f32) and 768
    /// (bf16); for AVX-512, column blocks of 16 panels (512 columns) and row blocks of 8
    /// strips (112 rows); for AVX2, column blocks of 8 panels and row blocks of 48 strips (288
    /// rows: a thread's whole share of a 576-token image), 7% faster on the f32 image tower at
    /// that level than 16 panels and 16 strips.
    pub const fn zen4(isa: CpuIsa) -> Self {
        let (nc_panels, row_strips) = match isa {
            CpuIsa::Avx2 => (8, 48),
            _ => (16, 8),
        };
        Self {
            kc_f32: 256,
            kc_bf16: 768,
            nc_panels,
            row_strips,
        }
    }

    /// Every size, as a float, for comparing blockings by ratio.
    pub(crate) fn scale(&self) -> [f64; 4] {
        [self.kc_f32, self.kc_bf16, self.nc_panels, self.row_strips].map(|v| v as f64)
    }

    /// The k block depth for `dtype`.
    pub fn kc(&self, dtype: super::Dtype) -> usize {
        match dtype {
            super::Dtype::F32 => self.kc_f32,
            super::Dtype::Bf16 => self.kc_bf16,
        }
    }

    /// These sizes with the k block of `dtype` set to `kc`.
    pub(crate) fn with_kc(self, dtype: super::Dtype, kc: usize) -> Self {
        match dtype {
            super::Dtype::F32 => Self { kc_f32: kc, ..self },
            super::Dtype::Bf16 => Self {
                kc_bf16: kc,
                ..self
            },
        }
    }
}

/// Checks that the size named `name` is usable: at least 1 (2 for `kc_bf16`, which must be
/// even), none absurdly large.
fn check_size(name: &str, value: usize) -> Result<(), String> {
    let (least, most) = match name {
        "kc_f32" | "kc_bf16" => (1 + usize::from(name == "kc_bf16"), 65536),
        _ => (1, 4096),
    };
    if !(least..=most).contains(&value) {
        return Err(format!("{name} = {value}: expected {least} to {most}"));
    }
    if name == "kc_bf16" && !value.is_multiple_of(2) {
        return Err(format!("{name} = {value}: expected an even number"));
    }
    Ok(())
}

impl std::fmt::Display for Blocking {
    /// `kc_f32=256,kc_bf16=768,nc_panels=16,row_strips=8`, as the setting spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kc_f32={},kc_bf16={},nc_panels={},row_strips={}",
            self.kc_f32, self.kc_bf16, self.nc_panels, self.row_strips
        )
    }
}

/// How the blocking is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BlockingRequest {
    /// The measured sizes on a CPU they were measured on (Zen 4), a calibration elsewhere.
    #[default]
    Auto,
    /// A calibration at start-up, on any CPU.
    Calibrate,
    /// These sizes, over the measured ones of the level in use.
    Pinned(PinnedSizes),
}

/// The sizes a setting gives; the others stay those measured for the level the kernels run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PinnedSizes {
    /// `kc_f32`, if given.
    pub kc_f32: Option<usize>,
    /// `kc_bf16`, if given.
    pub kc_bf16: Option<usize>,
    /// `nc_panels`, if given.
    pub nc_panels: Option<usize>,
    /// `row_strips`, if given.
    pub row_strips: Option<usize>,
}

impl PinnedSizes {
    /// `base` with these sizes in place.
    pub fn over(self, base: Blocking) -> Blocking {
        Blocking {
            kc_f32: self.kc_f32.unwrap_or(base.kc_f32),
            kc_bf16: self.kc_bf16.unwrap_or(base.kc_bf16),
            nc_panels: self.nc_panels.unwrap_or(base.nc_panels),
            row_strips: self.row_strips.unwrap_or(base.row_strips),
        }
    }

    /// Each size given, with its key.
    fn given(&self) -> impl Iterator<Item = (&'static str, usize)> {
        [
            ("kc_f32", self.kc_f32),
            ("kc_bf16", self.kc_bf16),
            ("nc_panels", self.nc_panels),
            ("row_strips", self.row_strips),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
    }
}

impl std::str::FromStr for BlockingRequest {
    type Err = String;

    /// `auto`, `calibrate`, or comma-separated `key=value` pairs (keys `kc_f32`, `kc_bf16`,
    /// `nc_panels`, `row_strips`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "auto" => return Ok(Self::Auto),
            "calibrate" => return Ok(Self::Calibrate),
            _ => {}
        }
        let mut sizes = PinnedSizes::default();
        for pair in text.split(',') {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!(
                    "cpu_blocking {text:?}: expected auto, calibrate or key=value pairs \
                     (kc_f32, kc_bf16, nc_panels, row_strips), e.g. {}",
                    Blocking::zen4(CpuIsa::Avx512)
                )
            })?;
            let key = key.trim();
            let value: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("cpu_blocking {key}: {value:?} is not a whole number"))?;
            let slot = match key {
                "kc_f32" => &mut sizes.kc_f32,
                "kc_bf16" => &mut sizes.kc_bf16,
                "nc_panels" => &mut sizes.nc_panels,
                "row_strips" => &mut sizes.row_strips,
                other => {
                    return Err(format!(
                        "cpu_blocking: unknown key {other:?}: expected kc_f32, kc_bf16, \
                         nc_panels or row_strips"
                    ))
                }
            };
            check_size(key, value).map_err(|error| format!("cpu_blocking: {error}"))?;
            *slot = Some(value);
        }
        Ok(Self::Pinned(sizes))
    }
}

impl std::fmt::Display for BlockingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Calibrate => f.write_str("calibrate"),
            Self::Pinned(sizes) => {
                let pairs: Vec<String> = sizes.given().map(|(k, v)| format!("{k}={v}")).collect();
                f.write_str(&pairs.join(","))
            }
        }
    }
}

/// Where the blocking in use came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockingSource {
    /// The sizes measured on this kind of CPU.
    Measured,
    /// A calibration on this machine.
    Calibrated,
    /// The settings.
    Setting,
}

impl BlockingSource {
    /// The name the log and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Measured => "measured",
            Self::Calibrated => "calibrated",
            Self::Setting => "setting",
        }
    }
}

/// The blocking in use, once set or first read.
static ACTIVE: RwLock<Option<(Blocking, BlockingSource)>> = RwLock::new(None);

/// The blocking the products use: the one last [`set`], else `SIGLIP_CPU_BLOCKING` from the
/// environment when it gives sizes, else the Zen 4 sizes for the active level. (`auto` and
/// `calibrate` need a model's shapes: the server calibrates, see [`calibrate`].)
///
/// # Panics
/// If nothing was set and `SIGLIP_CPU_BLOCKING` cannot be read: a test run asked for sizes
/// it would silently not test.
pub fn active() -> Blocking {
    active_with_source().0
}

/// The blocking in use ([`active`]) and where it came from.
pub fn active_with_source() -> (Blocking, BlockingSource) {
    if let Some(active) = *ACTIVE.read().unwrap_or_else(|e| e.into_inner()) {
        return active;
    }
    let mut slot = ACTIVE.write().unwrap_or_else(|e| e.into_inner());
    *slot.get_or_insert_with(from_env)
}

/// Sets the blocking every later product uses.
pub fn set(sizes: Blocking, source: BlockingSource) {
    *ACTIVE.write().unwrap_or_else(|e| e.into_inner()) = Some((sizes, source));
}

/// `SIGLIP_CPU_BLOCKING`'s sizes, or the Zen 4 ones, for the active level.
fn from_env() -> (Blocking, BlockingSource) {
    let level = Blocking::zen4(super::isa::active());
    let measured = (level, BlockingSource::Measured);
    match std::env::var("SIGLIP_CPU_BLOCKING") {
        Err(_) => measured,
        Ok(text) if text.trim().is_empty() => measured,
        Ok(text) => match text.parse::<BlockingRequest>() {
            Ok(BlockingRequest::Pinned(sizes)) => (sizes.over(level), BlockingSource::Setting),
            Ok(_) => measured,
            Err(error) => panic!("SIGLIP_CPU_BLOCKING: {error}"),
        },
    }
}

/// Whether the Zen 4 sizes were measured on this kind of CPU: an AMD family 19h (Zen 3 and
/// Zen 4) with AVX-512, which only Zen 4 has.
pub fn measured_here() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // `__cpuid` is a safe function in recent Rust; the block keeps rust-version 1.89 building.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID leaves 0 and 1 exist on every x86-64 CPU.
        let (vendor, signature) = unsafe { (__cpuid(0), __cpuid(1)) };
        // "AuthenticAMD", in the order CPUID returns it.
        let amd = [vendor.ebx, vendor.edx, vendor.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163];
        let base = (signature.eax >> 8) & 0xF;
        let family = if base == 0xF {
            base + ((signature.eax >> 20) & 0xFF)
        } else {
            base
        };
        amd && family == 0x19 && super::isa::detected() == CpuIsa::Avx512
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_sizes_replace_only_the_keys_given_at_the_level_in_use() {
        let request: BlockingRequest = " kc_f32=128, row_strips = 3".parse().unwrap();
        assert_eq!(request.to_string(), "kc_f32=128,row_strips=3");
        let BlockingRequest::Pinned(sizes) = request else {
            panic!("{request:?}")
        };
        for isa in CpuIsa::ALL {
            let level = Blocking::zen4(isa);
            let pinned = sizes.over(level);
            assert_eq!((pinned.kc_f32, pinned.row_strips), (128, 3));
            assert_eq!(
                (pinned.kc_bf16, pinned.nc_panels),
                (level.kc_bf16, level.nc_panels)
            );
        }
        assert_eq!("AUTO".parse(), Ok(BlockingRequest::Auto));
        assert_eq!("calibrate".parse(), Ok(BlockingRequest::Calibrate));
    }

    #[test]
    fn unusable_sizes_are_refused_with_the_reason() {
        for (text, reason) in [
            ("kc_bf16=7", "kc_bf16 = 7: expected an even number"),
            ("kc_bf16=0", "kc_bf16 = 0: expected 2 to 65536"),
            ("nc_panels=5000", "nc_panels = 5000: expected 1 to 4096"),
            ("row_strips=-1", "is not a whole number"),
            ("mr=4", "unknown key \"mr\""),
            ("fast", "expected auto, calibrate or key=value pairs"),
        ] {
            let error = text.parse::<BlockingRequest>().unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
