//! CIFAR-style augmentation on raw CHW pixels: random crop with zero padding, horizontal flip.

use super::ImageShape;
use crate::rng::Rng;

/// Random crop after `pad` pixels of zero padding on each side, then a horizontal flip with
/// probability 1/2: the standard CIFAR recipe (pad 4, crop 32).
///
/// Zero padding is applied to raw pixels (black), as torchvision's `RandomCrop(32, padding=4)`
/// does before normalisation.
pub fn crop_flip(shape: ImageShape, src: &[u8], dst: &mut [u8], pad: usize, rng: &mut Rng) {
    let (h, w) = (shape.height, shape.width);
    // Offsets of the crop window in the padded image, 0..=2*pad; shift = offset - pad.
    let dy = rng.below(2 * pad + 1) as isize - pad as isize;
    let dx = rng.below(2 * pad + 1) as isize - pad as isize;
    let flip = rng.coin();
    for c in 0..shape.channels {
        let plane = c * h * w;
        for y in 0..h {
            let sy = y as isize + dy;
            for x in 0..w {
                let xx = if flip { w - 1 - x } else { x };
                let sx = xx as isize + dx;
                let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                dst[plane + y * w + x] = if inside {
                    src[plane + sy as usize * w + sx as usize]
                } else {
                    0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_pad_is_identity_or_mirror() {
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 3,
        };
        let src = [1, 2, 3, 4, 5, 6];
        let mut seen_flip = false;
        let mut seen_plain = false;
        let mut rng = Rng::new(1);
        for _ in 0..32 {
            let mut dst = [0; 6];
            crop_flip(shape, &src, &mut dst, 0, &mut rng);
            if dst == src {
                seen_plain = true;
            } else {
                assert_eq!(dst, [3, 2, 1, 6, 5, 4]);
                seen_flip = true;
            }
        }
        assert!(seen_flip && seen_plain);
    }

    #[test]
    fn crop_keeps_pixels_or_pads_with_zero() {
        let shape = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let src: Vec<u8> = (1..=64).collect();
        let mut rng = Rng::new(2);
        for _ in 0..50 {
            let mut dst = vec![0; 64];
            crop_flip(shape, &src, &mut dst, 4, &mut rng);
            // Every output pixel is a padding zero or some source pixel; at least a 4x4 block
            // of the source survives any shift of at most 4.
            assert!(dst.iter().all(|&p| p == 0 || src.contains(&p)));
            assert!(dst.iter().filter(|&&p| p != 0).count() >= 16);
        }
    }
}
