//! What the three guests share: the request target split into path and query, a query parameter
//! (percent-decoded), a URL split into the parts of an outgoing request, and the body of `/big`.

/// The size of the chunks the guests read and write a body in.
pub const CHUNK: usize = 64 * 1024;

/// Splits a request target (`/path?query`) into its path and its query (empty when none).
pub fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The value of the first query parameter called `name`, percent-decoded (`+` is a space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|&byte| (byte as char).to_digit(16));
        match bytes[index] {
            b'%' if hex(index + 1).is_some() && hex(index + 2).is_some() => {
                decoded.push((hex(index + 1).unwrap() * 16 + hex(index + 2).unwrap()) as u8);
                index += 3;
                continue;
            }
            b'+' => decoded.push(b' '),
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// An absolute URL split as an outgoing request takes it.
pub struct Url {
    /// `http`, `https` or another scheme, without `://`.
    pub scheme: String,
    /// `host[:port]` (with any `user@`).
    pub authority: String,
    /// The path and query, `/` at least.
    pub path_with_query: String,
}

/// Splits `scheme://authority/path?query`; None for a URL without `://` or without a host.
pub fn parse_url(url: &str) -> Option<Url> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = tail.split('#').next().unwrap_or("");
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    let path_with_query = match tail {
        "" => "/".to_string(),
        tail if tail.starts_with('?') => format!("/{tail}"),
        tail => tail.to_string(),
    };
    Some(Url {
        scheme: scheme.to_ascii_lowercase(),
        authority: authority.to_string(),
        path_with_query,
    })
}

/// `length` bytes of the body of `/big` from byte `offset` on: `a` to `z`, over and over.
pub fn letters(offset: usize, length: usize) -> Vec<u8> {
    (offset..offset + length)
        .map(|index| b'a' + (index % 26) as u8)
        .collect()
}
