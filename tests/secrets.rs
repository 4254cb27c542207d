//! No output carries a secret: a sentinel password and control token are passed every way a
//! secret can be (the file, an environment variable, `--set`), and every output is searched
//! for them: `check`, a run's log and summary, `/status`, `/metrics`, the live feed, reload
//! answers, and the `Debug` of the spec and the plan. The spec digest does not depend on them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use cqlpulse::daemon::Loaded;

/// Looks like a number on purpose: it must still pass as a string, and never be echoed.
const PASSWORD: &str = "918273645";
const TOKEN: &str = "tok-5e171e1-sentinel";

fn secured_spec(ks: &str) -> String {
    testtable_spec(ks, "model = \"chains\"\nchains = 4\nrate = 100.0").replace(
        "[schema]",
        "[control]\ntoken_env = \"SENTINEL_TOKEN\"\n\n[schema]",
    )
}

/// Panics if `text` (from `what`) holds a sentinel, or a digit run of the password's.
fn assert_clean(what: &str, text: &str) {
    for s in [PASSWORD, TOKEN, "91827364", "5e171e1"] {
        assert!(!text.contains(s), "{what} carries `{s}`:\n{text}");
    }
}

fn check(spec: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cqlpulse"))
        .arg("check")
        .arg(spec)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_takes_a_numeric_looking_secret_and_never_prints_one() {
    let spec = spec_file("secret-check", &secured_spec("ks_unused"));
    let token = [("SENTINEL_TOKEN", TOKEN)];
    // Through the environment and --set, a password that looks like a number is a string.
    let by_env = [
        ("SENTINEL_TOKEN", TOKEN),
        ("CQLPULSE__CLUSTER__USERNAME", "u"),
        ("CQLPULSE__CLUSTER__PASSWORD", PASSWORD),
    ];
    let (code, text) = check(&spec, &[], &by_env);
    assert_eq!(code, 0, "{text}");
    assert_clean("check with the password from the environment", &text);
    let set = format!("cluster.password={PASSWORD}");
    let (code, text) = check(
        &spec,
        &["--set", "cluster.username=u", "--set", &set],
        &token,
    );
    assert_eq!(code, 0, "{text}");
    assert_clean("check with the password from --set", &text);
    // The control token too, by --set and (looking like a number) by the environment.
    let plain = spec_file("secret-plain", &testtable_spec("ks_unused", "rate = 10.0"));
    let (code, text) = check(&plain, &["--set", &format!("control.token={TOKEN}")], &[]);
    assert_eq!(code, 0, "{text}");
    assert_clean("check with the token from --set", &text);
    let (code, text) = check(&plain, &[], &[("CQLPULSE__CONTROL__TOKEN", PASSWORD)]);
    assert_eq!(code, 0, "{text}");
    assert_clean("check with the token from the environment", &text);
    // A token too short is refused by name, not shown.
    let (code, text) = check(&plain, &[], &[("CQLPULSE__CONTROL__TOKEN", "9182736")]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("control.token: must be at least 8"), "{text}");
    assert!(!text.contains("9182736"), "{text}");

    // In the file, a secret of the wrong type is refused without echoing it.
    let typed = secured_spec("ks_unused").replace(
        "[control]",
        &format!("[cluster]\nusername = \"u\"\npassword = {PASSWORD}\n\n[control]"),
    );
    let (code, text) = check(&spec_file("secret-typed", &typed), &[], &token);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("cluster.password") && text.contains("must be a string"),
        "{text}"
    );
    assert_clean("check of a password of the wrong type", &text);

    // Refused for another reason (no username), still without the password.
    let (code, text) = check(&spec, &["--set", &set], &token);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("a password needs cluster.username"), "{text}");
    assert_clean("check refusing the password", &text);
}

#[test]
fn the_spec_and_plan_debug_and_digest_hold_no_secret() {
    let file = |password: &str| {
        let text = secured_spec("ks_unused").replace(
            "[control]\ntoken_env = \"SENTINEL_TOKEN\"",
            &format!(
                "[cluster]\nusername = \"u\"\npassword = \"{password}\"\n\n[control]\ntoken = \"{TOKEN}\""
            ),
        );
        spec_file(&format!("secret-debug-{password}"), &text)
    };
    let loaded = Loaded::load(file(PASSWORD), vec![]).unwrap_or_else(|e| panic!("{e}"));
    let plan = &loaded.plan;
    let credentials = plan.cluster.credentials.as_ref().expect("a login");
    assert_eq!(credentials.password(), PASSWORD, "the driver gets it");
    assert_eq!(plan.control_token.as_ref().map(|t| t.expose()), Some(TOKEN));
    assert_clean("Debug of the plan", &format!("{plan:?}"));
    assert_clean("Debug of the spec", &format!("{:#?}", plan.spec));
    assert_clean("the serialised spec", &toml::to_string(&plan.spec).unwrap());
    // The digest is no function of the password: another one gives the same digest.
    let other = Loaded::load(file("another-password"), vec![]).unwrap();
    assert_eq!(plan.digest, other.plan.digest);
    assert_clean("the digest", &plan.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_secrets_never_shows_them() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("secrets");
    // The password inline in the file (the digest's case), the token from the environment.
    let with_password = |password: &str| {
        secured_spec(&ks).replace(
            "[control]",
            &format!("[cluster]\nusername = \"u\"\npassword = \"{password}\"\n\n[control]"),
        )
    };
    let spec = spec_file("secrets-run", &with_password(PASSWORD));
    let summary =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("secrets-summary.json");
    let addr = "127.0.0.1:19466";
    // The plain node asks for no login, so the driver never uses the password: the point is
    // what cqlpulse prints around it. Debug logging shows the most.
    let mut d = Daemon::start(
        &spec,
        addr,
        &["--summary-json", summary.to_str().unwrap()],
        &[("SENTINEL_TOKEN", TOKEN), ("CQLPULSE_LOG", "debug")],
    );
    d.wait_ready();
    wait_for(Duration::from_secs(20), "some requests", || {
        d.status()["ok"].as_u64().unwrap_or(0) >= 100
    });
    let auth = [
        ("Authorization", &*format!("Bearer {TOKEN}")),
        ("Content-Type", "application/json"),
    ];
    // Reloads: one unchanged, one changing the password (structural: refused by name).
    let (code, text) = http(addr, "POST", "/control/reload", None, &auth);
    assert_eq!(code, 200, "{text}");
    assert_clean("an unchanged reload", &text);
    std::fs::write(&spec, with_password("918273645-changed")).unwrap();
    let (code, text) = http(addr, "POST", "/control/reload", None, &auth);
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("cluster.password"),
        "the field is named: {text}"
    );
    assert_clean("a refused reload", &text);
    d.signal("HUP");
    wait_for(Duration::from_secs(5), "the SIGHUP reload refused", || {
        d.status()["reloads"]["rejected"] == 2
    });
    let wrong = http(
        addr,
        "PUT",
        "/control/rate",
        Some("{\"rate\": 50}"),
        &[("Authorization", "Bearer nope-nope-nope")],
    );
    assert_eq!(wrong.0, 401);
    assert_clean("a refused token", &wrong.1);

    for path in ["/status", "/metrics", "/api/history", "/"] {
        let (code, body) = get(addr, path);
        assert_eq!(code, 200, "{path}");
        assert_clean(path, &body);
    }
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0), "{}", d.log());
    let log = d.log();
    assert!(log.contains("reload rejected"), "{log}");
    assert!(log.contains("DEBUG"), "debug logging was on: {log}");
    assert_clean("the daemon's log", &log);
    assert_clean("the summary", &std::fs::read_to_string(&summary).unwrap());
    drop_keyspace(&session().await, &ks).await;
}
