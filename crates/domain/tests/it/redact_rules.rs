//! One table per rule: true positives (the input and the secret that must not survive, not even
//! in part) and near misses (inputs that must come back untouched, without a copy). Every token
//! is assembled at run time from a prefix and a generated body, so this file holds no token
//! shape itself and needs no entry in `.redact-allow`.

use std::borrow::Cow;

use valine_domain::redact::{MASK, StreamState, find_secrets, redact, redact_bytes, redact_partial, redact_stream};
use valine_domain::testing::Rng;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER_HEX: &[u8] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const WORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";

/// `len` characters from `alphabet`, the same for the same `seed`, with at least one upper-case
/// letter, lower-case letter and digit when the alphabet has them (as real keys do).
fn make(len: usize, alphabet: &[u8], seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
    let classes: [fn(&u8) -> bool; 3] = [u8::is_ascii_uppercase, u8::is_ascii_lowercase, u8::is_ascii_digit];
    for (k, class) in classes.iter().enumerate() {
        if len > 6
            && !out.iter().any(class)
            && let Some(&c) = alphabet.iter().find(|c| class(c))
        {
            out[k * 2 + 1] = c;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A token: `prefix` then a generated body.
fn tok(prefix: &str, len: usize, alphabet: &[u8], seed: u64) -> String {
    format!("{prefix}{}", make(len, alphabet, seed))
}

/// Asserts that no 8-character piece of `secret` (or the whole of a shorter one) survives.
fn assert_gone(input: &str, out: &str, secret: &str) {
    let w = secret.len().min(8);
    for i in 0..=secret.len() - w {
        let piece = &secret[i..i + w];
        assert!(!out.contains(piece), "{piece:?} of {secret:?} survived in\n  {input:?}\n->{out:?}");
    }
}

fn positive(input: &str, secret: &str) {
    let out = redact(input);
    assert!(out.contains(MASK), "nothing masked in {input:?}");
    assert_gone(input, &out, secret);
    assert!(!find_secrets(input.as_bytes()).is_empty(), "find_secrets missed {input:?}");
    // idempotent
    assert_eq!(redact(&out), out, "not idempotent on {input:?}");
}

fn near_miss(input: &str) {
    let out = redact(input);
    assert!(matches!(out, Cow::Borrowed(_)), "changed a near miss:\n  {input:?}\n->{out:?}");
}

#[test]
fn github() {
    for (i, p) in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"].iter().enumerate() {
        let t = tok(p, 36, ALNUM, i as u64);
        positive(&format!("token {t} used"), &t);
        positive(&format!("glued x=1{t}"), &t);
        positive(&format!("https://x-access-token:{t}@github.com/acme/widget.git"), &t);
    }
    let pat = format!("github_pat_{}_{}", make(22, ALNUM, 7), make(59, ALNUM, 8));
    positive(&format!("GH={pat}"), &pat);
    let v1 = tok("v1.", 40, LOWER_HEX, 9);
    positive(&format!("installation token {v1}"), &v1);
    near_miss("ghp_short and gho_ and github_pat_ alone");
    near_miss(&tok("ghx_", 34, ALNUM, 1));
    near_miss(&tok("ghp_", 12, ALNUM, 2));
    near_miss("v1.2.3 and v1.0");
}

#[test]
fn gitlab() {
    for (i, p) in ["glpat-", "gldt-", "glrt-", "glsoat-", "glcbt-", "gloas-", "glft-"].iter().enumerate() {
        let t = tok(p, 20, WORD, 10 + i as u64);
        positive(&format!("export GL={t}"), &t);
    }
    let trigger = tok("glptt-", 40, LOWER_HEX, 20);
    positive(&format!("curl -F token={trigger}"), &trigger);
    near_miss("glpat-short glrt-x");
}

#[test]
fn slack() {
    let bot = format!("xoxb-{}-{}-{}", make(12, b"0123456789", 1), make(13, b"0123456789", 2), make(24, ALNUM, 3));
    positive(&format!("SLACK_BOT={bot}"), &bot);
    let user = format!(
        "xoxp-{}-{}-{}-{}",
        make(12, b"0123456789", 4),
        make(12, b"0123456789", 5),
        make(13, b"0123456789", 6),
        make(32, LOWER_HEX, 7)
    );
    positive(&format!("user {user}"), &user);
    let app =
        format!("xapp-1-A{}-{}-{}", make(10, UPPER_ALNUM, 8), make(13, b"0123456789", 9), make(64, LOWER_HEX, 10));
    positive(&app, &app);
    let config = format!("xoxe.xoxp-1-{}", make(140, ALNUM, 11));
    positive(&format!("config {config}"), &config);
    let path = format!("T{}/B{}/{}", make(10, UPPER_ALNUM, 12), make(10, UPPER_ALNUM, 13), make(24, ALNUM, 14));
    positive(&format!("post https://hooks.slack.com/services/{path} ok"), &path);
    positive(
        &format!("{{\"url\":\"https:\\/\\/hooks.slack.com\\/services\\/{}\"}}", path.replace('/', "\\/")),
        &path[12..],
    );
    let wf = format!(
        "T{}/A{}/{}/{}",
        make(10, UPPER_ALNUM, 15),
        make(10, UPPER_ALNUM, 16),
        make(18, b"0123456789", 17),
        make(32, ALNUM, 18)
    );
    positive(&format!("https://hooks.slack.com/workflows/{wf}"), &wf);
    near_miss("xoxb-1 and https://hooks.slack.com/ and hooks.slack.com/services");
    near_miss("see https://api.slack.com/apps for details");
}

#[test]
fn discord() {
    let id = "1184576487578214464";
    let token = make(68, WORD, 20);
    let bot = format!("M{}.{}.{}", make(25, ALNUM, 21), make(6, WORD, 22), make(38, WORD, 23));
    positive(&format!("login with {bot} failed"), &bot);
    positive(&format!("Bot {bot}"), &bot);
    positive(&format!("DISCORD_BOT_TOKEN={bot}"), &bot);
    let forms = [
        format!("https://discord.com/api/webhooks/{id}/{token}"),
        format!("https://discord.com:443/api/webhooks/{id}/{token}"),
        format!("https://discordapp.com/api/v10/webhooks/{id}/{token}?wait=true"),
        format!("https://ptb.discord.com/api/webhooks/{id}/{token}/messages/123"),
        format!("{{\"url\":\"https:\\/\\/discord.com\\/api\\/webhooks\\/{id}\\/{token}\"}}"),
        format!("{{\"url\":\"https:\\/\\/discord.com:443\\/api\\/webhooks\\/{id}\\/{token}\"}}"),
        format!("https:\\u002F\\u002Fdiscord.com\\u002Fapi\\u002Fwebhooks\\u002F{id}\\u002F{token}"),
        format!("next=https%3A%2F%2Fdiscord.com%2Fapi%2Fwebhooks%2F{id}%2F{token}&x=1"),
        format!("discord.com/api/webhooks/{id}/{token}"),
    ];
    for f in &forms {
        positive(f, &token);
        assert!(!redact(f).contains(id), "webhook id survived in {f:?}");
    }
    assert_eq!(redact(&forms[0]), "https://discord.com/api/webhooks/***REDACTED***", "the documented replacement");
    near_miss("user 1184576487578214464 in guild 81384788765712384");
    near_miss("https://discord.com/api/webhooks and https://discord.com/api/v10/channels/1184576487578214464/messages");
    near_miss("webhooks/1184576487578214464/short");
    near_miss("MTE4NDU3NjQ4NzU3ODIxNDQ2NA is a base64 id alone");
}

#[test]
fn aws() {
    let id = tok("AKIA", 16, UPPER_ALNUM, 30);
    let sts = tok("ASIA", 16, UPPER_ALNUM, 31);
    let secret = make(40, B64, 32);
    positive(&format!("key {id} secret {secret}"), &id);
    positive(&format!("key {id} secret {secret}"), &secret);
    positive(&format!("temporary {sts}"), &sts);
    positive(&format!("aws_secret_access_key = {secret}"), &secret);
    positive(&format!("\"SecretAccessKey\": \"{secret}\""), &secret);
    let session = format!("IQoJb3JpZ2luX2VjE{}", make(300, B64, 33));
    positive(&format!("aws_session_token={session}"), &session);
    positive(&format!("token {session}=="), &session);
    positive(&format!("AWS_SESSION_TOKEN=\"{session}\""), &session);
    near_miss(&format!("AKIA{}", make(15, UPPER_ALNUM, 34)));
    near_miss("commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293 and AKIAlowercaseletters");
    near_miss("https://example.com/aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kL9n/x");
}

#[test]
fn google() {
    let key = tok("AIza", 35, WORD, 40);
    positive(&format!("https://maps.googleapis.com/maps/api/geocode/json?key={key}"), &key);
    positive(&format!("GOOGLE_API_KEY {key}"), &key);
    let body = make(64, B64, 41);
    let sa = format!(
        "{{\"type\": \"service_account\", \"private_key_id\": \"{}\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}\\n{body}\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"x@p.iam.gserviceaccount.com\"}}",
        make(40, LOWER_HEX, 42)
    );
    positive(&sa, &body);
    assert!(redact(&sa).contains("client_email"));
    let secret = tok("GOCSPX-", 28, WORD, 43);
    positive(&format!("client {secret}"), &secret);
    let access = tok("ya29.", 120, WORD, 44);
    positive(&format!("Authorization: Bearer {access}"), &access);
    positive(&format!("access {access}"), &access);
    near_miss("AIza alone and AIzaShort");
}

#[test]
fn azure() {
    let key = format!("{}==", make(86, B64, 50));
    let conn =
        format!("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={key};EndpointSuffix=core.windows.net");
    positive(&conn, &key);
    assert!(redact(&conn).contains("AccountName=acme;"));
    let sb = format!("Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={key}");
    positive(&sb, &key);
    let sig = format!("{}%2B{}%3D", make(20, ALNUM, 51), make(20, ALNUM, 52));
    positive(
        &format!("https://acme.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01&sig={sig}"),
        &sig,
    );
    let client_secret = format!("{}8Q~{}", make(3, ALNUM, 53), make(34, WORD, 54));
    positive(&format!("AZURE_CLIENT_SECRET={client_secret}"), &client_secret);
    near_miss("AccountName=acme;EndpointSuffix=core.windows.net sv=2022-11-02&ss=b");
}

#[test]
fn payments_messaging_and_registries() {
    let cases = [
        tok("sk_live_", 24, ALNUM, 60),
        tok("rk_live_", 24, ALNUM, 61),
        tok("sk_test_", 24, ALNUM, 62),
        tok("whsec_", 32, ALNUM, 63),
        tok("SK", 32, LOWER_HEX, 64),
        tok("AC", 32, LOWER_HEX, 65),
        format!("SG.{}.{}", make(22, WORD, 66), make(43, WORD, 67)),
        tok("key-", 32, LOWER_HEX, 68),
        tok("npm_", 36, ALNUM, 69),
        tok("pypi-AgEIcHlwaS5vcmc", 120, WORD, 70),
        tok("dckr_pat_", 27, WORD, 71),
        format!("HRKU-AA{}", make(58, WORD, 72)),
        tok("shpat_", 32, LOWER_HEX, 73),
        tok("shpss_", 32, LOWER_HEX, 74),
        tok("shpca_", 32, LOWER_HEX, 75),
        tok("shppa_", 32, LOWER_HEX, 76),
    ];
    for t in &cases {
        positive(&format!("value {t} end"), t);
        positive(&format!("{{\"k\":\"{t}\"}}"), t);
    }
    near_miss(&tok("pk_live_", 24, ALNUM, 77));
    near_miss("SK123 ACME_CORP key-value store npm_install pypi-package dckr_pat_x shpat_123");
    near_miss(&tok("SK", 31, LOWER_HEX, 78));
    near_miss(&format!("SG.{}.short", make(22, WORD, 79)));
}

#[test]
fn ai_providers() {
    let cases = [
        tok("sk-", 48, ALNUM, 80),
        format!("sk-proj-{}", make(120, WORD, 81)),
        format!("sk-svcacct-{}", make(100, WORD, 82)),
        format!("sk-ant-api03-{}AA", make(93, WORD, 83)),
        format!("sk-ant-admin01-{}AA", make(93, WORD, 84)),
        tok("hf_", 34, LETTERS, 85),
        tok("api_org_", 34, LETTERS, 86),
    ];
    for t in &cases {
        positive(&format!("OPENAI={t}"), t);
        positive(&format!("curl -H 'x-api-key: {t}'"), t);
        positive(&format!("free {t}."), t);
    }
    near_miss("sk-learn task-runner sk-short hf_hub_download tokenizer=bert max_tokens=512");
}

#[test]
fn vault_terraform_digitalocean_newrelic() {
    let cases = [
        tok("hvs.", 90, WORD, 90),
        tok("hvb.", 130, WORD, 91),
        tok("s.", 24, ALNUM, 92),
        format!("{}.atlasv1.{}", make(14, ALNUM, 93), make(67, WORD, 94)),
        tok("dop_v1_", 64, LOWER_HEX, 95),
        tok("doo_v1_", 64, LOWER_HEX, 96),
        tok("dor_v1_", 64, LOWER_HEX, 97),
        tok("NRAK-", 27, UPPER_ALNUM, 98),
    ];
    for t in &cases {
        positive(&format!("VAULT_TOKEN {t} next"), t);
        positive(&format!("[{t}]"), t);
    }
    near_miss("s.abc hvs.short this.is.a.sentence foo.atlasv1.bar dop_v1_abc NRAK-SHORT");
    near_miss("It was a long day.Something else.");
}

#[test]
fn datadog_sentry_pagerduty() {
    let dd = make(32, LOWER_HEX, 100);
    positive(&format!("DD_API_KEY={dd}"), &dd);
    positive(&format!("DD-APPLICATION-KEY: {}", make(40, LOWER_HEX, 101)), &make(40, LOWER_HEX, 101));
    positive(&format!("datadog:\n  dd_app_key: \"{dd}\""), &dd);
    let dsn_key = make(32, LOWER_HEX, 102);
    positive(&format!("SENTRY_DSN=https://{dsn_key}@o450123.ingest.sentry.io/5501234"), &dsn_key);
    positive(&format!("dsn: https://{dsn_key}@o450123.ingest.us.sentry.io/5501234"), &dsn_key);
    let org = format!("sntrys_{}", make(120, WORD, 103));
    positive(&format!("SENTRY_AUTH_TOKEN {org}"), &org);
    let routing = make(32, LOWER_HEX, 104);
    positive(&format!("{{\"routing_key\": \"{routing}\", \"event_action\": \"trigger\"}}"), &routing);
    let pd = make(20, WORD, 105);
    positive(&format!("Authorization: Token token={pd}"), &pd);
    positive(&format!("PAGERDUTY_TOKEN={pd}"), &pd);
    near_miss("DD_SITE=datadoghq.com DD_ENV=prod https://o450123.ingest.sentry.io/5501234 event_action=trigger");
}

#[test]
fn jwts() {
    let jwt = format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}", make(60, WORD, 110), make(86, WORD, 111));
    positive(&format!("id_token {jwt}"), &jwt);
    positive(&format!("jwt={jwt}"), &jwt);
    positive(&format!("\"{jwt}\""), &jwt);
    let unsigned = format!("eyJhbGciOiJub25lIn0.eyJ{}.", make(40, WORD, 112));
    positive(&format!("unsigned {unsigned} end"), &unsigned);
    near_miss("eyJhbGc alone and eyJ.x.y and eyJhbGciOiJIUzI1NiJ9 header only");
}

fn pem_body(seed: u64) -> Vec<String> {
    (0..4).map(|i| make(64, B64, seed + i)).collect()
}

#[test]
fn private_key_blocks_wherever_they_start() {
    for label in [
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "DSA PRIVATE KEY",
    ] {
        let lines = pem_body(120);
        let plain = format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"));
        let escaped = plain.replace('\n', "\\n");
        let forms = [
            plain.clone(),
            format!("private_key={plain}after"),
            format!("key=\"{plain}\" after"),
            format!("{{\"private_key\": \"{escaped}\", \"x\": 1}}"),
            format!("log: {{\\\"key\\\": \\\"{}\\\"}}", escaped.replace('\\', "\\\\")),
            format!("ssh_key: |\n  {}", plain.replace('\n', "\n  ")),
            format!("inline {}", escaped),
        ];
        for f in &forms {
            let out = redact(f);
            for l in &lines {
                assert_gone(f, &out, l);
            }
            assert!(out.contains(MASK), "{f:?}");
        }
    }
    let pgp = pem_body(130);
    let block = format!(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\n{}\n=ab12\n-----END PGP PRIVATE KEY BLOCK-----\nafter",
        pgp.join("\n")
    );
    let out = redact(&block);
    for l in &pgp {
        assert_gone(&block, &out, l);
    }
    assert!(out.ends_with("-----END PGP PRIVATE KEY BLOCK-----\nafter"));
    // truncated: everything after the header goes
    let cut = format!("key=-----BEGIN RSA PRIVATE KEY-----\n{}", pem_body(140).join("\n"));
    assert_eq!(redact(&cut), "key=-----BEGIN RSA PRIVATE KEY-----***REDACTED***");
    near_miss("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----");
    near_miss("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----");
    near_miss(
        "\"signature\": \"-----BEGIN PGP SIGNATURE-----\\n\\nwsBcBAABCAAQBQJc\\n-----END PGP SIGNATURE-----\\n\"",
    );
    near_miss("-----BEGIN and -----BEGIN PRIVATE with no label end");
}

#[test]
fn credentials_in_urls() {
    let pw = make(16, ALNUM, 150);
    for scheme in [
        "https",
        "http",
        "postgresql",
        "postgres",
        "mysql",
        "redis",
        "rediss",
        "amqp",
        "mongodb+srv",
        "ftp",
        "sftp",
        "smtp",
        "ldap",
    ] {
        positive(&format!("connect {scheme}://app:{pw}@db.internal:5432/app"), &pw);
    }
    positive(&format!("redis://:{pw}@cache:6379/0"), &pw);
    positive(&format!("\"url\": \"https:\\/\\/deploy:{pw}@example.com\\/x\""), &pw);
    positive(&format!("u=https%3A%2F%2Fdeploy%3A{pw}%40example.com%2Fx"), &pw);
    positive(&format!("https://{}@example.com/", make(40, LOWER_HEX, 151)), &make(40, LOWER_HEX, 151));
    assert_eq!(redact("https://user:pass@host/x"), "https://***REDACTED***@host/x");
    near_miss("ssh://git@github.com/acme/widget.git and git@github.com:acme/widget.git");
    near_miss("mail me at ops@example.com or see https://example.com:8443/path?q=1#frag");
}

#[test]
fn secret_named_values_in_every_form() {
    let v = make(20, ALNUM, 160);
    let forms = [
        format!("password={v}"),
        format!("password = {v}"),
        format!("\"password\": \"{v}\""),
        format!("{{\"password\":\"{v}\"}}"),
        format!("{{\\\"password\\\": \\\"{v}\\\"}}"),
        format!("password: {v}"),
        format!("db:\n  password: '{v}'\n"),
        format!("export GITHUB_TOKEN={v}"),
        format!("GITHUB_TOKEN=\"{v}\""),
        format!("Server=db;Database=app;User Id=sa;Password={v};"),
        format!("Server=db;Pwd=two {v};Encrypt=true"),
        format!("q=password%3D{v}%26next"),
        format!("%22token%22%3A%22{v}%22"),
        format!("\\u0022token\\u0022:\\u0022{v}\\u0022"),
        format!("?api_key={v}&x=1"),
        format!("X-Api-Key: {v}"),
        format!("client_secret: {v}"),
        format!("accessToken={v}"),
        format!("<password>{v}</password>"),
    ];
    for f in &forms[..forms.len() - 1] {
        positive(f, &v);
    }
    near_miss("max_tokens=512 tokenizer: bert token_type=bearer password_length=12 secret_name=valine/prod");
    near_miss("DISCORD_PUBLIC_KEY=e7a51b2f6d0c48a1a3b9c2d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c keyboard=us");
    near_miss("\"keys_url\": \"https://api.github.com/repos/o/r/keys{/key_id}\", \"token\": null");
}

#[test]
fn command_line_flags() {
    let v = make(16, ALNUM, 170);
    let forms = [
        format!("mysql --password {v} -h db"),
        format!("mysql --password={v}"),
        format!("gh auth login --with-token --token {v}"),
        format!("tool --api-key \"{v}\" --verbose"),
        format!("tool --client-secret '{v}'"),
        format!("mysql -u root -p {v} app"),
        format!("mysql -u root -p{v} app"),
        format!("/usr/bin/mysqldump -p {v}"),
        format!("sshpass -p {v} ssh host"),
        format!("docker login -u me -p {v} ghcr.io"),
        format!("redis-cli -h cache -a {v} ping"),
        format!("curl -u admin:{v} https://example.com"),
        format!("curl --user admin:{v} https://example.com"),
    ];
    for f in &forms {
        positive(f, &v);
    }
    near_miss("ls -p /tmp; grep -p x; docker run -u 1000:1000 -p 8080:80 img; tar -a -cf x.tgz dir");
    near_miss("tool --password-file /run/secrets/db --no-password --token-type bearer");
}

#[test]
fn cookies_and_sessions() {
    let v = make(32, ALNUM, 180);
    let forms = [
        format!("JSESSIONID={v}"),
        format!("PHPSESSID={v}; path=/"),
        format!("session_id={v}"),
        format!("sessionId: {v}"),
        format!("connect.sid=s%3A{v}.abc"),
        format!("Cookie: theme=dark; session={v}"),
        format!("Set-Cookie: user_session={v}; Path=/; HttpOnly"),
        format!("\"cookie\": \"_gh_sess={v}\""),
    ];
    for f in &forms {
        positive(f, &v);
    }
    near_miss("session_count=3 session_timeout=30 sessions: []");
}

#[test]
fn http_credentials() {
    let basic = "dXNlcjpodW50ZXIyc2VjcmV0";
    positive(&format!("Authorization: Basic {basic}"), basic);
    positive(&format!("Proxy-Authorization: Basic {basic}"), basic);
    positive(&format!("sent with Basic {basic}"), basic);
    let bearer = make(40, WORD, 190);
    positive(&format!("Authorization: Bearer {bearer}"), &bearer);
    positive(&format!("\"Authorization\": \"Bearer {bearer}\""), &bearer);
    positive(&format!("curl -H 'Authorization: token {bearer}'"), &bearer);
    assert_eq!(redact("Authorization: Bearer abc123"), "Authorization: ***REDACTED***");
    near_miss("The Bot started; Bearer authentication and Basic Authentication are supported");
}

/// The reports of the issue, line by line: nothing of the secret may come back.
#[test]
fn the_reported_lines() {
    let lines = pem_body(200);
    let key = format!("private_key=-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    let quoted =
        format!("PRIVATE_KEY=\"-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\"\n", lines.join("\n"));
    for input in [&key, &quoted] {
        let out = redact(input);
        for l in &lines {
            assert_gone(input, &out, l);
        }
    }
    let token = make(68, WORD, 201);
    positive(&format!("\"https:\\/\\/discord.com\\/api\\/webhooks\\/1184576487578214464\\/{token}\""), &token);
    positive(&format!("https://discord.com:443/api/webhooks/1184576487578214464/{token}"), &token);
    positive("mysql --password hunter2secret", "hunter2secret");
    let sid = make(32, LOWER_HEX, 202);
    positive(&format!("JSESSIONID={sid}"), &sid);
    positive(&format!("session_id={sid}"), &sid);
}

#[test]
fn what_must_stay() {
    near_miss("commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f60718293 tree 5d1c9a7e0d2b4c6a8e9f");
    near_miss("trace 6f1c2a4e-8b3d-4c5e-9f70-112233445566 audit 0190a2b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b");
    near_miss("user 1184576487578214464 channel 81384788765712384");
    near_miss("tokenizer=bert max_tokens=512 num_tokens: 3");
    // base64 of ordinary data, padded and not
    near_miss("payload aGVsbG8gd29ybGQsIHRoaXMgaXMgYSBsb2cgbGluZQ== and eyJ0eXBlIjoxfQ== and SGVsbG8=");
    near_miss("image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    near_miss("GET https://api.github.com/repos/acme/widget/actions/runs?per_page=5 200 312ms");
    near_miss("at com.example.service.VeryLongClassNameForTesting.method(VeryLongClassNameForTesting.java:42)");
    near_miss("ünïcödé ✓ 🟢🔴 text");
}

/// `input` inside one line longer than the streaming redactor holds, read in pieces whose ends
/// fall inside `secret`, or put the 64 KiB look-ahead limit of a partial cut inside it: the
/// output is the whole line redacted at once, and nothing of the secret survives.
fn streamed(input: &str, secret: &str) {
    let filler = "plain words, ".repeat(6_000);
    let line = format!("{filler}{input} {filler}{filler}");
    let Some(offset) = input.find(secret) else { panic!("{secret:?} is not in {input:?}") };
    let at = filler.len() + offset;
    let expected = redact_bytes(line.as_bytes()).into_owned();
    for k in [1, secret.len() / 2, secret.len() - 1] {
        // the first read ends inside the secret; then the cut limit (64 KiB before the end of
        // what is held) falls inside it
        for first in [at + k, at + k + 64 * 1024] {
            let mut state = StreamState::default();
            let mut out = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            for piece in [&line.as_bytes()[..first], &line.as_bytes()[first..]] {
                pending.extend_from_slice(piece);
                let (done, consumed) = redact_partial(&pending, &mut state);
                out.extend_from_slice(&done);
                pending.drain(..consumed);
            }
            out.extend_from_slice(&redact_stream(&pending, &mut state));
            assert!(out == expected, "{input:?} read up to {first}: the streamed output differs");
            let text = String::from_utf8_lossy(&out);
            assert_gone(input, &text, secret);
        }
    }
}

/// Telegram bot tokens: the bot's id, `:`, and a 35-character secret that starts with `A`.
#[test]
fn telegram_bot_tokens() {
    let token = format!("{}:AA{}", make(10, DIGITS, 300), make(33, WORD, 301));
    positive(&format!("TELEGRAM={token}"), &token);
    positive(&format!("starting bot {token} now"), &token);
    positive(&format!("{{\"bot\":\"{token}\"}}"), &token);
    positive(&format!("{{\\\"bot\\\": \\\"{token}\\\"}}"), &token);
    positive(&format!("u=https%3A%2F%2Fapi.telegram.org%2Fbot{}&x=1", token.replace(':', "%3A")), &token[11..]);
    let url = format!("https://api.telegram.org/bot{token}/sendMessage?chat_id=-100123");
    positive(&url, &token);
    assert_eq!(redact(&url), "https://api.telegram.org/bot***REDACTED***/sendMessage?chat_id=-100123");
    assert!(!redact(&url).contains(&token[..10]), "the bot id goes with the secret");
    streamed(&format!("bot {token} x"), &token);
    near_miss("at 12:00:01 and 2026-01-02T12:00:00Z, host:8443, user 1184576487578214464: hello");
    near_miss(&format!("{}:AA{}", make(10, DIGITS, 302), make(20, WORD, 303)));
    near_miss(&format!("{}:BB{}", make(10, DIGITS, 304), make(33, WORD, 305)));
    near_miss(&format!("{}:AA{}", make(4, DIGITS, 306), make(33, WORD, 307)));
}

/// Microsoft Teams / Office 365 incoming webhooks (`*.webhook.office.com/webhookb2/…`, the
/// older `outlook.office.com/webhook/…`) and Teams workflow URLs on `*.logic.azure.com` (the
/// `sig=` signature).
#[test]
fn teams_and_office365_webhooks() {
    let guid = |seed| {
        format!(
            "{}-{}-{}-{}-{}",
            make(8, LOWER_HEX, seed),
            make(4, LOWER_HEX, seed + 1),
            make(4, LOWER_HEX, seed + 2),
            make(4, LOWER_HEX, seed + 3),
            make(12, LOWER_HEX, seed + 4)
        )
    };
    let (group, tenant, creator) = (guid(310), guid(320), guid(330));
    let hash = make(32, LOWER_HEX, 340);
    let path = format!("{group}@{tenant}/IncomingWebhook/{hash}/{creator}/V2{}", make(40, WORD, 341));
    let url = format!("https://acme.webhook.office.com/webhookb2/{path}");
    for secret in [&group, &hash, &creator] {
        positive(&format!("TEAMS_WEBHOOK={url}"), secret);
        positive(&format!("{{\"url\":\"{}\"}}", url.replace('/', "\\/")), secret);
        positive(&format!("{{\"url\":\"{}\"}}", url.replace('/', "\\u002F")), secret);
        positive(&format!("next={}&x=1", url.replace(':', "%3A").replace('/', "%2F").replace('@', "%40")), secret);
        positive(&format!("post https://outlook.office.com/webhook/{path} done"), secret);
        positive(&format!("post https://outlook.office365.com:443/webhook/{path} done"), secret);
    }
    assert_eq!(redact(&url), "https://acme.webhook.office.com/webhookb2/***REDACTED***");
    assert_eq!(redact(&format!("\"{url}\" ok")), "\"https://acme.webhook.office.com/webhookb2/***REDACTED***\" ok");
    streamed(&format!("posting to {url} now"), &hash);
    let sig = make(43, WORD, 342);
    let flow = format!(
        "https://prod-12.westus.logic.azure.com:443/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}",
        make(32, LOWER_HEX, 343)
    );
    positive(&flow, &sig);
    positive(&format!("{{\"webhook\":\"{}\"}}", flow.replace('/', "\\/").replace('&', "\\u0026")), &sig);
    positive(&format!("u={}", flow.replace('&', "%26").replace('=', "%3D")), &sig);
    streamed(&flow, &sig);
    near_miss("https://example.com/webhook/github and https://outlook.office.com/mail/inbox/id/abc");
    near_miss("https://acme.webhook.office.com/ and the webhookb2 docs and webhookb2/short");
    near_miss(
        "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01",
    );
}

/// Mailchimp API keys: 32 hex digits and the data centre (`-us6`).
#[test]
fn mailchimp_keys() {
    for (i, dc) in ["us6", "us21", "us1"].iter().enumerate() {
        let key = format!("{}-{dc}", make(32, LOWER_HEX, 350 + i as u64));
        positive(&format!("MAILCHIMP {key} end"), &key);
        positive(&format!("{{\"k\":\"{key}\"}}"), &key);
        positive(&format!("q=%22{key}%22&x=1"), &key);
        positive(&format!("https://{dc}.api.mailchimp.com/3.0/?u={key}"), &key);
        streamed(&format!("mc {key}, "), &key);
    }
    let hex = make(32, LOWER_HEX, 355);
    near_miss(&format!("{hex}-usa {hex}-us123 {hex}-eu1 {}-us6", &hex[..31]));
    near_miss("commit 3f1c9a7e0d2b4c6a8e9f0a1b2c3d4e5f-us-east-1 and us-east-1");
}

/// Square: OAuth access tokens and application secrets, and `EAAA` access tokens.
#[test]
fn square_tokens() {
    let cases = [tok("sq0atp-", 22, WORD, 360), tok("sq0csp-", 43, WORD, 361), tok("EAAA", 60, WORD, 362)];
    for t in &cases {
        positive(&format!("SQUARE={t}"), t);
        positive(&format!("{{\"k\":\"{t}\"}}"), t);
        positive(&format!("%20{t}%20"), t);
        streamed(&format!("sq {t} ."), t);
    }
    for t in &cases[..2] {
        positive(&format!("glued x=1{t}"), &t[7..]);
    }
    near_miss("sq0atp-short sq0csp- EAAA EAAAshort");
    near_miss(&tok("sq0atp-", 12, WORD, 363));
    near_miss(&tok("EAAA", 40, WORD, 364));
}

/// Facebook / Meta access tokens: `EAA` and a long alphanumeric run.
#[test]
fn facebook_tokens() {
    for (i, p) in ["EAAG", "EAAB", "EAAC", "EAAM"].iter().enumerate() {
        let t = tok(p, 180, ALNUM, 370 + i as u64);
        positive(&format!("access_token={t}"), &t);
        positive(&format!("FB {t} end"), &t);
        positive(&format!("{{\"k\":\"{t}\"}}"), &t);
        positive(&format!("https%3A%2F%2Fgraph.facebook.com%2Fme%3Ffields%3D{t}%26x"), &t);
        streamed(&format!("fb {t} ."), &t);
    }
    near_miss("EAA EAAG EAAGshort and EAAS; EAAB123");
    near_miss(&tok("EAAG", 60, ALNUM, 375));
}

/// RubyGems API keys: `rubygems_` and 48 hex digits.
#[test]
fn rubygems_keys() {
    let key = tok("rubygems_", 48, LOWER_HEX, 380);
    positive(&format!("GEM_HOST_API_KEY_X {key}"), &key);
    positive(&format!("---\n:rubygems_api_key_x: {key}\n"), &key[9..]);
    positive(&format!("{{\"k\":\"{key}\"}}"), &key);
    positive(&format!("%3D{key}%26"), &key);
    streamed(&format!("gem {key} ."), &key);
    near_miss("rubygems_org rubygems_version: 3.5.1 https://rubygems.org/gems/rake");
    near_miss(&tok("rubygems_", 40, LOWER_HEX, 381));
}

/// JFrog Artifactory API keys (`AKCp` and a long base62 run) and reference tokens (`cmVmdGtu`,
/// base64 of `reftkn`).
#[test]
fn jfrog_tokens() {
    let cases = [tok("AKCp8", 68, ALNUM, 390), tok("cmVmdGtuOjAxOjE3", 48, ALNUM, 391)];
    for t in &cases {
        positive(&format!("ARTIFACTORY {t} end"), t);
        positive(&format!("{{\"k\":\"{t}\"}}"), t);
        positive(&format!("curl -H 'X-JFrog-Art-Api-X: {t}'"), t);
        positive(&format!("u%3D{t}%26x"), t);
        streamed(&format!("jf {t} ."), t);
    }
    near_miss("AKCp cmVmdGtu AKCpshort cmVmdGtuShort");
    near_miss(&tok("AKCp", 30, ALNUM, 392));
}

/// Query values named `key` (`?key=`, `&key=`), besides `api_key=` and `apikey=`: the value goes,
/// the name stays. Only a whole parameter name counts.
#[test]
fn generic_key_query_values() {
    let v = make(24, WORD, 400);
    let url = format!("https://api.example.com/v1/items?key={v}&page=2");
    positive(&url, &v);
    assert_eq!(redact(&url), "https://api.example.com/v1/items?key=***REDACTED***&page=2");
    assert_eq!(redact(&format!("GET /x?page=2&key={v}")), "GET /x?page=2&key=***REDACTED***");
    assert_eq!(redact(&format!("/x?KEY={v} ok")), "/x?KEY=***REDACTED*** ok");
    for f in [
        format!("GET /x?page=2&key={v} 200"),
        format!("{{\"url\":\"https:\\/\\/api.example.com\\/x?key={v}\"}}"),
        format!("{{\"url\":\"https://api.example.com/x?a=1\\u0026key={v}\"}}"),
        format!("next=https%3A%2F%2Fapi.example.com%2Fx%3Fkey%3D{v}%26page%3D2"),
        format!("next=%2Fx%3Fa%3D1%26key%3D{v}"),
        format!("<a href=\"/x?a=1&amp;key={v}\">"),
        format!("/x?api_key={v}"),
        format!("/x?apikey={v}&y=1"),
        format!("apikey={v}"),
        format!("api_key={v}"),
    ] {
        positive(&f, &v);
    }
    streamed(&format!("GET /x?key={v} 200"), &v);
    near_miss("tokenizer=bert max_tokens=512 keyboard=us monkey=banana");
    near_miss("/zoo?monkey=banana&keyboard=us&keys=3&key_id=12&primary_key=id&turkey=1");
    near_miss("{\"key\": \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC\", \"key_id\": 1} primary key=id");
    near_miss("/x?key=&y=1 and key=value in prose");
}

/// GitHub tokens that a plain scan misses: wrapped over two lines (a terminal, a wrapped log
/// view), with a JSON `\n` in the middle, or with a character written as a JSON or percent
/// escape (`ghp\u005f…`).
#[test]
fn github_tokens_split_or_escaped() {
    for (i, p) in ["ghp", "gho", "ghu", "ghs", "ghr"].iter().enumerate() {
        let body = make(36, ALNUM, 410 + i as u64);
        let (a, b) = body.split_at(20);
        for f in [
            format!("token {p}_{a}\n{b} used"),
            format!("token {p}_{a}\r\n{b} used"),
            format!("{{\"log\":\"token {p}_{a}\\n{b} used\"}}"),
            format!("{{\"log\":\"token {p}_{a}\\r\\n{b} used\"}}"),
            format!("{{\"t\":\"{p}\\u005f{body}\"}}"),
            format!("{{\"t\":\"{p}\\u005F{a}\\u0041{b}\"}}"),
            format!("t={p}%5F{body}&x=1"),
            format!("{p}_\n{body} end"),
        ] {
            positive(&f, a);
            positive(&f, b);
        }
        // wrapped after more than the rule's minimum: the rest on the next line goes too
        let (c, d) = body.split_at(33);
        positive(&format!("token {p}_{c}\n{d} used"), d);
        assert_eq!(redact(&format!("x {p}_{a}\n{b} y")), format!("x {MASK}\n{MASK} y"), "the line break stays");
    }
    let pat = format!("{}_{}", make(22, ALNUM, 420), make(59, ALNUM, 421));
    let (a, b) = pat.split_at(30);
    positive(&format!("GH=github_pat_{a}\n{b}"), b);
    positive(&format!("{{\"t\":\"github_pat\\u005f{pat}\"}}"), &pat);
    positive(&format!("{{\"t\":\"github\\u005fpat\\u005f{pat}\"}}"), &pat);
    // through the line-by-line stream: the wrap falls between two chunks
    let body = make(36, ALNUM, 422);
    let (a, b) = body.split_at(17);
    let mut state = StreamState::default();
    let one = redact_stream(format!("log: token ghp_{a}\n").as_bytes(), &mut state).into_owned();
    let two = redact_stream(format!("{b} used\nnext line\n").as_bytes(), &mut state).into_owned();
    let text = String::from_utf8_lossy(&[one, two].concat()).into_owned();
    assert_gone("a wrapped token", &text, &body[..17]);
    assert_gone("a wrapped token", &text, &body[17..]);
    assert_eq!(text, format!("log: token {MASK}\n{MASK} used\nnext line\n"));
    let whole = format!("log: token ghp_{a}\n{b} used\nnext line\n");
    assert_eq!(redact(&whole), text, "chunked and whole agree");
    // the chunk after a wrap that does not go on is left alone
    let mut state = StreamState::default();
    let _ = redact_stream(format!("token ghp_{a}\n").as_bytes(), &mut state);
    assert_eq!(&*redact_stream(b"INFO next\n", &mut state), b"INFO next\n");
    assert_eq!(&*redact_stream(make(36, ALNUM, 423).as_bytes(), &mut state), make(36, ALNUM, 423).as_bytes());
    streamed(&format!("{{\"t\":\"ghp\\u005f{body}\"}}"), &body);
    streamed(&format!("{{\"t\":\"ghp_{a}\\n{b}\"}}"), b);
    // near misses: too short to be the rest of a token, or not a token prefix at all
    let short = make(12, ALNUM, 424);
    near_miss(&format!("ghp_{short}\nINFO starting\nghp\\u005f{short} ghp%5Fx gh\\npages"));
    near_miss("github\\/workflows\\/ci.yml and .github%2Fworkflows and gh\\u0020x");
}
