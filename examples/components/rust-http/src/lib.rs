//! A WASI 0.2 HTTP service: exports `wasi:http/incoming-handler@0.2.12` (wasip2's proxy world),
//! one route per thing the tests check:
//!
//! - `GET /`: 200, `content-type: text/plain`, `hello from wasm\n`
//! - `POST /echo`: 200, the request body written back chunk by chunk as it is read, with the
//!   request's `content-type`; the request header `x-echo` comes back as `x-echoed`
//! - `GET /big?bytes=N`: 200, N bytes (`a` to `z`, over and over) written 64 KiB a write
//! - `GET /trap`: traps before it sets a response
//! - `GET /trap-after-head`: sets a 200 response, writes `partial` to its body, then traps
//! - `GET /spin`: loops forever
//! - `GET /env?name=X`: the environment variable X (Rust std), or 404
//! - `GET /fetch?url=URL`: GETs URL through `wasi:http/outgoing-handler`; 200 with
//!   `<status> <body>`, or 502 with the error code's Debug text (`ErrorCode::HttpRequestDenied`)
//! - `POST /fetch-post?url=URL`: the same, POSTing the request body to URL as it is read
//! - anything else: 404
//!
//! Built by scripts/build-guests.mjs into http.rust.component.wasm (a library: a bin's `main`
//! would export `wasi:cli/run` as well).

mod common;

use common::{CHUNK, letters, parse_url, query_param, split_target};
use std::io::Write;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

wasip2::http::proxy::export!(Service);

struct Service;

impl wasip2::exports::http::incoming_handler::Guest for Service {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = split_target(&target);
        match (request.method(), path) {
            (Method::Get, "/") => respond(response_out, 200, b"hello from wasm\n"),
            (Method::Post, "/echo") => echo(request, response_out),
            (Method::Get, "/big") => {
                let total = query_param(query, "bytes")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                big(response_out, total);
            }
            (Method::Get, "/trap") => core::arch::wasm32::unreachable(),
            (Method::Get, "/trap-after-head") => {
                let (_body, mut output) = start(response_out, 200, &[]);
                let _ = output.write_all(b"partial").and_then(|()| Write::flush(&mut output));
                core::arch::wasm32::unreachable();
            }
            (Method::Get, "/spin") => {
                let mut counter = 0u64;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            (Method::Get, "/env") => match query_param(query, "name").and_then(|name| std::env::var(name).ok()) {
                Some(value) => respond(response_out, 200, value.as_bytes()),
                None => respond(response_out, 404, b"not found\n"),
            },
            (Method::Get, "/fetch") => fetch(request, response_out, query, false),
            (Method::Post, "/fetch-post") => fetch(request, response_out, query, true),
            _ => respond(response_out, 404, b"not found\n"),
        }
    }
}

/// Sends the head of a response (`content-type: text/plain` unless `headers` name one) and
/// returns its body to write.
fn start(response_out: ResponseOutparam, status: u16, headers: &[(&str, Vec<u8>)]) -> (OutgoingBody, OutputStream) {
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        entries.push(("content-type".to_string(), b"text/plain".to_vec()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&entries).expect("valid headers"));
    response.set_status_code(status).expect("a valid status");
    let body = response.body().expect("the response's body");
    ResponseOutparam::set(response_out, Ok(response));
    let output = body.write().expect("the body's stream");
    (body, output)
}

/// Ends a body written in full.
fn finish(body: OutgoingBody, output: OutputStream) {
    drop(output);
    let _ = OutgoingBody::finish(body, None);
}

fn respond(response_out: ResponseOutparam, status: u16, content: &[u8]) {
    let (body, mut output) = start(response_out, status, &[]);
    if output
        .write_all(content)
        .and_then(|()| Write::flush(&mut output))
        .is_ok()
    {
        finish(body, output);
    }
}

/// Copies `input` to `output` a chunk at a time, each written as soon as it is read; Err when
/// either side fails (the client went away).
fn pipe(input: &InputStream, output: &mut OutputStream) -> Result<(), ()> {
    loop {
        match input.blocking_read(CHUNK as u64) {
            Ok(chunk) => output
                .write_all(&chunk)
                .and_then(|()| Write::flush(output))
                .map_err(drop)?,
            Err(StreamError::Closed) => return Ok(()),
            Err(StreamError::LastOperationFailed(_)) => return Err(()),
        }
    }
}

fn echo(request: IncomingRequest, response_out: ResponseOutparam) {
    let headers = request.headers();
    let mut echoed = Vec::new();
    for value in headers.get("content-type") {
        echoed.push(("content-type", value));
    }
    for value in headers.get("x-echo") {
        echoed.push(("x-echoed", value));
    }
    drop(headers);
    let request_body = request.consume().expect("the request's body");
    let input = request_body.stream().expect("the request body's stream");
    let (body, mut output) = start(response_out, 200, &echoed);
    if pipe(&input, &mut output).is_ok() {
        drop(input);
        drop(IncomingBody::finish(request_body));
        finish(body, output);
    }
}

fn big(response_out: ResponseOutparam, total: usize) {
    let (body, mut output) = start(response_out, 200, &[]);
    let mut written = 0;
    while written < total {
        let length = (total - written).min(CHUNK);
        if output.write_all(&letters(written, length)).is_err() {
            return;
        }
        written += length;
    }
    if Write::flush(&mut output).is_ok() {
        finish(body, output);
    }
}

/// `/fetch` and `/fetch-post`: the request to `url` through wasi:http/outgoing-handler, and its
/// response (status and body) as this response's body.
fn fetch(request: IncomingRequest, response_out: ResponseOutparam, query: &str, post: bool) {
    let Some(url) = query_param(query, "url").as_deref().and_then(parse_url) else {
        return respond(response_out, 400, b"no absolute url= parameter\n");
    };
    let headers = Fields::new();
    if post {
        let incoming_headers = request.headers();
        for value in incoming_headers.get("content-type") {
            headers.append("content-type", &value).expect("a valid content-type");
        }
    }
    let outgoing = OutgoingRequest::new(headers);
    outgoing
        .set_method(if post { &Method::Post } else { &Method::Get })
        .expect("a valid method");
    let scheme = match url.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    if outgoing.set_scheme(Some(&scheme)).is_err()
        || outgoing.set_authority(Some(&url.authority)).is_err()
        || outgoing.set_path_with_query(Some(&url.path_with_query)).is_err()
    {
        return respond(response_out, 400, b"invalid url\n");
    }
    let request_body = post.then(|| outgoing.body().expect("the outgoing request's body"));
    let future = match outgoing_handler::handle(outgoing, None) {
        Ok(future) => future,
        Err(error) => return respond(response_out, 502, format!("{error:?}").as_bytes()),
    };
    if let Some(request_body) = request_body {
        let incoming = request.consume().expect("the request's body");
        let input = incoming.stream().expect("the request body's stream");
        let mut output = request_body.write().expect("the outgoing request body's stream");
        let piped = pipe(&input, &mut output);
        drop(output);
        drop(input);
        if piped.is_ok() {
            let _ = OutgoingBody::finish(request_body, None);
        }
    }
    let response = loop {
        match future.get() {
            Some(response) => break response,
            None => future.subscribe().block(),
        }
    };
    let response = match response {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return respond(response_out, 502, format!("{error:?}").as_bytes()),
        Err(()) => unreachable!("the response is taken once"),
    };
    let status = response.status();
    let response_body = response.consume().expect("the response's body");
    let input = response_body.stream().expect("the response body's stream");
    let (body, mut output) = start(response_out, 200, &[]);
    if output.write_all(format!("{status} ").as_bytes()).is_ok() && pipe(&input, &mut output).is_ok() {
        drop(input);
        drop(IncomingBody::finish(response_body));
        finish(body, output);
    }
}
