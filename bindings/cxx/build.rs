//! Generate the C++ side of the bridge (src/lib.rs) with cxx-build and
//! compile it into this crate's library, so that linking the library (the
//! static archive for a C++ program, the rlib for a Rust crate) brings the
//! C++ glue along.
//!
//! Then lay out the complete C++ include directory in `$OUT_DIR/include`:
//!
//! ```text
//! stagehand-cxx/stagehand.hpp   the header C++ code includes (include/, by hand)
//! stagehand-cxx/bridge.h        the bridge, generated from src/lib.rs
//! rust/cxx.h                    cxx's runtime header, of the cxx version linked
//! ```
//!
//! All three come from this one build, so they always match the library.
//! `build-aux/cargo-build.sh` copies them for meson (which installs them), the
//! tests compile against them, and a Rust crate that embeds this one finds
//! the directory in its build script as `DEP_STAGEHAND_CXX_INCLUDE`.

use std::path::{Path, PathBuf};

fn main() {
    let ostree = pkg_config_cflags();
    let mut build = cxx_build::bridge("src/lib.rs");
    build.std("c++17");
    for flag in &ostree {
        build.flag(flag);
    }
    // The glue must be as clean as the programs that include its header.
    build.flag("-Wall").flag("-Wextra");
    build.compile("stagehand-cxx-bridge");
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=include/stagehand-cxx/stagehand.hpp");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    // Where cxx-build puts the header of src/lib.rs and its copy of cxx.h.
    let generated = out.join("cxxbridge/include");
    let include = out.join("include");
    copy(
        &generated.join("stagehand-cxx/src/lib.rs.h"),
        &include.join("stagehand-cxx/bridge.h"),
    );
    copy(&generated.join("rust/cxx.h"), &include.join("rust/cxx.h"));
    copy(
        Path::new("include/stagehand-cxx/stagehand.hpp"),
        &include.join("stagehand-cxx/stagehand.hpp"),
    );
    println!("cargo:include={}", include.display());
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("a file in a directory"))
        .unwrap_or_else(|e| panic!("creating the directory of {}: {e}", to.display()));
    // cxx-build writes symlinks into its include directory; copy the
    // contents, so the directory can be copied and installed as it is.
    let bytes = std::fs::read(from).unwrap_or_else(|e| {
        panic!(
            "reading {} (did cxx-build change where it writes headers?): {e}",
            from.display()
        )
    });
    std::fs::write(to, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
}

/// The include flags of libostree and GLib: the bridge includes `<ostree.h>`
/// for `OstreeSysroot` and `GCancellable`.
fn pkg_config_cflags() -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags", "ostree-1"])
        .output()
        .expect("running pkg-config (apt-get install pkg-config libostree-dev)");
    assert!(
        out.status.success(),
        "pkg-config --cflags ostree-1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pkg-config prints UTF-8")
        .split_whitespace()
        .map(String::from)
        .collect()
}
