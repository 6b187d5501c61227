//! A component whose own functions pass `stream<u8>` and `future<T>`, for the JS mapping of
//! WASI 0.3's async values: streams and futures in both directions, through exports (arguments
//! and results) and JS imports (arguments and results), written and read after the call returned
//! (spawned tasks), and a stream nobody reads (backpressure).

mod bindings {
    wasip3::wit_bindgen::generate!({
        inline: "package demo:p3-streams;
            world streams {
                /// JS gives a stream of `count` bytes.
                import source: func(count: u32) -> stream<u8>;
                /// JS gets a stream the guest writes after this returns.
                import sink: func(data: stream<u8>);
                /// JS gives a Promise of a string.
                import later: func(value: u32) -> future<string>;

                /// `count` bytes of `fill`, written 64 KiB at a time after the call returned.
                export produce: async func(count: u32, fill: u8) -> stream<u8>;
                /// The number and the sum of the bytes read from `data` until it ends.
                export total: async func(data: stream<u8>) -> tuple<u64, u64>;
                /// `data`'s bytes, each plus one, as they come.
                export echo: async func(data: stream<u8>) -> stream<u8>;
                /// A future of `answer: <question>`, once `question` resolves.
                export answer: async func(question: future<string>) -> future<string>;
                /// The sum of the bytes of `source(count)`.
                export drain-source: async func(count: u32) -> u64;
                /// Writes `count` bytes of `fill` to a stream it hands to `sink`.
                export fill-sink: async func(count: u32, fill: u8);
                /// What `later(value)` resolves to, quoted.
                export ask-later: async func(value: u32) -> string;
                /// A stream written forever, 64 KiB at a time.
                export endless: async func() -> stream<u8>;
                /// A future that is never written.
                export never: async func() -> future<u32>;
                /// A future dropped without a value.
                export dropped: async func() -> future<u32>;
                /// A record holding a stream and a future.
                export pair: async func(count: u32) -> record-of-both;
                record record-of-both { label: string, bytes: stream<u8>, size: future<u32> }
            }",
        world: "streams",
        runtime_path: "wasip3::wit_bindgen::rt",
    });

    use wasip3::wit_bindgen::{FutureReader, StreamReader, spawn_local as spawn};

    struct Streams;

    const CHUNK: usize = 65_536;

    impl Guest for Streams {
        async fn produce(count: u32, fill: u8) -> StreamReader<u8> {
            let (mut tx, rx) = wit_stream::new();
            spawn(async move {
                let mut left = count as usize;
                while left > 0 {
                    let length = left.min(CHUNK);
                    if !tx.write_all(vec![fill; length]).await.is_empty() {
                        return; // the reader went away
                    }
                    left -= length;
                }
            });
            rx
        }

        async fn total(mut data: StreamReader<u8>) -> (u64, u64) {
            let (mut count, mut sum) = (0u64, 0u64);
            loop {
                let (result, chunk) = data.read(Vec::with_capacity(CHUNK)).await;
                count += chunk.len() as u64;
                sum += chunk.iter().map(|&byte| u64::from(byte)).sum::<u64>();
                if !matches!(result, wasip3::wit_bindgen::StreamResult::Complete(_)) {
                    break;
                }
            }
            (count, sum)
        }

        async fn echo(mut data: StreamReader<u8>) -> StreamReader<u8> {
            let (mut tx, rx) = wit_stream::new();
            spawn(async move {
                loop {
                    let (result, chunk) = data.read(Vec::with_capacity(CHUNK)).await;
                    let out: Vec<u8> = chunk.iter().map(|byte| byte.wrapping_add(1)).collect();
                    if !out.is_empty() && !tx.write_all(out).await.is_empty() {
                        return;
                    }
                    if !matches!(result, wasip3::wit_bindgen::StreamResult::Complete(_)) {
                        return;
                    }
                }
            });
            rx
        }

        async fn answer(question: FutureReader<String>) -> FutureReader<String> {
            let (tx, rx) = wit_future::new(|| String::from("(no answer)"));
            spawn(async move {
                let question = question.await;
                let _ = tx.write(format!("answer: {question}")).await;
            });
            rx
        }

        async fn drain_source(count: u32) -> u64 {
            let mut data = source(count);
            let mut sum = 0u64;
            loop {
                let (result, chunk) = data.read(Vec::with_capacity(CHUNK)).await;
                sum += chunk.iter().map(|&byte| u64::from(byte)).sum::<u64>();
                if !matches!(result, wasip3::wit_bindgen::StreamResult::Complete(_)) {
                    break;
                }
            }
            sum
        }

        async fn fill_sink(count: u32, fill: u8) {
            let (mut tx, rx) = wit_stream::new();
            sink(rx);
            spawn(async move {
                let mut left = count as usize;
                while left > 0 {
                    let length = left.min(CHUNK);
                    if !tx.write_all(vec![fill; length]).await.is_empty() {
                        return;
                    }
                    left -= length;
                }
            });
        }

        async fn ask_later(value: u32) -> String {
            let text = later(value).await;
            format!("«{text}»")
        }

        async fn endless() -> StreamReader<u8> {
            let (mut tx, rx) = wit_stream::new();
            spawn(async move {
                loop {
                    if !tx.write_all(vec![b'e'; CHUNK]).await.is_empty() {
                        return;
                    }
                }
            });
            rx
        }

        async fn never() -> FutureReader<u32> {
            let (tx, rx) = wit_future::new(|| 0);
            spawn(async move {
                // Waits (on a clock, so the guest has something to wait on) without writing.
                wasip3::clocks::monotonic_clock::wait_for(u64::MAX / 2).await;
                let _ = tx.write(1).await;
            });
            rx
        }

        async fn dropped() -> FutureReader<u32> {
            let (tx, rx) = wit_future::new(|| 7);
            drop(tx);
            rx
        }

        async fn pair(count: u32) -> RecordOfBoth {
            let bytes = Self::produce(count, b'p').await;
            let (tx, size) = wit_future::new(|| 0);
            spawn(async move {
                let _ = tx.write(count).await;
            });
            RecordOfBoth {
                label: format!("{count} bytes"),
                bytes,
                size,
            }
        }
    }

    export!(Streams);
}

fn main() {}
