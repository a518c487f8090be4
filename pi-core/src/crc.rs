//! CRC-32 (IEEE 802.3, the one of zlib, PNG and Ethernet): reflected polynomial `0xEDB88320`,
//! initial value and final XOR `0xFFFFFFFF`. Check value: `crc32(b"123456789") = 0xCBF43926`.
//!
//! Written here rather than taken from a crate: it is twenty lines, `no_std`, and a 1 KiB
//! table built at compile time (in flash) makes it about 6 instructions per byte on a
//! Cortex-M, so checking a 12 KB model at boot costs well under a millisecond. A CRC-32
//! detects every single-bit, double-bit and odd-weight error and every burst up to 32 bits in a
//! file of this size: what a flash or transfer fault produces. It is no defence against a
//! deliberate change (the private-inference session authenticates the model separately).

/// The IEEE 802.3 polynomial, bit-reversed (LSB-first processing).
const POLY: u32 = 0xEDB8_8320;

/// `TABLE[b]`: the CRC register after shifting byte `b` through eight rounds.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[b] = crc;
        b += 1;
    }
    table
};

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn check_values() {
        // The standard check value of CRC-32/ISO-HDLC, and two more from zlib's `crc32`.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }
}
