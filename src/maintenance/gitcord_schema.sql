-- Gitcord's SQLite schema, as `SqliteStorage.init_schema()` creates it (AOSSIE-Org/
-- Gitcord-GithubDiscordBot ac7c493, src/ghdcbot/adapters/storage/sqlite.py), in the same
-- order and with the same text: SQLite stores each CREATE statement's own text in
-- sqlite_master, so the indentation inside each statement is Gitcord's (Python triple-quoted
-- strings) and must stay byte for byte as it is; `.schema` of a restored database is then
-- identical to Gitcord's. Comments between statements are not stored.
--
-- The identity_links migrations are replayed as Gitcord runs them: two ALTER TABLE ADD COLUMN
-- (SQLite appends the columns inline to the stored CREATE TABLE text), then the unique index.
-- Gitcord's back-fill UPDATE and de-duplicating DELETE in between are no-ops on an empty
-- table and are left out. `contributions`' AUTOINCREMENT creates sqlite_sequence.

CREATE TABLE IF NOT EXISTS contributions (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    github_user TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    repo TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    payload_json TEXT NOT NULL
                );
CREATE TABLE IF NOT EXISTS scores (
                    github_user TEXT NOT NULL,
                    period_start TEXT NOT NULL,
                    period_end TEXT NOT NULL,
                    points INTEGER NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (github_user, period_start, period_end)
                );
CREATE TABLE IF NOT EXISTS cursors (
                    source TEXT PRIMARY KEY,
                    cursor TEXT NOT NULL
                );
CREATE TABLE IF NOT EXISTS identity_links (
                    discord_user_id TEXT NOT NULL,
                    github_user TEXT NOT NULL,
                    verified INTEGER NOT NULL DEFAULT 0,
                    verification_code TEXT,
                    expires_at TEXT,
                    created_at TEXT NOT NULL,
                    verified_at TEXT,
                    PRIMARY KEY (discord_user_id, github_user)
                );
CREATE INDEX IF NOT EXISTS idx_identity_links_github_user
                    ON identity_links (github_user);
CREATE INDEX IF NOT EXISTS idx_identity_links_verified
                    ON identity_links (verified);
ALTER TABLE identity_links ADD COLUMN unlinked_at TEXT;
ALTER TABLE identity_links ADD COLUMN github_user_normalized TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS idx_identity_links_discord_github_norm ON identity_links (discord_user_id, github_user_normalized);
CREATE TABLE IF NOT EXISTS issue_requests (
                    request_id TEXT PRIMARY KEY,
                    discord_user_id TEXT NOT NULL,
                    github_user TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    repo TEXT NOT NULL,
                    issue_number INTEGER NOT NULL,
                    issue_url TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'pending'
                );
CREATE INDEX IF NOT EXISTS idx_issue_requests_status ON issue_requests (status);
CREATE INDEX IF NOT EXISTS idx_issue_requests_created ON issue_requests (created_at);
CREATE TABLE IF NOT EXISTS notifications_sent (
                    dedupe_key TEXT PRIMARY KEY,
                    event_type TEXT NOT NULL,
                    github_user TEXT NOT NULL,
                    discord_user_id TEXT NOT NULL,
                    repo TEXT NOT NULL,
                    target TEXT NOT NULL,
                    channel_id TEXT,
                    sent_at TEXT NOT NULL
                );
CREATE INDEX IF NOT EXISTS idx_notifications_sent_github_user ON notifications_sent (github_user);
CREATE INDEX IF NOT EXISTS idx_notifications_sent_discord_user ON notifications_sent (discord_user_id);
