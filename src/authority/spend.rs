//! Group commit of request tokens: the single use of each token's `jti` and the authority's
//! request count, written for many requests in one transaction.
//!
//! An authenticated API request is answered only once its token is recorded as used, durably,
//! so that no instance accepts the token again. One transaction per request cost one durable
//! commit per request (an fsync of SQLite's WAL; a WAL flush and six round trips on
//! PostgreSQL), behind SQLite's single writer: most of an authenticated GET. A [`Spender`]
//! owns one writer thread. Requests queue their tokens; the thread takes everything queued (up
//! to [`MAX_BATCH`]), writes it in one transaction, and answers each request after the commit.
//! While one batch commits the next one gathers, so batches grow with the load and a lone
//! request waits for no timer.
//!
//! What does not change:
//! - *Single use, across instances.* The primary key of `used_token_ids` (authority, `jti`)
//!   refuses a second insert whichever instance makes it; a token is accepted only after its
//!   row committed. A second use of the same token within one batch is refused before the
//!   insert ([`write_batch`]), and only that request fails: the rest of the batch commits.
//! - *The rate limit.* Each accepted request gets its own count (the counter after the batch,
//!   less the batch's later requests of the same authority), so a limit of `n` lets exactly `n`
//!   requests of a window through however they are batched.
//! - *No deadlock between instances* (PostgreSQL): rows are written in key order, token ids
//!   first, then counters, then failure counts, so two batches never wait on each other in a
//!   cycle.
//!
//! If the transaction fails, every request of the batch is answered "unavailable" (503): none
//! of their tokens was accepted, and none is recorded as used.

use std::collections::BTreeMap;
use std::sync::mpsc;

use chrono::Utc;

use super::throttle;
use super::token::{self, TokenError};
use crate::db::{Db, DbConn, DbError, write_tx};

/// The most requests one transaction takes.
pub const MAX_BATCH: usize = 512;

/// One request's token, checked and bound to its request, to be spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    /// The authority that signed it.
    pub authority_id: String,
    /// Its single-use id.
    pub jti: String,
    /// Its expiry (Unix seconds): the row is kept past it.
    pub expires_at: i64,
    /// The client's network, counted under if the token turns out to be a replay.
    pub source: String,
}

impl Spend {
    /// The spend of `verified`, sent from `source`.
    pub fn of(verified: &token::Verified, source: &str) -> Self {
        Self {
            authority_id: verified.authority_id.clone(),
            jti: verified.claims.jti.clone(),
            expires_at: verified.claims.exp,
            source: source.to_owned(),
        }
    }
}

/// What became of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// Recorded as used. `count`: the authority's requests in the current one-minute window,
    /// this one included (the caller holds it to the rate limit).
    Accepted {
        /// The authority's request count, this request included.
        count: i64,
    },
    /// Used before, on any instance or earlier in the same batch: refused.
    Replay,
}

struct Job {
    spend: Spend,
    answer: tokio::sync::oneshot::Sender<Result<Spent, String>>,
}

/// The queue to one writer thread that spends tokens in batches (see the module's notes).
/// Dropping it stops the thread once the queue is empty.
#[derive(Debug)]
pub struct Spender {
    queue: mpsc::Sender<Job>,
}

impl Spender {
    /// Starts the writer thread on `db`; `max_lifetime_secs` is the longest life of a token
    /// (`api.token_max_lifetime_secs`), which decides when a used id may be forgotten.
    pub fn start(db: Db, max_lifetime_secs: i64) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("writ-token-spend".into())
            .spawn(move || writer(&db, &jobs, max_lifetime_secs))?;
        Ok(Self { queue })
    }

    /// Spends `spend`'s token together with whatever other requests are queued; answers once
    /// the batch has committed.
    pub async fn spend(&self, spend: Spend) -> Result<Spent, DbError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue
            .send(Job { spend, answer })
            .map_err(|_| DbError::Unavailable("the token writer has stopped".into()))?;
        match answered.await {
            Ok(Ok(spent)) => Ok(spent),
            Ok(Err(e)) => Err(DbError::Unavailable(e)),
            Err(_) => Err(DbError::Unavailable(
                "the token writer stopped before answering".into(),
            )),
        }
    }
}

/// The writer thread: a batch per turn, until every [`Spender`] handle is gone.
fn writer(db: &Db, jobs: &mpsc::Receiver<Job>, max_lifetime_secs: i64) {
    // Old token ids and counters go once a minute, not in every batch.
    let mut purged_in = i64::MIN;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let now = Utc::now().timestamp();
        let window = throttle::window_start(now);
        let spends: Vec<&Spend> = batch.iter().map(|j| &j.spend).collect();
        // A panic must not leave later requests without a writer: it fails this batch only.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.run_blocking(|c| {
                write_tx(c, |c| {
                    if window != purged_in {
                        token::purge_used(c, now, max_lifetime_secs)?;
                        throttle::purge_windows(c, now)?;
                    }
                    write_batch(c, &spends, now)
                })
            })
        }))
        .unwrap_or_else(|_| Err(DbError::Unavailable("the token writer panicked".into())));
        match written {
            Ok(outcomes) => {
                purged_in = window;
                for (job, spent) in batch.into_iter().zip(outcomes) {
                    // A request that gave up waiting has nobody to answer.
                    let _ = job.answer.send(Ok(spent));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batch = batch.len(), "could not record used tokens");
                let e = e.to_string();
                for job in batch {
                    let _ = job.answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Spends the tokens of `spends` inside the caller's transaction and says, for each in the
/// same order, whether it was accepted (with its request count) or is a replay. The first of
/// two uses of one token in `spends` is the one accepted. Replays are counted as failed
/// authentications of their client's network, as a replay on its own is.
pub fn write_batch(conn: &mut DbConn, spends: &[&Spend], now: i64) -> Result<Vec<Spent>, DbError> {
    let mut outcomes = vec![Spent::Replay; spends.len()];
    // Key order (then queue order, so that the first of two uses comes first).
    let mut order: Vec<usize> = (0..spends.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| (spends[i].authority_id.as_str(), spends[i].jti.as_str(), i);
        key(a).cmp(&key(b))
    });
    let mut accepted: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut previous: Option<(&str, &str)> = None;
    for i in order {
        let s = spends[i];
        let id = (s.authority_id.as_str(), s.jti.as_str());
        if previous == Some(id) {
            continue;
        }
        previous = Some(id);
        if token::record_use(conn, &s.authority_id, &s.jti, s.expires_at)? {
            accepted.entry(id.0).or_default().push(i);
        }
    }
    for (authority, mut requests) in accepted {
        requests.sort_unstable();
        let n = i64::try_from(requests.len()).unwrap_or(i64::MAX);
        let total = throttle::add(conn, &format!("authority:{authority}"), now, n)?;
        for (k, i) in (0_i64..).zip(requests) {
            outcomes[i] = Spent::Accepted {
                count: total - n + k + 1,
            };
        }
    }
    let mut replays: Vec<&str> = spends
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Spent::Replay)
        .map(|(s, _)| s.source.as_str())
        .collect();
    replays.sort_unstable();
    for source in replays {
        throttle::record_failure(conn, source, TokenError::Replay.class(), now)?;
    }
    Ok(outcomes)
}
