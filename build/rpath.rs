//! Shared build script of the crates that link libtorch: embeds libtorch's library folder as an rpath so
//! binaries and tests find it without LD_LIBRARY_PATH (`LIBTORCH` comes from `.cargo/config.toml`).
//! Also records the git revision for run folders' environment.json.
pub fn main() {
    git_revision();
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}

/// `REWARM_GIT_REVISION`: the checked-out commit, rebuilt when HEAD moves.
fn git_revision() {
    let git = std::path::Path::new("../../.git");
    let Ok(head) = std::fs::read_to_string(git.join("HEAD")) else {
        return;
    };
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    let sha = match head.trim().strip_prefix("ref: ") {
        Some(r) => {
            println!("cargo:rerun-if-changed=../../.git/{r}");
            std::fs::read_to_string(git.join(r)).unwrap_or_default()
        }
        None => head,
    };
    let sha = sha.trim();
    if !sha.is_empty() {
        println!(
            "cargo:rustc-env=REWARM_GIT_REVISION={}",
            &sha[..sha.len().min(12)]
        );
    }
}
