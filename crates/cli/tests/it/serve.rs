//! `valinectl serve` as a newcomer starts it: tokens in the shell still give the playground, and
//! `--live` with nothing to go live with stops at once, naming what to set.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Not real tokens; what matters is that they are set.
const GITHUB_TOKEN: &str = "shell-github-token-for-tests";
const DISCORD_BOT_TOKEN: &str = "shell-discord-token-for-tests";

fn valinectl(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_valinectl"));
    command.env_clear().env("DATA_DIR", data).env("STORE", "embedded").env("LOG_LEVEL", "warn");
    command
}

#[tokio::test]
async fn tokens_in_the_shell_without_live_are_named_ignored_and_the_page_is_the_playground() {
    let data = tempfile::tempdir().unwrap();
    let mut child = valinectl(data.path())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("DISCORD_BOT_TOKEN", DISCORD_BOT_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Everything up to the mode line, which follows the address.
    let (said, url) = tokio::time::timeout(Duration::from_secs(60), async {
        let mut said = Vec::new();
        let mut url = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("valinectl serve: ") {
                url = Some(rest.split_whitespace().next().unwrap().to_string());
            } else if let Some(url) = url.as_ref().filter(|_| line.contains(" MODE ")) {
                said.push(line);
                return (said, url.clone());
            }
            said.push(line);
        }
        panic!("serve ended before it listened:\n{}", said.join("\n"));
    })
    .await
    .expect("serve did not start in 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let text = said.join("\n");
    assert!(said.iter().any(|l| l == "GITHUB_TOKEN is set; ignored without --live"), "{text}");
    assert!(said.iter().any(|l| l == "DISCORD_BOT_TOKEN is set; ignored without --live"), "{text}");
    assert!(said.last().unwrap().contains("PLAYGROUND MODE (no --live)"), "{text}");
    assert!(!text.contains(GITHUB_TOKEN) && !text.contains(DISCORD_BOT_TOKEN), "a token was printed:\n{text}");

    let setup: serde_json::Value = reqwest::get(format!("{url}/playground/setup")).await.unwrap().json().await.unwrap();
    assert_eq!(setup["mode"], "playground");
    assert_eq!(setup["repo"], "valine-demo/webshop");
}

#[tokio::test]
async fn live_without_tokens_fails_naming_what_is_missing() {
    let data = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        valinectl(data.path()).args(["serve", "--live", "--addr", "127.0.0.1:0"]).output(),
    )
    .await
    .expect("serve --live kept running without tokens")
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for var in ["DISCORD_BOT_TOKEN", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"] {
        assert!(stderr.contains(var), "{var} not named:\n{stderr}");
    }
    assert!(stderr.starts_with("valinectl: serve --live: "), "{stderr}");
    // Refused before anything was made: no development keys, no store.
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0, "{stderr}");
}

/// `serve` with `args` and `env`: its exit status and what it said, within 30 s.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut command = valinectl(data.path());
    command.args(args).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("serve kept running: it should have refused to start")
        .unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).to_string(), data)
}

#[tokio::test]
async fn a_non_loopback_address_is_refused_without_public() {
    let (status, stderr, data) = refused(&["serve", "--addr", "0.0.0.0:0"], &[]).await;
    assert!(!status.success());
    assert!(stderr.contains("0.0.0.0:0") && stderr.contains("--public"), "{stderr}");
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0, "{stderr}");
}

#[tokio::test]
async fn public_without_serve_token_is_refused_naming_it() {
    let (status, stderr, data) = refused(&["serve", "--public", "--addr", "0.0.0.0:0"], &[]).await;
    assert!(!status.success());
    assert!(stderr.contains("SERVE_TOKEN"), "{stderr}");
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0, "{stderr}");
    let (status, stderr, _) = refused(&["serve", "--public", "--addr", "0.0.0.0:0"], &[("SERVE_TOKEN", "short")]).await;
    assert!(!status.success());
    assert!(stderr.contains("SERVE_TOKEN"), "{stderr}");
}
