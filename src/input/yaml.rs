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
use std::fmt;
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
    /// `list`. Shared (`Rc`) as PyYAML shares the object of an anchored node.
    Seq(Rc<Vec<Value>>),
    /// `dict`: keys in first-insertion order, each with the last value given for it (what a
    /// Python dict does with PyYAML's duplicate keys).
    Map(Rc<Vec<(Value, Value)>>),
    /// `set`: `!!set`, the keys of a mapping.
    Set(Rc<Vec<Value>>),
    /// A `list` of 2-`tuple`s: `!!omap` and `!!pairs` (order and repeats kept).
    Pairs(Rc<Vec<(Value, Value)>>),
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
            Value::Set(_) => "a set (!!set)",
            Value::Pairs(_) => "a list of pairs (!!omap, !!pairs)",
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
            Value::Seq(_) | Value::Map(_) | Value::Set(_) | Value::Pairs(_) => "?".into(),
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
            let root = compose(&mut events, &mut HashMap::new(), &mut Vec::new(), 0)?;
            construct_document(&root)
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

/// How deep collections may nest. PyYAML itself fails with Python's `RecursionError` (which
/// Gitcord does not catch) a little under 500 levels; no real config goes past ten.
pub const MAX_DEPTH: usize = 256;

/// A node of the document graph. An alias is the anchored node itself (an `Rc` to it),
/// never a copy, so the graph is never larger than the text: the "billion laughs" shape
/// costs one node per alias, as in PyYAML's composer.
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
    // Anchors of the collections being composed (0 for none): an alias to one is recursive.
    open: &mut Vec<usize>,
    depth: usize,
) -> Result<Rc<Node>, YamlError> {
    if depth > MAX_DEPTH {
        return Err(YamlError(format!(
            "collections nested more than {MAX_DEPTH} levels deep (PyYAML itself fails with a RecursionError a little under 500)"
        )));
    }
    let ev = events
        .next()
        .ok_or_else(|| YamlError("unexpected end of the YAML stream".into()))?;
    let (node, anchor) = match ev {
        Event::Alias(id) => {
            return anchors.get(&id).cloned().ok_or_else(|| match open.contains(&id) {
                // PyYAML builds a structure that contains itself; Gitcord's `${VAR}` walk
                // then recurses until Python gives up (an uncaught RecursionError).
                true => YamlError(
                    "an alias inside the node its anchor names (a recursive structure, which Gitcord's loader cannot read either)".into(),
                ),
                false => YamlError("found an undefined alias (PyYAML's ComposerError)".into()),
            });
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
            open.push(anchor);
            let mut items = Vec::new();
            while !matches!(events.peek(), Some(Event::SequenceEnd) | None) {
                items.push(compose(events, anchors, open, depth + 1)?);
            }
            open.pop();
            events.next();
            let tag = tag_string(tag);
            (Node::Seq { items, tag }, anchor)
        }
        Event::MappingStart(_, anchor, tag) => {
            open.push(anchor);
            let mut pairs = Vec::new();
            while !matches!(events.peek(), Some(Event::MappingEnd) | None) {
                let k = compose(events, anchors, open, depth + 1)?;
                let v = compose(events, anchors, open, depth + 1)?;
                pairs.push((k, v));
            }
            open.pop();
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

/// How many values the document may hold once every alias is followed (what a walk over
/// the whole tree visits, as Gitcord's `${VAR}` expansion does), and how many key/value
/// pairs merge keys may copy in all. A real config holds a few hundred; the "billion
/// laughs" shape (nine levels of ten aliases, 1.2 KB) holds 10^9 and is refused at once.
pub const EXPANSION_BUDGET: u64 = 100_000;

fn unknown_tag(tag: &str) -> YamlError {
    YamlError(format!(
        "could not determine a constructor for the tag '{tag}' (PyYAML's safe_load refuses it)"
    ))
}

fn is_merge_key(node: &Node) -> bool {
    matches!(node, Node::Scalar { value, plain, tag } if scalar_kind(value, *plain, tag) == format!("{CORE}merge"))
}

/// A dict key as Python hashes and compares it: `1 == 1.0 == True`, so such keys collide.
#[derive(Hash, PartialEq, Eq)]
enum KeyId {
    Null,
    Num(i128),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Timestamp(String),
    /// NaN is never equal to another NaN key.
    Unique(usize),
}

/// The flattened pairs of a mapping: constructed keys (deduplicated as a dict does) and the
/// value nodes, not yet constructed.
type Flat = Rc<Vec<(Value, Rc<Node>)>>;

/// SafeConstructor with PyYAML's object sharing: each node is constructed once and every
/// alias to it gets the same value (an `Rc`), so construction costs the document's size,
/// not the size of the tree it stands for.
struct Constructor {
    values: HashMap<*const Node, Value>,
    flat: HashMap<*const Node, Flat>,
    /// Pairs merge keys may still copy.
    merge_budget: u64,
    /// Where construction is, for messages: `snapshots.branch`, `x[3]`.
    path: Vec<String>,
    nan_keys: usize,
}

impl Constructor {
    fn here(&self) -> String {
        let mut out = String::new();
        for part in &self.path {
            if !part.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
        out
    }

    /// Whether construction is at a secret: a `token` key (`github.token`, `discord.token`,
    /// `snapshots.token`) or anything inside one.
    fn at_secret(&self) -> bool {
        self.path.iter().any(|p| p == "token")
    }

    /// PyYAML's unknown-tag error; the tag itself is not shown at a secret (a token pasted
    /// after a `!` is a tag).
    fn unknown_tag(&self, tag: &str) -> YamlError {
        match self.at_secret() {
            true => self.err(
                "has a tag PyYAML's safe_load has no constructor for (not shown at a token key)",
            ),
            false => self.err(unknown_tag(tag)),
        }
    }

    /// An error at the current key path (never the value: it may be a token).
    fn err(&self, what: impl fmt::Display) -> YamlError {
        match self.path.is_empty() {
            true => YamlError(what.to_string()),
            false => YamlError(format!("{}: {what}", self.here())),
        }
    }

    fn key_id(&mut self, key: &Value) -> Result<KeyId, YamlError> {
        Ok(match key {
            Value::Null => KeyId::Null,
            Value::Bool(b) => KeyId::Num(i128::from(*b)),
            Value::Int(i) => KeyId::Num(*i),
            Value::Float(f) if f.is_nan() => {
                self.nan_keys += 1;
                KeyId::Unique(self.nan_keys)
            }
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => KeyId::Num(*f as i128),
            Value::Float(f) => KeyId::Float(f.to_bits()),
            Value::Str(s) => KeyId::Str(s.clone()),
            Value::Bytes(b) => KeyId::Bytes(b.clone()),
            Value::Timestamp(t) => KeyId::Timestamp(t.clone()),
            _ => return Err(self.err(UNHASHABLE)),
        })
    }

    /// SafeConstructor.flatten_mapping then dict construction: merged pairs go first, so the
    /// mapping's own keys win; several `<<` keys apply in order; in `<<: [*a, *b]` the earlier
    /// mapping wins (the merge spec and PyYAML up to 6.0.3; see the README on 6.0.4). A key
    /// keeps its first place and its last value, as a dict does.
    fn flatten(&mut self, node: &Rc<Node>) -> Result<Flat, YamlError> {
        let ptr = Rc::as_ptr(node);
        if let Some(done) = self.flat.get(&ptr) {
            return Ok(Rc::clone(done));
        }
        let Node::Map { pairs, .. } = &**node else {
            return Err(self.err("expected a mapping node (PyYAML's ConstructorError)"));
        };
        let mut out: Vec<(Value, Rc<Node>)> = Vec::new();
        let mut index: HashMap<KeyId, usize> = HashMap::new();
        let mut own = Vec::new();
        let mut merged: Vec<Flat> = Vec::new();
        for (k, v) in pairs {
            if !is_merge_key(k) {
                own.push((k, v));
                continue;
            }
            match &**v {
                Node::Map { .. } => merged.push(self.flatten(v)?),
                Node::Seq { items, .. } => {
                    for item in items.iter().rev() {
                        match &**item {
                            Node::Map { .. } => merged.push(self.flatten(item)?),
                            _ => {
                                return Err(self.err(
                                    "expected a mapping for merging (PyYAML's ConstructorError)",
                                ))
                            }
                        }
                    }
                }
                Node::Scalar { .. } => {
                    return Err(self.err(
                        "expected a mapping or list of mappings for merging, but found a scalar (PyYAML's ConstructorError)",
                    ))
                }
            }
        }
        let mut put = |this: &mut Self, key: Value, value: Rc<Node>| -> Result<(), YamlError> {
            let id = this.key_id(&key)?;
            match index.get(&id) {
                Some(&i) => out[i].1 = value,
                None => {
                    index.insert(id, out.len());
                    out.push((key, value));
                }
            }
            Ok(())
        };
        for sub in merged {
            let cost = sub.len() as u64;
            if cost > self.merge_budget {
                return Err(self.err(format_args!(
                    "merge keys (<<) copy more than {EXPANSION_BUDGET} key/value pairs in all; \
                     refused rather than expanded (a \"billion laughs\" shape?)"
                )));
            }
            self.merge_budget -= cost;
            for (key, value) in sub.iter() {
                put(self, key.clone(), Rc::clone(value))?;
            }
        }
        for (k, v) in own {
            if !matches!(&**k, Node::Scalar { .. }) {
                return Err(self.err(UNHASHABLE));
            }
            let key = self.construct(k, true)?;
            put(self, key, Rc::clone(v))?;
        }
        let out = Rc::new(out);
        self.flat.insert(ptr, Rc::clone(&out));
        Ok(out)
    }

    fn construct(&mut self, node: &Rc<Node>, is_key: bool) -> Result<Value, YamlError> {
        let ptr = Rc::as_ptr(node);
        if let Some(done) = self.values.get(&ptr) {
            return Ok(done.clone());
        }
        let value = match &**node {
            Node::Scalar { value, plain, tag } => {
                let tag = scalar_kind(value, *plain, tag);
                return match tag.strip_prefix(CORE) {
                    Some(kind) => construct_scalar(kind, value, is_key).map_err(|e| match e {
                        Some(what) => self.err(format_args!("{what} (the value is not shown)")),
                        None => self.unknown_tag(&tag),
                    }),
                    None => Err(self.unknown_tag(&tag)),
                };
            }
            Node::Seq { items, tag } => match tag.as_deref() {
                None | Some("tag:yaml.org,2002:seq") => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(format!("[{i}]"));
                        out.push(self.construct(item, false)?);
                        self.path.pop();
                    }
                    Value::Seq(Rc::new(out))
                }
                // construct_yaml_omap / construct_yaml_pairs: a list of one-pair mappings
                // (taken as written: no merge, no deduplication) becomes a list of tuples.
                Some(t @ ("tag:yaml.org,2002:omap" | "tag:yaml.org,2002:pairs")) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(format!("[{i}]"));
                        let Node::Map { pairs, .. } = &**item else {
                            return Err(self.err(format_args!(
                                "while constructing {}, expected a mapping of length 1 (PyYAML's ConstructorError)",
                                &t[CORE.len()..]
                            )));
                        };
                        let [(k, v)] = pairs.as_slice() else {
                            return Err(self.err(format_args!(
                                "while constructing {}, expected a single mapping item (PyYAML's ConstructorError)",
                                &t[CORE.len()..]
                            )));
                        };
                        let key = self.construct(k, true)?;
                        let value = self.construct(v, false)?;
                        out.push((key, value));
                        self.path.pop();
                    }
                    Value::Pairs(Rc::new(out))
                }
                Some(t) => return Err(self.unknown_tag(t)),
            },
            Node::Map { tag, .. } => match tag.as_deref() {
                None | Some("tag:yaml.org,2002:map") => {
                    let flat = self.flatten(node)?;
                    let mut out = Vec::with_capacity(flat.len());
                    for (key, v) in flat.iter() {
                        self.path.push(key.key_repr());
                        out.push((key.clone(), self.construct(v, false)?));
                        self.path.pop();
                    }
                    Value::Map(Rc::new(out))
                }
                // construct_yaml_set: the mapping's keys (merges applied), values ignored.
                Some("tag:yaml.org,2002:set") => {
                    let flat = self.flatten(node)?;
                    Value::Set(Rc::new(flat.iter().map(|(k, _)| k.clone()).collect()))
                }
                Some(t) => return Err(self.unknown_tag(t)),
            },
        };
        self.values.insert(ptr, value.clone());
        Ok(value)
    }
}

const UNHASHABLE: &str =
    "found an unhashable key (a list or mapping as a mapping key; PyYAML's ConstructorError)";

/// Builds the value of `root`, then refuses it if the tree it stands for (every alias
/// followed) holds more than [`EXPANSION_BUDGET`] values, naming the deepest mapping key
/// that alone goes past it.
fn construct_document(root: &Rc<Node>) -> Result<Value, YamlError> {
    let mut c = Constructor {
        values: HashMap::new(),
        flat: HashMap::new(),
        merge_budget: EXPANSION_BUDGET,
        path: Vec::new(),
        nan_keys: 0,
    };
    let value = c.construct(root, false)?;
    let mut sizes = HashMap::new();
    if tree_size(&value, &mut sizes) > EXPANSION_BUDGET {
        let mut path = Vec::new();
        let mut at = &value;
        'down: while let Value::Map(pairs) = at {
            for (k, v) in pairs.iter() {
                if tree_size(v, &mut sizes) > EXPANSION_BUDGET {
                    path.push(k.key_repr());
                    at = v;
                    continue 'down;
                }
            }
            break;
        }
        let what = match path.is_empty() {
            true => "the document".to_owned(),
            false => path.join("."),
        };
        return Err(YamlError(format!(
            "{what} stands for more than {EXPANSION_BUDGET} values once its aliases are \
             followed (a \"billion laughs\" shape?); refused rather than expanded \
             (Gitcord's own loader would not finish reading it)"
        )));
    }
    Ok(value)
}

/// How many values a walk of the whole tree visits (keys included), computed once per
/// shared value; saturates instead of overflowing.
fn tree_size(v: &Value, memo: &mut HashMap<*const (), u64>) -> u64 {
    let ptr = match v {
        Value::Seq(items) | Value::Set(items) => Rc::as_ptr(items).cast::<()>(),
        Value::Map(pairs) | Value::Pairs(pairs) => Rc::as_ptr(pairs).cast::<()>(),
        _ => return 1,
    };
    if let Some(&n) = memo.get(&ptr) {
        return n;
    }
    let n = match v {
        Value::Seq(items) | Value::Set(items) => items
            .iter()
            .fold(1u64, |n, i| n.saturating_add(tree_size(i, memo))),
        Value::Map(pairs) | Value::Pairs(pairs) => pairs.iter().fold(1u64, |n, (k, v)| {
            n.saturating_add(tree_size(k, memo))
                .saturating_add(tree_size(v, memo))
        }),
        _ => 1,
    };
    memo.insert(ptr, n);
    n
}

/// One of PyYAML's SafeConstructor scalar constructors; `Err(None)` for a tag it has none
/// for. The message never holds the value: it may be a token.
fn construct_scalar(kind: &str, v: &str, is_key: bool) -> Result<Value, Option<String>> {
    let bad = |what: &str| Some(format!("not a valid YAML {what}"));
    Ok(match kind {
        "str" => Value::Str(v.to_owned()),
        "null" => Value::Null,
        "bool" => match v.to_lowercase().as_str() {
            "yes" | "true" | "on" => Value::Bool(true),
            "no" | "false" | "off" => Value::Bool(false),
            _ => return Err(bad("boolean (!!bool)")),
        },
        "int" => Value::Int(construct_int(v).ok_or_else(|| bad("integer (!!int)"))?),
        "float" => Value::Float(construct_float(v).ok_or_else(|| bad("float (!!float)"))?),
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

#[cfg(test)]
mod hostile;
