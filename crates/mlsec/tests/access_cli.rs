//! `mlsec user|token|role|mfa|policy` as an operator runs them, and the promise that a token's
//! secret never reaches the database files or the server's logs (even at debug level).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mlsec");

fn mlsec_with_stdin(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("MLSEC_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mlsec");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn mlsec(data: &Path, args: &[&str]) -> Output {
    mlsec_with_stdin(data, args, None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every byte of every file under `dir` (database, WAL, blobs, keys).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn operator_commands_and_secrets_stay_out_of_storage_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = mlsec(&data, &["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let admin = text(&init.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("mlsec_"))
        .unwrap()
        .to_owned();

    let add = mlsec_with_stdin(
        &data,
        &[
            "user",
            "add",
            "alice",
            "--name",
            "Alice",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let view: serde_json::Value = serde_json::from_slice(&add.stdout).unwrap();
    assert_eq!(view["has_password"], true);
    assert_eq!(
        mlsec(&data, &["user", "add", "x'; drop table principals; --"])
            .status
            .code(),
        Some(2),
        "bad ids are usage errors"
    );
    let add_ci = mlsec(&data, &["user", "add", "ci-bot", "--service-account"]);
    assert!(add_ci.status.success());
    let grant = mlsec(
        &data,
        &[
            "role",
            "grant",
            "alice",
            "viewer",
            "--scope",
            "project:fraud",
        ],
    );
    assert!(grant.status.success(), "{}", text(&grant.stderr));
    let created = mlsec(
        &data,
        &[
            "token",
            "create",
            "ci-bot",
            "--name",
            "pipeline",
            "--read-only",
            "--resource",
            "model:fraud/*",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let ci_token = text(&created.stdout).trim().to_owned();
    assert!(ci_token.starts_with("mlsec_"), "{ci_token}");

    // Policy checks: allowed is 0, denied is 1, a broken policy is 2.
    let check = |args: &[&str]| {
        mlsec(&data, &[&["policy", "check"], args].concat())
            .status
            .code()
    };
    assert_eq!(
        check(&[
            "--principal",
            "alice",
            "--action",
            "model.read",
            "--resource",
            "model:fraud/x"
        ]),
        Some(0)
    );
    assert_eq!(
        check(&[
            "--principal",
            "alice",
            "--action",
            "model.write",
            "--resource",
            "model:fraud/x"
        ]),
        Some(1)
    );
    assert_eq!(
        check(&[
            "--principal",
            "alice",
            "--action",
            "model.read",
            "--resource",
            "model:churn/x"
        ]),
        Some(1)
    );
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "@id(\"x\") permit (principal, action == Mlsec::Action::\"model.fly\", resource);",
    )
    .unwrap();
    assert_eq!(check(&["--policy", bad.to_str().unwrap()]), Some(2));
    let cases = dir.path().join("cases.toml");
    std::fs::write(&cases, "[[case]]\nprincipal = \"ci\"\nkind = \"service_account\"\ngrants = [\"ci\"]\naction = \"model.promote\"\nresource = \"model:a\"\nexpect = \"deny\"\n").unwrap();
    assert_eq!(check(&["--cases", cases.to_str().unwrap()]), Some(0));
    // Replacing the policy is validated and audited.
    assert_eq!(
        mlsec(&data, &["policy", "set", bad.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    let good = dir.path().join("good.cedar");
    std::fs::write(&good, mlsec_core::policy::DEFAULT_POLICY).unwrap();
    assert!(
        mlsec(&data, &["policy", "set", good.to_str().unwrap()])
            .status
            .success()
    );
    let shown = mlsec(&data, &["policy", "show"]);
    assert!(text(&shown.stderr).contains("policy version 1"));

    let enroll = mlsec(&data, &["mfa", "enroll", "alice"]);
    assert!(enroll.status.success(), "{}", text(&enroll.stderr));
    assert!(text(&enroll.stdout).contains("otpauth://totp/mlsec:alice?"));
    let wrong = mlsec(&data, &["mfa", "confirm", "alice", "000000"]);
    assert!(!wrong.status.success(), "a wrong code is refused");
    let status: serde_json::Value =
        serde_json::from_slice(&mlsec(&data, &["mfa", "status", "alice"]).stdout).unwrap();
    assert_eq!(
        (status["enrolled"].as_bool(), status["pending"].as_bool()),
        (Some(false), Some(true))
    );

    // Serve with debug logs, use both tokens, and look for the secrets everywhere.
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["--log-level", "debug", "serve", "--listen", "127.0.0.1:0"])
        .env_remove("MLSEC_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.to_owned();
        }
    };
    let c = reqwest::Client::new();
    for token in [&admin, &ci_token] {
        let r = c
            .get(format!("{url}/api/v1/whoami"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = c
        .post(format!("{url}/api/v1/blobs"))
        .bearer_auth(&ci_token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the read-only token cannot write");
    let r = c
        .get(format!("{url}/api/v1/whoami"))
        .bearer_auth({
            // One secret character changed (to a different one: a token may end in `0`).
            let last = if ci_token.ends_with('0') { '1' } else { '0' };
            format!("{}{last}", &ci_token[..ci_token.len() - 1])
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let login = c
        .post(format!("{url}/api/v1/session/login"))
        .json(&serde_json::json!({"principal": "alice", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();

    let logs = std::fs::read(&log_path).unwrap();
    let stored = all_bytes(&data);
    assert!(contains(&logs, "request"), "the server logged requests");
    for token in [&admin, &ci_token] {
        let secret = token.rsplit('_').next().unwrap();
        assert!(
            !contains(&stored, secret),
            "a token secret is in the data directory"
        );
        assert!(!contains(&logs, secret), "a token secret is in the logs");
    }
    assert!(
        !contains(&stored, "a long enough password"),
        "a password is stored in clear"
    );
    assert!(
        !contains(&logs, "a long enough password"),
        "a password is in the logs"
    );
}
