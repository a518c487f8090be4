//! The client's transport: the Arm CMSDK APB UART (UART0 of the MPS2 boards, QEMU `mps2-an386`)
//! polled with a timeout, implementing pi-core's [`Transport`] and counting every byte and
//! flight like the host's metered channel.
//!
//! Register map (Arm CMSDK APB UART): `DATA` at +0x00, `STATE` at +0x04 (bit 0 TX full, bit 1
//! RX full), `CTRL` at +0x08 (bit 0 TX enable, bit 1 RX enable, bit 3 RX interrupt enable),
//! `INTCLEAR` at +0x0C (bit 1 RX), `BAUDDIV` at +0x10 (at least 16). QEMU holds one received
//! byte at a time and takes the next from the host only after the guest has read it, so nothing
//! is lost however slowly the client reads.
//!
//! Waiting for a byte sleeps in `WFI` instead of polling: interrupts stay masked (PRIMASK; no
//! handler ever runs), but a pending UART receive interrupt or SysTick wrap still wakes the core.
//! Besides saving power on a board, this matters under QEMU: a core that polls a device
//! register keeps its I/O thread from delivering the next byte, and the link crawls.

use core::ptr::{read_volatile, write_volatile};

use cortex_m::peripheral::SYST;
use pi_core::share::{ProtocolError, Transport};

use crate::marks;

/// UART0 of the MPS2 boards (QEMU `mps2-an386`'s first `-serial`).
pub const UART0_BASE: usize = 0x4000_4000;

/// UART0's receive interrupt on the MPS2 AN385/AN386 (QEMU `hw/arm/mps2.c`).
pub const UART0_RX_IRQ: u32 = 0;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTCLEAR: usize = 0x0C;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;
const TX_EN: u32 = 1 << 0;
const RX_EN: u32 = 1 << 1;
const RX_INT_EN: u32 = 1 << 3;
const RX_INT: u32 = 1 << 1;

/// NVIC set-enable and clear-pending registers, and the SCB's interrupt control register.
const NVIC_ISER: usize = 0xE000_E100;
const NVIC_ICPR: usize = 0xE000_E280;
const SCB_ICSR: usize = 0xE000_ED04;
const ICSR_PENDSTCLR: u32 = 1 << 25;

/// SysTick counts down over its full 24-bit range.
const SYST_MASK: u32 = 0x00ff_ffff;

/// What the bytes moved so far were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Kind {
    /// Handshake and session frames.
    Control,
    /// The online phase, streamed material included (what the cost model prices).
    Online,
}

/// Bytes and flights counted by the transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, defmt::Format)]
pub struct Counts {
    /// Online bytes client → server.
    pub up: u64,
    /// Online bytes server → client.
    pub down: u64,
    /// Online one-way flights (direction changes).
    pub flights: u32,
    /// Control bytes client → server.
    pub control_up: u64,
    /// Control bytes server → client.
    pub control_down: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

/// A CMSDK UART with a receive timeout measured with SysTick.
pub struct Uart {
    base: usize,
    irq: u32,
    timeout_ticks: u64,
    kind: Kind,
    counts: Counts,
    last: Option<Dir>,
}

impl Uart {
    /// Takes the UART at `base`, whose receive interrupt is `irq`, and enables it. SysTick must
    /// be running on the core clock over its full range with its interrupt enabled (it wakes the
    /// core to check the timeout); a receive that sees nothing for `timeout_ticks` core ticks
    /// fails with [`ProtocolError::Timeout`]. Masks interrupts (PRIMASK) for good.
    ///
    /// # Safety
    /// `base` must be a CMSDK APB UART that nothing else uses, and no code may rely on taking
    /// interrupts afterwards.
    pub unsafe fn new(base: usize, irq: u32, timeout_ticks: u64) -> Self {
        cortex_m::interrupt::disable();
        let mut uart = Self {
            base,
            irq,
            timeout_ticks,
            kind: Kind::Control,
            counts: Counts::default(),
            last: None,
        };
        uart.write_reg(BAUDDIV, 16);
        uart.write_reg(CTRL, TX_EN | RX_EN | RX_INT_EN);
        // SAFETY: the NVIC's set-enable register; enabling a line only makes it able to pend
        // (and so to wake WFI): with PRIMASK set no handler runs.
        unsafe {
            write_volatile(
                (NVIC_ISER + 4 * (irq / 32) as usize) as *mut u32,
                1 << (irq % 32),
            )
        };
        uart
    }

    /// Clears what may have woken the core: the UART's receive interrupt, its NVIC pending bit
    /// and a pending SysTick.
    fn clear_wakeups(&mut self) {
        self.write_reg(INTCLEAR, RX_INT);
        // SAFETY: write-one-to-clear registers of the NVIC and SCB; clearing pending state of
        // masked exceptions has no other effect.
        unsafe {
            write_volatile(
                (NVIC_ICPR + 4 * (self.irq / 32) as usize) as *mut u32,
                1 << (self.irq % 32),
            );
            write_volatile(SCB_ICSR as *mut u32, ICSR_PENDSTCLR);
        }
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: a UART register block at `base`.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&mut self, offset: usize, value: u32) {
        // SAFETY: as `read_reg`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Counts the following bytes as `kind`.
    pub fn set_kind(&mut self, kind: Kind) {
        self.kind = kind;
    }

    /// What was counted so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Clears the online counts (a new inference starts); control bytes keep adding up.
    pub fn reset_online(&mut self) {
        self.counts.up = 0;
        self.counts.down = 0;
        self.counts.flights = 0;
        self.last = None;
    }

    fn count(&mut self, dir: Dir, n: usize) {
        let n = n as u64;
        match (self.kind, dir) {
            (Kind::Control, Dir::Up) => self.counts.control_up += n,
            (Kind::Control, Dir::Down) => self.counts.control_down += n,
            (Kind::Online, d) => {
                match d {
                    Dir::Up => self.counts.up += n,
                    Dir::Down => self.counts.down += n,
                }
                if self.last != Some(d) {
                    self.counts.flights += 1;
                    self.last = Some(d);
                }
            }
        }
    }

    /// Waits until `ready(STATE)` or the timeout; the wait is marked as such for the plugin.
    /// `sleep`: doze in `WFI` between checks (receiving); else poll (sending: the transmitter
    /// drains on its own).
    fn wait_for(&mut self, ready: impl Fn(u32) -> bool, sleep: bool) -> Result<(), ProtocolError> {
        if ready(self.read_reg(STATE)) {
            return Ok(());
        }
        marks::phase_wait();
        let mut last = SYST::get_current();
        let mut waited = 0u64;
        let result = loop {
            if ready(self.read_reg(STATE)) {
                break Ok(());
            }
            if sleep {
                // A byte arriving after the check pends the interrupt, so WFI returns at once.
                cortex_m::asm::wfi();
                self.clear_wakeups();
            }
            let now = SYST::get_current();
            waited += u64::from(last.wrapping_sub(now) & SYST_MASK);
            last = now;
            if waited > self.timeout_ticks {
                break Err(ProtocolError::Timeout);
            }
        };
        marks::phase_io();
        result
    }
}

impl Transport for Uart {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        for &b in bytes {
            self.wait_for(|state| state & TX_FULL == 0, false)?;
            self.write_reg(DATA, u32::from(b));
        }
        self.count(Dir::Up, bytes.len());
        Ok(())
    }

    fn recv(&mut self, bytes: &mut [u8]) -> Result<(), ProtocolError> {
        for b in bytes.iter_mut() {
            self.wait_for(|state| state & RX_FULL != 0, true)?;
            *b = self.read_reg(DATA) as u8;
        }
        self.count(Dir::Down, bytes.len());
        Ok(())
    }
}
