//! A WASI 0.3 HTTP service: exports `wasi:http/handler@0.3.0` (the `wasip3` crate's service
//! world), with the routes of the WASI 0.2 service in ../rust-http:
//!
//! - `GET /`: 200, `content-type: text/plain`, `hello from wasm\n`
//! - `POST /echo`: 200, the request body written back chunk by chunk as it is read, with the
//!   request's `content-type`; the request header `x-echo` comes back as `x-echoed`
//! - `GET /big?bytes=N`: 200, N bytes (`a` to `z`, over and over) written 64 KiB a write
//! - `GET /trap`: traps before it returns a response
//! - `GET /trap-after-head`: returns a 200 response, writes `partial` to its body, then traps
//! - `GET /spin`: loops forever
//! - `GET /env?name=X`: the environment variable X (Rust std, so WASI 0.2's
//!   `wasi:cli/environment`), or 404
//! - `GET /fetch?url=URL`: GETs URL through `wasi:http/client@0.3.0`; 200 with
//!   `<status> <body>`, or 502 with the error code's Debug text (`ErrorCode::HttpRequestDenied`)
//! - `POST /fetch-post?url=URL`: the same, with the request body's stream as the outgoing
//!   request's body (passed on, not read here)
//! - anything else: 404
//!
//! A body is written by a task spawned before `handle` returns its response, which goes on after.
//! Built by scripts/build-guests.mjs into p3-http.rust.component.wasm.

#[path = "../../rust-http/src/common.rs"]
mod common;

use common::{CHUNK, letters, parse_url, query_param, split_target};
use wasip3::http::client;
use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
use wasip3::wit_bindgen::{StreamReader, StreamResult, StreamWriter};
use wasip3::{spawn_local, wit_future, wit_stream};

wasip3::http::service::export!(Service);

struct Service;

impl wasip3::exports::http::handler::Guest for Service {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let target = request.get_path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = split_target(&target);
        Ok(match (request.get_method(), path) {
            (Method::Get, "/") => respond(200, b"hello from wasm\n".to_vec()),
            (Method::Post, "/echo") => echo(request),
            (Method::Get, "/big") => {
                let total = query_param(query, "bytes")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                big(total)
            }
            (Method::Get, "/trap") => core::arch::wasm32::unreachable(),
            (Method::Get, "/trap-after-head") => {
                let (response, mut output) = start(200, &[]);
                spawn_local(async move {
                    output.write_all(b"partial".to_vec()).await;
                    core::arch::wasm32::unreachable();
                });
                response
            }
            (Method::Get, "/spin") => {
                let mut counter = 0u64;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            (Method::Get, "/env") => match query_param(query, "name").and_then(|name| std::env::var(name).ok()) {
                Some(value) => respond(200, value.into_bytes()),
                None => respond(404, b"not found\n".to_vec()),
            },
            (Method::Get, "/fetch") => fetch(request, query, false).await,
            (Method::Post, "/fetch-post") => fetch(request, query, true).await,
            _ => respond(404, b"not found\n".to_vec()),
        })
    }
}

/// A response (`content-type: text/plain` unless `headers` name one) and the writer of its body.
fn start(status: u16, headers: &[(&str, Vec<u8>)]) -> (Response, StreamWriter<u8>) {
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
    let (output, contents) = wit_stream::new();
    // No trailers: dropping the writer sends its default, `Ok(None)`.
    let (_, trailers) = wit_future::new(|| Ok(None));
    let (response, _transmitted) = Response::new(
        Fields::from_list(&entries).expect("valid headers"),
        Some(contents),
        trailers,
    );
    response.set_status_code(status).expect("a valid status");
    (response, output)
}

fn respond(status: u16, content: Vec<u8>) -> Response {
    let (response, mut output) = start(status, &[]);
    spawn_local(async move {
        output.write_all(content).await;
    });
    response
}

/// Copies `input` to `output` a chunk at a time, each written as soon as it is read; false when
/// the reader of `output` went away.
async fn pipe(input: &mut StreamReader<u8>, output: &mut StreamWriter<u8>) -> bool {
    let mut buffer = Vec::with_capacity(CHUNK);
    loop {
        let (result, chunk) = input.read(buffer).await;
        if !chunk.is_empty() {
            let mut rest = output.write_all(chunk).await;
            if !rest.is_empty() {
                return false;
            }
            rest.reserve(CHUNK);
            buffer = rest;
        } else {
            buffer = chunk;
        }
        if !matches!(result, StreamResult::Complete(_)) {
            return true;
        }
    }
}

fn echo(request: Request) -> Response {
    let headers = request.get_headers();
    let mut echoed = Vec::new();
    for value in headers.get("content-type") {
        echoed.push(("content-type", value));
    }
    for value in headers.get("x-echo") {
        echoed.push(("x-echoed", value));
    }
    drop(headers);
    // Dropped when the body has been read: its default, `Ok(())`, says it was handled.
    let (handled, handled_reader) = wit_future::new(|| Ok(()));
    let (mut input, _trailers) = Request::consume_body(request, handled_reader);
    let (response, mut output) = start(200, &echoed);
    spawn_local(async move {
        pipe(&mut input, &mut output).await;
        drop(handled);
    });
    response
}

fn big(total: usize) -> Response {
    let (response, mut output) = start(200, &[]);
    spawn_local(async move {
        let mut written = 0;
        while written < total {
            let length = (total - written).min(CHUNK);
            if !output.write_all(letters(written, length)).await.is_empty() {
                return;
            }
            written += length;
        }
    });
    response
}

/// `/fetch` and `/fetch-post`: the request to `url` through wasi:http/client, and its response
/// (status and body) as this response's body.
async fn fetch(request: Request, query: &str, post: bool) -> Response {
    let Some(url) = query_param(query, "url").as_deref().and_then(parse_url) else {
        return respond(400, b"no absolute url= parameter\n".to_vec());
    };
    let headers = Fields::new();
    let (contents, trailers) = if post {
        for value in request.get_headers().get("content-type") {
            headers.append("content-type", &value).expect("a valid content-type");
        }
        let (_, handled) = wit_future::new(|| Ok(()));
        let (contents, trailers) = Request::consume_body(request, handled);
        (Some(contents), trailers)
    } else {
        drop(request);
        let (_, trailers) = wit_future::new(|| Ok(None));
        (None, trailers)
    };
    let (outgoing, _transmitted) = Request::new(headers, contents, trailers, None);
    outgoing
        .set_method(&if post { Method::Post } else { Method::Get })
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
        return respond(400, b"invalid url\n".to_vec());
    }
    let upstream = match client::send(outgoing).await {
        Ok(upstream) => upstream,
        Err(error) => return respond(502, format!("{error:?}").into_bytes()),
    };
    let status = upstream.get_status_code();
    let (handled, handled_reader) = wit_future::new(|| Ok(()));
    let (mut input, _trailers) = Response::consume_body(upstream, handled_reader);
    let (response, mut output) = start(200, &[]);
    spawn_local(async move {
        if output.write_all(format!("{status} ").into_bytes()).await.is_empty() {
            pipe(&mut input, &mut output).await;
        }
        drop(handled);
    });
    response
}
