//! The cache generation that controllers sharing one database bump and compare.

use onestack_db::Pool;

/// Bumps the shared generation; the new value.
pub async fn bump(pool: &Pool) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "UPDATE identity_generation SET generation = generation + 1 WHERE id = 1 \
         RETURNING generation",
    )
    .fetch_one(pool)
    .await
}

pub async fn current(pool: &Pool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT generation FROM identity_generation WHERE id = 1")
        .fetch_one(pool)
        .await
}
