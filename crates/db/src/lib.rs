//! The control database: one pool for every service, schema migrations, and the few
//! portable helpers the stores share. SQL is kept in the subset SQLite and PostgreSQL both
//! speak (`$N` placeholders, TEXT ids, INTEGER booleans, BIGINT microsecond timestamps) so the
//! multi-host controller can move to PostgreSQL without a second copy of every query.

pub mod docs;
pub mod ids;
pub mod query;
pub mod quotas;
pub mod timestamps;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use sqlx::any::AnyRow as Row;
pub use sqlx::{Any, Row as RowExt, Transaction};

pub use docs::{DocError, decode, encode};
pub use query::{Bind, Sql};
pub use quotas::QuotaTable;

pub type Pool = AnyPool;
pub type Tx = Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "the database at {path} is not a usable SQLite database ({source}); restore it from a backup or move it aside to start afresh"
    )]
    Corrupt { path: String, source: sqlx::Error },
    #[error("cannot open the database at {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error(
        "cannot use the PostgreSQL database at {url} ({source}); check that the server runs, that the database exists and that the URL's user and password are right"
    )]
    Postgres { url: String, source: sqlx::Error },
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database holds password hashes and user data: owner-only, whatever the umask. SQLite
/// gives its `-wal` and `-shm` files the mode of the database file.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Opens (creating if needed) the SQLite database at `path` in WAL mode and migrates it.
pub async fn open_sqlite(path: &Path) -> Result<Pool, DbError> {
    sqlx::any::install_default_drivers();
    let shown = path.display().to_string();
    restrict_to_owner(path).map_err(|source| DbError::Open {
        path: shown.clone(),
        source: sqlx::Error::Io(source),
    })?;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let options = AnyConnectOptions::from_str(&url).map_err(|source| DbError::Open {
        path: shown.clone(),
        source,
    })?;
    // One probe connection first: a damaged file often opens fine and fails on first read,
    // and the pool would only retry until its timeout. Say so now, not mid-request.
    let mut probe = AnyConnection::connect_with(&options)
        .await
        .map_err(|source| classify(&shown, source))?;
    probe
        .execute("PRAGMA journal_mode = WAL; SELECT count(*) FROM sqlite_master")
        .await
        .map_err(|source| classify(&shown, source))?;
    let _ = probe.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|source| classify(&shown, source))?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Connects to the PostgreSQL database at `url` (which must exist) and migrates it: the
/// control database of several hosts and controllers. The schema and every query are the
/// SQLite ones; `begin_write`'s lock row serializes writers across processes.
pub async fn open_postgres(url: &str) -> Result<Pool, DbError> {
    sqlx::any::install_default_drivers();
    let shown = without_password(url);
    let failed = |source| DbError::Postgres {
        url: shown.clone(),
        source,
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(failed(sqlx::Error::Configuration(
            "the URL must start with postgres://".into(),
        )));
    }
    let options = AnyConnectOptions::from_str(url).map_err(failed)?;
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(failed)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Whether the pool is a PostgreSQL database, which other controller processes may share
/// (a SQLite database belongs to the one process that opened it).
pub fn is_postgres(pool: &Pool) -> bool {
    matches!(
        pool.connect_options().database_url.scheme(),
        "postgres" | "postgresql"
    )
}

/// A database URL fit for a log line or an error: its password replaced.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn classify(path: &str, source: sqlx::Error) -> DbError {
    let text = source.to_string();
    if text.contains("not a database") || text.contains("malformed") || text.contains("corrupt") {
        DbError::Corrupt {
            path: path.to_owned(),
            source,
        }
    } else {
        DbError::Open {
            path: path.to_owned(),
            source,
        }
    }
}

/// Begins a transaction that holds the write lock from its first statement, so that what it
/// reads (quota usage, capacity, whether a name is taken) is not overtaken by another writer
/// before it writes. Without it SQLite starts the transaction as a reader and fails the
/// upgrade with SQLITE_BUSY instead of waiting.
pub async fn begin_write(pool: &Pool) -> sqlx::Result<Tx> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE write_lock SET id = id WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Current time in microseconds since the Unix epoch, the stored timestamp format.
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1000) as i64
}

/// Whether an error is a uniqueness violation (on either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// Whether an error is a foreign-key violation (on either backend).
pub fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_foreign_key_violation() || db.message().contains("FOREIGN KEY constraint failed")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onestack.db");
        let pool = open_sqlite(&path).await.unwrap();
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
            .bind("k")
            .bind("v")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let pool = open_sqlite(&path).await.unwrap();
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind("k")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("value"), "v");
    }

    #[tokio::test]
    async fn the_database_is_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onestack.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pool = open_sqlite(&path).await.unwrap();
        sqlx::query("INSERT INTO meta (key, value) VALUES ('a', 'b')")
            .execute(&pool)
            .await
            .unwrap();
        for name in ["onestack.db", "onestack.db-wal", "onestack.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        assert_eq!(
            without_password("postgres://os:s3cret@db:5432/onestack"),
            "postgres://os:***@db:5432/onestack"
        );
        assert_eq!(
            without_password("postgres://os@/onestack?host=/run/postgresql"),
            "postgres://os:***@/onestack?host=/run/postgresql"
        );
        assert_eq!(without_password("postgres://db/x"), "postgres://db/x");
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onestack.db");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let error = open_sqlite(&path).await.unwrap_err();
        assert!(matches!(error, DbError::Corrupt { .. }), "{error}");
    }
}
