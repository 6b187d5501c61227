//! A WASI 0.2 command using wasi:sockets through Rust's std, one subcommand per thing the tests
//! check; each prints one line saying what happened and exits 0 (the tests read that line):
//!
//! - `connect HOST:PORT`: connects over TCP, sends `ping`, prints `reply <what came back>`
//! - `lookup NAME`: resolves NAME (port 0), prints `resolved <addresses>`
//! - `listen ADDR`: binds a TCP listener on ADDR, prints `bound <local address>`
//! - `udp ADDR`: binds a UDP socket on ADDR, prints `bound <local address>`
//!
//! A failure prints `error <kind>: <message>`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(2).cloned().unwrap_or_default();
    let outcome = match args.get(1).map(String::as_str) {
        Some("connect") => connect(&target),
        Some("lookup") => (target.as_str(), 0).to_socket_addrs().map(|addresses| {
            let mut addresses: Vec<String> = addresses.map(|address| address.ip().to_string()).collect();
            addresses.sort();
            format!("resolved {}", addresses.join(","))
        }),
        Some("listen") => TcpListener::bind(&target)
            .and_then(|listener| listener.local_addr())
            .map(|address| format!("bound {address}")),
        Some("udp") => UdpSocket::bind(&target)
            .and_then(|socket| socket.local_addr())
            .map(|address| format!("bound {address}")),
        _ => Ok("usage: net connect|lookup|listen|udp TARGET".to_owned()),
    };
    match outcome {
        Ok(line) => println!("{line}"),
        Err(error) => println!("error {:?}: {error}", error.kind()),
    }
}

fn connect(target: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(target)?;
    stream.write_all(b"ping")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(format!("reply {reply}"))
}
