//! A WASI 0.2 command (wasm32-wasip2, std only): writes a line to stdout and one to stderr,
//! prints the file named by its first argument (a path in a preopened directory), and exits with
//! the code in the environment variable EXIT_CODE (0 when unset).
//! Built by scripts/build-guests.mjs into command.rust.component.wasm.

use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from the command, args: {:?}", args);
    eprintln!("a line on stderr");
    if let Some(path) = args.get(1) {
        match std::fs::read_to_string(path) {
            Ok(content) => print!("{content}"),
            Err(error) => {
                eprintln!("cannot read {path}: {error}");
                exit(2);
            }
        }
    }
    let code = std::env::var("EXIT_CODE")
        .ok()
        .and_then(|value| value.parse::<i32>().ok())
        .unwrap_or(0);
    exit(code);
}
