//! The image storage quota while data streams in. Every upload, stage and import holds a
//! [`Reservation`] on its owner's bytes and takes each chunk from it before the chunk is
//! written, so uploads running side by side can never pass the quota together: the bytes
//! of all of them count. What is settled (in the database) is read once, when the owner has
//! no transfer under way in this process, and then kept up to date here; activation checks
//! the database again under the write lock (`store::activate`), which also covers other
//! processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One owner's bytes: settled in the database, and taken by transfers under way.
#[derive(Debug, Default)]
struct Usage {
    settled: u64,
    in_flight: u64,
    transfers: usize,
}

#[derive(Debug, Default)]
pub struct Ledger {
    owners: Mutex<HashMap<String, Usage>>,
}

impl Ledger {
    fn owners(&self) -> MutexGuard<'_, HashMap<String, Usage>> {
        // The map stays consistent whatever panicked while holding it.
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a reservation for `owner` within `limit` bytes (`u64::MAX` for none).
    /// `settled` is the owner's bytes in the database now, used if no transfer of theirs is
    /// under way; `credit` is what the image being filled already counts there (staged
    /// data about to be imported), which its new data replaces.
    pub fn reserve(
        self: &Arc<Self>,
        owner: &str,
        limit: u64,
        settled: u64,
        credit: u64,
    ) -> Reservation {
        let mut owners = self.owners();
        let usage = owners.entry(owner.to_owned()).or_insert_with(|| Usage {
            settled,
            ..Usage::default()
        });
        usage.transfers += 1;
        Reservation {
            ledger: Arc::clone(self),
            owner: owner.to_owned(),
            limit,
            credit,
            taken: 0,
            settled: false,
        }
    }

    /// The owner's bytes, settled and in flight (for tests and logs).
    pub fn used(&self, owner: &str) -> u64 {
        self.owners()
            .get(owner)
            .map_or(0, |u| u.settled.saturating_add(u.in_flight))
    }
}

/// A transfer's hold on its owner's quota; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Ledger>,
    owner: String,
    limit: u64,
    credit: u64,
    taken: u64,
    settled: bool,
}

impl Reservation {
    /// Takes `more` bytes if the owner stays within the limit with them.
    pub fn take(&mut self, more: u64) -> bool {
        let mut owners = self.ledger.owners();
        let Some(usage) = owners.get_mut(&self.owner) else {
            return false;
        };
        let projected = usage
            .settled
            .saturating_add(usage.in_flight)
            .saturating_add(more)
            .saturating_sub(self.credit);
        if projected > self.limit {
            return false;
        }
        usage.in_flight += more;
        self.taken += more;
        true
    }

    /// The limit this reservation enforces.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The transfer's bytes are now in the database: they stay counted, as settled.
    pub fn settle(mut self) {
        let mut owners = self.ledger.owners();
        if let Some(usage) = owners.get_mut(&self.owner) {
            usage.in_flight = usage.in_flight.saturating_sub(self.taken);
            usage.settled = usage
                .settled
                .saturating_add(self.taken)
                .saturating_sub(self.credit);
        }
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut owners = self.ledger.owners();
        let Some(usage) = owners.get_mut(&self.owner) else {
            return;
        };
        if !self.settled {
            usage.in_flight = usage.in_flight.saturating_sub(self.taken);
        }
        usage.transfers = usage.transfers.saturating_sub(1);
        if usage.transfers == 0 {
            // Nothing under way: the database is the truth again.
            owners.remove(&self.owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_side_by_side_share_the_limit() {
        let ledger = Arc::new(Ledger::default());
        let mut a = ledger.reserve("p", 1000, 100, 0);
        let mut b = ledger.reserve("p", 1000, 100, 0);
        assert!(a.take(500));
        assert!(b.take(400));
        assert!(!b.take(1), "100 settled + 900 in flight: full");
        assert!(!a.take(1));
        // Another owner is unaffected.
        let mut c = ledger.reserve("q", 1000, 0, 0);
        assert!(c.take(1000));
        // A settles: its bytes stay counted.
        a.settle();
        assert_eq!(ledger.used("p"), 1000);
        assert!(!b.take(1));
        // B fails: its bytes are released.
        drop(b);
        assert_eq!(ledger.used("p"), 0, "no transfer left: forgotten");
        let mut d = ledger.reserve("p", 1000, 600, 0);
        assert!(d.take(400));
        assert!(!d.take(1));
    }

    #[test]
    fn an_import_replaces_the_staged_bytes_it_counts() {
        let ledger = Arc::new(Ledger::default());
        // 700 settled, of which 600 are this image's staged data.
        let mut import = ledger.reserve("p", 1000, 700, 600);
        assert!(import.take(600));
        assert!(import.take(300));
        assert!(!import.take(1));
        import.settle();
        // A second transfer while nothing else is under way reads the database again.
        assert_eq!(ledger.used("p"), 0);
    }
}
