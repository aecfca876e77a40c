//! A global allocator for binaries that run CPU plans: the system allocator, with every
//! allocation of 4 KiB or more aligned to 64 bytes (a cache line, an AVX-512 register).
//!
//! glibc's malloc returns 16-byte-aligned blocks, and its large blocks (mmap'ed) start 16
//! bytes into a page, so every tensor's data sat 16 bytes off a cache line and every 64-byte
//! load or store of an NHWC kernel split across two lines (the AVX-512 depthwise loop: 44 ->
//! 35 us at 56x56x64 once aligned). Binaries opt in with
//! `#[global_allocator] static ALLOC: kiln_target_cpu::alloc::Aligned = kiln_target_cpu::alloc::Aligned;`
//! (the CLI and the benchmark harness do); kernels stay correct at any alignment.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size up are aligned to [`ALIGN`].
pub const LARGE: usize = 4096;
/// The alignment of large allocations.
pub const ALIGN: usize = 64;

/// The system allocator with large blocks aligned to [`ALIGN`] bytes.
pub struct Aligned;

/// The layout actually requested from the system for `l` (the same for a block's
/// allocation and its release, as both see the same size).
fn widened(l: Layout) -> Layout {
    if l.size() >= LARGE && l.align() < ALIGN {
        // A power of two, and the size is unchanged: always a valid layout.
        Layout::from_size_align(l.size(), ALIGN).unwrap_or(l)
    } else {
        l
    }
}

// SAFETY: every method forwards to `System` with the widened layout, which is a valid layout
// for the same size; a block is always released with the layout it was allocated with
// (`widened` depends only on the size and alignment the caller passes back unchanged).
unsafe impl GlobalAlloc for Aligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `System::alloc`; the layout has a non-zero size as the caller's does.
        unsafe { System.alloc(widened(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `System::alloc_zeroed`.
        unsafe { System.alloc_zeroed(widened(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with `widened(layout)`.
        unsafe { System.dealloc(ptr, widened(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = widened(layout);
        let Ok(new) = Layout::from_size_align(new_size, layout.align()).map(widened) else {
            return std::ptr::null_mut();
        };
        if old.align() == new.align() {
            // SAFETY: `ptr` was allocated with `old`; System handles any alignment itself.
            return unsafe { System.realloc(ptr, old, new_size) };
        }
        // The block changes class (crosses LARGE): a new block, the contents copied.
        // SAFETY: `new` has a non-zero size (new_size > 0 per realloc's contract).
        let fresh = unsafe { System.alloc(new) };
        if !fresh.is_null() {
            // SAFETY: both blocks hold at least min(old size, new size) bytes; they are
            // distinct allocations, so they do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                System.dealloc(ptr, old);
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_aligned_and_keep_their_contents_across_realloc() {
        let a = Aligned;
        let small = Layout::from_size_align(100, 4).unwrap();
        // SAFETY: non-zero sizes; every block is released with its current layout.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..100 {
                *p.add(i) = i as u8;
            }
            let q = a.realloc(p, small, 10_000);
            assert_eq!(q as usize % ALIGN, 0, "grown past LARGE: aligned");
            assert!((0..100).all(|i| *q.add(i) == i as u8));
            let big = Layout::from_size_align(10_000, 4).unwrap();
            let r = a.realloc(q, big, 50);
            assert!((0..50).all(|i| *r.add(i) == i as u8));
            a.dealloc(r, Layout::from_size_align(50, 4).unwrap());
            for size in [4096, 5000, 1 << 20] {
                let l = Layout::from_size_align(size, 4).unwrap();
                let z = a.alloc_zeroed(l);
                assert_eq!(z as usize % ALIGN, 0, "{size} bytes");
                assert_eq!(*z.add(size - 1), 0);
                a.dealloc(z, l);
            }
        }
    }
}
