//! The shared build script (rpath, git revision), plus the C++ shims compiled against the headers of the
//! libtorch that torch-sys links: csrc/fused_adamw.cpp (libtorch's fused AdamW), csrc/autocast.cpp (bf16
//! autocast) and csrc/dist.cpp (c10d's TCPStore and Gloo process group; csrc/gloo_names: see its README).
use std::path::PathBuf;

#[path = "../../build/rpath.rs"]
mod shared;

fn main() {
    shared::main();
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    // torch-sys (`links = "tch"`) passes the library folder it linked to its direct dependents.
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys reports DEP_TCH_LIBTORCH_LIB to its direct dependents"),
    );
    let include = lib
        .parent()
        .expect("libtorch's lib folder has a parent")
        .join("include");
    // The same ABI flag torch-sys compiles its own C++ with.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include("csrc/gloo_names")
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("csrc/fused_adamw.cpp")
        .file("csrc/autocast.cpp")
        .file("csrc/dist.cpp")
        .compile("rewarm_torch_shim");
}
