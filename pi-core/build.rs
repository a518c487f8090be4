//! Sets `cfg(pi_dsp)` for targets whose cores all have the Armv7E-M DSP extension (Cortex-M4 and
//! M7: `thumbv7em-*`), where the dual 16-bit MAC kernels use `smlad`/`smlald` directly. Stable
//! Rust does not expose `target_feature = "dsp"` to `cfg`, so the target name decides.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pi_dsp)");
    println!("cargo::rerun-if-env-changed=TARGET");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=pi_dsp");
    }
}
