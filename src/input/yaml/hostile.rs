//! Hostile configs: alias bombs, budgets, recursion, secrets in errors.

use super::*;
use std::time::{Duration, Instant};

/// `levels` anchors of ten aliases each to the one before: 10^levels values in 1 KB.
pub(crate) fn laughs(prefix: &str, levels: usize) -> String {
    let mut out = format!("{prefix}0: &a0 [{}]\n", ["\"lol\""; 10].join(", "));
    for i in 1..=levels {
        let items = vec![format!("*a{}", i - 1); 10].join(", ");
        out += &format!("{prefix}{i}: &a{i} [{items}]\n");
    }
    out
}

#[test]
fn billion_laughs_is_refused_at_once_naming_the_key() {
    let text = laughs("x-a", 9);
    assert!(text.len() < 1300, "{}", text.len());
    let start = Instant::now();
    let err = safe_load(&text).unwrap_err().to_string();
    assert!(start.elapsed() < Duration::from_secs(1));
    // x-a4 is the first key that alone stands for more than the budget (111,111 values).
    assert!(
        err.starts_with("x-a4 stands for more than 100000 values"),
        "{err}"
    );
}

#[test]
fn shared_values_are_built_once() {
    // Under the budget: 10 + 100 + 1,000 + 10,000 leaves, 5 anchors.
    let v = safe_load(&laughs("k", 3)).unwrap();
    let Value::Map(top) = &v else { panic!() };
    let (Value::Seq(a3), Value::Seq(a2)) = (&top[3].1, &top[2].1) else {
        panic!()
    };
    // The aliases are the anchored list itself, not copies of it.
    assert!(a3
        .iter()
        .all(|x| matches!(x, Value::Seq(s) if Rc::ptr_eq(s, a2))));
}

#[test]
fn merge_bombs_cost_the_document_not_the_tree() {
    // yaml/pyyaml#916's shape: each level merges eight copies of the level below.
    let mut text = String::from("n0: &n0 {k0: 0, k1: 1, k2: 2, k3: 3}\n");
    for level in 1..=12 {
        let below = level - 1;
        for i in 0..8 {
            text += &format!("m{level}_{i}: &m{level}_{i} {{<<: *n{below}}}\n");
        }
        let all = (0..8)
            .map(|i| format!("*m{level}_{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        text += &format!("n{level}: &n{level} {{<<: [{all}]}}\n");
    }
    let start = Instant::now();
    let v = safe_load(&text).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(v.get("n12").unwrap().get("k3"), Some(&Value::Int(3)));
    // Merging a large mapping many times runs out of the budget, naming where.
    let big = (0..2000)
        .map(|i| format!("k{i}: {i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!("base: &b {{{big}}}\n");
    for i in 0..60 {
        text += &format!("copy{i}: {{<<: *b}}\n");
    }
    let err = safe_load(&text).unwrap_err().to_string();
    assert!(
        err.starts_with("copy50: merge keys (<<) copy more than"),
        "{err}"
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    // The event parser stops at its own recursion limit (256); the composer has one too.
    let err = safe_load(&deep).unwrap_err().to_string();
    assert!(
        err.contains("recursion limit") || err.contains("nested more than"),
        "{err}"
    );
    let ok = format!("a: {}{}\n", "[".repeat(200), "]".repeat(200));
    assert!(safe_load(&ok).is_ok());
}

#[test]
fn set_omap_pairs_as_safe_load_builds_them() {
    let v =
        safe_load("s: !!set {a, b, a}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}, {a: 2}]\n")
            .unwrap();
    let s = |x: &str| Value::Str(x.into());
    assert_eq!(v.get("s"), Some(&Value::Set(Rc::new(vec![s("a"), s("b")]))));
    assert_eq!(
        v.get("o"),
        Some(&Value::Pairs(Rc::new(vec![
            (s("a"), Value::Int(1)),
            (s("b"), Value::Int(2))
        ])))
    );
    assert_eq!(
        v.get("p"),
        Some(&Value::Pairs(Rc::new(vec![
            (s("a"), Value::Int(1)),
            (s("a"), Value::Int(2))
        ])))
    );
    for bad in [
        "x: !!omap [{a: 1, b: 2}]\n",
        "x: !!omap {a: 1}\n",
        "x: !!set [a]\n",
    ] {
        let err = safe_load(bad).unwrap_err().to_string();
        assert!(err.starts_with("x"), "{bad}: {err}");
    }
}

#[test]
fn recursive_aliases_are_refused_as_such() {
    for text in [
        "a: &a [*a]\n",
        "a: &a {b: *a}\n",
        "a: &a {<<: *a}\n",
        "a: &a [[*a]]\n",
    ] {
        let err = safe_load(text).unwrap_err().to_string();
        assert!(err.contains("recursive structure"), "{text}: {err}");
    }
    let undefined = safe_load("a: *nope\n").unwrap_err().to_string();
    assert!(!undefined.contains("recursive"), "{undefined}");
    // An anchor redefined later: the alias takes the nearest definition before it.
    let v = safe_load("a: &x 1\nb: &x 2\nc: *x\n").unwrap();
    assert_eq!(v.get("c"), Some(&Value::Int(2)));
}

#[test]
fn merge_lists_follow_the_spec_order() {
    let v = safe_load(
        "a: &a {kk: 1, k: 1}\nb: &b {kk: 2, k: 2, only_b: 2}\nc: &c {kk: 3}\n\
         r:\n  <<: [*a, *b, *c]\n  own: 0\n",
    )
    .unwrap();
    let r = v.get("r").unwrap();
    assert_eq!(r.get("kk"), Some(&Value::Int(1)));
    assert_eq!(r.get("k"), Some(&Value::Int(1)));
    assert_eq!(r.get("only_b"), Some(&Value::Int(2)));
    let Value::Map(pairs) = r else { panic!() };
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.key_repr()).collect();
    // PyYAML 6.0.3's order: the last mapping's pairs first, then the mapping's own.
    assert_eq!(keys, ["kk", "k", "only_b", "own"]);
}

#[test]
fn values_never_appear_in_constructor_errors() {
    for text in [
        "github: {token: !!binary ghp_SECRET-not-base64}\n",
        "github: {token: !!int ghp_SECRET}\n",
        "github: {token: !!float ghp_SECRET}\n",
        "github: {token: !!bool ghp_SECRET}\n",
    ] {
        let err = safe_load(text).unwrap_err().to_string();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.starts_with("github.token: not a valid YAML"), "{err}");
    }
}
