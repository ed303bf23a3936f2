//! YAML as PyYAML's `yaml.safe_load` reads it.
//!
//! Gitcord loads its config with PyYAML, which implements YAML 1.1: `yes`/`on` are booleans,
//! `030` is octal 24, `1:30` is 90, `<<` merges mappings, a duplicate key silently replaces the
//! earlier value, and a plain `2024-01-01` is a date. A YAML 1.2 reader disagrees on all of
//! these, so the same file would mean something else to us than to the bot that writes
//! `state.db`. This module takes the events of serde-saphyr's parser (syntax is the same in
//! 1.1 and 1.2 for everything PyYAML accepts) and applies PyYAML's own rules on top: its
//! implicit resolvers (the regexes below are verbatim from PyYAML's `resolver.py`), its
//! constructors, its composer (aliases, one document only) and the few reader/scanner
//! refusals the event parser does not share (non-printable characters, tabs between tokens,
//! a second byte-order mark).
//!
//! The result is a small generic tree, [`Value`], shaped like the Python objects `safe_load`
//! returns. Typing and validation happen in [`crate::input::config`].

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use regex::Regex;
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle};

/// A value as `yaml.safe_load` returns it, Python type for Python type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`: `~`, `null`, an empty plain scalar.
    Null,
    /// `bool`: YAML 1.1 spellings (`yes`, `off`, ...).
    Bool(bool),
    /// `int`: decimal, `0b`, `0x`, legacy octal `0..`, sexagesimal `1:30`, `_` separators.
    Int(i128),
    /// `float`, including `.inf` and `.nan`.
    Float(f64),
    /// `str`: quoted or block scalars, plain scalars no resolver claims, `!!str`.
    Str(String),
    /// `bytes`: `!!binary` (pydantic's `str` decodes it as UTF-8).
    Bytes(Vec<u8>),
    /// `datetime.date` / `datetime.datetime` (text kept: nothing we read accepts one).
    Timestamp(String),
    /// `list`.
    Seq(Vec<Value>),
    /// `dict`: keys in first-insertion order, each with the last value given for it (what a
    /// Python dict does with PyYAML's duplicate keys).
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// What kind of value this is, for messages (never the value itself: it may be a token).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "binary data",
            Value::Timestamp(_) => "a date",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The key as pydantic prints it in an error location (`1`, `None`, ...).
    pub fn key_repr(&self) -> String {
        match self {
            Value::Null => "None".into(),
            Value::Bool(b) => u8::from(*b).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) | Value::Timestamp(s) => s.clone(),
            Value::Bytes(_) => "bytes".into(),
            Value::Seq(_) | Value::Map(_) => "?".into(),
        }
    }

    /// Python `==` between hashable keys: `1 == 1.0 == True`, so such keys collide in a dict.
    fn key_eq(&self, other: &Value) -> bool {
        fn num(v: &Value) -> Option<f64> {
            match v {
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                Value::Int(i) => Some(*i as f64),
                Value::Float(f) => Some(*f),
                _ => None,
            }
        }
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Null, Value::Null) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            _ => match (num(self), num(other)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    /// `dict[key] = value`: an equal key keeps its place (and its first spelling).
    fn insert(pairs: &mut Vec<(Value, Value)>, key: Value, value: Value) {
        if let Some(slot) = pairs.iter_mut().find(|(k, _)| k.key_eq(&key)) {
            slot.1 = value;
        } else {
            pairs.push((key, value));
        }
    }
}

/// Why PyYAML would refuse the text; the message names PyYAML's error class and, where known,
/// the line and column.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(String);

/// Parses `text` as `yaml.safe_load(text)` does. `Ok(Value::Null)` for an empty stream.
///
/// `text` must already have universal newlines (`\r\n` and `\r` as `\n`), as Python's
/// text-mode read gives PyYAML.
pub fn safe_load(text: &str) -> Result<Value, YamlError> {
    check_printable(text)?;
    // PyYAML drops one U+FEFF at the very start. The event parser would also drop a second
    // one, which PyYAML reads as content of the first key: refuse instead of guessing.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.starts_with('\u{feff}') {
        return Err(YamlError(
            "a second byte-order mark at the start of the file (PyYAML would read it as part of the first key)".into(),
        ));
    }
    let mut opts = Options::default();
    // Like PyYAML: a U+FEFF later in the text is content.
    opts.bom_inside_document_as_content = true;
    // Comment spans are needed for the tab rule below.
    opts.emit_comments = true;
    let mut events = Vec::new();
    for ev in Parser::new_from_str_with_options(text, opts) {
        let (ev, span) = ev.map_err(|e| YamlError(format!("YAML syntax error: {e}")))?;
        events.push((ev, span.start.index(), span.end.index()));
    }
    check_tabs(text, &events)?;

    let docs = events
        .iter()
        .filter(|(e, _, _)| matches!(e, Event::DocumentStart(..)))
        .count();
    if docs > 1 {
        return Err(YamlError(
            "expected a single document in the stream, found several (PyYAML's ComposerError)"
                .into(),
        ));
    }
    let mut events = events
        .into_iter()
        .map(|(e, _, _)| e)
        .filter(|e| !matches!(e, Event::Comment(..)))
        .skip_while(|e| !matches!(e, Event::DocumentStart(..)))
        .skip(1)
        .peekable();
    match events.peek() {
        None | Some(Event::DocumentEnd) => Ok(Value::Null),
        Some(_) => {
            let root = compose(&mut events, &mut HashMap::new())?;
            construct(&root, false)
        }
    }
}

// ---- reader and scanner rules the event parser does not share -----------------------------

/// Line and column (1-based) of the `index`-th character, for messages.
fn position(text: &str, index: usize) -> String {
    let before: Vec<char> = text.chars().take(index).collect();
    let line = before.iter().filter(|c| **c == '\n').count() + 1;
    let column = before.iter().rev().take_while(|c| **c != '\n').count() + 1;
    format!("line {line} column {column}")
}

/// PyYAML's reader refuses these code points anywhere in the stream, comments included.
fn check_printable(text: &str) -> Result<(), YamlError> {
    let bad = text.chars().position(|ch| {
        !matches!(ch, '\t' | '\n' | '\r' | '\x20'..='\x7e' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
            | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
    });
    match bad {
        None => Ok(()),
        Some(i) => {
            let ch = text.chars().nth(i).map_or(0, u32::from);
            Err(YamlError(format!(
                "unacceptable character #x{ch:04x} at {}: special characters are not allowed (PyYAML's ReaderError)",
                position(text, i)
            )))
        }
    }
}

/// PyYAML's scanner only skips spaces between tokens: a tab outside a quoted or block scalar
/// and outside a comment "cannot start any token". YAML 1.2 parsers allow it as whitespace.
fn check_tabs(text: &str, events: &[(Event<'_>, usize, usize)]) -> Result<(), YamlError> {
    let allowed: Vec<(usize, usize)> = events
        .iter()
        .filter(|(ev, _, _)| match ev {
            Event::Scalar(_, style, _, _) => !matches!(style, ScalarStyle::Plain),
            Event::Comment(..) => true,
            _ => false,
        })
        .map(|(_, start, end)| (*start, *end))
        .collect();
    let tab = text
        .chars()
        .enumerate()
        .find(|&(i, ch)| ch == '\t' && !allowed.iter().any(|&(s, e)| s <= i && i < e));
    match tab {
        None => Ok(()),
        Some((i, _)) => Err(YamlError(format!(
            "found a tab character that cannot start any token at {} (PyYAML allows tabs only inside quoted or block scalars and comments)",
            position(text, i)
        ))),
    }
}

// ---- composer ---------------------------------------------------------------------------

/// A node of the document graph: aliases share the anchored node.
enum Node {
    Scalar {
        value: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq {
        items: Vec<Rc<Node>>,
        tag: Option<String>,
    },
    Map {
        pairs: Vec<(Rc<Node>, Rc<Node>)>,
        tag: Option<String>,
    },
}

type Events<'a, I> = std::iter::Peekable<I>;

fn tag_string(
    tag: Option<std::borrow::Cow<'_, serde_saphyr::granit_parser::Tag>>,
) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle(), t.suffix()))
}

fn compose<'a, I: Iterator<Item = Event<'a>>>(
    events: &mut Events<'a, I>,
    anchors: &mut HashMap<usize, Rc<Node>>,
) -> Result<Rc<Node>, YamlError> {
    let ev = events
        .next()
        .ok_or_else(|| YamlError("unexpected end of the YAML stream".into()))?;
    let (node, anchor) = match ev {
        Event::Alias(id) => {
            return anchors.get(&id).cloned().ok_or_else(|| {
                YamlError("found an undefined alias (PyYAML's ComposerError)".into())
            })
        }
        Event::Scalar(value, style, anchor, tag) => (
            Node::Scalar {
                value: value.into_owned(),
                plain: matches!(style, ScalarStyle::Plain),
                tag: tag_string(tag),
            },
            anchor,
        ),
        Event::SequenceStart(_, anchor, tag) => {
            let mut items = Vec::new();
            while !matches!(events.peek(), Some(Event::SequenceEnd) | None) {
                items.push(compose(events, anchors)?);
            }
            events.next();
            let tag = tag_string(tag);
            (Node::Seq { items, tag }, anchor)
        }
        Event::MappingStart(_, anchor, tag) => {
            let mut pairs = Vec::new();
            while !matches!(events.peek(), Some(Event::MappingEnd) | None) {
                let k = compose(events, anchors)?;
                let v = compose(events, anchors)?;
                pairs.push((k, v));
            }
            events.next();
            let tag = tag_string(tag);
            (Node::Map { pairs, tag }, anchor)
        }
        other => return Err(YamlError(format!("unexpected YAML event {other:?}"))),
    };
    let node = Rc::new(node);
    if anchor != 0 {
        anchors.insert(anchor, Rc::clone(&node));
    }
    Ok(node)
}

// ---- resolver ---------------------------------------------------------------------------

const CORE: &str = "tag:yaml.org,2002:";

struct Resolvers {
    bool_: Regex,
    float: Regex,
    int: Regex,
    null: Regex,
    timestamp: Regex,
}

fn resolvers() -> &'static Resolvers {
    static R: OnceLock<Resolvers> = OnceLock::new();
    let re = |p: &str| Regex::new(p).expect("a valid constant regex");
    // PyYAML 6 resolver.py, Resolver.add_implicit_resolver calls (re.X whitespace removed).
    R.get_or_init(|| Resolvers {
        bool_: re(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
        float: re(concat!(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?",
            r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        )),
        int: re(concat!(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)",
            r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
        )),
        null: re(r"^(?:~|null|Null|NULL|)$"),
        timestamp: re(concat!(
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]",
            r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]",
            r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
        )),
    })
}

/// The tag PyYAML's SafeLoader gives a scalar: explicit, or resolved from a plain scalar's
/// text in PyYAML's resolver order; quoted and block scalars are strings.
fn scalar_kind(value: &str, plain: bool, tag: &Option<String>) -> String {
    match tag {
        Some(t) if t == "!" => format!("{CORE}str"),
        Some(t) => t.clone(),
        None if plain => {
            let r = resolvers();
            let kind = if r.bool_.is_match(value) {
                "bool"
            } else if r.float.is_match(value) {
                "float"
            } else if r.int.is_match(value) {
                "int"
            } else if value == "<<" {
                "merge"
            } else if r.null.is_match(value) {
                "null"
            } else if r.timestamp.is_match(value) {
                "timestamp"
            } else if value == "=" {
                "value"
            } else {
                "str"
            };
            format!("{CORE}{kind}")
        }
        None => format!("{CORE}str"),
    }
}

// ---- constructor ------------------------------------------------------------------------

fn unknown_tag(tag: &str) -> YamlError {
    YamlError(format!(
        "could not determine a constructor for the tag '{tag}' (PyYAML's safe_load refuses it)"
    ))
}

fn is_merge_key(node: &Node) -> bool {
    matches!(node, Node::Scalar { value, plain, tag } if scalar_kind(value, *plain, tag) == format!("{CORE}merge"))
}

/// SafeConstructor.flatten_mapping: merged pairs go first, so the mapping's own keys win;
/// several `<<` keys apply in order; in `<<: [*a, *b]` the earlier mapping wins (the merge
/// spec and PyYAML up to 6.0.3; 6.0.4 differs by mistake, yaml/pyyaml#953).
#[allow(clippy::type_complexity)]
fn flatten(pairs: &[(Rc<Node>, Rc<Node>)]) -> Result<Vec<(Rc<Node>, Rc<Node>)>, YamlError> {
    let mut merged = Vec::new();
    let mut own = Vec::new();
    for (k, v) in pairs {
        if !is_merge_key(k) {
            own.push((Rc::clone(k), Rc::clone(v)));
            continue;
        }
        match &**v {
            Node::Map { pairs: sub, .. } => merged.extend(flatten(sub)?),
            Node::Seq { items, .. } => {
                for item in items.iter().rev() {
                    match &**item {
                        Node::Map { pairs: sub, .. } => merged.extend(flatten(sub)?),
                        _ => {
                            return Err(YamlError(
                                "expected a mapping for merging (PyYAML's ConstructorError)"
                                    .into(),
                            ))
                        }
                    }
                }
            }
            Node::Scalar { .. } => {
                return Err(YamlError(
                    "expected a mapping or list of mappings for merging, but found a scalar (PyYAML's ConstructorError)".into(),
                ))
            }
        }
    }
    merged.extend(own);
    Ok(merged)
}

fn construct(node: &Node, is_key: bool) -> Result<Value, YamlError> {
    match node {
        Node::Scalar { value, plain, tag } => {
            let tag = scalar_kind(value, *plain, tag);
            match tag.strip_prefix(CORE) {
                Some(kind) => construct_scalar(kind, value, is_key).map_err(|e| match e {
                    Some(e) => e,
                    None => unknown_tag(&tag),
                }),
                None => Err(unknown_tag(&tag)),
            }
        }
        Node::Seq { items, tag } => {
            if let Some(t) = tag.as_deref().filter(|t| *t != "tag:yaml.org,2002:seq") {
                return Err(unknown_tag(t));
            }
            items
                .iter()
                .map(|n| construct(n, false))
                .collect::<Result<_, _>>()
                .map(Value::Seq)
        }
        Node::Map { pairs, tag } => {
            if let Some(t) = tag.as_deref().filter(|t| *t != "tag:yaml.org,2002:map") {
                return Err(unknown_tag(t));
            }
            let mut out = Vec::new();
            for (k, v) in flatten(pairs)? {
                if !matches!(&*k, Node::Scalar { .. }) {
                    return Err(YamlError(
                        "found an unhashable key (a list or mapping as a mapping key; PyYAML's ConstructorError)".into(),
                    ));
                }
                let key = construct(&k, true)?;
                let value = construct(&v, false)?;
                Value::insert(&mut out, key, value);
            }
            Ok(Value::Map(out))
        }
    }
}

/// One of PyYAML's SafeConstructor scalar constructors; `Err(None)` for a tag it has none for.
fn construct_scalar(kind: &str, v: &str, is_key: bool) -> Result<Value, Option<YamlError>> {
    let bad = |what: &str| Some(YamlError(format!("{v:?} is not a valid YAML {what}")));
    Ok(match kind {
        "str" => Value::Str(v.to_owned()),
        "null" => Value::Null,
        "bool" => match v.to_lowercase().as_str() {
            "yes" | "true" | "on" => Value::Bool(true),
            "no" | "false" | "off" => Value::Bool(false),
            _ => return Err(bad("boolean")),
        },
        "int" => Value::Int(construct_int(v).ok_or_else(|| bad("integer"))?),
        "float" => Value::Float(construct_float(v).ok_or_else(|| bad("float"))?),
        "timestamp" => Value::Timestamp(v.to_owned()),
        "binary" => Value::Bytes(base64(v).ok_or_else(|| bad("!!binary (base64)"))?),
        // A plain `=` only becomes a string as a mapping key (flatten_mapping); as a value
        // PyYAML has no constructor for it.
        "value" if is_key => Value::Str(v.to_owned()),
        _ => return Err(None),
    })
}

fn split_sign(v: &str) -> (bool, &str) {
    match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    }
}

fn construct_int(raw: &str) -> Option<i128> {
    let v = raw.replace('_', "");
    let (negative, v) = split_sign(&v);
    let n = if v == "0" {
        0
    } else if let Some(b) = v.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else if let Some(h) = v.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if v.starts_with('0') {
        i128::from_str_radix(v, 8).ok()?
    } else if v.contains(':') {
        v.split(':').try_fold(0i128, |n, part| {
            n.checked_mul(60)?.checked_add(part.parse::<i128>().ok()?)
        })?
    } else {
        v.parse().ok()?
    };
    Some(if negative { -n } else { n })
}

fn construct_float(raw: &str) -> Option<f64> {
    let v = raw.replace('_', "").to_lowercase();
    let (negative, v) = split_sign(&v);
    let n = if v == ".inf" {
        f64::INFINITY
    } else if v == ".nan" {
        f64::NAN
    } else if v.contains(':') {
        v.split(':')
            .try_fold(0.0, |n, part| Some(n * 60.0 + part.parse::<f64>().ok()?))?
    } else {
        v.parse().ok()?
    };
    Some(if negative { -n } else { n })
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
impl Value {
    /// `dict.get(key)` for a string key.
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Value {
        safe_load(text).unwrap()
    }

    #[test]
    fn resolves_plain_scalars_as_yaml_1_1() {
        let v = load("a: yes\nb: 030\nc: 1:30\nd: 0x1f\ne: ~\nf: '030'\ng: 2024-01-01\nh: 1_000\n");
        assert_eq!(v.get("a"), Some(&Value::Bool(true)));
        assert_eq!(v.get("b"), Some(&Value::Int(24)));
        assert_eq!(v.get("c"), Some(&Value::Int(90)));
        assert_eq!(v.get("d"), Some(&Value::Int(31)));
        assert_eq!(v.get("e"), Some(&Value::Null));
        assert_eq!(v.get("f"), Some(&Value::Str("030".into())));
        assert_eq!(v.get("g"), Some(&Value::Timestamp("2024-01-01".into())));
        assert_eq!(v.get("h"), Some(&Value::Int(1000)));
    }

    #[test]
    fn duplicates_last_wins_merges_apply() {
        let v = load("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nk: 1\nk: 2\n");
        assert_eq!(v.get("k"), Some(&Value::Int(2)));
        let m = v.get("m").unwrap();
        assert_eq!(m.get("x"), Some(&Value::Int(1)));
        assert_eq!(m.get("y"), Some(&Value::Int(3)));
    }

    #[test]
    fn refuses_what_pyyaml_refuses() {
        for bad in [
            "a:\tb\n",
            "a: !custom x\n",
            "a: 1\n---\nb: 2\n",
            "a: *nope\n",
            "a: \u{7}\n",
        ] {
            assert!(safe_load(bad).is_err(), "{bad:?}");
        }
        assert_eq!(load(""), Value::Null);
        assert_eq!(load("# only a comment\n"), Value::Null);
    }
}
