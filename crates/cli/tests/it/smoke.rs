//! `valinectl smoke` against a local `valinectl serve` (both handlers, embedded store, dry run).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SECRET: &str = "smoke-test-secret-5c2e";

/// Starts `valinectl serve` on a free port and returns it with its base URL.
async fn serve(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_valinectl"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env_clear()
        .env("DATA_DIR", data)
        .env("STORE", "embedded")
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("valinectl serve: ") {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("serve ended before it listened");
    })
    .await
    .expect("serve did not start in 60 s");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn smoke(url: &str, secret: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_valinectl"));
    command.args(["smoke", "--url", url]).env_clear();
    if let Some(s) = secret {
        command.env("GITHUB_WEBHOOK_SECRET", s);
    }
    let output = command.output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
    (output.status.success(), text)
}

#[tokio::test]
async fn a_healthy_server_passes_every_check_and_a_wrong_secret_fails_one() {
    let data = tempfile::tempdir().unwrap();
    let (_serve, url) = serve(data.path()).await;

    let (ok, text) = smoke(&url, Some(SECRET)).await;
    assert!(ok, "{text}");
    for line in [
        "ok   GET /health → 200",
        "ok   GET /health/ready → 200",
        "ok   GET /github/health → 200",
        "ok   POST /discord unsigned (verification on) → 401",
        "ok   POST /github/webhook signed ping → 200",
        "5 passed, 0 failed",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    let (ok, text) = smoke(&url, Some("not-the-secret")).await;
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL POST /github/webhook signed ping → 401, expected 2xx"), "{text}");
    assert!(text.contains("4 passed, 1 failed"), "{text}");

    let (ok, text) = smoke(&url, None).await;
    assert!(!ok, "{text}");
    assert!(text.contains("set GITHUB_WEBHOOK_SECRET"), "{text}");
}

#[tokio::test]
async fn nothing_listening_fails_every_check() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ok, text) = smoke(&format!("http://127.0.0.1:{port}"), Some(SECRET)).await;
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL GET /health: no answer"), "{text}");
    assert!(text.contains("0 passed, 5 failed"), "{text}");
}
