//! CIFAR-style ResNets with basic blocks: 3x3 stride-1 stem (no max pool), stages of basic
//! blocks, global average pooling, linear classifier.
//!
//! - depth `6n + 2` (8, 14, 20, 32, 44, 56, ...): three stages of `n` blocks, widths w, 2w, 4w
//!   (He et al. 2016, CIFAR variant; width 16 is the original).
//! - depth 18 / 34: four stages ([2,2,2,2] / [3,4,6,3]) of widths w, 2w, 4w, 8w (width 64 is
//!   the standard "ResNet-18 for CIFAR" of the PI literature: 557,056 ReLUs at 32x32).
//!
//! Each block: conv3x3+BN, ReLU, conv3x3+BN, add shortcut, ReLU. The shortcut is the identity, or
//! a 1x1 strided conv+BN where the shape changes. One ReLU after the stem.
//!
//! Stages are declared (`stem`, `layer1`, ...) and so is every block, for the linearization
//! methods that work per stage (DeepReDuce, SENet's attention transfer) or per block.

use super::spec::{Chw, NetSpec, SpecBuilder, SpecError, StageKind};

/// Blocks per stage for `depth`, or `None` if the depth is not in the family.
pub fn stages(depth: usize) -> Option<Vec<usize>> {
    match depth {
        18 => Some(vec![2, 2, 2, 2]),
        34 => Some(vec![3, 4, 6, 3]),
        d if d >= 8 && (d - 2) % 6 == 0 => Some(vec![(d - 2) / 6; 3]),
        _ => None,
    }
}

/// Default width for `depth`: 64 for the ImageNet-style stage layout (18, 34), 16 otherwise.
pub fn default_width(depth: usize) -> usize {
    if matches!(depth, 18 | 34) { 64 } else { 16 }
}

/// The graph of ResNet-`depth` at `width`.
pub fn spec(input: Chw, depth: usize, width: usize, classes: usize) -> Result<NetSpec, SpecError> {
    let arch = format!("resnet{depth} (width {width})");
    let Some(blocks) = stages(depth) else {
        return Err(SpecError::new(
            &arch,
            "stages",
            "depth must be 18, 34 or 6n+2 (8, 20, ...)",
        ));
    };
    let mut b = SpecBuilder::new(arch, input);
    b.stage("stem", StageKind::Stem);
    b.conv("stem.conv", width, 3, 1, 1, true)?;
    b.relu("stem.relu")?;
    for (s, &n) in blocks.iter().enumerate() {
        let channels = width << s;
        b.stage(&format!("layer{}", s + 1), StageKind::Body);
        for i in 0..n {
            b.block();
            let stride = if s > 0 && i == 0 { 2 } else { 1 };
            let p = format!("layer{}.{i}", s + 1);
            let block_in = b.current();
            let in_channels = b.shape(block_in).c;
            b.conv(&format!("{p}.conv1"), channels, 3, stride, 1, true)?;
            b.relu(&format!("{p}.relu1"))?;
            let main = b.conv(&format!("{p}.conv2"), channels, 3, 1, 1, true)?;
            let shortcut = if stride != 1 || in_channels != channels {
                b.from(block_in);
                b.conv(&format!("{p}.shortcut"), channels, 1, stride, 0, true)?
            } else {
                block_in
            };
            b.from(main);
            b.add(&format!("{p}.add"), shortcut)?;
            b.relu(&format!("{p}.relu2"))?;
        }
    }
    b.global_avg_pool("avgpool")?;
    b.linear("fc", classes)?;
    Ok(b.finish())
}
