//! Builds the addon's embedded buffer guest from `guest/` and sets up napi linking.

use std::path::PathBuf;

include!("guest/build_guest.rs");

fn main() {
    napi_build::setup();
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    build_buffer_guest(&manifest_dir.join("guest"));
}
