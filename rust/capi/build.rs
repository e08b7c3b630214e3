//! Link the shared library the way distributions ship it: SONAME
//! `libstagehand-1.so.0` and a version script that exports `stagehand_*`
//! only, so the C ABI is exactly what `include/stagehand.h` declares and no
//! Rust or GLib symbol leaks out of the library.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let map = format!("{dir}/libstagehand.map");
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libstagehand-1.so.0");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
}
