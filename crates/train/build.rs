//! The shared build script (rpath, git revision), plus csrc/fused_adamw.cpp, libtorch's fused AdamW behind
//! a C function, compiled against the headers of the libtorch that torch-sys links.
use std::path::PathBuf;

#[path = "../../build/rpath.rs"]
mod shared;

fn main() {
    shared::main();
    println!("cargo:rerun-if-changed=csrc/fused_adamw.cpp");
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
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("csrc/fused_adamw.cpp")
        .compile("rewarm_fused_adamw");
}
