//! `siglip::image_decode::{decode_rgb, decoding_cost}` on arbitrary bytes: JPEG (libjpeg-turbo's
//! C code, the `libjpeg` feature), PNG, WebP, GIF and BMP.
//!
//! Checks, beyond "no panic escapes" (`decode_rgb` catches the decoders' own panics; one that
//! got out would abort here):
//! - an `Ok` image is within the limits and its buffer is exactly `width * height * 3`;
//! - the limit is enforced on the dimensions the image really has: the same bytes under a pixel
//!   limit one below, or a side limit one below, are refused as `TooManyPixels` (so a decoder
//!   cannot produce more than the header it was checked on);
//! - `TooManyPixels` names dimensions that are over the limits;
//! - `decoding_cost` agrees: it has a cost for every decodable image (the server computes it
//!   first), of `pixels * (1..=8 + 6)` for that image's pixel count; how far the measured peak
//!   goes past that cost is printed at each new maximum (the server admits decodes by it);
//! - decoding small images twice gives the same pixels (uninitialised memory shows up here);
//! - heap: the peak of live heap bytes during the call stays under what the limit implies
//!   (`max_pixels * 24 + 64 MiB`), and under `pixels * 24 + 64 MiB` of the decoded image.
//!   Under AddressSanitizer (cargo fuzz's default) every `malloc`, libjpeg's included, is
//!   counted through the sanitizer's allocation hooks; in a build without it (`-s none`) only
//!   Rust's allocations are (a counting global allocator).
//!
//! scripts/fuzz.sh also compiles libjpeg-turbo's C code under ASan (gcc): a memory error inside
//! it is then reported where it happens, not only where it corrupts Rust's data.
//!
//! Caught panics inside a decoder are within `decode_rgb`'s contract and are printed once per
//! location; `SIGLIP_FUZZ_STRICT_PANICS=1` makes them crashes instead (to report upstream).
#![no_main]
#![feature(cfg_sanitize)]

use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use siglip::image_decode::{decode_rgb, decoding_cost, DecodeError, DecodeLimits};

const LIMITS: DecodeLimits = DecodeLimits {
    max_pixels: 4_000_000,
    max_side: 4096,
};
/// Bytes a decoded pixel may cost at the peak (16-bit RGBA decode buffer, the RGB conversion,
/// its upright copy, libjpeg's progressive coefficient arrays), plus a fixed allowance for the
/// decoders' tables and working buffers. The limit implies no more than this.
const BYTES_PER_PIXEL: i64 = 24;
const FIXED_ALLOWANCE: i64 = 64 << 20;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn allocated(size: usize) {
    let live = LIVE.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn freed(size: usize) {
    LIVE.fetch_sub(size as isize, Ordering::Relaxed);
}

/// Starts a measurement; returns the live bytes it is relative to.
fn reset_peak() -> isize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

#[cfg(sanitize = "address")]
mod heap {
    //! Every heap allocation of the process (Rust's and C's) through ASan's hooks.
    use std::ffi::c_void;

    extern "C" {
        fn __sanitizer_install_malloc_and_free_hooks(
            malloc_hook: Option<unsafe extern "C" fn(*const c_void, usize)>,
            free_hook: Option<unsafe extern "C" fn(*const c_void)>,
        ) -> i32;
        fn __sanitizer_get_allocated_size(ptr: *const c_void) -> usize;
    }

    unsafe extern "C" fn on_malloc(_ptr: *const c_void, size: usize) {
        super::allocated(size);
    }

    unsafe extern "C" fn on_free(ptr: *const c_void) {
        // The hook runs before the chunk is released: its size is still known.
        if !ptr.is_null() {
            super::freed(unsafe { __sanitizer_get_allocated_size(ptr) });
        }
    }

    pub fn install() -> &'static str {
        let installed =
            unsafe { __sanitizer_install_malloc_and_free_hooks(Some(on_malloc), Some(on_free)) };
        assert!(installed != 0, "ASan refused the allocation hooks");
        "every malloc (ASan hooks)"
    }
}

#[cfg(not(sanitize = "address"))]
mod heap {
    //! Rust's allocations only (libjpeg's mallocs are not seen without a sanitizer).
    use std::alloc::{GlobalAlloc, Layout, System};

    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                super::allocated(layout.size());
            }
            p
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                super::allocated(layout.size());
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            super::freed(layout.size());
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                super::allocated(new_size);
                super::freed(layout.size());
            }
            p
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn install() -> &'static str {
        "Rust allocations only (no sanitizer)"
    }
}

fn setup() {
    static SETUP: Once = Once::new();
    SETUP.call_once(|| {
        eprintln!("image_decode: heap counted: {}", heap::install());
        if std::env::var_os("SIGLIP_FUZZ_STRICT_PANICS").is_none() {
            // libfuzzer-sys aborts on every panic, caught or not; decode_rgb's own catch is
            // part of its contract, so only a panic that escapes it (the wrapper's
            // catch_unwind then aborts) is a crash. Report each caught one once.
            let seen = std::sync::Mutex::new(std::collections::HashSet::new());
            std::panic::set_hook(Box::new(move |info| {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                if seen
                    .lock()
                    .map(|mut s| s.insert(at.clone()))
                    .unwrap_or(false)
                {
                    // A decoder's panic, caught by decode_rgb; or this target's own check, in
                    // which case the wrapper's abort follows.
                    eprintln!("image_decode: panic at {at}: {info}");
                }
            }));
        }
    });
}

fn over_limits(width: u32, height: u32, limits: &DecodeLimits) -> bool {
    u64::from(width) * u64::from(height) > limits.max_pixels || width.max(height) > limits.max_side
}

fuzz_target!(|data: &[u8]| {
    setup();
    let base = reset_peak();
    let decoded = decode_rgb(data, &LIMITS);
    let peak = i64::try_from(PEAK.load(Ordering::Relaxed) - base).unwrap_or(0);
    let implied = LIMITS.max_pixels as i64 * BYTES_PER_PIXEL + FIXED_ALLOWANCE;
    assert!(
        peak <= implied,
        "decoding held {peak} heap bytes at its peak, more than the limit implies ({implied})"
    );

    let image = match decoded {
        Ok(image) => image,
        Err(DecodeError::TooManyPixels { width, height, max }) => {
            assert_eq!(max, LIMITS.max_pixels);
            assert!(
                over_limits(width, height, &LIMITS),
                "refused {width}x{height}, which is within the limits"
            );
            return;
        }
        Err(_) => return,
    };
    let (width, height) = image.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    assert!(width > 0 && height > 0, "an Ok image of {width}x{height}");
    assert!(
        !over_limits(width, height, &LIMITS),
        "{width}x{height} passed the limits"
    );
    assert_eq!(
        image.as_raw().len() as u64,
        pixels * 3,
        "buffer of a {width}x{height} image"
    );
    let for_this_image = pixels as i64 * BYTES_PER_PIXEL + FIXED_ALLOWANCE;
    assert!(
        peak <= for_this_image,
        "a {width}x{height} image held {peak} heap bytes at the peak (> {for_this_image})"
    );

    // The header the limits were checked on is the image that came out.
    let tighter = [
        DecodeLimits {
            max_pixels: pixels - 1,
            max_side: LIMITS.max_side,
        },
        DecodeLimits {
            max_pixels: LIMITS.max_pixels,
            max_side: width.max(height) - 1,
        },
    ];
    for limits in &tighter {
        match decode_rgb(data, limits) {
            Err(DecodeError::TooManyPixels {
                width: w,
                height: h,
                ..
            }) => assert_eq!(
                u64::from(w) * u64::from(h),
                pixels,
                "the limits were checked on {w}x{h}, the image is {width}x{height}"
            ),
            other => panic!(
                "a {width}x{height} image under {limits:?} gave {:?}",
                other.map(|i| i.dimensions())
            ),
        }
    }

    match decoding_cost(data, &LIMITS) {
        Ok(cost) => {
            let per_pixel = cost / pixels;
            assert!(
                cost % pixels == 0 && (7..=14).contains(&per_pixel),
                "decoding_cost {cost} for a {width}x{height} image"
            );
            note_peak_over_cost(data, peak, cost, (width, height));
        }
        Err(DecodeError::TooManyPixels {
            width: w,
            height: h,
            ..
        }) => {
            panic!("decoding_cost refused {w}x{h}, decode_rgb decoded {width}x{height}")
        }
        // The server computes the cost first: it would refuse an image it can decode.
        Err(error) => panic!("decoded {width}x{height}, but decoding_cost refuses it: {error}"),
    }

    if pixels <= 1 << 16 {
        let again = decode_rgb(data, &LIMITS).expect("decoded once, so decodes again");
        assert!(again == image, "two decodes of the same bytes differ");
    }
});

/// The server admits decodes by `decoding_cost`: how far the real peak goes past it (beyond a
/// fixed 1 MiB for tables) is printed at each new maximum, and for every input under
/// `SIGLIP_FUZZ_VERBOSE=1`.
fn note_peak_over_cost(data: &[u8], peak: i64, cost: u64, (width, height): (u32, u32)) {
    static MAX_EXCESS: AtomicIsize = AtomicIsize::new(1 << 20);
    let excess = (peak - cost as i64) as isize;
    let verbose = std::env::var_os("SIGLIP_FUZZ_VERBOSE").is_some();
    if MAX_EXCESS.fetch_max(excess, Ordering::Relaxed) < excess || verbose {
        let head: Vec<String> = data.iter().take(4).map(|b| format!("{b:02x}")).collect();
        eprintln!(
            "image_decode: {width}x{height} ({}...): peak {peak} bytes, decoding_cost {cost}",
            head.join("")
        );
    }
}
