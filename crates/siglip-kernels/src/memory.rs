//! Heap tuning for inference: keep freed activation buffers for reuse.
//!
//! Every candle op returns a fresh buffer, megabytes each (an image's MLP activation is 7 MB,
//! a batch of 8 images' 57 MB). With glibc's defaults, buffers that large are mapped and
//! unmapped on every op, or trimmed off the heap's top as soon as they are freed, so each
//! op's first write faults its pages in again: 15% of the image tower's time at batch 8. After
//! the model is loaded, [`keep_freed_memory`] returns the loading garbage to the OS once and
//! then tells glibc to serve large blocks from the heap and to keep what is freed there.
//! Resident memory then stays at the peak of one batch's activations above the weights.
//!
//! The towers run on rayon's threads and the server's batchers on their own, so the heap in
//! question must be the main one: glibc gives other threads arenas of their own, whose heaps
//! cannot grow past 64 MB and hand freed pages back. Under the main heap alone, the image
//! tower at batch 8 takes half the page faults it takes with per-thread arenas (figures in
//! benches/README.md).

/// Releases the free memory of model loading, then keeps later frees for reuse.
/// A no-op outside glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::keep_freed_memory();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod glibc {
    /// Free memory at the heap's top is returned to the OS only beyond this.
    const TRIM_THRESHOLD: libc::c_int = 1 << 30;

    pub fn keep_freed_memory() {
        // SAFETY: malloc_trim and mallopt take the allocator's own locks and touch no memory
        // of ours; they only change when glibc returns memory to the OS.
        let tuned = unsafe {
            libc::malloc_trim(0);
            // No block gets a mapping of its own (the threshold cannot go above 32 MB).
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                // Every thread allocates from the main heap.
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
        };
        if !tuned {
            tracing::warn!("glibc refused the heap tuning; large buffers stay mapped per op");
        }
    }
}
