//! Arithmetic on additive shares over `Z_2^64`: sharing, reconstruction and local truncation.
//!
//! A value `x` (a fixed-point integer, read as a signed 64-bit number) is held as two words
//! `c` (client) and `s` (server) with `c + s = x mod 2^64`. Additions and multiplications by
//! public integers are local and exact. Division by `2^k` is the SecureML-style local
//! truncation of [`truncate`], division by any other public `n` its generalisation [`divide`];
//! their error is documented in the [module docs](super).

/// Which party holds a share. Truncation and public constants differ between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Party {
    /// The data owner (pi-core on the device): evaluates the garbled circuits.
    Client,
    /// The model owner: garbles, and adds every public constant (bias, rounding offset).
    Server,
}

/// Splits `x` into `(client, server)` shares with the client share equal to `mask`.
#[inline]
pub fn split(x: i64, mask: u64) -> (u64, u64) {
    (mask, (x as u64).wrapping_sub(mask))
}

/// The value two shares stand for, read as a signed 64-bit integer.
#[inline]
pub fn reconstruct(client: u64, server: u64) -> i64 {
    client.wrapping_add(server) as i64
}

/// Local truncation by `shift` bits (SecureML): the server floors its share read as a signed
/// number, the client takes the ceiling, i.e. `-floor(-c / 2^shift)`.
///
/// If the signed shares do not wrap (`c + s` equals `x` as integers, which fails with
/// probability `|x| / 2^64` for a uniform client share), the truncated shares reconstruct to
/// `floor(x / 2^shift)` or one more: `floor(a) + ceil(b)` lies in `[floor(a+b), floor(a+b)+1]`.
#[inline]
pub fn truncate(share: u64, shift: u8, party: Party) -> u64 {
    if shift == 0 {
        return share;
    }
    match party {
        Party::Server => ((share as i64) >> shift) as u64,
        Party::Client => (((share.wrapping_neg() as i64) >> shift) as u64).wrapping_neg(),
    }
}

/// The rounding offset `2^(shift-1)` that turns the floor of [`truncate`] into pi-core's
/// round-half-up ([`crate::fixed::requantize`]); added by the server only.
#[inline]
pub fn rounding_offset(shift: u8, party: Party) -> u64 {
    match party {
        Party::Server if shift > 0 => 1u64 << (shift - 1),
        _ => 0,
    }
}

/// Requantizes one share of an accumulator: adds the server's rounding offset, then truncates.
#[inline]
pub fn requantize(share: u64, shift: u8, party: Party) -> u64 {
    truncate(
        share.wrapping_add(rounding_offset(shift, party)),
        shift,
        party,
    )
}

/// Local division by a public `n` (`n = 0` is taken as 1): the server floors `s / n`, its share
/// read as a signed number, the client takes the ceiling of `c / n`. For `n = 2^k` this is
/// exactly [`truncate`] by `k` bits.
///
/// As for [`truncate`], if the signed shares do not wrap the results reconstruct to
/// `floor(x / n)` or one more: `floor(a/n) + ceil(b/n)` lies in `[floor((a+b)/n),
/// floor((a+b)/n) + 1]`.
#[inline]
pub fn divide(share: u64, n: u32, party: Party) -> u64 {
    let n = n.max(1);
    if n.is_power_of_two() {
        return truncate(share, n.trailing_zeros() as u8, party);
    }
    let n = i64::from(n);
    match party {
        Party::Server => (share as i64).div_euclid(n) as u64,
        Party::Client => ((share.wrapping_neg() as i64).div_euclid(n) as u64).wrapping_neg(),
    }
}

/// One share of an average pool's output: the share of the window's (or plane's) sum plus the
/// server's offset `floor(n/2)`, divided locally by `n` ([`divide`]). Reconstructs to
/// [`crate::fixed::pool_mean`]`(sum, n)` or one more when the shares do not wrap; for `n = 2^k`
/// it is [`requantize`] by `k` bits.
#[inline]
pub fn pool_mean(share: u64, n: u32, party: Party) -> u64 {
    let offset = match party {
        Party::Server => u64::from(n.max(1) / 2),
        Party::Client => 0,
    };
    divide(share.wrapping_add(offset), n, party)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_reconstruct_round_trip() {
        for (x, m) in [
            (0i64, 0u64),
            (-5, 7),
            (i64::MIN, u64::MAX),
            (123_456, 1 << 63),
        ] {
            let (c, s) = split(x, m);
            assert_eq!(reconstruct(c, s), x);
        }
    }

    #[test]
    fn truncation_is_off_by_at_most_one_lsb() {
        // Deterministic walk over masks and values; no wrap for these magnitudes.
        let mut m = 0x1234_5678_9abc_def0u64;
        for i in 0..20_000i64 {
            m = m
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = (i - 10_000) * 7919;
            for shift in [1u8, 8, 12, 16] {
                let (c, s) = split(x, m);
                let got = reconstruct(
                    requantize(c, shift, Party::Client),
                    requantize(s, shift, Party::Server),
                );
                let want = crate::fixed::requantize(x, shift) as i64;
                assert!(got == want || got == want + 1, "x={x} shift={shift}");
            }
        }
    }

    /// Pooled shares reconstruct to the plaintext pool or one more, for powers of two (where
    /// they equal the truncation) and for every other divisor, up to the largest plane.
    #[test]
    fn pooled_shares_are_off_by_at_most_one_lsb() {
        let mut m = 0x0fed_cba9_8765_4321u64;
        let mut next = move || {
            m = m
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            m
        };
        let sizes = [
            1u32,
            2,
            3,
            4,
            9,
            49,
            64,
            100,
            12544,
            65025,
            65536,
            65537,
            1 << 24,
        ];
        let random_sizes: std::vec::Vec<u32> =
            (0..200).map(|_| 1 + (next() % (1 << 24)) as u32).collect();
        let mut exact = 0;
        for n in sizes.into_iter().chain(random_sizes) {
            for _ in 0..200 {
                let mean = (next() >> 32) as u32 as i32 as i64;
                let sum = (mean * n as i64 + (next() % n as u64) as i64)
                    .clamp(n as i64 * i32::MIN as i64, n as i64 * i32::MAX as i64);
                let (c, s) = split(sum, next());
                // The documented exception: the signed shares (the server's with its offset)
                // overflow, with probability about |sum| / 2^64 (up to 2^-9 here).
                let offset = (n / 2) as i64;
                let wraps = (s as i64)
                    .checked_add(offset)
                    .and_then(|s| s.checked_add(c as i64))
                    .is_none();
                if wraps {
                    continue;
                }
                let got = reconstruct(
                    pool_mean(c, n, Party::Client),
                    pool_mean(s, n, Party::Server),
                );
                let want = crate::fixed::pool_mean(sum, n) as i64;
                assert!(
                    got == want || got == want + 1,
                    "n={n} sum={sum}: {got} vs {want}"
                );
                exact += usize::from(got == want);
                if n.is_power_of_two() {
                    let k = n.trailing_zeros() as u8;
                    assert_eq!(
                        pool_mean(c, n, Party::Client),
                        requantize(c, k, Party::Client)
                    );
                    assert_eq!(
                        pool_mean(s, n, Party::Server),
                        requantize(s, k, Party::Server)
                    );
                }
            }
        }
        // Both outcomes occur: the +1 is the local division's, not a systematic bias.
        assert!(exact > 0 && exact < 213 * 200);
    }

    #[test]
    fn a_wrapping_share_pair_breaks_truncation() {
        // c + s overflows as signed integers: the documented catastrophic case.
        let (c, s) = split(1000, (1u64 << 63) + 10);
        let got = reconstruct(truncate(c, 4, Party::Client), truncate(s, 4, Party::Server));
        assert!((got - 1000 / 16).abs() > 1 << 50);
    }
}
