//! The trading page as the hub serves it (`hub/src/server/page.rs`): the
//! security headers of every answer, a module graph that resolves
//! entirely on the hub itself (no CDN, no other origin, nothing inline),
//! and file names that cannot reach outside the page's folders. What the
//! page does in a browser is tested in Chromium (hub/browser-tests/).

use crate::common;

use common::start_hub;
use std::collections::{BTreeSet, VecDeque};

/// `GET base+path`: status, content type, CSP, and body.
async fn get(http: &reqwest::Client, base: &str, path: &str) -> (u16, String, String, String) {
    let answer = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("http");
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
            .unwrap_or_default()
    };
    let (kind, csp) = (header("content-type"), header("content-security-policy"));
    let status = answer.status().as_u16();
    (status, kind, csp, answer.text().await.expect("body"))
}

/// The quoted specifiers of `import ... from "x"`, `export ... from "x"`,
/// `import "x"` and `import("x")` in a JavaScript file, comment lines
/// (JSDoc's `import("...")` types) left out.
fn imports(js: &str) -> Vec<String> {
    let mut found = Vec::new();
    let code = js.lines().map(str::trim_start).filter(|line| {
        !(line.starts_with("//") || line.starts_with("/*") || line.starts_with('*'))
    });
    for line in code {
        for marker in [
            "from \"",
            "import \"",
            "import(\"",
            "from '",
            "import '",
            "import('",
        ] {
            let quote = marker.chars().last().unwrap();
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let end = rest.find(quote).expect("closing quote");
                found.push(rest[..end].to_owned());
            }
        }
    }
    found
}

/// The `src="..."` and `href="..."` values of an HTML file.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let end = rest.find('"').expect("closing quote");
            found.push(rest[..end].to_owned());
        }
    }
    found
}

/// Whether `html` has an ` onX=` attribute (an inline event handler).
fn has_handler_attribute(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let name: String = html[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        !name.is_empty() && html[at + 3 + name.len()..].starts_with('=')
    })
}

/// `specifier` as a path of the hub, from the file at `from`.
fn resolve(from: &str, specifier: &str) -> String {
    if specifier.starts_with('/') {
        return specifier.to_owned();
    }
    assert!(
        specifier.starts_with("./") || specifier.starts_with("../"),
        "{from} imports {specifier:?}: only paths on the hub itself are allowed"
    );
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

#[tokio::test]
async fn the_page_and_every_file_it_loads_come_from_the_hub_under_a_strict_policy() {
    let hub = start_hub(|_| {}).await;
    let base = format!("http://{}", hub.addr);
    let http = reqwest::Client::new();

    let answer = http.get(format!("{base}/")).send().await.expect("http");
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let csp = header("content-security-policy").expect("a CSP on the page");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive:?}");
    }
    assert!(!csp.contains("unsafe"), "no unsafe-* source in {csp:?}");
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"));
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
    assert!(header("content-type").unwrap().starts_with("text/html"));
    let html = answer.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" style=") && !has_handler_attribute(&html),
        "inline script, style attributes or handlers in index.html"
    );

    // Walk the whole module graph from index.html: every file answers 200
    // with its type and the page's policy, and names only the hub's paths.
    // (`data:` URLs are inline images, e.g. the empty favicon; `#id` links
    // stay on the page.)
    let mut queue: VecDeque<String> = references(&html)
        .into_iter()
        .filter(|r| !r.starts_with("data:") && !r.starts_with('#'))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        assert!(
            path.starts_with("/assets/") || path.starts_with("/client/"),
            "index.html or a module loads {path:?}, which is not the hub's"
        );
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, kind, file_csp, body) = get(&http, &base, &path).await;
        assert_eq!(status, 200, "{path} answers 200");
        assert_eq!(file_csp, csp, "{path} carries the page's policy");
        assert!(
            !body.contains("innerHTML") && !body.contains("eval("),
            "{path} builds markup from strings or evaluates code"
        );
        let remote = body.match_indices("://").any(|(at, _)| {
            let before = &body[at.saturating_sub(5)..at];
            let after = &body[at + 3..(at + 14).min(body.len())];
            before.ends_with("http") && !after.starts_with("www.w3.org")
                || before.ends_with("https") && !after.starts_with("www.w3.org")
        });
        assert!(
            !remote,
            "{path} names a remote URL: the page must not need the network"
        );
        if path.ends_with(".js") {
            assert!(kind.starts_with("text/javascript"), "{path}: {kind}");
            queue.extend(imports(&body).iter().map(|s| resolve(&path, s)));
        } else if path.ends_with(".css") {
            assert!(kind.starts_with("text/css"), "{path}: {kind}");
        }
    }
    assert!(
        seen.contains("/client/index.js"),
        "the page uses clients/js: {seen:?}"
    );
    assert!(seen.len() >= 5, "the graph was walked: {seen:?}");
}

#[tokio::test]
async fn file_names_cannot_leave_the_page_folders() {
    let hub = start_hub(|_| {}).await;
    let base = format!("http://{}", hub.addr);
    let http = reqwest::Client::new();
    for path in [
        "/assets/nope.js",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/..%2f..%2fsrc%2fmain.rs",
        "/assets/..%2f..%2fCargo.toml",
        "/client/..%2f..%2f..%2fhub%2fsrc%2flib.rs",
        "/client/..%2fpackage.json",
        "/assets/..%2f..%2fclients%2fjs%2fpackage.json",
        "/assets/..%5c..%5cCargo.toml",
        "/assets/%2fetc%2fpasswd",
        "/assets/index.html.bak",
    ] {
        let (status, kind, _, body) = get(&http, &base, path).await;
        assert_eq!(status, 404, "{path} is not served: {body}");
        assert!(kind.starts_with("application/json"), "{path}: {kind}");
    }
}
