//! `wasm-bindgen-glue <input.wasm> <out-dir>`: what `wasm-bindgen --target web --out-dir <out-dir>
//! <input.wasm>` writes (the glue ES module, its `.d.ts` and the processed `_bg.wasm`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir] = arguments.as_slice() else {
        eprintln!("usage: wasm-bindgen-glue <input.wasm> <out-dir>");
        return ExitCode::from(2);
    };
    let generated = wasm_bindgen_cli_support::Bindgen::new()
        .input_path(input)
        .web(true)
        .and_then(|bindgen| bindgen.typescript(true).generate(out_dir));
    match generated {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasm-bindgen-glue: {error:?}");
            ExitCode::FAILURE
        }
    }
}
