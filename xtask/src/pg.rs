//! Does PostgreSQL answer? A real protocol exchange (an SSLRequest), not just an open port.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connects to the host and port of `url` and sends PostgreSQL's SSLRequest; a server answers `S` or `N`.
pub(crate) fn probe(url: &str) -> Result<(), String> {
    let (host, port) = host_port(url).ok_or_else(|| format!("cannot read a host and port from {}", redact(url)))?;
    let addrs: Vec<_> =
        (host.as_str(), port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                // length 8, SSLRequest code 80877103
                let msg = [0u8, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
                if let Err(e) = s.write_all(&msg) {
                    last = e.to_string();
                    continue;
                }
                let mut answer = [0u8; 1];
                match s.read_exact(&mut answer) {
                    Ok(()) if answer[0] == b'S' || answer[0] == b'N' => return Ok(()),
                    Ok(()) => last = format!("{addr} answered but not as PostgreSQL"),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, p.parse().ok()?),
        _ => (hostport, 5432),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((if host.is_empty() { "localhost".into() } else { host.to_string() }, port))
}

/// The URL without its password.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                format!("{scheme}://{}:****@{host}", userinfo.split(':').next().unwrap_or(""))
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_and_port() {
        assert_eq!(host_port("postgres://postgres@127.0.0.1:5432/test"), Some(("127.0.0.1".into(), 5432)));
        assert_eq!(host_port("postgres://u:p@db/x"), Some(("db".into(), 5432)));
        assert_eq!(host_port("postgresql://[::1]:6000/x"), Some(("::1".into(), 6000)));
        assert_eq!(host_port("nonsense"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:****@h/db");
        assert_eq!(redact("postgres://postgres@h/db"), "postgres://postgres@h/db");
    }
}
