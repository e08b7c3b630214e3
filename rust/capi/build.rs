//! Give cargo's own cdylib (`target/*/libstagehand_capi.so`) the SONAME and
//! version script of the installed library, so that anyone who picks it up
//! directly gets the same name and exports. The library distributions install
//! is linked by meson from the static library instead (see meson.build and
//! docs/packaging.md): rustc passes a version script of its own for a cdylib,
//! which ours can only repeat, never narrow.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let map = format!("{dir}/libstagehand.map");
    println!("cargo:rerun-if-changed={map}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libstagehand-1.so.0");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={map}");
}
