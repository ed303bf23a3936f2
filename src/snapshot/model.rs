//! The snapshot model: what one run publishes, independent of how it is written or stored.
//!
//! A snapshot is fixed by its inputs (the state, the roles, the config, the run id and the
//! instant), so the same inputs always give the same bytes and the same commit.

use uuid::Uuid;

use crate::input::roles::RoleMap;
use crate::input::state::{IdentityRow, ScoreRow, Tables};
use crate::snapshot::contributors::Summary;
use crate::time::{self, Timestamp};

/// The cells and tables a snapshot holds, defined in a leaf module because `input` fills them.
pub use crate::table::{Cell, Table};

/// The folder in the data repository that holds every snapshot.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Everything one snapshot says.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The run that made it; its first 8 characters name the directory.
    pub run_id: Uuid,
    /// The snapshot time (`generated_at`), also the end of the period.
    pub at: Timestamp,
    /// `at - scoring.period_days`.
    pub period_start: Timestamp,
    /// `github.org`.
    pub org: String,
    /// Verified links, or the config's legacy mappings when there are none.
    pub identities: Vec<IdentityRow>,
    /// The latest scoring period.
    pub scores: Vec<ScoreRow>,
    /// Per-user summaries over the period.
    pub contributors: Vec<Summary>,
    /// Discord roles per user, each list sorted.
    pub roles: RoleMap,
    /// Pending issue requests.
    pub issue_requests: Table,
    /// Recent notifications.
    pub notifications: Table,
}

/// The run's own parameters: who made the snapshot, when, for which org and period.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// Identifies the run in every file and in the directory name.
    pub run_id: Uuid,
    /// The snapshot time.
    pub at: Timestamp,
    /// `github.org`.
    pub org: String,
    /// `scoring.period_days`.
    pub period_days: i64,
}

impl Snapshot {
    /// Assembles a snapshot from what the reader found. `legacy_identities` (the config's
    /// `identity_mappings`) stand in when the database has no verified link, as in Gitcord.
    pub fn assemble(
        run: RunInfo,
        tables: Tables,
        contributors: Vec<Summary>,
        mut roles: RoleMap,
        legacy_identities: impl FnOnce() -> Vec<(String, String)>,
    ) -> Snapshot {
        let identities = if tables.identities.is_empty() {
            legacy_identities()
                .into_iter()
                .map(|(github_user, discord_user_id)| IdentityRow {
                    discord_user_id: Cell::Text(discord_user_id),
                    github_user: Cell::Text(github_user),
                })
                .collect()
        } else {
            tables.identities
        };
        for names in roles.values_mut() {
            names.sort_unstable();
        }
        Snapshot {
            run_id: run.run_id,
            at: run.at,
            period_start: period_start(run.at, run.period_days),
            org: run.org,
            identities,
            scores: tables.scores,
            contributors,
            roles,
            issue_requests: tables.issue_requests,
            notifications: tables.notifications,
        }
    }

    /// `<%Y-%m-%dT%H-%M-%S>-<first 8 of run id>`, the directory under `snapshots/`.
    pub fn name(&self) -> String {
        snapshot_name(&self.at, &self.run_id)
    }

    /// `snapshots/<name>`, the directory's path inside the data repository.
    pub fn rel_dir(&self) -> String {
        format!("{SNAPSHOTS_DIR}/{}", self.name())
    }

    /// The commit message Gitcord uses for a snapshot.
    pub fn commit_message(&self) -> String {
        format!(
            "Gitcord snapshot: {} (run: {})",
            time::dir_stamp(&self.at),
            short_run_id(&self.run_id)
        )
    }
}

/// The start of the contribution window that ends at `at`.
pub fn period_start(at: Timestamp, period_days: i64) -> Timestamp {
    at - chrono::Duration::days(period_days)
}

/// The directory name for a run at `at`.
pub fn snapshot_name(at: &Timestamp, run_id: &Uuid) -> String {
    format!("{}-{}", time::dir_stamp(at), short_run_id(run_id))
}

fn short_run_id(run_id: &Uuid) -> String {
    run_id.hyphenated().to_string()[..8].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunInfo {
        RunInfo {
            run_id: Uuid::parse_str("abc12345-def6-4890-a1b2-c3d4e5f60718").unwrap(),
            at: time::parse_rfc3339("2024-01-31T12:00:00.25Z").unwrap(),
            org: "o".into(),
            period_days: 30,
        }
    }

    #[test]
    fn names_follow_gitcord() {
        let s = Snapshot::assemble(run(), Tables::default(), vec![], RoleMap::new(), Vec::new);
        assert_eq!(s.rel_dir(), "snapshots/2024-01-31T12-00-00-abc12345");
        assert_eq!(
            s.commit_message(),
            "Gitcord snapshot: 2024-01-31T12-00-00 (run: abc12345)"
        );
        assert_eq!(
            time::isoformat(&s.period_start),
            "2024-01-01T12:00:00.250000+00:00"
        );
    }

    #[test]
    fn legacy_mappings_only_stand_in_for_an_empty_table() {
        let legacy = || vec![("legacy".to_owned(), "9".to_owned())];
        let s = Snapshot::assemble(run(), Tables::default(), vec![], RoleMap::new(), legacy);
        assert_eq!(s.identities[0].github_user, Cell::Text("legacy".into()));
        let tables = Tables {
            identities: vec![IdentityRow {
                discord_user_id: Cell::Text("1".into()),
                github_user: Cell::Text("a".into()),
            }],
            ..Tables::default()
        };
        let s = Snapshot::assemble(run(), tables, vec![], RoleMap::new(), || {
            panic!("not needed")
        });
        assert_eq!(s.identities.len(), 1);
    }

    #[test]
    fn role_names_are_sorted_keeping_duplicates() {
        let roles = RoleMap::from([("1".to_owned(), vec!["b".into(), "B".into(), "b".into()])]);
        let s = Snapshot::assemble(run(), Tables::default(), vec![], roles, Vec::new);
        assert_eq!(s.roles["1"], ["B", "b", "b"]);
    }
}
