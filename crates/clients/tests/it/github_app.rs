//! GitHub App authentication against wiremock: the JWT verifies with the App's public key and
//! carries the right claims, calls carry the installation token, and a token close to its expiry
//! is renewed.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
use valine_clients::github_api::{GitHub, OctocrabGitHub};
use valine_clients::github_app::AppAuth;
use valine_domain::clock::now_secs;
use valine_domain::repo::RepoName;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const APP_ID: u64 = 123456;
const PKCS1: &str = include_str!("../fixtures/github-app-test-key-pkcs1.pem");
const PKCS8: &str = include_str!("../fixtures/github-app-test-key-pkcs8.pem");

fn repo() -> RepoName {
    RepoName { owner: "acme".into(), name: "widget".into() }
}

/// The claims of a JWT whose signature verifies with `public_key`; `None` otherwise.
fn verified_claims(jwt: &str, public_key: &[u8]) -> Option<Value> {
    let mut parts = jwt.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if head["alg"] != "RS256" {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(format!("{header}.{payload}").as_bytes(), &signature)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Matches a request authorized by a valid App JWT.
struct ValidJwt(Vec<u8>);

impl Match for ValidJwt {
    fn matches(&self, req: &Request) -> bool {
        let Some(auth) = req.headers.get("authorization").and_then(|v| v.to_str().ok()) else { return false };
        let Some(jwt) = auth.strip_prefix("Bearer ") else { return false };
        verified_claims(jwt, &self.0).is_some_and(|c| c["iss"].as_str() == Some("123456"))
    }
}

fn app(server: &MockServer, pem: &str) -> AppAuth {
    AppAuth::new(APP_ID, pem, Some(&url::Url::parse(&server.uri()).unwrap()), Duration::from_secs(5)).unwrap()
}

fn rfc3339(secs: u64) -> String {
    valine_domain::clock::rfc3339_millis(secs * 1000)
}

#[test]
fn the_jwt_verifies_with_the_apps_public_key_and_carries_iss_iat_exp() {
    for pem in [PKCS1, PKCS8] {
        let app = AppAuth::new(APP_ID, pem, None, Duration::from_secs(1)).unwrap();
        let now = 1_795_000_000;
        let jwt = app.jwt(now).unwrap();
        let claims = verified_claims(&jwt, &app.public_key_der()).expect("a valid RS256 signature");
        assert_eq!(claims["iss"], APP_ID.to_string());
        assert_eq!(claims["iat"], now - 60, "back-dated a minute for clock drift");
        assert_eq!(claims["exp"], now + 540, "within GitHub's ten minutes");
        // tampering breaks it
        let mut forged = jwt.clone();
        forged.insert(forged.find('.').unwrap() + 2, 'x');
        assert!(verified_claims(&forged, &app.public_key_der()).is_none());
    }
}

async fn mount_installation(server: &MockServer, public_key: Vec<u8>, tokens: &[(&str, u64)]) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .and(ValidJwt(public_key.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77, "account": {"login": "acme"}})))
        .expect(1)
        .named("installation look-up, once")
        .mount(server)
        .await;
    for (i, (token, expires_at)) in tokens.iter().enumerate() {
        Mock::given(method("POST"))
            .and(path("/app/installations/77/access_tokens"))
            .and(ValidJwt(public_key.clone()))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"token": token, "expires_at": rfc3339(*expires_at)})),
            )
            .up_to_n_times(1)
            .expect(1)
            .with_priority(i as u8 + 1)
            .named(format!("access token {}", i + 1))
            .mount(server)
            .await;
    }
}

async fn mount_workflows(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "workflows": []})))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn calls_carry_the_installation_token_which_is_kept_until_near_expiry() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS1);
    let now = now_secs();
    mount_installation(&server, auth.public_key_der(), &[("inst-token-one", now + 3600)]).await;
    mount_workflows(&server, "inst-token-one", 3).await;
    let gh =
        OctocrabGitHub::with_app(auth, Some(&url::Url::parse(&server.uri()).unwrap()), Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        gh.list_workflows(&repo()).await.unwrap();
    }
    // wiremock checks on drop: one look-up, one token, three calls with it
}

#[tokio::test]
async fn a_token_close_to_its_expiry_is_renewed() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS8);
    let now = now_secs();
    // the first token expires in 4 minutes: inside the 5-minute margin, so the next call renews
    mount_installation(
        &server,
        auth.public_key_der(),
        &[("inst-token-old", now + 240), ("inst-token-new", now + 3600)],
    )
    .await;
    mount_workflows(&server, "inst-token-old", 1).await;
    mount_workflows(&server, "inst-token-new", 2).await;
    let gh =
        OctocrabGitHub::with_app(auth, Some(&url::Url::parse(&server.uri()).unwrap()), Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        gh.list_workflows(&repo()).await.unwrap();
    }
}

#[tokio::test]
async fn an_app_not_installed_on_the_repository_is_a_clear_error() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS1);
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    let err = auth.token_for(&repo()).await.unwrap_err().to_string();
    assert_eq!(err, "GitHub answered 404: GitHub App: Not Found");
}

fn repo_named(owner: &str, name: &str) -> RepoName {
    RepoName { owner: owner.into(), name: name.into() }
}

fn github(server: &MockServer, auth: AppAuth) -> OctocrabGitHub {
    OctocrabGitHub::with_app(auth, Some(&url::Url::parse(&server.uri()).unwrap()), Duration::from_secs(5)).unwrap()
}

/// `POST …/access_tokens` for `installation`, asking for exactly `repository`, answered with
/// `token`, `times` times.
async fn mount_scoped_token(server: &MockServer, installation: u64, repository: &str, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path(format!("/app/installations/{installation}/access_tokens")))
        .and(body_json(json!({"repositories": [repository]})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"token": token, "expires_at": rfc3339(now_secs() + 3600)})),
        )
        .up_to_n_times(times)
        .expect(times)
        .named(format!("a token for {repository} from installation {installation}"))
        .mount(server)
        .await;
}

async fn mount_workflows_of(server: &MockServer, repo: &RepoName, token: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("/repos/{}/{}/actions/workflows", repo.owner, repo.name)))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "workflows": []})))
        .expect(times)
        .named(format!("workflows of {repo} with {token}"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn tokens_are_scoped_to_the_one_repository_and_kept_per_repository() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS1);
    valine_clients::testing::fail_on_unexpected(&server).await;
    // One look-up for the owner: both repositories are in its installation.
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .expect(1)
        .mount(&server)
        .await;
    mount_scoped_token(&server, 77, "widget", "token-widget", 1).await;
    mount_scoped_token(&server, 77, "gadget", "token-gadget", 1).await;
    let (widget, gadget) = (repo_named("acme", "widget"), repo_named("acme", "gadget"));
    mount_workflows_of(&server, &widget, "token-widget", 2).await;
    mount_workflows_of(&server, &gadget, "token-gadget", 2).await;
    let gh = github(&server, auth);
    for _ in 0..2 {
        gh.list_workflows(&widget).await.unwrap();
        gh.list_workflows(&gadget).await.unwrap();
    }
}

#[tokio::test]
async fn a_reinstalled_app_is_found_again_without_a_restart() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS8);
    valine_clients::testing::fail_on_unexpected(&server).await;
    // The first installation; its token is inside the renewal margin, so the next call renews.
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/77/access_tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"token": "token-old", "expires_at": rfc3339(now_secs() + 240)})),
        )
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // Meanwhile the App was uninstalled and installed again: the old installation is gone.
    Mock::given(method("POST"))
        .and(path("/app/installations/77/access_tokens"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 88})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    mount_scoped_token(&server, 88, "widget", "token-new", 1).await;
    mount_workflows_of(&server, &repo(), "token-old", 1).await;
    mount_workflows_of(&server, &repo(), "token-new", 1).await;
    let gh = github(&server, auth);
    gh.list_workflows(&repo()).await.unwrap();
    gh.list_workflows(&repo()).await.unwrap();
}

#[tokio::test]
async fn a_token_github_no_longer_accepts_is_dropped_with_its_installation() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS1);
    valine_clients::testing::fail_on_unexpected(&server).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 88})))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    mount_scoped_token(&server, 77, "widget", "token-revoked", 1).await;
    mount_scoped_token(&server, 88, "widget", "token-new", 1).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/actions/workflows"))
        .and(header("authorization", "Bearer token-revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})))
        .expect(1)
        .mount(&server)
        .await;
    mount_workflows_of(&server, &repo(), "token-new", 1).await;
    let gh = github(&server, auth);
    let err = gh.list_workflows(&repo()).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    gh.list_workflows(&repo()).await.unwrap();
}

#[tokio::test]
async fn a_slow_renewal_for_one_owner_does_not_hold_up_another() {
    let server = MockServer::start().await;
    let auth = app(&server, PKCS1);
    // acme's look-up hangs (past the client's 5 s timeout); globex's answers at once.
    Mock::given(method("GET"))
        .and(path("/repos/acme/widget/installation"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)).set_body_json(json!({"id": 77})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/globex/site/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 99})))
        .expect(1)
        .mount(&server)
        .await;
    mount_scoped_token(&server, 99, "site", "token-globex", 1).await;
    let auth = std::sync::Arc::new(auth);
    let slow = auth.clone();
    let stuck = tokio::spawn(async move { slow.token_for(&repo_named("acme", "widget")).await });
    // acme's renewal is under way before globex asks.
    for _ in 0..100 {
        if !server.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = tokio::time::timeout(Duration::from_secs(3), auth.token_for(&repo_named("globex", "site")))
        .await
        .expect("globex waited for acme's renewal")
        .unwrap();
    assert_eq!(token.token, "token-globex");
    stuck.abort();
}
