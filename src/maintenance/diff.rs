//! What changed between two published snapshots, in the terms a mentor asks about: who
//! linked or unlinked an account, whose score moved, who gained or lost a Discord role, which
//! issue requests were opened or resolved, whose contribution counts changed.
//!
//! Everything here is a pure function over the files' bytes ([`parse`]) or the parsed content
//! ([`compare`]), so the rules are tested without a repository; `commands::diff` only finds
//! the two snapshots. Parsing reads what readers of the data repository can meet, not just what
//! this exporter writes today: ids as strings or numbers, points as integers, floats or numeric
//! text, unknown fields ignored, absent count fields as zero.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::snapshot::format::{Published, CONTRIBUTORS, IDENTITIES, ISSUE_REQUESTS, ROLES, SCORES};
use crate::snapshot::model::Cell;

/// Why a snapshot's files could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A file is missing or not in the snapshot format.
    #[error("snapshot {snapshot}: {file} cannot be read: {reason}")]
    Invalid {
        /// The snapshot's directory name.
        snapshot: String,
        /// The offending file.
        file: &'static str,
        /// Where in the file and what is wrong.
        reason: String,
    },
}

/// An id or name as published: text, or a number when SQLite held one. Numbers are kept as
/// their decimal text so that `"123"` and `123` name the same user in both snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IdOrName(pub String);

impl fmt::Display for IdOrName {
    /// Control characters are escaped so that a name cannot break the one-line-per-change report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl From<&str> for IdOrName {
    fn from(s: &str) -> IdOrName {
        IdOrName(s.to_owned())
    }
}

impl IdOrName {
    /// An id or name: text, or a number as its decimal text; `null` is not one.
    fn from_cell(cell: &Cell) -> Result<IdOrName, String> {
        match cell {
            Cell::Text(t) => Ok(IdOrName(t.clone())),
            Cell::Int(i) => Ok(IdOrName(i.to_string())),
            Cell::Real(x) => Ok(IdOrName(x.to_string())),
            Cell::Null => Err("null where a string or a number is expected".into()),
        }
    }
}

/// A count or score as published: INTEGER normally, REAL if Gitcord ever stored one.
/// Integers stay exact; arithmetic falls back to floats only when a float is involved.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer value.
    Int(i64),
    /// A float value (always finite).
    Real(f64),
}

impl Default for Number {
    fn default() -> Number {
        Number::Int(0)
    }
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Real(x) => x,
        }
    }

    /// `other - self`, exact for integers.
    fn delta_to(self, other: Number) -> Number {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => b
                .checked_sub(a)
                .map_or(Number::Real(b as f64 - a as f64), Number::Int),
            _ => Number::Real(other.as_f64() - self.as_f64()),
        }
    }

    fn negated(self) -> Number {
        self.delta_to(Number::Int(0))
    }

    /// The value with its sign always shown, as deltas are written: `+12`, `-3`, `+0`.
    fn signed(self) -> String {
        if self.as_f64() < 0.0 {
            self.to_string()
        } else {
            format!("+{self}")
        }
    }
}

impl PartialEq for Number {
    /// Numeric equality: `150` and `150.0` are the same score.
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            _ => self.as_f64() == other.as_f64(),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Real(x) => write!(f, "{x}"),
        }
    }
}

impl Number {
    /// A count or score: a number, or TEXT that holds one (copied from an INTEGER column).
    fn from_cell(cell: &Cell) -> Result<Number, String> {
        match cell {
            Cell::Int(i) => Ok(Number::Int(*i)),
            Cell::Real(x) => Ok(Number::Real(*x)),
            Cell::Text(t) => {
                let v = t.trim();
                if let Ok(i) = v.parse::<i64>() {
                    return Ok(Number::Int(i));
                }
                match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(Number::Real(x)),
                    _ => Err(format!("{t:?} is not a number")),
                }
            }
            Cell::Null => Err("null where a number is expected".into()),
        }
    }
}

/// A verified link between a GitHub login and a Discord user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Identity {
    /// The GitHub login.
    pub github_user: IdOrName,
    /// The Discord user id.
    pub discord_user_id: IdOrName,
}

/// One row of `scores.json`, reduced to what a comparison needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The GitHub login.
    pub github_user: IdOrName,
    /// Points in the snapshot's scoring period.
    pub points: Number,
}

/// One row of `contributors.json`: per-user counts over the snapshot's period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contributor {
    /// The GitHub login.
    pub github_user: IdOrName,
    /// `comment` events.
    pub comments: Number,
    /// `issue_opened` events.
    pub issues_opened: Number,
    /// `pr_opened` and `pr_merged` events.
    pub prs_opened: Number,
    /// `pr_reviewed` events.
    pub prs_reviewed: Number,
    /// Difficulty-weighted points of merged PRs.
    pub total_score: Number,
}

impl Contributor {
    /// The counts by field name, in the order the report lists them.
    fn counts(&self) -> [(&'static str, Number); 5] {
        [
            ("comments", self.comments),
            ("issues_opened", self.issues_opened),
            ("prs_opened", self.prs_opened),
            ("prs_reviewed", self.prs_reviewed),
            ("total_score", self.total_score),
        ]
    }
}

/// One row of `roles.json`: a Discord user's role names (duplicates are distinct roles that
/// share a name, so they count).
#[derive(Clone, Debug, PartialEq)]
pub struct Roles {
    /// The Discord user id.
    pub discord_user_id: IdOrName,
    /// Role names.
    pub roles: Vec<IdOrName>,
}

/// One pending issue request: its id plus the row as published, which the JSON report
/// repeats unchanged (whatever types and fields the exporter wrote).
#[derive(Clone, Debug, PartialEq)]
pub struct IssueRequest {
    /// `request_id`, the key requests are matched by.
    pub request_id: IdOrName,
    /// The whole row.
    pub row: Map<String, Value>,
}

impl Serialize for IssueRequest {
    /// As the row was published.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.row.serialize(s)
    }
}

impl IssueRequest {
    /// `req-123 alice my-org/my-repo#42` (with `wrap`, `req-123 (alice my-org/my-repo#42)`):
    /// which request, who asked for which issue, as far as the row says.
    fn line(&self, wrap: bool) -> String {
        let field = |k: &str| match self.row.get(k) {
            Some(Value::String(s)) => Some(IdOrName(s.clone()).to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let issue = match (field("owner"), field("repo"), field("issue_number")) {
            (Some(o), Some(r), Some(n)) => Some(format!("{o}/{r}#{n}")),
            _ => field("issue_url"),
        };
        let summary = [field("github_user"), issue]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        match (summary.is_empty(), wrap) {
            (true, _) => self.request_id.to_string(),
            (false, false) => format!("{} {summary}", self.request_id),
            (false, true) => format!("{} ({summary})", self.request_id),
        }
    }
}

/// The parts of a snapshot a comparison reads (not `meta.json` or `notifications.json`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotContent {
    /// `identities.json`.
    pub identities: Vec<Identity>,
    /// `scores.json`.
    pub scores: Vec<Score>,
    /// `contributors.json`.
    pub contributors: Vec<Contributor>,
    /// `roles.json`.
    pub roles: Vec<Roles>,
    /// `issue_requests.json` (pending requests only).
    pub issue_requests: Vec<IssueRequest>,
}

/// Reads the files of snapshot `name` (as [`crate::publish::clone::DataRepo::read_snapshot`]
/// returns them) through the one snapshot format, then takes what a comparison needs.
pub fn parse(name: &str, files: &[(String, Vec<u8>)]) -> Result<SnapshotContent, DiffError> {
    let published = Published::read(files).map_err(|e| DiffError::Invalid {
        snapshot: name.to_owned(),
        file: e.file,
        reason: e.reason,
    })?;
    let bad = |file: &'static str, i: usize, field: &str, why: String| DiffError::Invalid {
        snapshot: name.to_owned(),
        file,
        reason: format!("data[{i}].{field}: {why}"),
    };
    let text =
        |file, i, field, c: &Cell| IdOrName::from_cell(c).map_err(|why| bad(file, i, field, why));
    let number =
        |file, i, field, c: &Cell| Number::from_cell(c).map_err(|why| bad(file, i, field, why));
    let mut content = SnapshotContent::default();
    for (i, r) in published.identities.iter().enumerate() {
        content.identities.push(Identity {
            github_user: text(IDENTITIES, i, "github_user", &r.github_user)?,
            discord_user_id: text(IDENTITIES, i, "discord_user_id", &r.discord_user_id)?,
        });
    }
    for (i, r) in published.scores.iter().enumerate() {
        content.scores.push(Score {
            github_user: text(SCORES, i, "github_user", &r.github_user)?,
            points: number(SCORES, i, "points", &r.points)?,
        });
    }
    for (i, r) in published.contributors.iter().enumerate() {
        let n = |field, c| number(CONTRIBUTORS, i, field, c);
        content.contributors.push(Contributor {
            github_user: text(CONTRIBUTORS, i, "github_user", &r.github_user)?,
            comments: n("comments", &r.comments)?,
            issues_opened: n("issues_opened", &r.issues_opened)?,
            prs_opened: n("prs_opened", &r.prs_opened)?,
            prs_reviewed: n("prs_reviewed", &r.prs_reviewed)?,
            total_score: n("total_score", &r.total_score)?,
        });
    }
    for (i, r) in published.roles.iter().enumerate() {
        let roles = r
            .roles
            .iter()
            .map(|c| text(ROLES, i, "roles", c))
            .collect::<Result<_, _>>()?;
        content.roles.push(Roles {
            discord_user_id: text(ROLES, i, "discord_user_id", &r.discord_user_id)?,
            roles,
        });
    }
    for (i, row) in published.issue_requests.iter().enumerate() {
        let id = row
            .get("request_id")
            .ok_or_else(|| bad(ISSUE_REQUESTS, i, "request_id", "missing".into()))?;
        let request_id = text(ISSUE_REQUESTS, i, "request_id", id)?;
        let row = row
            .iter()
            .map(|(k, c)| (k.clone(), json_value(c)))
            .collect();
        content
            .issue_requests
            .push(IssueRequest { request_id, row });
    }
    Ok(content)
}

/// A published value as the JSON report repeats it.
fn json_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::from(*i),
        Cell::Real(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Cell::Text(t) => Value::String(t.clone()),
    }
}

/// Links made and broken between the two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdentityChanges {
    /// Pairs in B, not in A; by GitHub login, then Discord id.
    pub linked: Vec<Identity>,
    /// Pairs in A, not in B; same order.
    pub unlinked: Vec<Identity>,
}

/// One user's score from A to B.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreChange {
    /// The GitHub login.
    pub github_user: IdOrName,
    /// Points in A; `None` when the user is new to the scores.
    pub from: Option<Number>,
    /// Points in B; `None` when the user is gone from the scores.
    pub to: Option<Number>,
    /// `to - from`, a missing side counting as zero.
    pub delta: Number,
}

/// One Discord user's roles gained and lost (by name, counting duplicates).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleChange {
    /// The Discord user id.
    pub discord_user_id: IdOrName,
    /// GitHub logins linked to the user in either snapshot, so the report names people.
    pub github_users: Vec<IdOrName>,
    /// Names gained, sorted; a name appears once per role gained.
    pub gained: Vec<IdOrName>,
    /// Names lost, sorted, likewise.
    pub lost: Vec<IdOrName>,
}

/// Issue requests that started or stopped being pending.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IssueRequestChanges {
    /// Pending in B, not in A (rows from B), by request id.
    pub opened: Vec<IssueRequest>,
    /// Pending in A, gone from B (rows from A), by request id.
    pub resolved: Vec<IssueRequest>,
}

/// A count from A to B.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FromTo {
    /// The value in A (zero when the user had no row).
    pub from: Number,
    /// The value in B (zero when the user has no row).
    pub to: Number,
}

/// One user's contribution counts that changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContributorChange {
    /// The GitHub login.
    pub github_user: IdOrName,
    /// Changed counts by field name.
    pub changes: BTreeMap<&'static str, FromTo>,
}

/// Everything that changed from snapshot A to snapshot B; `--json` prints it as it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Changes {
    /// A's directory name.
    pub from: String,
    /// B's directory name.
    pub to: String,
    /// Links made and broken.
    pub identities: IdentityChanges,
    /// Scores that moved: largest absolute change first, then by login.
    pub scores: Vec<ScoreChange>,
    /// Role changes per Discord user, by id.
    pub roles: Vec<RoleChange>,
    /// Requests opened and resolved.
    pub issue_requests: IssueRequestChanges,
    /// Users whose contribution counts changed, by login.
    pub contributors: Vec<ContributorChange>,
}

/// Compares snapshot `a` (named `from`) with the later snapshot `b` (named `to`).
pub fn compare(from: &str, a: &SnapshotContent, to: &str, b: &SnapshotContent) -> Changes {
    Changes {
        from: from.to_owned(),
        to: to.to_owned(),
        identities: identity_changes(&a.identities, &b.identities),
        scores: score_changes(&a.scores, &b.scores),
        roles: role_changes(a, b),
        issue_requests: issue_request_changes(&a.issue_requests, &b.issue_requests),
        contributors: contributor_changes(&a.contributors, &b.contributors),
    }
}

/// Links are pairs: re-linking a login to another Discord account is one unlink and one link.
pub fn identity_changes(a: &[Identity], b: &[Identity]) -> IdentityChanges {
    let a: BTreeSet<&Identity> = a.iter().collect();
    let b: BTreeSet<&Identity> = b.iter().collect();
    IdentityChanges {
        linked: b.difference(&a).map(|i| (*i).clone()).collect(),
        unlinked: a.difference(&b).map(|i| (*i).clone()).collect(),
    }
}

/// Users new to the scores count from zero, users gone from them count down to zero.
pub fn score_changes(a: &[Score], b: &[Score]) -> Vec<ScoreChange> {
    let by_user = |rows: &[Score]| -> BTreeMap<IdOrName, Number> {
        rows.iter()
            .map(|s| (s.github_user.clone(), s.points))
            .collect()
    };
    let (a, b) = (by_user(a), by_user(b));
    let users: BTreeSet<&IdOrName> = a.keys().chain(b.keys()).collect();
    let mut changes: Vec<ScoreChange> = users
        .into_iter()
        .filter_map(|user| {
            let (from, to) = (a.get(user).copied(), b.get(user).copied());
            let delta = match (from, to) {
                (Some(x), Some(y)) if x == y => return None,
                (Some(x), Some(y)) => x.delta_to(y),
                (None, Some(y)) => y,
                (Some(x), None) => x.negated(),
                (None, None) => return None,
            };
            Some(ScoreChange {
                github_user: user.clone(),
                from,
                to,
                delta,
            })
        })
        .collect();
    changes.sort_by(|x, y| {
        y.delta
            .as_f64()
            .abs()
            .total_cmp(&x.delta.as_f64().abs())
            .then_with(|| x.github_user.cmp(&y.github_user))
    });
    changes
}

/// Roles compared as multisets of names per user; a user missing from one snapshot has none there.
pub fn role_changes(a: &SnapshotContent, b: &SnapshotContent) -> Vec<RoleChange> {
    let counts = |rows: &[Roles]| -> BTreeMap<IdOrName, BTreeMap<IdOrName, i64>> {
        let mut map: BTreeMap<IdOrName, BTreeMap<IdOrName, i64>> = BTreeMap::new();
        for row in rows {
            let user = map.entry(row.discord_user_id.clone()).or_default();
            for name in &row.roles {
                *user.entry(name.clone()).or_default() += 1;
            }
        }
        map
    };
    let (ra, rb) = (counts(&a.roles), counts(&b.roles));
    let mut logins: BTreeMap<&IdOrName, BTreeSet<&IdOrName>> = BTreeMap::new();
    for link in a.identities.iter().chain(&b.identities) {
        logins
            .entry(&link.discord_user_id)
            .or_default()
            .insert(&link.github_user);
    }
    let none = BTreeMap::new();
    let users: BTreeSet<&IdOrName> = ra.keys().chain(rb.keys()).collect();
    users
        .into_iter()
        .filter_map(|user| {
            let (before, after) = (ra.get(user).unwrap_or(&none), rb.get(user).unwrap_or(&none));
            let names: BTreeSet<&IdOrName> = before.keys().chain(after.keys()).collect();
            let (mut gained, mut lost) = (Vec::new(), Vec::new());
            for name in names {
                let diff = after.get(name).unwrap_or(&0) - before.get(name).unwrap_or(&0);
                let list = if diff > 0 { &mut gained } else { &mut lost };
                list.extend(std::iter::repeat_n(
                    name.clone(),
                    diff.unsigned_abs() as usize,
                ));
            }
            (!gained.is_empty() || !lost.is_empty()).then(|| RoleChange {
                discord_user_id: user.clone(),
                github_users: logins
                    .get(user)
                    .map(|s| s.iter().map(|t| (*t).clone()).collect())
                    .unwrap_or_default(),
                gained,
                lost,
            })
        })
        .collect()
}

/// Snapshots list pending requests only, so "gone from B" is all we can say: resolved
/// (approved, rejected or withdrawn).
pub fn issue_request_changes(a: &[IssueRequest], b: &[IssueRequest]) -> IssueRequestChanges {
    let by_id = |rows: &[IssueRequest]| -> BTreeMap<IdOrName, IssueRequest> {
        rows.iter()
            .map(|r| (r.request_id.clone(), r.clone()))
            .collect()
    };
    let (a, b) = (by_id(a), by_id(b));
    IssueRequestChanges {
        opened: b
            .iter()
            .filter(|(id, _)| !a.contains_key(*id))
            .map(|(_, r)| r.clone())
            .collect(),
        resolved: a
            .iter()
            .filter(|(id, _)| !b.contains_key(*id))
            .map(|(_, r)| r.clone())
            .collect(),
    }
}

/// A user without a row in one snapshot has zero of everything there.
pub fn contributor_changes(a: &[Contributor], b: &[Contributor]) -> Vec<ContributorChange> {
    let by_user = |rows: &[Contributor]| -> BTreeMap<IdOrName, Contributor> {
        rows.iter()
            .map(|c| (c.github_user.clone(), c.clone()))
            .collect()
    };
    let (a, b) = (by_user(a), by_user(b));
    let zero = Contributor::default();
    let users: BTreeSet<&IdOrName> = a.keys().chain(b.keys()).collect();
    users
        .into_iter()
        .filter_map(|user| {
            let (before, after) = (a.get(user).unwrap_or(&zero), b.get(user).unwrap_or(&zero));
            let changes: BTreeMap<&'static str, FromTo> = before
                .counts()
                .into_iter()
                .zip(after.counts())
                .filter(|((_, x), (_, y))| x != y)
                .map(|((field, from), (_, to))| (field, FromTo { from, to }))
                .collect();
            (!changes.is_empty()).then(|| ContributorChange {
                github_user: user.clone(),
                changes,
            })
        })
        .collect()
}

impl Changes {
    /// Whether the two snapshots say the same about everything compared.
    pub fn is_empty(&self) -> bool {
        self.identities.linked.is_empty()
            && self.identities.unlinked.is_empty()
            && self.scores.is_empty()
            && self.roles.is_empty()
            && self.issue_requests.opened.is_empty()
            && self.issue_requests.resolved.is_empty()
            && self.contributors.is_empty()
    }

    /// The report for people: a heading per kind of change (`Kind: no changes` when there is
    /// none, so every report has the same sections), then one indented line per change.
    pub fn to_text(&self) -> String {
        let mut out = format!("Snapshots: {} → {}\n", self.from, self.to);
        let section = |out: &mut String,
                       title: &str,
                       counts: Option<String>,
                       lines: Vec<String>| match counts {
            None => out.push_str(&format!("{title}: no changes\n")),
            Some(counts) => {
                out.push_str(&format!("{title}: {counts}\n"));
                for line in lines {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        };

        let ids = &self.identities;
        section(
            &mut out,
            "Identities",
            (!ids.linked.is_empty() || !ids.unlinked.is_empty()).then(|| {
                format!(
                    "{} linked, {} unlinked",
                    ids.linked.len(),
                    ids.unlinked.len()
                )
            }),
            ids.linked
                .iter()
                .map(|i| format!("+ {} ↔ {}", i.github_user, i.discord_user_id))
                .chain(
                    ids.unlinked
                        .iter()
                        .map(|i| format!("- {} ↔ {}", i.github_user, i.discord_user_id)),
                )
                .collect(),
        );

        let count = |f: fn(&ScoreChange) -> bool| self.scores.iter().filter(|s| f(s)).count();
        section(
            &mut out,
            "Scores",
            (!self.scores.is_empty()).then(|| {
                format!(
                    "{} changed, {} new, {} gone",
                    count(|s| s.from.is_some() && s.to.is_some()),
                    count(|s| s.from.is_none()),
                    count(|s| s.to.is_none()),
                )
            }),
            self.scores
                .iter()
                .map(|s| match (s.from, s.to) {
                    (Some(x), Some(y)) => {
                        format!("{} {x} → {y} ({})", s.github_user, s.delta.signed())
                    }
                    (None, Some(y)) => {
                        format!("{} (new) {y} ({})", s.github_user, s.delta.signed())
                    }
                    (Some(x), None) => {
                        format!("{} (gone) {x} ({})", s.github_user, s.delta.signed())
                    }
                    (None, None) => s.github_user.to_string(),
                })
                .collect(),
        );

        let gained: usize = self.roles.iter().map(|r| r.gained.len()).sum();
        let lost: usize = self.roles.iter().map(|r| r.lost.len()).sum();
        section(
            &mut out,
            "Roles",
            (!self.roles.is_empty()).then(|| format!("{gained} gained, {lost} lost")),
            self.roles.iter().map(role_line).collect(),
        );

        let req = &self.issue_requests;
        section(
            &mut out,
            "Issue requests",
            (!req.opened.is_empty() || !req.resolved.is_empty()).then(|| {
                format!(
                    "{} opened, {} resolved",
                    req.opened.len(),
                    req.resolved.len()
                )
            }),
            req.opened
                .iter()
                .map(|r| format!("+ {}", r.line(false)))
                .chain(req.resolved.iter().map(|r| format!("- {}", r.line(true))))
                .collect(),
        );

        section(
            &mut out,
            "Contributors",
            (!self.contributors.is_empty()).then(|| format!("{} changed", self.contributors.len())),
            self.contributors
                .iter()
                .map(|c| {
                    let fields: Vec<String> = c
                        .changes
                        .iter()
                        .map(|(field, v)| format!("{field} {} → {}", v.from, v.to))
                        .collect();
                    format!("{}: {}", c.github_user, fields.join(", "))
                })
                .collect(),
        );
        out
    }

    /// The report for programs: this value as one pretty-printed JSON object.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// `123 (alice): +Mentor, +Contributor ×2, -Helper`.
fn role_line(r: &RoleChange) -> String {
    let who = if r.github_users.is_empty() {
        r.discord_user_id.to_string()
    } else {
        let names: Vec<String> = r.github_users.iter().map(IdOrName::to_string).collect();
        format!("{} ({})", r.discord_user_id, names.join(", "))
    };
    let grouped = |sign: char, names: &[IdOrName]| -> Vec<String> {
        let mut counts: BTreeMap<&IdOrName, usize> = BTreeMap::new();
        for n in names {
            *counts.entry(n).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(n, k)| {
                if k == 1 {
                    format!("{sign}{n}")
                } else {
                    format!("{sign}{n} ×{k}")
                }
            })
            .collect()
    };
    let parts: Vec<String> = grouped('+', &r.gained)
        .into_iter()
        .chain(grouped('-', &r.lost))
        .collect();
    format!("{who}: {}", parts.join(", "))
}

#[cfg(test)]
mod tests;
