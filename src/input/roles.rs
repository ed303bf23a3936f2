//! Discord member roles, the one input that does not live in `state.db`.
//!
//! Gitcord asks Discord for them on every run, and so does the exporter (`discord::load_roles`)
//! unless it is handed the same mapping as a file (`--roles-file` or `snapshots.roles_file`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Role names per Discord user id; a `BTreeMap` so ids come out in code-point order.
pub type RoleMap = BTreeMap<String, Vec<String>>;

/// Why the roles could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    /// The roles file named on the command line or in the config does not exist.
    #[error("roles file {path} cannot be read: {source}")]
    Unreadable {
        /// The file that was asked for.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file exists but is not `{ "<discord_user_id>": ["<role name>", ...] }`.
    #[error("roles file {path} is not a {{\"<discord_user_id>\": [\"<role name>\", ...]}} object: {reason}")]
    Invalid {
        /// The offending file.
        path: PathBuf,
        /// serde_json's account of what is wrong and where.
        reason: String,
    },
}

/// Reads a roles file, the mapping Gitcord's Discord reader returns.
pub fn load_roles_file(path: &Path) -> Result<RoleMap, RolesError> {
    let bytes = std::fs::read(path).map_err(|source| RolesError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| RolesError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RoleMap, RolesError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roles.json");
        std::fs::write(&path, text).unwrap();
        load_roles_file(&path)
    }

    #[test]
    fn reads_the_mapping() {
        let roles = load(r#"{"2": ["b", "a"], "10": []}"#).unwrap();
        assert_eq!(roles.keys().collect::<Vec<_>>(), ["10", "2"]);
        assert_eq!(roles["2"], ["b", "a"]);
    }

    #[test]
    fn rejects_other_shapes_with_a_location() {
        for bad in [r#"["a"]"#, r#"{"1": "Admin"}"#, r#"{"1": [1]}"#, "{", ""] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains("is not a {\"<discord_user_id>\""), "{err}");
        }
        let err = load("{\n\"1\": [2]}").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = load_roles_file(Path::new("/nonexistent/roles.json")).unwrap_err();
        assert!(matches!(err, RolesError::Unreadable { .. }));
        assert!(err.to_string().contains("/nonexistent/roles.json"));
    }
}
