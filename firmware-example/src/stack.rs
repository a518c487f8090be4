//! Stack high-water mark by painting: fill the free stack with a pattern at start-up, and later
//! find the deepest word the program overwrote. Static RAM (`.data`, `.bss`) plus this mark is
//! the firmware's peak RAM (there is no heap).

use core::ptr::{addr_of, read_volatile, write_volatile};

unsafe extern "C" {
    /// Lowest address the stack may reach (end of `.uninit`; cortex-m-rt's linker script).
    static _stack_end: u32;
    /// Initial stack pointer (top of RAM; cortex-m-rt's linker script).
    static _stack_start: u32;
}

const PAINT: u32 = 0x5AC5_5AC5;
/// Words left unpainted below the stack pointer of the caller: the painting loop's own frame.
const GUARD_WORDS: usize = 16;

fn bounds() -> (usize, usize) {
    // Only the symbols' addresses are used, never their values.
    (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    )
}

/// Paints the free stack below the current stack pointer. Call once, first thing in `main`.
pub fn paint() {
    let (bottom, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let mut addr = bottom;
    while addr + 4 * GUARD_WORDS < sp {
        // SAFETY: [bottom, sp) is the free part of the stack region the linker script reserves:
        // no live data is there, and the address is 4-byte aligned (the script asserts it).
        unsafe { write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// Bytes of stack used at the deepest point since [`paint`].
pub fn high_water_bytes() -> usize {
    let (bottom, top) = bounds();
    let mut addr = bottom;
    // SAFETY: reads aligned words of the stack region, all of which are mapped RAM.
    while addr < top && unsafe { read_volatile(addr as *const u32) } == PAINT {
        addr += 4;
    }
    top - addr
}
