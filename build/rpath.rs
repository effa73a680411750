//! Shared build script of the crates that link libtorch: embeds libtorch's library folder as an rpath so
//! binaries and tests find it without LD_LIBRARY_PATH (`LIBTORCH` comes from `.cargo/config.toml`).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
