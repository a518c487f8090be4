//! Small CNN for the 8x8 optical digits (the default): two conv+BN+ReLU layers with average
//! pooling and one linear layer. Width 16: 1,536 ReLUs, ~6k parameters.

use super::spec::{Chw, NetSpec, SpecBuilder, SpecError};

/// Default width (channels of the first conv).
pub const DEFAULT_WIDTH: usize = 16;

/// The graph for inputs of `input` shape (8x8 expected, but any size >= 4x4 works).
pub fn spec(input: Chw, width: usize, classes: usize) -> Result<NetSpec, SpecError> {
    let mut b = SpecBuilder::new(format!("digits-cnn (width {width})"), input);
    b.conv("conv1", width, 3, 1, 1, true)?;
    b.relu("relu1")?;
    b.avg_pool("pool1", 2, 2)?;
    b.conv("conv2", 2 * width, 3, 1, 1, true)?;
    b.relu("relu2")?;
    b.avg_pool("pool2", 2, 2)?;
    b.flatten("flatten")?;
    b.linear("fc", classes)?;
    Ok(b.finish())
}
