//! Table tests of the outbound policy: every range, the embedded IPv4
//! forms, the allow-list, the platform's own listeners, both modes and the
//! URL checks at the API edge.

use super::*;
use AddressClass::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(mode: Mode, allow: &str, own: ListenAddrs) -> OutboundPolicy {
    let nets = Network::parse_list(allow).unwrap();
    OutboundPolicy::new(mode, &nets, Arc::new(Mutex::new(own)))
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn every_range_has_its_class() {
    let cases = [
        ("169.254.169.254", Some(Metadata)),
        ("100.100.100.200", Some(Metadata)),
        ("fd00:ec2::254", Some(Metadata)),
        ("0.0.0.0", Some(Unspecified)),
        ("0.1.2.3", Some(Unspecified)),
        ("::", Some(Unspecified)),
        ("127.0.0.1", Some(Loopback)),
        ("127.255.255.254", Some(Loopback)),
        ("::1", Some(Loopback)),
        ("169.254.0.1", Some(LinkLocal)),
        ("169.254.170.2", Some(LinkLocal)),
        ("fe80::1", Some(LinkLocal)),
        ("febf::1", Some(LinkLocal)),
        ("10.0.0.1", Some(Private)),
        ("172.16.0.1", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("192.168.1.1", Some(Private)),
        ("100.64.0.1", Some(Private)),
        ("100.127.255.255", Some(Private)),
        ("fc00::1", Some(Private)),
        ("fd12:3456::1", Some(Private)),
        ("fec0::1", Some(Private)),
        ("224.0.0.1", Some(NotUnicast)),
        ("239.255.255.250", Some(NotUnicast)),
        ("240.0.0.1", Some(NotUnicast)),
        ("255.255.255.255", Some(NotUnicast)),
        ("ff02::1", Some(NotUnicast)),
        // Public, and the neighbours of the ranges above.
        ("8.8.8.8", None),
        ("1.0.0.1", None),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("169.253.255.255", None),
        ("126.255.255.255", None),
        ("128.0.0.1", None),
        ("223.255.255.255", None),
        ("2001:4860:4860::8888", None),
        ("fe7f::1", None),
    ];
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), want, "{addr}");
    }
}

#[test]
fn embedded_ipv4_forms_are_judged_as_the_ipv4_address() {
    let cases = [
        ("::ffff:127.0.0.1", Some(Loopback)),
        ("::ffff:7f00:1", Some(Loopback)),
        ("::ffff:169.254.169.254", Some(Metadata)),
        ("::ffff:0.0.0.0", Some(Unspecified)),
        ("::ffff:10.1.2.3", Some(Private)),
        ("::127.0.0.1", Some(Loopback)),
        ("::169.254.1.1", Some(LinkLocal)),
        ("64:ff9b::127.0.0.1", Some(Loopback)),
        ("64:ff9b::a9fe:a9fe", Some(Metadata)),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::8.8.8.8", None),
    ];
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), want, "{addr}");
    }
    assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    assert_eq!(canonical(ip("::1")), ip("::1"), "::1 is not ::0.0.0.1");
    assert_eq!(canonical(ip("::")), ip("::"));
    assert_eq!(canonical(ip("2001:db8::1")), ip("2001:db8::1"));
}

#[test]
fn each_mode_refuses_its_classes() {
    let prod = policy(Mode::Production, "", ListenAddrs::default());
    let dev = policy(Mode::Development, "", ListenAddrs::default());
    // (address, refused in production, refused in development)
    let cases = [
        ("127.0.0.1:8000", true, false),
        ("[::1]:8000", true, false),
        ("[::ffff:127.0.0.1]:8000", true, false),
        ("10.0.0.5:80", true, false),
        ("192.168.1.1:80", true, false),
        ("[fd00::1]:80", true, false),
        ("169.254.169.254:80", true, true),
        ("[::ffff:169.254.169.254]:80", true, true),
        ("[fd00:ec2::254]:80", true, true),
        ("100.100.100.200:80", true, true),
        ("169.254.1.1:80", true, true),
        ("[fe80::1]:80", true, true),
        ("0.0.0.0:8000", true, true),
        ("[::]:8000", true, true),
        ("224.0.0.1:80", true, true),
        ("8.8.8.8:443", false, false),
        ("[2001:4860:4860::8888]:443", false, false),
    ];
    for (addr, in_prod, in_dev) in cases {
        assert_eq!(
            prod.check(sock(addr)).is_err(),
            in_prod,
            "production {addr}"
        );
        assert_eq!(dev.check(sock(addr)).is_err(), in_dev, "development {addr}");
    }
    assert_eq!(
        prod.check(sock("127.0.0.1:1")),
        Err(Refusal::Class(Loopback))
    );
}

#[test]
fn the_allow_list_opens_networks_in_every_form() {
    let p = policy(
        Mode::Production,
        "127.0.0.0/8, 10.0.0.0/8,169.254.169.254,fd00::/8",
        ListenAddrs::default(),
    );
    for open in [
        "127.0.0.1:8000",
        "127.1.2.3:80",
        "[::ffff:127.0.0.1]:80",
        "10.255.0.1:80",
        "169.254.169.254:80",
        "[fd00:ec2::254]:80",
        "[fd12::1]:80",
    ] {
        assert_eq!(p.check(sock(open)), Ok(()), "{open}");
    }
    for closed in [
        "[::1]:80",
        "172.16.0.1:80",
        "169.254.169.253:80",
        "192.168.0.1:80",
        "[fc00::1]:80",
    ] {
        assert!(p.check(sock(closed)).is_err(), "{closed}");
    }
}

#[test]
fn allow_list_entries_are_validated() {
    let nets = Network::parse_list(" 10.0.0.0/8 ,, 127.0.0.1 ,::1/128, 0.0.0.0/0").unwrap();
    let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "0.0.0.0/0"]
    );
    assert!(
        nets[3].contains(ip("8.8.8.8")),
        "/0 holds every IPv4 address"
    );
    assert!(!nets[3].contains(ip("2001:db8::1")), "but no IPv6 one");
    let problems =
        Network::parse_list("10.1.2.3/8,localhost,10.0.0.0/33,::/129,1.2.3.4/x").unwrap_err();
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems[0].contains("host bits"), "{}", problems[0]);
    assert!(problems.iter().all(|p| p.starts_with(ALLOW_VAR)));
    assert_eq!(Network::parse_list("").unwrap(), vec![]);
}

#[test]
fn the_platforms_own_listeners_are_refused_even_when_allowed() {
    let own = ListenAddrs {
        main: Some(sock("127.0.0.1:8080")),
        gateway: Some(sock("172.17.0.1:8080")),
    };
    for mode in [Mode::Production, Mode::Development] {
        let p = policy(mode, "127.0.0.0/8,172.16.0.0/12,0.0.0.0/8", own.clone());
        for addr in [
            "127.0.0.1:8080",
            "[::ffff:127.0.0.1]:8080",
            "172.17.0.1:8080",
            "0.0.0.0:8080",
        ] {
            assert_eq!(
                p.check(sock(addr)),
                Err(Refusal::OwnListener),
                "{mode:?} {addr}"
            );
        }
        assert_eq!(p.check(sock("127.0.0.1:8081")), Ok(()), "another port");
        assert_eq!(p.check(sock("127.0.0.2:8080")), Ok(()), "another address");
    }
    // A listener on 0.0.0.0 answers on every local address.
    let any = ListenAddrs {
        main: Some(sock("0.0.0.0:9090")),
        gateway: None,
    };
    let p = policy(Mode::Development, "", any);
    assert_eq!(p.check(sock("127.0.0.1:9090")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sock("127.0.0.2:9090")), Err(Refusal::OwnListener));
    assert_eq!(p.check(sock("8.8.8.8:9090")), Ok(()), "not a local address");
}

#[test]
fn registration_refuses_internal_literals_in_both_modes_and_loopback_names_in_production() {
    let prod = policy(Mode::Production, "", ListenAddrs::default());
    let dev = policy(Mode::Development, "", ListenAddrs::default());
    for ok in [
        "http://agent.example:8000",
        "https://8.8.8.8/",
        "http://ws-abc:8000",
        "http://[2001:4860:4860::8888]/a2a",
    ] {
        assert_eq!(prod.check_registration_url(ok), Ok(()), "{ok}");
        assert_eq!(dev.check_registration_url(ok), Ok(()), "{ok}");
    }
    for bad in [
        "ftp://agent",
        "not a url",
        "http://",
        "http://127.0.0.1:8000",
        "http://127.1:8000",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0:8000",
        "http://0.0.0.0:8000",
        "http://10.1.2.3",
        "http://172.16.0.1",
        "http://192.168.1.1",
        "http://169.254.169.254/latest",
        "http://[::1]:80",
        "http://[::]:80",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
    ] {
        assert!(prod.check_registration_url(bad).is_err(), "{bad}");
        assert!(dev.check_registration_url(bad).is_err(), "{bad}");
    }
    for name in [
        "http://localhost:8000",
        "http://LOCALHOST:8000",
        "http://localhost.:8000",
        "http://agent.localhost/",
    ] {
        let err = prod.check_registration_url(name).unwrap_err();
        assert!(err.contains("loopback name"), "{name}: {err}");
        assert_eq!(dev.check_registration_url(name), Ok(()), "{name}");
    }
    let err = prod
        .check_registration_url("http://127.0.0.1:8000")
        .unwrap_err();
    assert!(err.contains("loopback") && err.contains(ALLOW_VAR), "{err}");
}

#[test]
fn the_allow_list_opens_the_url_checks_too() {
    let p = policy(
        Mode::Production,
        "127.0.0.0/8,10.0.0.0/8",
        ListenAddrs::default(),
    );
    for ok in [
        "http://localhost:8000",
        "http://127.0.0.1:8000",
        "http://10.1.2.3/",
    ] {
        assert_eq!(p.check_registration_url(ok), Ok(()), "{ok}");
        assert_eq!(p.check_workspace_url(ok), Ok(()), "{ok}");
    }
    assert!(p.check_registration_url("http://192.168.0.1/").is_err());
}

#[test]
fn workspace_urls_follow_the_mode() {
    let prod = policy(Mode::Production, "", ListenAddrs::default());
    let dev = policy(Mode::Development, "", ListenAddrs::default());
    for url in [
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "http://10.0.0.2/",
    ] {
        assert!(prod.check_workspace_url(url).is_err(), "{url}");
        assert_eq!(dev.check_workspace_url(url), Ok(()), "{url}");
    }
    for url in [
        "http://169.254.169.254/",
        "http://0:9000",
        "http://[fe80::1]/",
        "ftp://x",
    ] {
        assert!(prod.check_workspace_url(url).is_err(), "{url}");
        assert!(dev.check_workspace_url(url).is_err(), "{url}");
    }
}
