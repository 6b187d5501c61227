// Shared by the addon's `build.rs` and `fuzz/build.rs` (through `include!`): builds the buffer
// guest for wasm32 and leaves it at `$OUT_DIR/buffer_guest.wasm` for `include_bytes!`.

/// Compiles the guest crate at `guest_dir` for wasm32 with its own target dir (a nested cargo
/// must not wait on the outer build's lock) and copies the module to `$OUT_DIR/buffer_guest.wasm`.
fn build_buffer_guest(guest_dir: &std::path::Path) {
    const GUEST_TARGET: &str = "wasm32-unknown-unknown";
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = out_dir.join("guest-target");

    for watched in ["src", "Cargo.toml", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", guest_dir.join(watched).display());
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(guest_dir)
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
