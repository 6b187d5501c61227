//! Builds the addon's embedded buffer guest from `guest/` and sets up napi linking.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    napi_build::setup();
    build_buffer_guest();
}

/// Compiles `guest/` for wasm32 with its own target dir (a nested cargo must not wait on the
/// outer build's lock) and copies the module to `$OUT_DIR/buffer_guest.wasm` for `include_bytes!`.
fn build_buffer_guest() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let guest_dir = manifest_dir.join("guest");
    let target_dir = out_dir.join("guest-target");

    for watched in ["guest/src", "guest/Cargo.toml", "guest/.cargo/config.toml"] {
        println!("cargo:rerun-if-changed={watched}");
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&guest_dir)
        .args(["build", "--release", "--locked", "--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags are for the host target; the guest's come from guest/.cargo/config.toml.
    for inherited in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_RELEASE_LTO",
    ] {
        command.env_remove(inherited);
    }
    let status = command.status().unwrap_or_else(|error| {
        panic!("could not run cargo to build the buffer guest: {error}");
    });
    if !status.success() {
        panic!(
            "building the buffer guest failed ({status}); is the wasm target installed? \
             Run `rustup target add {GUEST_TARGET}` (the npm scripts do this for you)."
        );
    }
    let built = target_dir.join(GUEST_TARGET).join("release").join("buffer_guest.wasm");
    std::fs::copy(&built, out_dir.join("buffer_guest.wasm"))
        .unwrap_or_else(|error| panic!("could not copy {}: {error}", built.display()));
}
