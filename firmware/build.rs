//! Links the QEMU board's memory map and computes, on the host, the golden digests that the
//! firmware must reproduce: the same nmm-core scenarios, the same MLP weights.

use std::{env, fs, path::PathBuf};

use nmm_core::mlp::MlpMeanField;
use nmm_core::realtime::Scenario;

/// The MLP weights the firmware embeds (`include_bytes!` in `src/bin/qemu.rs`).
const WEIGHTS: &str = "../models/mlp_p06_1.nmmw";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed={WEIGHTS}");
    if env::var("TARGET").is_ok_and(|t| t.starts_with("thumb")) {
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }

    let bytes = fs::read(WEIGHTS).unwrap_or_else(|e| panic!("{WEIGHTS}: {e}"));
    let mlp = MlpMeanField::<f32>::from_bytes(&bytes).unwrap_or_else(|e| panic!("{WEIGHTS}: {e}"));
    let mut src = String::from(
        "/// Host digests of `Scenario::ALL` (computed by build.rs with nmm-core on the host).\n\
         pub const GOLDEN: [(&str, u64); 5] = [\n",
    );
    for sc in Scenario::ALL {
        let o = sc.run(&mut sc.build(&mlp));
        assert!(o.finite, "golden scenario {} diverged on the host", sc.name);
        src += &format!("    ({:?}, 0x{:016x}),\n", sc.name, o.digest);
    }
    src += "];\n";
    fs::write(out.join("golden.rs"), src).expect("write golden.rs");
}
