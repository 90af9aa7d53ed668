//! Keystone's security-compliance rules for passwords (`[security_compliance]`): strength
//! by a regular expression, no reuse of recent passwords, expiry and a minimum age. Every
//! way a password is set (user create, admin update, self-service change) goes through
//! [`PasswordRules::check_new`] and [`PasswordRules::record`]; the password method asks
//! [`PasswordRules::is_expired`].

use onestack_db::{Pool, now_micros};
use regex::Regex;

use crate::config::IdentityConfig;
use crate::error::{Error, Result};
use crate::model::User;
use crate::{password, store};

const DAY_MICROS: i64 = 86_400 * 1_000_000;

pub struct PasswordRules {
    regex: Option<std::result::Result<Regex, String>>,
    description: String,
    unique: u32,
    expires_days: u32,
    minimum_age_days: u32,
    cost: u32,
}

/// Whether the configured rules can be applied: the process refuses to start on an invalid
/// `password_regex` rather than refuse every password later.
pub fn check_config(config: &IdentityConfig) -> std::result::Result<(), String> {
    match PasswordRules::new(config).regex {
        Some(Err(e)) => Err(format!(
            "[identity] password_regex is not a valid regular expression: {e}"
        )),
        _ => Ok(()),
    }
}

impl PasswordRules {
    pub fn new(config: &IdentityConfig) -> Self {
        let regex = (!config.password_regex.is_empty())
            .then(|| Regex::new(&config.password_regex).map_err(|e| e.to_string()));
        Self {
            regex,
            description: config.password_regex_description.clone(),
            unique: config.unique_last_password_count,
            expires_days: config.password_expires_days,
            minimum_age_days: config.minimum_password_age,
            cost: config.password_hash_rounds,
        }
    }

    /// When a password set at `set_at` expires (microseconds), if passwords expire.
    pub fn expires_at(&self, set_at: Option<i64>) -> Option<i64> {
        let set_at = set_at?;
        (self.expires_days > 0).then(|| set_at + i64::from(self.expires_days) * DAY_MICROS)
    }

    pub fn is_expired(&self, user: &User) -> bool {
        self.expires_at(user.password_set_at)
            .is_some_and(|at| at <= now_micros())
    }

    /// Refuses `new` as `user`'s next password (or a new user's first, `user` `None`): too
    /// weak for the regex, or one of the recent ones. `self_service` adds the minimum age.
    pub async fn check_new(
        &self,
        pool: &Pool,
        user: Option<&User>,
        new: &str,
        self_service: bool,
    ) -> Result<()> {
        password::check_length(new)?;
        match &self.regex {
            Some(Ok(regex)) if !regex.is_match(new) => {
                return Err(Error::validation(format!(
                    "Password validation error: The password does not meet the requirements: {}",
                    self.description
                )));
            }
            Some(Err(e)) => {
                return Err(Error::validation(format!(
                    "The configured password_regex cannot be used: {e}"
                )));
            }
            _ => {}
        }
        let Some(user) = user else {
            return Ok(());
        };
        if self_service
            && self.minimum_age_days > 0
            && let Some(set_at) = user.password_set_at
            && now_micros() - set_at < i64::from(self.minimum_age_days) * DAY_MICROS
        {
            return Err(Error::validation(format!(
                "Cannot change password before minimum age {} days is reached.",
                self.minimum_age_days
            )));
        }
        if self.unique > 1 {
            let mut recent =
                store::users::password_history(pool, &user.id, i64::from(self.unique - 1)).await?;
            if recent.is_empty()
                && let Some(current) = &user.password_hash
            {
                recent.push(current.clone());
            }
            for hash in recent {
                if password::verify(new.to_owned(), Some(hash), self.cost).await? {
                    return Err(Error::validation(format!(
                        "Password validation error: The new password cannot be identical to a \
                         previous password. The total number which includes the new password \
                         must be unique is {}.",
                        self.unique
                    )));
                }
            }
        }
        Ok(())
    }

    /// Keeps `hash` as `user_id`'s newest password: its set time (for expiry and minimum
    /// age) and, when the history is on, in the history.
    pub async fn record(&self, pool: &Pool, user_id: &str, hash: &str) -> Result<()> {
        store::users::record_password(pool, user_id, hash, now_micros(), self.unique > 1).await?;
        Ok(())
    }
}
