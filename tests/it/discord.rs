//! Roles from Discord's REST API, end to end: the real binary against a stand-in Discord on
//! 127.0.0.1. No test here reaches the internet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::discord_stub::{DiscordStub, Fault, Guild, API_PREFIX};
use crate::support::net::HeldPort;
use crate::support::testenv::{set_key, tree, Case, Run, TestEnv};

const TOKEN: &str = "stub.Bot-Token_0123456789";
const GUILD: &str = "000000000000000000";
const MEMBERS: usize = 2_345;

/// Roles with an empty name, two roles named alike, and names that sort by code point.
fn roles() -> Vec<(String, String)> {
    [
        ("1100", "Admin"),
        ("1101", "Maintainer"),
        ("1102", "Contributor"),
        ("1103", ""),
        ("1104", "Contributor"),
        ("1105", "Zeta Team"),
        ("1106", "alpha"),
    ]
    .iter()
    .map(|(id, name)| (id.to_string(), name.to_string()))
    .collect()
}

/// 2,345 members (three full-or-partial pages and the empty one), listed out of id order,
/// including the `basic` case's users, so the snapshot's other files see the same people.
fn guild() -> Guild {
    let patterns: [&[&str]; 8] = [
        &[],
        &["1102"],
        &["1101", "1102"],
        &["1100", "1103"], // empty name dropped
        &["1102", "1104"], // two roles with one name: kept twice
        &["9999"],         // unknown role id dropped
        &["1106", "1105", "1100"],
        &["1102", "1102"],
    ];
    let mut members: Vec<(String, Vec<String>)> = (0..MEMBERS)
        .map(|i| {
            let id = match i {
                0 => "123456789012345678".to_owned(),
                1 => "223456789012345678".to_owned(),
                2 => "999999999999999999".to_owned(),
                _ => (300_000_000_000_000_000u64 + ((i as u64 * 7_919) % 1_000_003) * 1_000)
                    .to_string(),
            };
            (
                id,
                patterns[i % patterns.len()]
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
            )
        })
        .collect();
    members.reverse();
    Guild {
        id: GUILD.into(),
        roles: roles(),
        members,
    }
}

/// What the roles should be, computed from the guild data directly.
fn expected_roles(guild: &Guild) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (id, role_ids) in &guild.members {
        let mut names = Vec::new();
        for role_id in role_ids {
            for (rid, name) in &guild.roles {
                if rid == role_id && !name.is_empty() {
                    names.push(name.clone());
                }
            }
        }
        names.sort();
        out.insert(id.clone(), names);
    }
    out
}

/// `roles.json` as the snapshot format has it (two-space indent, sorted keys, no final newline).
fn render_roles(case: &Case, roles: &BTreeMap<String, Vec<String>>) -> String {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        discord_user_id: &'a str,
        roles: &'a [String],
    }
    #[derive(serde::Serialize)]
    struct File<'a> {
        data: Vec<Row<'a>>,
        generated_at: &'a str,
        org: &'a str,
        run_id: &'a str,
        schema_version: &'a str,
    }
    let data = roles
        .iter()
        .map(|(id, names)| Row {
            discord_user_id: id,
            roles: names,
        })
        .collect();
    let file = File {
        data,
        generated_at: &case.at,
        org: "my-org",
        run_id: &case.run_id,
        schema_version: "1.0.0",
    };
    serde_json::to_string_pretty(&file).unwrap()
}

/// The `basic` case's config with `discord.token: "${DISCORD_TOKEN}"`, `discord.api_base` set
/// and `extra` appended to the `snapshots:` section (the file's last).
fn write_config(env: &TestEnv, api_base: &str, extra: &str) -> std::path::PathBuf {
    let case = Case::load("basic");
    let config = std::fs::read_to_string(case.config()).unwrap();
    let from = "  token: \"discord_conformance_not_a_real_token\"\n";
    assert!(config.contains(from));
    let config = config.replace(from, "  token: \"${DISCORD_TOKEN}\"\n");
    let config = set_key(&config, "discord", "api_base", api_base) + extra;
    env.write("gitcord.yaml", config)
}

/// `export` of the `basic` case with no roles file, `DISCORD_TOKEN` set to `token`.
fn export(env: &TestEnv, config: &std::path::Path, token: &str) -> Run {
    let case = Case::load("basic");
    let mut args = case.export_args();
    let i = args.iter().position(|a| a == "--roles-file").unwrap();
    args.drain(i..i + 2);
    let c = args.iter().position(|a| a == "--config").unwrap() + 1;
    args[c] = config.display().to_string();
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    env.run_with(
        &args,
        &[("DISCORD_TOKEN", Some(token)), ("SSL_CERT_FILE", None)],
    )
}

fn assert_nothing_written(env: &TestEnv) {
    assert!(
        tree(&env.path("out")).is_empty(),
        "something was written: {:?}",
        tree(&env.path("out"))
    );
}

fn assert_token_not_shown(run: &Run, token: &str) {
    assert!(
        !run.stdout.contains(token) && !run.stderr.contains(token),
        "token shown:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn roles_are_read_from_discord_page_by_page_after_waiting_out_a_429() {
    let case = Case::load("basic");
    let guild = guild();
    let stub = DiscordStub::start(
        guild.clone(),
        TOKEN,
        Fault::RateLimitFirst {
            n: 1,
            retry_after: 0.2,
        },
    );
    let env = TestEnv::new();
    let config = write_config(&env, &stub.url(), "");
    let started = Instant::now();
    let run = export(&env, &config, TOKEN);
    run.expect_code(0);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the 429's retry_after was not waited"
    );
    assert_token_not_shown(&run, TOKEN);

    // The roles file says exactly what the guild data says.
    let expected = expected_roles(&guild);
    assert_eq!(expected.len(), MEMBERS);
    let written = env.path("out").join(&case.snapshot_dir);
    let roles_json = std::fs::read_to_string(written.join("roles.json")).unwrap();
    assert_eq!(roles_json, render_roles(&case, &expected));

    // The requests: roles (429, then again), then members until the empty page.
    let mut ids: Vec<u64> = guild
        .members
        .iter()
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    ids.sort();
    let base = format!("{API_PREFIX}/guilds/{GUILD}");
    let want = [
        format!("{base}/roles"),
        format!("{base}/roles"),
        format!("{base}/members?limit=1000"),
        format!("{base}/members?limit=1000&after={}", ids[999]),
        format!("{base}/members?limit=1000&after={}", ids[1999]),
        format!("{base}/members?limit=1000&after={}", ids[MEMBERS - 1]),
    ];
    let requests = stub.requests();
    let targets: Vec<_> = requests.iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, want);
    for r in &requests {
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bot {TOKEN}").as_str())
        );
        let ua = r.user_agent.as_deref().unwrap_or_default();
        assert!(
            ua.starts_with("DiscordBot (") && ua.contains("gitcord-snapshot/"),
            "User-Agent {ua:?}"
        );
        // The token is in the Authorization header and nowhere else.
        let elsewhere: Vec<_> = r
            .head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("authorization:"))
            .collect();
        assert!(!elsewhere.join("\n").contains(TOKEN), "{}", r.head);
    }

    // Same snapshot, all seven files, as from an equivalent roles file.
    let file_env = TestEnv::new();
    let roles_file = file_env.write("roles.json", serde_json::to_vec(&expected).unwrap());
    let mut args = case.export_args();
    let i = args.iter().position(|a| a == "--roles-file").unwrap() + 1;
    args[i] = roles_file.display().to_string();
    args.extend(["--out".into(), file_env.path("out").display().to_string()]);
    file_env.run(&args).expect_code(0);
    let from_discord = tree(&env.path("out"));
    let from_file = tree(&file_env.path("out"));
    assert_eq!(from_discord.len(), 7);
    for ((name, a), (_, b)) in from_discord.iter().zip(&from_file) {
        assert!(a == b, "{name} differs from the roles-file run");
    }
    assert_eq!(from_discord, from_file);
}

#[test]
fn a_refused_token_exits_69_without_showing_it_or_writing_anything() {
    let stub = DiscordStub::start(guild(), TOKEN, Fault::None);
    let env = TestEnv::new();
    let config = write_config(&env, &stub.url(), "");
    let wrong = "wrong.Token-value_987654321";
    let run = export(&env, &config, wrong);
    run.expect_error(69, &["Discord", "401", "refused", "discord.token"]);
    assert_token_not_shown(&run, wrong);
    assert_token_not_shown(&run, TOKEN);
    assert_nothing_written(&env);
    assert_eq!(
        stub.requests().len(),
        1,
        "nothing more is asked after a 401"
    );
}

#[test]
fn an_unknown_guild_or_a_malformed_answer_exits_69() {
    let mut other = guild();
    other.id = "111111111111111111".into();
    let stub = DiscordStub::start(other, TOKEN, Fault::None);
    let env = TestEnv::new();
    let config = write_config(&env, &stub.url(), "");
    export(&env, &config, TOKEN)
        .expect_error(69, &["Discord", "404", "no such guild", "discord.guild_id"]);
    assert_nothing_written(&env);

    let stub = DiscordStub::start(guild(), TOKEN, Fault::Garbage);
    let config = write_config(&env, &stub.url(), "");
    export(&env, &config, TOKEN).expect_error(69, &["Discord", "unexpected response", "/roles"]);
    assert_nothing_written(&env);
}

#[test]
fn an_unreachable_api_exits_69() {
    // A port held closed for the test's life: connections are refused, nobody else can take it.
    let held = HeldPort::closed();
    let closed = held.addr();
    let env = TestEnv::new();
    let config = write_config(&env, &format!("http://{closed}/api/v10"), "");
    let run = export(&env, &config, TOKEN);
    run.expect_error(69, &["cannot reach Discord", &closed.to_string()]);
    assert_token_not_shown(&run, TOKEN);
    assert_nothing_written(&env);
}

#[test]
fn with_roles_required_false_a_refusal_gives_empty_roles_and_one_warning() {
    let case = Case::load("basic");
    let stub = DiscordStub::start(guild(), TOKEN, Fault::None);
    let env = TestEnv::new();
    let config = write_config(&env, &stub.url(), "  roles_required: false\n");
    let run = export(&env, &config, "not-the-token");
    run.expect_code(0);
    let warnings: Vec<_> = run.stderr.lines().filter(|l| l.contains("warn")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("401") && warnings[0].contains("roles_required"),
        "{}",
        warnings[0]
    );
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
    assert_token_not_shown(&run, "not-the-token");
    let file = env.path("out").join(&case.snapshot_dir).join("roles.json");
    let roles: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(roles["data"], serde_json::json!([]));
}

#[test]
fn plain_http_to_another_host_is_refused_before_sending_anything() {
    // 192.0.2.1 (TEST-NET-1) never answers: trying to connect would take the connect timeout.
    for base in ["http://example.invalid/api", "http://192.0.2.1/api/v10"] {
        let env = TestEnv::new();
        let config = write_config(&env, base, "");
        let started = Instant::now();
        let run = export(&env, &config, TOKEN);
        run.expect_error(
            78,
            &["gitcord.yaml", "discord.api_base", "plain http", "https"],
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{base}: took {:?}",
            started.elapsed()
        );
        assert_token_not_shown(&run, TOKEN);
        assert_nothing_written(&env);
    }
}

#[test]
fn rate_limits_are_retried_only_within_bounds() {
    // Persistent 429: five retries of 0.2 s, then a clear failure.
    let stub = DiscordStub::start(guild(), TOKEN, Fault::RateLimitAlways { retry_after: 0.2 });
    let env = TestEnv::new();
    let config = write_config(&env, &stub.url(), "");
    let started = Instant::now();
    let run = export(&env, &config, TOKEN);
    run.expect_error(69, &["Discord", "429", "5 retries", "try again later"]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert_eq!(stub.requests().len(), 6, "one request and five retries");
    assert_nothing_written(&env);

    // A wait longer than the run allows is not waited at all.
    let stub = DiscordStub::start(
        guild(),
        TOKEN,
        Fault::RateLimitAlways { retry_after: 300.0 },
    );
    let config = write_config(&env, &stub.url(), "");
    let started = Instant::now();
    export(&env, &config, TOKEN).expect_error(69, &["Discord", "429", "300.0 s"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stub.requests().len(), 1);
    assert_nothing_written(&env);
}

#[test]
fn a_passing_server_error_is_retried() {
    // Two 503s without advice: waits 1 s and 2 s, then reads everything.
    let stub = DiscordStub::start(guild(), TOKEN, Fault::StatusFirst { n: 2, status: 503 });
    let env = TestEnv::new();
    let config = write_config(&env, &stub.url(), "");
    let started = Instant::now();
    export(&env, &config, TOKEN).expect_code(0);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        stub.requests().len(),
        2 + 1 + 4,
        "two 503s, roles, four member pages"
    );
}
