//! The `segflow` executable: parse the command line and hand over to [`segflow::app::main`].

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, except that an allocation the machine refuses (an expression or a
/// template building a value of hundreds of gigabytes) ends the command as a resources error,
/// exit 9 with nothing left behind, instead of Rust's abort (exit 134, a staging folder left).
struct ExitWhenRefused;

// SAFETY: every call is forwarded to `System` unchanged; only a null result is acted on.
unsafe impl GlobalAlloc for ExitWhenRefused {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let pointer = unsafe { System.alloc(layout) };
        if pointer.is_null() {
            segflow::app::allocation_refused(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if pointer.is_null() {
            segflow::app::allocation_refused(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator, that is from `System`.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller's contract for `realloc` is `System.realloc`'s.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if moved.is_null() {
            segflow::app::allocation_refused(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: ExitWhenRefused = ExitWhenRefused;

fn main() -> std::process::ExitCode {
    segflow::app::main()
}
