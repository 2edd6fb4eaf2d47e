use super::*;

const T: Duration = Duration::from_secs(5);

#[test]
fn disable_is_the_only_plaintext() {
    let t = parse_url("postgresql://u:pw@localhost:5/db?sslmode=disable", None, T).unwrap();
    assert_eq!(t.tls, Tls::Disabled);
    let err = parse_url("postgresql://u:pw@localhost:5/db", None, T).unwrap_err();
    assert!(err.to_string().contains("no CA bundle"), "{err}");
    let err = parse_url("postgresql://u:pw@localhost:5/db?sslmode=prefer", None, T).unwrap_err();
    assert!(err.to_string().contains("no CA bundle"), "{err}");
    let t = parse_url(
        "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem",
        None,
        T,
    )
    .unwrap();
    assert_eq!(t.tls, Tls::Verify("/ca.pem".into()));
    let t = parse_url("postgresql://u@h/db", Some(Path::new("/rds.pem")), T).unwrap();
    assert_eq!(t.tls, Tls::Verify("/rds.pem".into()));
}

#[test]
fn url_errors_never_show_the_password() {
    for bad in [
        "postgresql://u:s3cr%2Ft@h/db?sslmode=bogus",
        "postgresql://u:s3cr%2Ft@h/db?sslmode=disable&nonsense=1",
        "postgresql://u:s3cr%2Ft@h:notaport/db?sslmode=disable",
        "mysql://u:s3cr%2Ft@h/db",
    ] {
        let err = parse_url(bad, None, T).unwrap_err().to_string();
        assert!(!err.contains("s3cr"), "{err}");
        assert!(err.contains("***") || err.contains("unparseable"), "{err}");
    }
    assert!(!format!(
        "{:?}",
        ConnectionSource::Url("postgresql://u:s3cr@h/db".into())
    )
    .contains("s3cr"));
}

#[test]
fn other_params_pass_through_and_defaults_apply() {
    let t = parse_url(
        "postgresql://u@h:6543/db?sslmode=disable&application_name=x&connect_timeout=3",
        None,
        T,
    )
    .unwrap();
    assert_eq!(t.config.get_application_name(), Some("x"));
    assert_eq!(
        t.config.get_connect_timeout(),
        Some(&Duration::from_secs(3))
    );
    assert_eq!(t.config.get_ports(), &[6543]);
}
