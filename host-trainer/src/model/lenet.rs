//! LeNet-style CNN for 28x28 inputs (MNIST, Fashion-MNIST): conv5x5 (pad 2) + BN + ReLU,
//! avg pool, conv5x5 + BN + ReLU, avg pool, fc + ReLU, fc. Average pooling instead of max
//! pooling keeps every nonlinearity a ReLU (PI-friendly).

use super::spec::{Chw, NetSpec, SpecBuilder, SpecError};

/// Default width: channels of the first conv (the second has twice as many, the hidden fc
/// eight times as many).
pub const DEFAULT_WIDTH: usize = 16;

/// The graph for inputs of `input` shape (28x28 expected).
pub fn spec(input: Chw, width: usize, classes: usize) -> Result<NetSpec, SpecError> {
    let mut b = SpecBuilder::new(format!("lenet (width {width})"), input);
    b.conv("conv1", width, 5, 1, 2, true)?;
    b.relu("relu1")?;
    b.avg_pool("pool1", 2, 2)?;
    b.conv("conv2", 2 * width, 5, 1, 0, true)?;
    b.relu("relu2")?;
    b.avg_pool("pool2", 2, 2)?;
    b.flatten("flatten")?;
    b.linear("fc1", 8 * width)?;
    b.relu("relu3")?;
    b.linear("fc2", classes)?;
    Ok(b.finish())
}
