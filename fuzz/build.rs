//! The core embeds the buffer guest; build it as the addon does.

include!("../guest/build_guest.rs");

fn main() {
    let manifest_dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    build_buffer_guest(&manifest_dir.join("..").join("guest"));
}
