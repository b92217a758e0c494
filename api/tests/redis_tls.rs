//! `rediss://` (what ElastiCache with transit encryption needs): a node
//! connects over TLS, verifying the server against the system's trusted
//! roots, and authenticates with the URL's password. The test's own
//! `redis-server` speaks only TLS, with a certificate from a CA the test
//! makes and trusts through `SSL_CERT_FILE` (the variable is process-wide;
//! nextest runs each test in a process of its own). Needs `redis-server` and `openssl`.

use api::cluster::RedisLink;
use std::time::Duration;
use testkit::OwnServer;

#[tokio::test]
async fn a_rediss_url_connects_over_verified_tls_with_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let (_redis, ca) = OwnServer::redis_tls(port, dir.path(), "tls-test-pw");
    std::env::set_var("SSL_CERT_FILE", &ca);

    let link = RedisLink::new(&format!("rediss://:tls-test-pw@127.0.0.1:{port}"), "").unwrap();
    assert!(
        link.connect(Duration::from_secs(5)).await,
        "connects over TLS"
    );
    let mut c = link.connection().unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");

    // The wrong password is refused: the URL's password is what logs in.
    let wrong = RedisLink::new(&format!("rediss://:nope@127.0.0.1:{port}"), "").unwrap();
    assert!(
        !wrong.connect(Duration::from_secs(2)).await,
        "wrong password refused"
    );
    // Plain text to a TLS-only port does not get through.
    let plain = RedisLink::new(&format!("redis://:tls-test-pw@127.0.0.1:{port}"), "").unwrap();
    assert!(
        !plain.connect(Duration::from_secs(2)).await,
        "plain text refused"
    );
}
