//! Local accounts, roles, clearances and sessions (`users.sqlite` in the data directory).
//!
//! * Passwords are hashed with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes)
//!   in PHC string form; a login for an unknown account still runs one verification so its
//!   timing does not tell which accounts exist.
//! * A session is a random 256-bit token given to the browser in a cookie; only its
//!   sha256 is stored, so a copy of the database cannot be replayed as a login. Each
//!   session has its own CSRF token, an idle timeout and an absolute lifetime.
//! * Failed logins are counted per account and per client address within a window; past
//!   the limit, attempts are refused (even with the right password) until the window passes.
//! * Changing an account's password, roles, clearance or disabling it ends its sessions.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use doctrina_types::config::AuthConfig;
use doctrina_types::{Clearance, MarkingScheme};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong account name or password")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("no account named {0:?}")]
    NoSuchUser(String),
    #[error("an account named {0:?} already exists")]
    Exists(String),
    #[error("account store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("account store: {0}")]
    Internal(String),
}

impl doctrina_types::Faulted for AuthError {
    fn fault(&self) -> doctrina_types::Fault {
        use doctrina_types::Fault;
        match self {
            Self::InvalidCredentials => Fault::Unauthenticated,
            Self::Throttled { .. } => Fault::Throttled,
            Self::Invalid(_) => Fault::Invalid,
            Self::NoSuchUser(_) => Fault::NotFound,
            Self::Exists(_) => Fault::Conflict,
            Self::Sql(_) | Self::Internal(_) => Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled { .. } => "throttled",
            Self::Invalid(_) => "invalid_input",
            Self::NoSuchUser(_) => "not_found",
            Self::Exists(_) => "conflict",
            Self::Sql(_) | Self::Internal(_) => "accounts_unavailable",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Sql(_) | Self::Internal(_) => {
                "the account store is unavailable; try again shortly".to_string()
            }
            _ => self.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Throttled { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, AuthError>;

/// What a person may do. Each route names the roles it allows; `Admin` manages accounts
/// and reads the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Officer,
    Custodian,
    Evaluator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Officer, Role::Custodian, Role::Evaluator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Custodian => "custodian",
            Role::Evaluator => "evaluator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "unknown role {s:?} (expected officer, custodian, evaluator or admin)"
                ))
            })
    }

    /// Parses a comma-separated list (`officer,evaluator`).
    pub fn parse_list(s: &str) -> Result<Vec<Self>> {
        let mut roles = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let role = Self::parse(part)?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        roles.sort();
        Ok(roles)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account (never its password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub roles: Vec<Role>,
    pub clearance: Clearance,
    pub disabled: bool,
    pub created_at: i64,
    /// The language the person chose for the web app (`en`, `ko`); `None`: the browser's.
    #[serde(default)]
    pub language: Option<String>,
}

impl User {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    pub roles: Vec<Role>,
    pub clearance: Clearance,
}

/// A change to an account (the admin page, its API and `doctrina user set`): each field
/// given is applied.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub roles: Option<Vec<Role>>,
    /// A new clearance level; with only `caveats` given, the current level stays.
    pub level: Option<String>,
    /// The caveats held, replacing the current ones; with only `level` given, they stay.
    pub caveats: Option<Vec<String>>,
    pub disabled: Option<bool>,
    /// A new password (empty: unchanged).
    pub password: Option<String>,
}

/// A live session, as the web app sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token forms and API calls must echo (`_csrf` field or `X-CSRF-Token` header).
    pub csrf: String,
    /// sha256 of the cookie token: identifies the session without revealing it.
    pub id: String,
    pub expires_at: i64,
}

/// Why a cookie no longer opens a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Unknown,
    Expired,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// 32 random bytes from the operating system, hex-encoded.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthError::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn token_id(token: &str) -> String {
    doctrina_types::sha256_hex(token.as_bytes())
}

/// Constant-time comparison for tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,
    level         TEXT NOT NULL,
    caveats       TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    language      TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(key, at);
";

const MAX_NAME: usize = 64;

pub struct AuthStore {
    conn: Mutex<Connection>,
    config: AuthConfig,
    /// A real hash of nothing, verified against when the account does not exist.
    decoy: String,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore").finish_non_exhaustive()
    }
}

impl AuthStore {
    pub fn open(path: &Path, config: AuthConfig) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| AuthError::Internal(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let has_language: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'language'")?
            .exists([])?;
        if !has_language {
            conn.execute_batch("ALTER TABLE users ADD COLUMN language TEXT")?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            decoy: hash_password(&random_token()?)?,
            config,
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
    pub fn check_name(name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if ok {
            Ok(())
        } else {
            Err(AuthError::Invalid(
                "an account name is 1-64 letters, digits, '.', '_', '-' or '@'".into(),
            ))
        }
    }

    /// Length first (`auth.min_password_chars`), then guessability: the account name in
    /// any form, and passwords that common lists, keyboard patterns, dates and repeats make
    /// easy to guess, are refused (zxcvbn, score below 3 of 4: more than about 10^8 guesses
    /// needed), with zxcvbn's own advice.
    fn check_password(&self, name: &str, password: &str) -> Result<()> {
        let chars = password.chars().count();
        if chars < self.config.min_password_chars {
            return Err(AuthError::Invalid(format!(
                "a password needs at least {} characters",
                self.config.min_password_chars
            )));
        }
        if chars > 1024 {
            return Err(AuthError::Invalid(
                "a password is at most 1024 characters".into(),
            ));
        }
        let lower = password.to_lowercase();
        if !name.is_empty() && lower.contains(&name.to_lowercase()) {
            return Err(AuthError::Invalid(
                "a password must not contain the account name".into(),
            ));
        }
        let estimate = zxcvbn::zxcvbn(password, &[name, "doctrina"]);
        if (estimate.score() as u8) < 3 {
            let advice = estimate
                .feedback()
                .map(|f| {
                    let mut parts: Vec<String> =
                        f.warning().map(|w| w.to_string()).into_iter().collect();
                    parts.extend(f.suggestions().iter().map(|s| s.to_string()));
                    parts.join(" ")
                })
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "use a longer phrase of unrelated words".to_string());
            return Err(AuthError::Invalid(format!(
                "this password is too easy to guess: {advice}"
            )));
        }
        Ok(())
    }

    pub fn add_user(&self, new: &NewUser) -> Result<User> {
        Self::check_name(&new.name)?;
        self.check_password(&new.name, &new.password)?;
        if new.roles.is_empty() {
            return Err(AuthError::Invalid(
                "an account needs at least one role".into(),
            ));
        }
        let hash = hash_password(&new.password)?;
        let created_at = now();
        let inserted = self.conn().execute(
            "INSERT INTO users (name, password_hash, roles, level, caveats, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO NOTHING",
            params![
                new.name,
                hash,
                roles_text(&new.roles),
                new.clearance.level,
                json(&new.clearance.caveats),
                created_at
            ],
        )?;
        if inserted == 0 {
            return Err(AuthError::Exists(new.name.clone()));
        }
        self.user(&new.name)?
            .ok_or_else(|| AuthError::NoSuchUser(new.name.clone()))
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, roles, level, caveats, disabled, created_at, language FROM users WHERE name = ?1",
                [name],
                row_user,
            )
            .optional()?)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, roles, level, caveats, disabled, created_at, language FROM users ORDER BY name",
        )?;
        let users = stmt
            .query_map([], row_user)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(users)
    }

    /// Sets the language someone chose for the web app (`None`: follow the browser). Does
    /// not end their sessions: it changes nothing they may do.
    pub fn set_language(&self, name: &str, language: Option<&str>) -> Result<()> {
        if let Some(l) = language
            && !matches!(l, "en" | "ko")
        {
            return Err(AuthError::Invalid(format!(
                "unknown language '{l}' (en or ko)"
            )));
        }
        let changed = self.conn().execute(
            "UPDATE users SET language = ?2 WHERE name = ?1",
            params![name, language],
        )?;
        if changed == 0 {
            return Err(AuthError::NoSuchUser(name.to_string()));
        }
        Ok(())
    }

    pub fn count_admins(&self) -> Result<usize> {
        Ok(self
            .users()?
            .iter()
            .filter(|u| u.has(Role::Admin) && !u.disabled)
            .count())
    }

    fn update(&self, name: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<User> {
        let conn = self.conn();
        let changed = conn.execute(sql, params![value, name])?;
        if changed == 0 {
            return Err(AuthError::NoSuchUser(name.to_string()));
        }
        conn.execute("DELETE FROM sessions WHERE user = ?1", [name])?;
        drop(conn);
        self.user(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))
    }

    /// Sets the password and ends the account's sessions.
    pub fn set_password(&self, name: &str, password: &str) -> Result<User> {
        self.check_password(name, password)?;
        let hash = hash_password(password)?;
        self.update(
            name,
            "UPDATE users SET password_hash = ?1 WHERE name = ?2",
            &hash,
        )
    }

    /// Sets the roles and ends the account's sessions. Refuses to remove the last admin.
    pub fn set_roles(&self, name: &str, roles: &[Role]) -> Result<User> {
        if roles.is_empty() {
            return Err(AuthError::Invalid(
                "an account needs at least one role".into(),
            ));
        }
        if !roles.contains(&Role::Admin) && self.is_last_admin(name)? {
            return Err(AuthError::Invalid(
                "that is the last active admin; make another admin first".into(),
            ));
        }
        self.update(
            name,
            "UPDATE users SET roles = ?1 WHERE name = ?2",
            &roles_text(roles),
        )
    }

    /// Sets the clearance and ends the account's sessions.
    pub fn set_clearance(&self, name: &str, clearance: &Clearance) -> Result<User> {
        let conn = self.conn();
        let changed = conn.execute(
            "UPDATE users SET level = ?1, caveats = ?2 WHERE name = ?3",
            params![clearance.level, json(&clearance.caveats), name],
        )?;
        if changed == 0 {
            return Err(AuthError::NoSuchUser(name.to_string()));
        }
        conn.execute("DELETE FROM sessions WHERE user = ?1", [name])?;
        drop(conn);
        self.user(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))
    }

    /// Disables (or re-enables) an account; disabling ends its sessions.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        if disabled && self.is_last_admin(name)? {
            return Err(AuthError::Invalid(
                "that is the last active admin; make another admin first".into(),
            ));
        }
        self.update(
            name,
            "UPDATE users SET disabled = ?1 WHERE name = ?2",
            &disabled,
        )
    }

    /// Applies a [`Change`] (roles, clearance checked against `scheme`, status, password);
    /// each part ends the account's sessions.
    pub fn change(&self, name: &str, change: &Change, scheme: &MarkingScheme) -> Result<User> {
        let mut user = self
            .user(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
        if let Some(roles) = &change.roles {
            user = self.set_roles(name, roles)?;
        }
        if change.level.is_some() || change.caveats.is_some() {
            let level = change.level.as_deref().unwrap_or(&user.clearance.level);
            let caveats = change.caveats.as_ref().unwrap_or(&user.clearance.caveats);
            let clearance = scheme
                .clearance(level, caveats)
                .map_err(AuthError::Invalid)?;
            user = self.set_clearance(name, &clearance)?;
        }
        if let Some(disabled) = change.disabled {
            user = self.set_disabled(name, disabled)?;
        }
        if let Some(password) = change.password.as_deref().filter(|p| !p.is_empty()) {
            user = self.set_password(name, password)?;
        }
        Ok(user)
    }

    fn is_last_admin(&self, name: &str) -> Result<bool> {
        let Some(user) = self.user(name)? else {
            return Err(AuthError::NoSuchUser(name.to_string()));
        };
        Ok(user.has(Role::Admin) && !user.disabled && self.count_admins()? <= 1)
    }

    /// Checks a password and opens a session; returns the cookie token and the session.
    /// `client` is the address failures are also counted against.
    pub fn login(&self, name: &str, password: &str, client: &str) -> Result<(String, Session)> {
        let at = now();
        let user_key = format!("user:{}", name.to_lowercase());
        let client_key = format!("client:{client}");
        self.refuse_if_throttled(&user_key, self.config.max_failures, at)?;
        self.refuse_if_throttled(&client_key, self.config.max_failures_per_client, at)?;

        let stored: Option<(String, bool)> = self
            .conn()
            .query_row(
                "SELECT password_hash, disabled FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let verified = match &stored {
            Some((hash, _)) => verify_password(password, hash),
            None => {
                let _ = verify_password(password, &self.decoy);
                false
            }
        };
        if !verified || stored.as_ref().is_some_and(|(_, disabled)| *disabled) {
            let conn = self.conn();
            for key in [&user_key, &client_key] {
                conn.execute(
                    "INSERT INTO login_failures (key, at) VALUES (?1, ?2)",
                    params![key, at],
                )?;
            }
            return Err(AuthError::InvalidCredentials);
        }
        self.conn()
            .execute("DELETE FROM login_failures WHERE key = ?1", [&user_key])?;
        let user = self
            .user(name)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
        let token = random_token()?;
        let csrf = random_token()?;
        let id = token_id(&token);
        let expires_at = at + self.config.session_max_secs as i64;
        let conn = self.conn();
        conn.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen <= ?2",
            params![at, at - self.config.session_idle_secs as i64],
        )?;
        conn.execute(
            "INSERT INTO sessions (id, user, csrf, created_at, last_seen, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![id, user.name, csrf, at, expires_at],
        )?;
        Ok((
            token,
            Session {
                user,
                csrf,
                id,
                expires_at,
            },
        ))
    }

    fn refuse_if_throttled(&self, key: &str, limit: u32, at: i64) -> Result<()> {
        let window = self.config.lockout_secs as i64;
        let conn = self.conn();
        conn.execute("DELETE FROM login_failures WHERE at <= ?1", [at - window])?;
        let (count, oldest): (i64, Option<i64>) = conn.query_row(
            "SELECT count(*), min(at) FROM login_failures WHERE key = ?1 AND at > ?2",
            params![key, at - window],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if count >= i64::from(limit) {
            let retry_after_secs = (oldest.unwrap_or(at) + window - at).max(1) as u64;
            return Err(AuthError::Throttled { retry_after_secs });
        }
        Ok(())
    }

    /// The session a cookie token opens, touching its idle timer; `Err(state)` says whether
    /// the token is unknown or its session expired (the expired session is removed).
    pub fn session(&self, token: &str) -> Result<std::result::Result<Session, SessionState>> {
        let at = now();
        let id = token_id(token);
        let conn = self.conn();
        // The session and its account in one read: this runs on every request.
        let row: Option<(User, String, i64, i64)> = conn
            .query_row(
                "SELECT u.name, u.roles, u.level, u.caveats, u.disabled, u.created_at, u.language,
                        s.csrf, s.last_seen, s.expires_at
                 FROM sessions s JOIN users u ON u.name = s.user WHERE s.id = ?1",
                [&id],
                |r| Ok((row_user(r)?, r.get(7)?, r.get(8)?, r.get(9)?)),
            )
            .optional()?;
        let Some((user, csrf, last_seen, expires_at)) = row else {
            return Ok(Err(SessionState::Unknown));
        };
        if at >= expires_at || at - last_seen >= self.config.session_idle_secs as i64 {
            conn.execute("DELETE FROM sessions WHERE id = ?1", [&id])?;
            return Ok(Err(SessionState::Expired));
        }
        if user.disabled {
            return Ok(Err(SessionState::Unknown));
        }
        if at > last_seen {
            conn.execute(
                "UPDATE sessions SET last_seen = ?1 WHERE id = ?2",
                params![at, id],
            )?;
        }
        Ok(Ok(Session {
            user,
            csrf,
            id,
            expires_at,
        }))
    }

    /// Ends the session a token opens (no error if there is none).
    pub fn logout(&self, token: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM sessions WHERE id = ?1", [token_id(token)])?;
        Ok(())
    }
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_string())
}

fn row_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let roles: String = r.get(1)?;
    let caveats: String = r.get(3)?;
    Ok(User {
        name: r.get(0)?,
        roles: Role::parse_list(&roles).unwrap_or_default(),
        clearance: Clearance {
            level: r.get(2)?,
            caveats: serde_json::from_str(&caveats).unwrap_or_default(),
        },
        disabled: r.get(4)?,
        created_at: r.get(5)?,
        language: r.get(6)?,
    })
}

pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| AuthError::Internal(format!("no randomness from the OS: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("hashing: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(config: AuthConfig) -> (tempfile::TempDir, AuthStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(&dir.path().join("users.sqlite"), config).unwrap();
        (dir, store)
    }

    fn new_user(name: &str, roles: &[Role]) -> NewUser {
        NewUser {
            name: name.into(),
            password: "correct horse battery".into(),
            roles: roles.to_vec(),
            clearance: Clearance {
                level: "SECRET".into(),
                caveats: vec!["NOFORN".into()],
            },
        }
    }

    #[test]
    fn passwords_are_argon2id_and_never_stored_plain() {
        let (dir, store) = store(AuthConfig::default());
        store.add_user(&new_user("hale", &[Role::Officer])).unwrap();
        let hash: String = store
            .conn()
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let bytes = std::fs::read(dir.path().join("users.sqlite")).unwrap();
        assert!(
            !bytes
                .windows(b"correct horse".len())
                .any(|w| w == b"correct horse")
        );
    }

    #[test]
    fn login_opens_a_session_and_logout_ends_it() {
        let (_dir, store) = store(AuthConfig::default());
        store
            .add_user(&new_user("hale", &[Role::Officer, Role::Evaluator]))
            .unwrap();
        assert!(matches!(
            store.login("hale", "wrong password!!", "c"),
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            store.login("nobody", "correct horse battery", "c"),
            Err(AuthError::InvalidCredentials)
        ));
        let (token, session) = store.login("HALE", "correct horse battery", "c").unwrap();
        assert_eq!(session.user.name, "hale");
        assert_eq!(session.user.roles, vec![Role::Officer, Role::Evaluator]);
        assert_eq!(session.user.clearance.level, "SECRET");
        let again = store.session(&token).unwrap().unwrap();
        assert_eq!(again.csrf, session.csrf);
        // Only the hash of the token is stored.
        let stored: String = store
            .conn()
            .query_row("SELECT id FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token);
        store.logout(&token).unwrap();
        assert_eq!(
            store.session(&token).unwrap().err(),
            Some(SessionState::Unknown)
        );
    }

    #[test]
    fn idle_sessions_expire() {
        let (_dir, store) = store(AuthConfig {
            session_idle_secs: 0,
            ..AuthConfig::default()
        });
        store.add_user(&new_user("hale", &[Role::Officer])).unwrap();
        let (token, _) = store.login("hale", "correct horse battery", "c").unwrap();
        assert_eq!(
            store.session(&token).unwrap().err(),
            Some(SessionState::Expired)
        );
        assert_eq!(
            store.session(&token).unwrap().err(),
            Some(SessionState::Unknown)
        );
    }

    #[test]
    fn failed_logins_are_throttled_per_account_and_per_client() {
        let (_dir, store) = store(AuthConfig {
            max_failures: 3,
            max_failures_per_client: 5,
            ..AuthConfig::default()
        });
        store.add_user(&new_user("hale", &[Role::Officer])).unwrap();
        store.add_user(&new_user("ward", &[Role::Officer])).unwrap();
        for _ in 0..3 {
            assert!(matches!(
                store.login("hale", "guess guess guess", "a"),
                Err(AuthError::InvalidCredentials)
            ));
        }
        // Even the right password is refused while throttled.
        match store.login("hale", "correct horse battery", "b") {
            Err(AuthError::Throttled { retry_after_secs }) => {
                assert!(retry_after_secs > 0 && retry_after_secs <= 900)
            }
            other => panic!("{other:?}"),
        }
        // Another account from another client is unaffected...
        store.login("ward", "correct horse battery", "b").unwrap();
        // ...but one client guessing across accounts is stopped too.
        for _ in 0..2 {
            let _ = store.login("ward", "guess guess guess", "a");
        }
        assert!(matches!(
            store.login("ward", "correct horse battery", "a"),
            Err(AuthError::Throttled { .. })
        ));
    }

    #[test]
    fn account_changes_end_sessions_and_keep_one_admin() {
        let (_dir, store) = store(AuthConfig::default());
        store.add_user(&new_user("root", &[Role::Admin])).unwrap();
        store.add_user(&new_user("hale", &[Role::Officer])).unwrap();
        let (token, _) = store.login("hale", "correct horse battery", "c").unwrap();
        store.set_roles("hale", &[Role::Custodian]).unwrap();
        assert!(store.session(&token).unwrap().is_err());
        let (token, _) = store.login("hale", "correct horse battery", "c").unwrap();
        store.set_disabled("hale", true).unwrap();
        assert!(store.session(&token).unwrap().is_err());
        assert!(matches!(
            store.login("hale", "correct horse battery", "c"),
            Err(AuthError::InvalidCredentials)
        ));
        assert!(store.set_roles("root", &[Role::Officer]).is_err());
        assert!(store.set_disabled("root", true).is_err());
        assert!(matches!(
            store.add_user(&new_user("ROOT", &[Role::Officer])),
            Err(AuthError::Exists(_))
        ));
        assert!(
            store
                .add_user(&new_user("../etc", &[Role::Officer]))
                .is_err()
        );
        assert!(
            store
                .add_user(&NewUser {
                    password: "short".into(),
                    ..new_user("x", &[Role::Officer])
                })
                .is_err()
        );
    }

    #[test]
    fn sql_metacharacters_in_names_are_data() {
        let (_dir, store) = store(AuthConfig::default());
        store.add_user(&new_user("root", &[Role::Admin])).unwrap();
        for name in ["' OR '1'='1", "root'--", "x\"; DROP TABLE users;--"] {
            assert!(matches!(
                store.login(name, "correct horse battery", "c"),
                Err(AuthError::InvalidCredentials)
            ));
        }
        assert_eq!(store.users().unwrap().len(), 1);
    }

    #[test]
    fn roles_parse_from_lists() {
        assert_eq!(
            Role::parse_list("evaluator, officer,officer").unwrap(),
            vec![Role::Officer, Role::Evaluator]
        );
        assert!(Role::parse_list("officer,general").is_err());
    }
}

#[cfg(test)]
mod password_tests {
    use super::*;

    fn store() -> (tempfile::TempDir, AuthStore) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            AuthStore::open(&dir.path().join("users.sqlite"), AuthConfig::default()).unwrap();
        (dir, store)
    }

    #[test]
    fn common_and_personal_passwords_are_refused() {
        let (_dir, store) = store();
        for weak in [
            "password1234",
            "Password123!",
            "qwertyuiopasdf",
            "123456789012",
            "aaaaaaaaaaaaaaaa",
            "iloveyou12345",
            "letmein123456",
        ] {
            let err = store
                .check_password("officer", weak)
                .unwrap_err()
                .to_string();
            assert!(err.contains("too easy to guess"), "{weak}: {err}");
        }
        let err = store
            .check_password("bernadette", "Bernadette-2026-spring")
            .unwrap_err()
            .to_string();
        assert!(err.contains("account name"), "{err}");
        for strong in [
            "correct horse battery staple",
            "vellum lantern quarry 41",
            "a long enough password",
        ] {
            store
                .check_password("officer", strong)
                .unwrap_or_else(|e| panic!("{strong}: {e}"));
        }
    }
}
