//! Wrong tokens over a real server: ten from one address within a minute get it refused (429,
//! `Retry-After`) on the API and the login form alike, the right token included; another
//! address and `/healthz` are unaffected, and `/metrics` counts both.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;

use super::{agent, get, metric, parse_metrics, server_with_token};
use storetrack::api::throttle::{BLOCK, MAX_FAILURES};

/// A TCP connection to `to` from `from` (any port): another client on the loopback.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let addr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(to) = to else {
        panic!("{to}: not IPv4")
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with valid sockaddr_in values of `len`
    // bytes; the descriptor is owned by the TcpStream from then on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let (a, b) = (addr(from, 0), addr(*to.ip(), to.port()));
        assert_eq!(libc::bind(fd, (&raw const a).cast(), len), 0, "bind {from}");
        assert_eq!(
            libc::connect(fd, (&raw const b).cast(), len),
            0,
            "connect {to}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// The body of `GET path` with the bearer `token`, sent from `from`.
fn get_from(from: Ipv4Addr, to: SocketAddr, path: &str, token: &str) -> String {
    let mut s = connect_from(from, to);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

#[test]
fn ten_wrong_tokens_get_a_client_refused_for_a_while_and_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_token(dir.path());
    let addr = server.local_addr();
    let base = format!("http://{addr}");
    let http = agent();
    // No token at all is not a guess: the browser's first visit.
    for _ in 0..2 * MAX_FAILURES {
        assert_eq!(get(&http, &format!("{base}/metrics"), None).0, 401);
    }
    for _ in 1..MAX_FAILURES {
        assert_eq!(get(&http, &format!("{base}/metrics"), Some("guess")).0, 401);
    }
    let login = |token: &str| {
        http.post(format!("{base}/login"))
            .content_type("application/x-www-form-urlencoded")
            .send(format!("token={token}"))
            .unwrap()
    };
    assert_eq!(login("guess").status().as_u16(), 401, "the tenth");
    // Refused now, the right token too, on the API and the login form.
    let answer = http
        .get(format!("{base}/metrics"))
        .header("Authorization", "Bearer letmein")
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    let retry: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry <= BLOCK.as_secs() && retry + 5 >= BLOCK.as_secs(),
        "{retry}"
    );
    let mut page = login("letmein");
    assert_eq!(page.status().as_u16(), 429);
    let text = page.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("Too many wrong tokens from this address: try again in 5 min."),
        "{text}"
    );
    assert_eq!(get(&http, &format!("{base}/healthz"), None).0, 200);
    // Another address is not refused, and sees the counts.
    let text = get_from(Ipv4Addr::new(127, 0, 0, 2), addr, "/metrics", "letmein");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let m = parse_metrics(body);
    let wrong = metric(&m, "storetrack_api_wrong_tokens_total", "");
    assert_eq!(wrong, f64::from(MAX_FAILURES));
    assert_eq!(metric(&m, "storetrack_api_throttled_total", ""), 2.0);
    server.stop();
}
