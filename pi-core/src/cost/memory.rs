//! Peak memory per party and the device verdict: not only the material stored between the
//! phases, but the largest working set each phase needs at once (the share arena, one streamed
//! ReLU's material, an HE ciphertext and the secret key, OT buffers).

use core::fmt;

/// What the largest part of a working set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WorkingItem {
    /// The share arena (one `u64` word per activation of the plan).
    Arena,
    /// One ReLU's garbled material (streamed or read from flash) or garbling buffers.
    Garbled,
    /// One BFV ciphertext and the secret key (HE for linear layers).
    HeCiphertext,
    /// The OT engine's buffer (Ferret's correlated OTs).
    OtBuffer,
}

impl WorkingItem {
    /// What it is, in words.
    pub fn describe(&self) -> &'static str {
        match self {
            WorkingItem::Arena => "the share arena",
            WorkingItem::Garbled => "one ReLU's garbled material",
            WorkingItem::HeCiphertext => "one HE ciphertext and the secret key",
            WorkingItem::OtBuffer => "the silent-OT buffer",
        }
    }
}

/// The working set of one phase: its total and its largest part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WorkingSet {
    /// Bytes needed at once.
    pub bytes: u64,
    /// The largest part.
    pub largest: WorkingItem,
    /// Its bytes.
    pub largest_bytes: u64,
}

impl WorkingSet {
    /// An empty working set.
    pub const EMPTY: WorkingSet = WorkingSet {
        bytes: 0,
        largest: WorkingItem::Arena,
        largest_bytes: 0,
    };

    /// Adds `bytes` of `item`.
    pub fn with(mut self, item: WorkingItem, bytes: u64) -> Self {
        self.bytes = self.bytes.saturating_add(bytes);
        if bytes > self.largest_bytes {
            self.largest = item;
            self.largest_bytes = bytes;
        }
        self
    }
}

/// The device verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Working sets and stored material fit (the material in RAM or in flash).
    Fits,
    /// The working sets fit RAM, but the stored material fits neither RAM nor flash: it must be
    /// streamed during the online phase.
    FitsIfStreamed,
    /// A working set exceeds RAM even with the material streamed.
    DoesNotFit,
}

impl Verdict {
    /// `fits`, `fits if streamed` or `does not fit`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::FitsIfStreamed => "fits if streamed",
            Verdict::DoesNotFit => "does not fit",
        }
    }
}

/// Which phase a working set belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// Preprocessing (HE for Delphi-style linear layers, garbling for a client garbler).
    Offline,
    /// The online phase.
    Online,
}

impl Phase {
    /// `offline` or `online`.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Offline => "offline",
            Phase::Online => "online",
        }
    }
}

/// A party's memory over an inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartyMemory {
    /// Material stored between the phases.
    pub stored: u64,
    /// Working set of the preprocessing phase.
    pub offline: WorkingSet,
    /// Working set of the online phase with the material streamed (or read from flash).
    pub online: WorkingSet,
}

impl PartyMemory {
    /// The largest working set and its phase.
    pub fn peak_working(&self) -> (Phase, WorkingSet) {
        if self.offline.bytes > self.online.bytes {
            (Phase::Offline, self.offline)
        } else {
            (Phase::Online, self.online)
        }
    }

    /// Peak bytes with the material stored in RAM.
    pub fn peak_stored_in_ram(&self) -> u64 {
        self.peak_working().1.bytes.saturating_add(self.stored)
    }
}

/// The client's memory on a device, and the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientMemory {
    /// What the client holds.
    pub memory: PartyMemory,
    /// The verdict over both phases.
    pub verdict: Verdict,
    /// The verdict for the online phase alone (the preprocessing done elsewhere, e.g. by the
    /// simulator's dealer).
    pub online_verdict: Verdict,
    /// The device's RAM.
    pub ram: u64,
    /// The device's flash.
    pub flash: u64,
}

impl ClientMemory {
    /// The verdict for `memory` on a device with `ram` and `flash` bytes.
    pub fn judge(memory: PartyMemory, ram: u64, flash: u64) -> Self {
        let judge = |working: u64| {
            if working > ram {
                Verdict::DoesNotFit
            } else if working.saturating_add(memory.stored) <= ram || memory.stored <= flash {
                Verdict::Fits
            } else {
                Verdict::FitsIfStreamed
            }
        };
        Self {
            memory,
            verdict: judge(memory.peak_working().1.bytes),
            online_verdict: judge(memory.online.bytes),
            ram,
            flash,
        }
    }

    /// The reason for the verdict, in words (`Display`).
    pub fn reason(&self) -> Reason {
        Reason(*self)
    }
}

/// Why a [`ClientMemory`] has its verdict.
#[derive(Debug, Clone, Copy)]
pub struct Reason(ClientMemory);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.0;
        let (phase, w) = c.memory.peak_working();
        match c.verdict {
            Verdict::DoesNotFit => write!(
                f,
                "the {} phase needs {} B at once ({} alone: {} B), RAM is {} B",
                phase.name(),
                w.bytes,
                w.largest.describe(),
                w.largest_bytes,
                c.ram
            ),
            Verdict::FitsIfStreamed => write!(
                f,
                "{} B of material fits neither RAM ({} B) nor flash ({} B); streamed, the peak is {} B",
                c.memory.stored, c.ram, c.flash, w.bytes
            ),
            Verdict::Fits => {
                let place = if w.bytes.saturating_add(c.memory.stored) <= c.ram {
                    "RAM"
                } else {
                    "flash"
                };
                write!(
                    f,
                    "peak working set {} B ({} phase) within {} B of RAM, {} B of material in {}",
                    w.bytes,
                    phase.name(),
                    c.ram,
                    c.memory.stored,
                    place
                )
            }
        }
    }
}
