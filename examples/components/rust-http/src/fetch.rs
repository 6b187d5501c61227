//! A WASI 0.2 command that imports `wasi:http/outgoing-handler`: GETs the URL in its first
//! argument and prints `status=<n>` and the body on stdout, or `error=<ErrorCode Debug>` and
//! exits with 1 when the request fails (for the tests that outgoing requests are denied unless
//! allowed). A missing or relative URL exits with 1 too, after a line on stderr (Rust std's
//! WASI 0.2 exit tells only success from failure). Built by scripts/build-guests.mjs into
//! http-fetch.rust.component.wasm.

#[allow(dead_code)]
#[path = "common.rs"]
mod common;

use common::{CHUNK, parse_url};
use std::io::Write;
use std::process::exit;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

fn main() {
    let Some(argument) = std::env::args().nth(1) else {
        eprintln!("usage: http-fetch URL");
        exit(1);
    };
    let Some(url) = parse_url(&argument) else {
        eprintln!("not an absolute URL: {argument}");
        exit(1);
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&Method::Get).expect("a valid method");
    let scheme = match url.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    if request.set_scheme(Some(&scheme)).is_err()
        || request.set_authority(Some(&url.authority)).is_err()
        || request.set_path_with_query(Some(&url.path_with_query)).is_err()
    {
        eprintln!("invalid URL: {argument}");
        exit(1);
    }
    let future = outgoing_handler::handle(request, None).unwrap_or_else(|error| fail(error));
    let response = loop {
        match future.get() {
            Some(response) => break response,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .expect("the response is taken once")
        .unwrap_or_else(|error| fail(error));
    println!("status={}", response.status());
    let body = response.consume().expect("the response's body");
    let input = body.stream().expect("the response body's stream");
    let mut stdout = std::io::stdout();
    loop {
        match input.blocking_read(CHUNK as u64) {
            Ok(chunk) => stdout.write_all(&chunk).expect("stdout"),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                eprintln!("reading the body failed: {}", error.to_debug_string());
                exit(1);
            }
        }
    }
    stdout.flush().expect("stdout");
    drop(input);
    drop(IncomingBody::finish(body));
}

fn fail(error: ErrorCode) -> ! {
    println!("error={error:?}");
    exit(1);
}
