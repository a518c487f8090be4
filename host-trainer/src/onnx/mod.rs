//! ONNX in and out: [`import`] turns a user's CNN (exported from PyTorch, say) into a run folder
//! that every other command takes, so a user's own model can be fine-tuned, linearized and
//! exported like the built-in architectures.
//!
//! The ONNX file is read at run time with `onnx-ir`'s protobuf bindings (`ModelProto`), not with
//! burn's build-time code generation: the graph is only known when the user runs the command.
//! The importer works on the protobuf nodes rather than onnx-ir's typed IR because the IR renames
//! every node (`conv2d1`, ...) and the error for an unsupported model has to name the user's own
//! nodes.

pub mod export;
pub mod import;
pub mod proto;

pub use export::{OnnxSidecar, Profile, export_onnx};
pub use import::{ImportError, ImportOptions, ImportReport, Issue, import_onnx};
