//! Reading values out of (and into) ONNX protobuf messages: tensors and attributes.

use onnx_ir::{AttributeProto, AttributeType, NodeProto, TensorProto, ValueInfoProto};

/// ONNX `TensorProto.DataType` codes used here.
pub mod dtype {
    /// float32.
    pub const FLOAT: i32 = 1;
    /// int64.
    pub const INT64: i32 = 7;
}

/// A constant tensor (initializer or `Constant` node) as `f32` values, with its dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Values, row-major (int64 tensors converted, e.g. Reshape shapes).
    pub values: Vec<f64>,
}

/// The values of a float32 or int64 tensor, from its typed field or its raw little-endian bytes.
pub fn read_tensor(t: &TensorProto) -> Result<Const, String> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let n: usize = dims.iter().product();
    let values: Vec<f64> = match t.data_type {
        dtype::FLOAT if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        dtype::FLOAT => t.float_data.iter().map(|&v| v as f64).collect(),
        dtype::INT64 if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64)
            .collect(),
        dtype::INT64 => t.int64_data.iter().map(|&v| v as f64).collect(),
        other => return Err(format!("tensor data type {other} (only float32 and int64)")),
    };
    if !t.external_data.is_empty() {
        return Err("external data (save the model with its weights inside)".into());
    }
    if values.len() != n {
        return Err(format!(
            "tensor `{}` holds {} values for dimensions {dims:?}",
            t.name,
            values.len()
        ));
    }
    Ok(Const { dims, values })
}

/// A float32 tensor named `name` (raw little-endian data, as PyTorch writes initializers).
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.iter().map(|&d| d as i64).collect();
    t.data_type = dtype::FLOAT;
    t.raw_data = values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>()
        .into();
    t
}

/// An int64 tensor named `name`.
pub fn int_tensor(name: &str, dims: &[usize], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = dims.iter().map(|&d| d as i64).collect();
    t.data_type = dtype::INT64;
    t.raw_data = values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>()
        .into();
    t
}

/// The attribute `name` of `node`, if set.
pub fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// An integer attribute, or `default`.
pub fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

/// A float attribute, or `default`.
pub fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

/// An integer-list attribute (empty when absent).
pub fn attr_ints(node: &NodeProto, name: &str) -> Vec<i64> {
    attr(node, name).map_or_else(Vec::new, |a| a.ints.clone())
}

/// A string attribute (empty when absent).
pub fn attr_str(node: &NodeProto, name: &str) -> String {
    attr(node, name).map_or_else(String::new, |a| String::from_utf8_lossy(&a.s).into_owned())
}

/// A node.
pub fn make_node(
    op: &str,
    name: &str,
    inputs: &[String],
    outputs: &[String],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.to_vec();
    n.output = outputs.to_vec();
    n.attribute = attrs;
    n
}

fn make_attr(name: &str, ty: AttributeType) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = ty.into();
    a
}

/// An integer attribute.
pub fn make_attr_int(name: &str, v: i64) -> AttributeProto {
    let mut a = make_attr(name, AttributeType::INT);
    a.i = v;
    a
}

/// A float attribute.
pub fn make_attr_float(name: &str, v: f32) -> AttributeProto {
    let mut a = make_attr(name, AttributeType::FLOAT);
    a.f = v;
    a
}

/// An integer-list attribute.
pub fn make_attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = make_attr(name, AttributeType::INTS);
    a.ints = v.to_vec();
    a
}

/// A tensor attribute (a Constant's `value`).
pub fn make_attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    let mut a = make_attr(name, AttributeType::TENSOR);
    a.t = Some(t).into();
    a
}

/// A float32 graph input/output of the given dimensions (`None`: the batch, named `N`).
pub fn value_info(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    let t = v.type_.mut_or_insert_default().mut_tensor_type();
    t.elem_type = dtype::FLOAT;
    let shape = t.shape.mut_or_insert_default();
    for d in dims {
        shape.dim.push(Default::default());
        let last = shape.dim.last_mut().expect("just pushed");
        match d {
            Some(v) => last.set_dim_value(*v as i64),
            None => last.set_dim_param("N".into()),
        }
    }
    v
}
