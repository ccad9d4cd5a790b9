//! Properties of the client plan and the proxy handshakes: no input
//! panics, answers split at any points give the same outcome, and a URL
//! survives printing and parsing again.

use proptest::prelude::*;
use ws_proto::{
    no_proxy_matches, ClientOptions, ClientPlan, ClientUrl, Error, HandshakeError, Proxy,
    ProxyHandshake,
};

/// Feeds `answer` in pieces cut at `cuts`; returns the outcome and the
/// bytes left over for the next layer.
fn drive(
    mut hs: ProxyHandshake,
    answer: &[u8],
    cuts: &[usize],
) -> (Result<bool, HandshakeError>, Vec<u8>) {
    let mut out = Vec::new();
    while hs.poll_transmit(&mut out).is_some() {}
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (answer.len() + 1)).collect();
    points.push(answer.len());
    points.sort_unstable();
    let mut at = 0;
    let mut res = Ok(false);
    for p in points {
        if p < at {
            continue;
        }
        res = hs.handle_input(&answer[at..p]);
        while hs.poll_transmit(&mut out).is_some() {}
        at = p;
        if !matches!(res, Ok(false)) {
            break;
        }
    }
    match res {
        Ok(true) => {
            // The rest belongs to the next layer.
            assert_eq!(hs.handle_input(&answer[at..]), Ok(true));
            (res, hs.into_leftover())
        }
        _ => (res, Vec::new()),
    }
}

fn url_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just(':'),
        Just('/'),
        Just('['),
        Just(']'),
        Just('@'),
        Just('?'),
        Just('#'),
        Just('%'),
        Just('.'),
        Just('+'),
        any::<char>(),
        proptest::char::range('a', 'z'),
        proptest::char::range('0', '9'),
    ]
}

fn url_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("ws://"),
            Just("wss://"),
            Just("ws+unix:"),
            Just("http://"),
            Just("socks5://"),
            Just(""),
        ],
        proptest::collection::vec(url_char(), 0..40),
    )
        .prop_map(|(scheme, rest)| format!("{scheme}{}", rest.into_iter().collect::<String>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn urls_never_panic_and_round_trip(s in url_text(), loc in url_text()) {
        if let Ok(u) = ClientUrl::parse(&s) {
            // What we print parses back to the same target.
            let again = ClientUrl::parse(&u.to_string()).unwrap();
            prop_assert_eq!(again.host(), u.host());
            prop_assert_eq!(again.port(), u.port());
            prop_assert_eq!(again.resource(), u.resource());
            prop_assert_eq!(again.unix_socket(), u.unix_socket());
            prop_assert!(u.resource().starts_with('/'));
            prop_assert!(!u.resource().bytes().any(|b| b <= b' '));
            if let Ok(next) = u.join(&loc) {
                prop_assert!(next.resource().starts_with('/'));
            }
            // A request can be built for every URL that parsed.
            if let Ok(plan) = ClientPlan::new(&s, ClientOptions::new()) {
                prop_assert!(plan.request().is_ok());
            }
        }
        let _ = Proxy::parse(&s);
        let _ = no_proxy_matches(&loc, &s, 80);
    }

    #[test]
    fn proxy_answers_never_panic(answer in proptest::collection::vec(any::<u8>(), 0..300),
                                 socks in any::<bool>(), auth in any::<bool>()) {
        let mut p = if socks { Proxy::socks5("p", 1) } else { Proxy::http("p", 1) };
        if auth {
            p = p.with_credentials("u", "pw");
        }
        let hs = p.handshake("example.com", 443).unwrap();
        let _ = drive(hs, &answer, &[]);
    }

    #[test]
    fn proxy_answers_split_anywhere(cuts in proptest::collection::vec(any::<usize>(), 0..8),
                                    socks in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let (p, mut answer) = if socks {
            (Proxy::socks5("p", 1).with_credentials("u", "pw"),
             vec![5, 2, 1, 0, 5, 0, 0, 3, 4, b'a', b'b', b'c', b'd', 0, 80])
        } else {
            (Proxy::http("p", 1), b"HTTP/1.1 200 OK\r\nVia: x\r\n\r\n".to_vec())
        };
        answer.extend_from_slice(&tail);
        let whole = drive(p.handshake("h", 1).unwrap(), &answer, &[]);
        let split = drive(p.handshake("h", 1).unwrap(), &answer, &cuts);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole, (Ok(true), tail));
    }

    #[test]
    fn redirect_locations_never_panic(loc in url_text(), status in 300u16..310) {
        let mut plan = ClientPlan::new("ws://u:p@h:1/a/b", ClientOptions::new().follow_redirects(true)).unwrap();
        let err = Error::Handshake(HandshakeError::UnexpectedStatus {
            status,
            headers: vec![("location".into(), loc.into_bytes())],
            body: vec![],
        });
        if plan.handle_failure(err).is_ok() {
            prop_assert!(plan.request().is_ok());
            if !plan.url().same_host(&ClientUrl::parse("ws://h:1/").unwrap()) {
                prop_assert!(!plan.request().unwrap().headers().contains_key("authorization"));
            }
        }
    }
}
