//! The SSRF guard: callbacks must not reach this machine or the private network unless allowed.
//!
//! The check runs on the addresses actually connected to: [`GuardedResolver`] is reqwest's resolver and drops
//! every forbidden address it resolves, so a name that resolves to a public address when validated and to
//! `127.0.0.1` when delivered (DNS rebinding) is still refused. IP-literal hosts are never resolved by
//! reqwest, so [`check_url`] checks them before the request is sent.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be a callback target, or `None` when it may.
///
/// Refused: loopback, private (RFC 1918), shared (RFC 6598), link-local (including cloud metadata
/// `169.254.169.254`), unique-local (`fc00::/7`), site-local, unspecified, "this network" (`0.0.0.0/8`),
/// broadcast and multicast — also in their IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible and NAT64
/// (`64:ff9b::/96`) IPv6 forms.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("private (shared address space)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // ::ffff:a.b.c.d (mapped), and the deprecated ::a.b.c.d (compatible)
    if let Some(v4) = ip.to_ipv4() {
        return forbidden_v4(v4);
    }
    // 64:ff9b::a.b.c.d, the well-known NAT64 prefix, reaches the embedded IPv4 address
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return forbidden_v4(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
    }
    match segments[0] {
        s if s & 0xfe00 == 0xfc00 => Some("unique-local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Why a callback was refused before any request went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refusal {}

/// Checks a callback URL before a request: a usable `http`/`https` URL with a host, and, unless
/// `allow_private`, an IP-literal host that is not forbidden. Names are checked later, by [`GuardedResolver`].
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, Refusal> {
    let parsed = Url::parse(url).map_err(|e| Refusal(format!("callback url {url:?} is not a valid url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refusal(format!("callback url scheme {:?} is not http or https", parsed.scheme())));
    }
    let ip = match parsed.host() {
        None => return Err(Refusal(format!("callback url {url:?} has no host"))),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let (false, Some(ip)) = (allow_private, ip)
        && let Some(reason) = forbidden_reason(ip)
    {
        return Err(refusal(&ip.to_string(), ip, reason));
    }
    Ok(parsed)
}

/// How long [`check_callback`] waits for a name to resolve.
pub const CHECK_RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Checks a callback URL when it is configured (an instance created or changed), so that a forbidden target is
/// refused at once rather than retried for days: [`check_url`], and, unless `allow_private`, a name that
/// resolves now only to forbidden addresses. A name that does not resolve (yet), or not within
/// [`CHECK_RESOLVE_TIMEOUT`], passes: the guard at delivery checks the addresses really connected to.
pub async fn check_callback(url: &str, allow_private: bool) -> Result<(), Refusal> {
    let parsed = check_url(url, allow_private)?;
    if allow_private {
        return Ok(());
    }
    let Some(url::Host::Domain(host)) = parsed.host() else { return Ok(()) };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host((host, port));
    let Ok(Ok(resolved)) = tokio::time::timeout(CHECK_RESOLVE_TIMEOUT, lookup).await else { return Ok(()) };
    let resolved: Vec<SocketAddr> = resolved.collect();
    if resolved.is_empty() {
        return Ok(());
    }
    match filter_addrs(host, resolved, false) {
        Ok(_) => Ok(()),
        Err(e) => Err(Refusal(e.to_string())),
    }
}

fn refusal(host: &str, ip: IpAddr, reason: &str) -> Refusal {
    let target = if host == ip.to_string() { host.to_string() } else { format!("{host} ({ip})") };
    Refusal(format!("refused: callback host {target} is a {reason} address (allow with --allow-private-callbacks)"))
}

/// reqwest's resolver for callbacks: resolves with the system resolver and, unless private callbacks are
/// allowed, drops forbidden addresses; when none is left the connection fails with a [`Refusal`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver refusing forbidden addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        GuardedResolver { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = filter_addrs(&host, resolved, allow_private)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host` that may be connected to, or a [`Refusal`] naming the first forbidden one when none
/// may.
fn filter_addrs(
    host: &str,
    resolved: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
    if allow_private {
        return Ok(resolved);
    }
    let mut first_refused = None;
    let kept: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match forbidden_reason(addr.ip()) {
            Some(reason) => {
                first_refused.get_or_insert((addr.ip(), reason));
                false
            }
            None => true,
        })
        .collect();
    match (kept.is_empty(), first_refused) {
        (true, Some((ip, reason))) => Err(Box::new(refusal(host, ip, reason))),
        (true, None) => Err(Box::new(Refusal(format!("callback host {host} resolved to no address")))),
        (false, _) => Ok(kept),
    }
}

/// The [`Refusal`] in an error's chain of causes, when the error came from the guard.
pub(crate) fn find_refusal<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Refusal> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<Refusal>() {
            return Some(r);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callbacks_are_checked_when_configured() {
        for bad in ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "http://[fd00::1]/x", "http://localhost:9/"] {
            let refusal = check_callback(bad, false).await.expect_err(bad).to_string();
            assert!(refusal.contains("--allow-private-callbacks"), "{bad}: {refusal}");
            check_callback(bad, true).await.unwrap_or_else(|e| panic!("{bad} allowed: {e}"));
        }
        assert!(check_callback("ftp://example.com/", true).await.is_err(), "never another scheme");
        // a name that does not resolve passes: the delivery-time guard checks what is really connected to
        check_callback("https://no-such-host.invalid/hook", false).await.unwrap();
        check_callback("https://93.184.215.14/hook", false).await.unwrap();
    }

    #[test]
    fn classifies_addresses() {
        fn check(ip: &str, expected: Option<&str>) {
            assert_eq!(forbidden_reason(ip.parse().unwrap()), expected, "{ip}");
        }
        check("127.0.0.1", Some("loopback"));
        check("127.255.1.2", Some("loopback"));
        check("10.1.2.3", Some("private"));
        check("172.16.0.1", Some("private"));
        check("172.31.255.255", Some("private"));
        check("172.32.0.1", None);
        check("192.168.1.1", Some("private"));
        check("100.64.0.1", Some("private (shared address space)"));
        check("100.128.0.1", None);
        check("169.254.169.254", Some("link-local"));
        check("0.0.0.0", Some("unspecified"));
        check("0.1.2.3", Some("unspecified"));
        check("255.255.255.255", Some("broadcast"));
        check("224.0.0.1", Some("multicast"));
        check("8.8.8.8", None);
        check("93.184.216.34", None);
        check("::1", Some("loopback"));
        check("::", Some("unspecified"));
        check("fe80::1", Some("link-local"));
        check("fc00::1", Some("unique-local"));
        check("fd12:3456::1", Some("unique-local"));
        check("fec0::1", Some("site-local"));
        check("ff02::1", Some("multicast"));
        check("::ffff:127.0.0.1", Some("loopback"));
        check("::ffff:10.0.0.1", Some("private"));
        check("::ffff:169.254.169.254", Some("link-local"));
        check("::ffff:8.8.8.8", None);
        check("::127.0.0.1", Some("loopback"));
        check("64:ff9b::7f00:1", Some("loopback"));
        check("64:ff9b::808:808", None);
        check("2606:4700:4700::1111", None);
    }

    #[test]
    fn checks_literal_hosts_and_schemes() {
        fn check(url: &str, allow_private: bool, expected: Result<(), &str>) {
            match (check_url(url, allow_private), expected) {
                (Ok(_), Ok(())) => {}
                (Err(r), Err(part)) => assert!(r.0.contains(part), "{url}: {r}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
        check("http://127.0.0.1:8080/hook", false, Err("127.0.0.1 is a loopback address"));
        check("http://127.0.0.1:8080/hook", true, Ok(()));
        check("http://[::1]/hook", false, Err("loopback"));
        check("http://[::ffff:7f00:1]/hook", false, Err("loopback"));
        check("http://[fd00::1]/hook", false, Err("unique-local"));
        check("http://169.254.169.254/latest/meta-data", false, Err("link-local"));
        // the url crate normalizes numeric forms of IPv4, so they cannot sneak past
        check("http://2130706433/", false, Err("loopback"));
        check("http://0x7f.1/", false, Err("loopback"));
        check("https://example.com/hook", false, Ok(()));
        check("https://8.8.8.8/hook", false, Ok(()));
        check("ftp://example.com/", false, Err("is not http or https"));
        check("not a url", false, Err("not a valid url"));
        check("", true, Err("not a valid url"));
    }

    #[test]
    fn filters_resolved_addresses() {
        let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let kept = filter_addrs("mixed", vec![addr("127.0.0.1:0"), addr("8.8.8.8:0")], false).unwrap();
        assert_eq!(kept, [addr("8.8.8.8:0")]);
        let err = filter_addrs("localhost", vec![addr("127.0.0.1:0"), addr("[::1]:0")], false).unwrap_err();
        let refusal = find_refusal(err.as_ref()).unwrap();
        assert!(refusal.0.contains("localhost (127.0.0.1) is a loopback address"), "{refusal}");
        assert_eq!(filter_addrs("h", vec![addr("127.0.0.1:0")], true).unwrap(), [addr("127.0.0.1:0")]);
        assert!(filter_addrs("h", vec![], false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn check_url_never_panics(s in "\\PC{0,80}") {
            let _ = check_url(&s, false);
        }

        #[test]
        fn mapped_forms_agree_with_ipv4(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            proptest::prop_assert_eq!(
                forbidden_reason(IpAddr::V6(v4.to_ipv6_mapped())).is_some(),
                forbidden_reason(IpAddr::V4(v4)).is_some()
            );
        }
    }
}
