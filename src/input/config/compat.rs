//! Every case in `fixtures/config-compat`: what we read from it must be what Gitcord's own
//! loader read (`expected.json`, made by `scripts/config-oracle.py` from Gitcord's source), or
//! both must refuse it. The differences we keep on purpose are listed in [`INTENDED`], each
//! with its reason; a listed case that stops differing fails too, so the list stays true.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value as Json};

use super::{expand_with, Config, ConfigError, Text};
use crate::snapshot::build::{self, Inputs};
use crate::snapshot::format;

/// Cases where we deliberately differ from Gitcord, and why.
const INTENDED: &[(&str, &str)] = &[
    // Lazy `${VAR}`: Gitcord expands the whole file and refuses any unset variable; we only
    // need the values a run reads (an export must not need DISCORD_TOKEN). Every `env` case
    // loads for us (checked below); when the variable is in a value we read, expanding that
    // value refuses as Gitcord does, otherwise we never refuse:
    (
        "env_unset_in_list",
        "lazy ${VAR}: the unset variable is in a list we never read",
    ),
    (
        "env_unset_unknown_key",
        "lazy ${VAR}: the unset variable is in a key we never read",
    ),
    // Gitcord-only settings: refusing them is Gitcord's job, not a snapshot's.
    (
        "gitcord_api_base",
        "github.api_base is Gitcord's; we never read it",
    ),
    (
        "gitcord_log_level",
        "runtime.log_level is Gitcord's; we never read it",
    ),
    (
        "gitcord_missing_adapter",
        "runtime.*_adapter are Gitcord's; we never read them",
    ),
    (
        "gitcord_mode",
        "runtime.mode is Gitcord's; we never read it",
    ),
    (
        "gitcord_role_mappings_empty",
        "role_mappings is Gitcord's; we never read it",
    ),
    // Keys Gitcord requires that a run may not need: missing is an error only when used
    // (a minimal export config names no Discord guild); a present value is still checked.
    (
        "gitcord_missing_discord",
        "discord is only required by runs that read roles from Discord",
    ),
    (
        "str_missing_token",
        "github.token is only required by a push over HTTPS",
    ),
    (
        "dup_top_level_partial",
        "a missing scoring.weights means pr_merged 0, as an absent pr_merged does",
    ),
    (
        "weights_missing",
        "a missing scoring.weights means pr_merged 0, as an absent pr_merged does",
    ),
    // Our upper bound keeps date arithmetic in range; Gitcord accepts any positive number
    // (a window of 273 years is not a real configuration).
    ("int_large", "scoring.period_days above 36500 is refused"),
    ("int_huge", "scoring.period_days above 36500 is refused"),
    // The YAML spec's merge order (PyYAML <= 6.0.3, and the open fix yaml/pyyaml#954) rather
    // than PyYAML 6.0.4's regression, whose winner depends on the key's length (CPython
    // interns one-character strings): see the README's Configuration section.
    (
        "merge_list",
        "<<: [*a, *b] lets the earlier mapping win (yaml/pyyaml#953)",
    ),
    (
        "merge_list_weights",
        "<<: [*a, *b] lets the earlier mapping win, keys in PyYAML 6.0.3's order (yaml/pyyaml#953)",
    ),
];

/// Cases both refuse, but at a different stage than the oracle names.
const REFUSED_ELSEWHERE: &[(&str, &str)] = &[(
    "double_bom",
    "a second BOM: PyYAML mangles the first key and pydantic refuses; we refuse it while parsing",
)];

fn case_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim_start_matches('\u{feff}').strip_prefix("# env: "))
        .filter_map(|kv| kv.trim_end_matches('\r').split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Everything we read from a case, in `expected.json`'s shape, with values expanded as a run
/// that needs them would; `Err` when we refuse (at load, or when expanding a value).
fn ours(path: &Path, bytes: &[u8]) -> Result<Map<String, Json>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("read: {e}"))?;
    let env = case_env(text);
    let lookup = |name: &str| env.get(name).cloned();
    let cfg = Config::parse_with(path, text, &lookup).map_err(|e| e.to_string())?;
    let ex = |t: &Text| -> Result<String, String> {
        match t.literal {
            true => Ok(t.raw.clone()),
            false => expand_with(&t.raw, lookup).map_err(|v| format!("{}: unset {v}", t.key)),
        }
    };
    let opt = |t: &Option<Text>| -> Result<Json, String> {
        Ok(match t {
            None => Json::Null,
            Some(t) => json!(ex(t)?),
        })
    };
    let s = &cfg.snapshots;
    let mut m = Map::new();
    m.insert("github.org".into(), json!(ex(&cfg.org)?));
    m.insert("github.token".into(), opt(&cfg.github_token)?);
    m.insert("runtime.data_dir".into(), opt(&cfg.data_dir)?);
    m.insert("scoring.period_days".into(), json!(cfg.period_days));
    m.insert(
        "scoring.weights.pr_merged".into(),
        json!(cfg.pr_merged_weight),
    );
    m.insert(
        "scoring.difficulty_weights".into(),
        json!(cfg.difficulty_weights),
    );
    let ids = cfg
        .identity_mappings
        .iter()
        .map(|(g, d)| Ok(json!([ex(g)?, ex(d)?])))
        .collect::<Result<Vec<_>, String>>()?;
    m.insert("identity_mappings".into(), Json::Array(ids));
    m.insert("discord.guild_id".into(), opt(&cfg.discord_guild_id)?);
    m.insert("discord.token".into(), opt(&cfg.discord_token)?);
    m.insert("discord.api_base".into(), opt(&cfg.discord_api_base)?);
    m.insert("snapshots.enabled".into(), json!(s.enabled));
    for (k, v) in [
        ("repo_path", &s.repo_path),
        ("branch", &s.branch),
        ("remote_url", &s.remote_url),
        ("clone_dir", &s.clone_dir),
        ("token", &s.token),
        ("ca_file", &s.ca_file),
        ("author_name", &s.author_name),
        ("author_email", &s.author_email),
        ("roles_file", &s.roles_file),
        ("metrics_file", &s.metrics_file),
        ("writer", &s.writer),
    ] {
        m.insert(format!("snapshots.{k}"), opt(v)?);
    }
    m.insert("snapshots.skip_unchanged".into(), json!(s.skip_unchanged));
    m.insert("snapshots.roles_required".into(), json!(s.roles_required));
    Ok(m)
}

/// The oracle's values in our shape: Gitcord's defaults that we represent differently
/// (`pr_merged` absent is 0 for us, `difficulty_weights: null` an empty list, `repo_path: ""`
/// the same as absent) are mapped to ours.
fn theirs(want: &Map<String, Json>) -> Map<String, Json> {
    let mut m: Map<String, Json> = want
        .iter()
        .filter(|(k, _)| *k != "scoring.weights" && *k != "snapshots.present")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if m.get("scoring.weights.pr_merged") == Some(&Json::Null) {
        m.insert("scoring.weights.pr_merged".into(), json!(0));
    }
    if m.get("scoring.difficulty_weights") == Some(&Json::Null) {
        m.insert("scoring.difficulty_weights".into(), json!([]));
    }
    if m.get("snapshots.repo_path") == Some(&json!("")) {
        m.insert("snapshots.repo_path".into(), Json::Null);
    }
    m
}

/// pydantic's location (`identity_mappings.0.github_user`, `x.1.[key]`) as our messages
/// name it (`identity_mappings[0].github_user`, `x`).
fn our_key(loc: &str) -> String {
    // A dict-key error (`scoring.difficulty_weights.1.[key]`) names the dict (both dicts we
    // read are two levels down; the key's repr may itself contain dots).
    let dict: String;
    let loc = match loc.contains(".[key]") {
        true => {
            dict = loc.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
            dict.as_str()
        }
        false => loc,
    };
    let mut out = String::new();
    for (i, part) in loc.split('.').enumerate() {
        if i > 0 && part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
fn every_case_reads_as_gitcord_reads_it() {
    let dir = fixtures().join("config-compat");
    let expected: Json =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 175);
    let mut failures = Vec::new();
    let mut listed_but_equal = Vec::new();
    for (name, want) in cases {
        let path = dir.join("cases").join(format!("{name}.yaml"));
        let got = ours(&path, &std::fs::read(&path).unwrap());
        let want = want.as_object().unwrap();
        let agrees = match (&got, want.get("stage")) {
            (Ok(values), None) => *values == theirs(want),
            (Err(msg), Some(stage)) => match stage.as_str().unwrap() {
                // Our message must name one of the keys pydantic named.
                "validation" | "extension" => want["all"].as_array().unwrap().iter().any(|a| {
                    let loc = a.as_str().unwrap().split(": ").next().unwrap();
                    let key = our_key(loc);
                    match key.is_empty() {
                        true => msg.contains("top level"),
                        false => [" ", ":", "."]
                            .iter()
                            .any(|end| msg.contains(&format!("{key}{end}"))),
                    }
                }),
                _ => true,
            },
            _ => false,
        };
        let intended = INTENDED.iter().any(|(n, _)| n == name);
        let elsewhere = REFUSED_ELSEWHERE.iter().any(|(n, _)| n == name);
        match (agrees, intended) {
            (true, true) => listed_but_equal.push(name.clone()),
            (false, false) if elsewhere && got.is_err() => {}
            (false, false) => failures.push(format!(
                "{name}:\n  ours:   {}\n  gitcord: {}",
                match &got {
                    Ok(v) => Json::Object(v.clone()).to_string(),
                    Err(e) => e.clone(),
                },
                match want.get("stage") {
                    None => Json::Object(theirs(want)).to_string(),
                    Some(_) => Json::Object(want.clone()).to_string(),
                }
            )),
            _ => {}
        }
        // Lazy expansion: the file itself loads; a value naming the variable refuses it.
        if want.get("stage") == Some(&json!("env")) {
            let text = std::fs::read_to_string(&path).unwrap();
            let env = case_env(&text);
            let lookup = |n: &str| env.get(n).cloned();
            assert!(Config::parse_with(&path, &text, &lookup).is_ok(), "{name}");
            let var = want["error"].as_str().unwrap().rsplit(' ').next().unwrap();
            if let Err(e) = &got {
                assert!(e.ends_with(&format!("unset {var}")), "{name}: {e}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ from Gitcord:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        listed_but_equal.is_empty(),
        "listed in INTENDED but no longer different: {listed_but_equal:?}"
    );
}

/// The values that shape a snapshot (org, period, weights, identity mappings) feed the
/// byte-exact writer: a case's config must give the same files as a plain config spelling
/// Gitcord's values for it.
#[test]
fn snapshot_bytes_follow_gitcords_values() {
    let dir = fixtures().join("config-compat");
    let basic = fixtures().join("conformance").join("basic");
    let expected: Json =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let inputs = Inputs {
        state_db: Some(basic.join("state.db")),
        roles_file: Some(basic.join("roles.json")),
        run_id: Some("abc12345-def6-4890-a1b2-c3d4e5f60718".parse().unwrap()),
        at: crate::time::parse_rfc3339("2024-01-31T12:00:00+00:00"),
        ..Inputs::default()
    };
    let render = |cfg: &Config| format::render(&build::build(cfg, &inputs).unwrap()).unwrap();
    let mut checked = 0;
    for (name, want) in expected["cases"].as_object().unwrap() {
        let path = dir.join("cases").join(format!("{name}.yaml"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Process-wide env vars would race other tests: only cases without `# env:`.
        if want.get("stage").is_some()
            || !case_env(&text).is_empty()
            || INTENDED.iter().any(|(n, _)| n == name)
        {
            continue;
        }
        let cfg = Config::parse(&path, &text).unwrap();
        let mut plain = format!("github: {{org: {}}}\nscoring:\n", want["github.org"]);
        plain += &format!("  period_days: {}\n", want["scoring.period_days"]);
        if let Some(w) = want["scoring.weights.pr_merged"].as_i64() {
            plain += &format!("  weights: {{pr_merged: {w}}}\n");
        }
        if let Some(dw) = want["scoring.difficulty_weights"].as_array() {
            plain += "  difficulty_weights:\n";
            for pair in dw {
                plain += &format!("    {}: {}\n", pair[0], pair[1]);
            }
        }
        plain += "identity_mappings: []\n";
        for pair in want["identity_mappings"].as_array().unwrap() {
            plain = plain.replace("identity_mappings: []\n", "identity_mappings:\n");
            plain += &format!(
                "  - {{github_user: {}, discord_user_id: {}}}\n",
                pair[0], pair[1]
            );
        }
        let reference = Config::parse(Path::new("plain.yaml"), &plain).unwrap();
        assert_eq!(render(&cfg), render(&reference), "{name}");
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} cases checked");
}

#[test]
fn unset_variable_errors_name_key_and_variable() {
    let err = Config::parse_with(
        Path::new("c.yaml"),
        "github: {org: o}\nscoring: {period_days: '${DAYS}'}\n",
        &|_| None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnsetVariable { key, var, .. } if key == "scoring.period_days" && var == "DAYS"),
        "{err}"
    );
}
