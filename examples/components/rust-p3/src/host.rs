//! A WASI 0.3 command that also imports a function of its own (`log`), which JS implements: it
//! logs each argument after argv[0], waiting on WASI 0.3's clock between them. It also exports
//! an async function, `slow-add`, which waits on the clock before it answers.

wasip3::cli::command::export!(Command);

mod host {
    wasip3::wit_bindgen::generate!({
        inline: "package demo:p3-host;
            world imports {
                import log: func(message: string) -> u32;
                export slow-add: async func(a: u32, b: u32, delay-ms: u32) -> u32;
            }",
        world: "imports",
        runtime_path: "wasip3::wit_bindgen::rt",
    });

    struct Exports;

    impl Guest for Exports {
        async fn slow_add(a: u32, b: u32, delay_ms: u32) -> u32 {
            wasip3::clocks::monotonic_clock::wait_for(u64::from(delay_ms) * 1_000_000).await;
            a.wrapping_add(b)
        }
    }

    export!(Exports);
}

struct Command;

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        let mut total = 0;
        for argument in wasip3::cli::environment::get_arguments().iter().skip(1) {
            total += host::log(argument);
            wasip3::clocks::monotonic_clock::wait_for(1_000_000).await;
        }
        println!("logged {total} bytes");
        Ok(())
    }
}

fn main() {}
