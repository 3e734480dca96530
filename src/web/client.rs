//! Who the client is: the TCP peer, or the address the outermost trusted proxy saw.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// The client's address: the TCP peer, or with `hops` trusted proxies the entry the outermost
/// of them added to `X-Forwarded-For` (counted from the right, by position; an entry that does
/// not parse falls back to the peer, never to an entry the client wrote).
pub(crate) fn client_address(req: &HttpRequest, hops: usize) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if hops == 0 {
        return peer;
    }
    let entries: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .collect();
    let Some(entry) = entries.len().checked_sub(hops).and_then(|i| entries.get(i)) else {
        return peer;
    };
    parse_forwarded(entry).or(peer)
}

/// An `X-Forwarded-For` entry: an address, `v4:port`, or `[v6]` / `[v6]:port`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    entry
        .rsplit_once(':')
        .and_then(|(ip, port)| port.parse::<u16>().ok().and_then(|_| ip.parse().ok()))
}
