//! The database: challenges and registrations, on SQLite or PostgreSQL through one set of SQL
//! migrations.
//!
//! Every state change runs in one transaction that first claims the challenge (sets `used_at`),
//! then applies the effect, then stores the answer. A crash anywhere before `COMMIT` leaves
//! nothing; after it, a retried submission finds the stored answer. The `(root_id, serial)`
//! unique constraint makes "concurrent registrations of one card end as one registration" a fact
//! of the database, not of this process.
//!
//! A registration that waits for an upstream (protocol §16) is a row of
//! `pending_registrations`, written in the transaction that claims its challenge. Workers claim a
//! due row with a lease in one `UPDATE … RETURNING` ([`Store::claim_pending`]) and commit its end
//! only while they hold the lease ([`Store::finish_pending`]), so one item is applied once
//! however many service instances share the database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

/// SQL migrations shared by both backends.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database the URL chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if it is one this service supports.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no supported database (`sqlite:` or `postgres://`).
    #[error("unsupported database URL scheme (use sqlite: or postgres://)")]
    UnsupportedUrl,
    /// The database driver failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A card certificate as the registry keys it: the issuing root and the serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardKey {
    /// Identifier of the root the certificate chains to (e.g. `authca03`).
    pub root_id: String,
    /// Certificate serial number, lowercase hex without leading zero bytes.
    pub serial: String,
}

/// A stored challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// Session id (random, base64url).
    pub session_id: String,
    /// Nonce (32 random bytes, base64url).
    pub nonce: String,
    /// The terminal the challenge was issued to.
    pub terminal_id: String,
    /// The operation the session is for (`register_insurance_use`, …).
    pub purpose: String,
    /// Accepted methods, comma-separated (`pin_signature,accredited_face`).
    pub methods: String,
    /// Consent document version shown for this session.
    pub consent_version: String,
    /// SHA-256 of that consent document, lowercase hex.
    pub consent_sha256: String,
    /// Issue time, Unix milliseconds.
    pub issued_at: i64,
    /// Expiry time, Unix milliseconds.
    pub expires_at: i64,
    /// When a proof was accepted for processing, if one was.
    pub used_at: Option<i64>,
    /// SHA-256 of that proof, lowercase hex.
    pub proof_sha256: Option<String>,
    /// The stored answer (JSON without personal data).
    pub outcome: Option<String>,
    /// The terminal whose client certificate started the session (mutual TLS, protocol §3):
    /// its proof and poll must come from that terminal. `None` for a session started without
    /// a client certificate.
    pub bound_terminal_id: Option<String>,
}

/// A registration row: everything the service keeps about a registered card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRecord {
    /// Registration id.
    pub registration_id: String,
    /// Root and serial of the card's authentication certificate.
    pub card: CardKey,
    /// SHA-256 of the certificate DER, lowercase hex.
    pub cert_sha256: String,
    /// The service's linkage code for the person.
    pub linkage_code: String,
    /// The terminal that registered it.
    pub terminal_id: String,
    /// `pin_signature` or `accredited_face`.
    pub method: String,
    /// Consent version agreed to.
    pub consent_version: String,
    /// Registration time, Unix milliseconds.
    pub registered_at: i64,
    /// Time of the last relink to a reissued card, if any.
    pub relinked_at: Option<i64>,
}

/// What a settled proof changes.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Nothing but the answer (failures).
    None,
    /// Register a card: relink an earlier certificate of the same person if one is registered,
    /// otherwise insert; an existing registration of this card is reported, not duplicated.
    Register {
        /// The new row (its id is used only if a row is inserted).
        registration: RegistrationRecord,
        /// Earlier certificates of the same person (from the identity upstream), newest first.
        relink_from: Vec<CardKey>,
        /// Certificates of the same person valid beside this one (card ↔ smartphone): if one
        /// is registered, the person is registered.
        linked: Vec<CardKey>,
    },
    /// Point of use: find the card's registration, relinking from an earlier certificate if
    /// needed; with `lapse`, cancel the registration found.
    Eligibility {
        /// The presented card.
        card: CardKey,
        /// SHA-256 of the presented certificate (written on relink).
        cert_sha256: String,
        /// Earlier certificates of the same person, newest first.
        relink_from: Vec<CardKey>,
        /// Certificates of the same person valid beside this one (card ↔ smartphone).
        linked: Vec<CardKey>,
        /// The grace period is over: cancel the link.
        lapse: bool,
    },
    /// Remove the card's registration.
    Deregister {
        /// The presented card.
        card: CardKey,
    },
    /// An answer established by reads before settling, that writes nothing but the claim: a
    /// point-of-use check that found the card's own registration (no relink, no lapse), or found
    /// nothing with nothing to relink. The check counts as made at the moment of those reads.
    Read(Applied),
    /// A valid registration proof whose upstreams did not answer: consume the nonce and keep
    /// the work for the background (protocol §16).
    Pending(PendingRecord),
}

/// A registration that waits for an upstream, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    /// The session.
    pub session_id: String,
    /// SHA-256 of the poll token, base64url.
    pub token_sha256: String,
    /// `identity` or `insurance`: what the last attempt waited for.
    pub waiting_on: String,
    /// The card (cleared when the registration ends).
    pub card: CardKey,
    /// SHA-256 of the certificate DER, base64url.
    pub cert_sha256: String,
    /// End of the certificate's validity, Unix seconds.
    pub not_after: i64,
    /// The terminal that submitted.
    pub terminal_id: String,
    /// `pin_signature` or `accredited_face`.
    pub method: String,
    /// Consent version of the session.
    pub consent_version: String,
    /// Attempts made by workers so far.
    pub attempts: i64,
    /// When the proof was accepted, Unix ms.
    pub accepted_at: i64,
    /// When the next attempt is due, Unix ms.
    pub next_attempt_at: i64,
    /// When the service gives up, Unix ms.
    pub deadline: i64,
}

/// What a poll or a resubmission needs to know about a pending registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStatus {
    /// SHA-256 of the poll token, base64url.
    pub token_sha256: String,
    /// Whether it has ended.
    pub done: bool,
    /// `identity` or `insurance`.
    pub waiting_on: String,
    /// When the proof was accepted, Unix ms.
    pub accepted_at: i64,
    /// When the service gives up, Unix ms.
    pub deadline: i64,
}

/// What the effect did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// No effect was asked for.
    Nothing,
    /// A new registration row.
    Registered(RegistrationRecord),
    /// The card was already registered (this row).
    AlreadyRegistered(RegistrationRecord),
    /// An earlier certificate's registration now points at this card.
    Relinked(RegistrationRecord),
    /// Point of use found the registration (after a relink when `relinked`).
    Found {
        /// The registration.
        registration: RegistrationRecord,
        /// Whether it was relinked in this transaction.
        relinked: bool,
    },
    /// The registration was cancelled because the grace period is over.
    Lapsed(RegistrationRecord),
    /// The registration was removed at the person's request.
    Deregistered(RegistrationRecord),
    /// No registration for this card or an earlier one.
    NotRegistered,
    /// The registration waits for an upstream; a worker finishes it.
    Pending,
}

/// The result of settling a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// This submission claimed the challenge; its effect and answer are committed.
    Fresh {
        /// What the effect did.
        applied: Applied,
        /// The stored answer.
        outcome: String,
    },
    /// Another submission claimed the challenge first.
    Earlier(ChallengeRecord),
}

/// The registry database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    // SQLite has one writer at a time; queuing writers here, in order, avoids its busy handler,
    // which polls with sleeps of up to 100 ms. PostgreSQL needs no such lock.
    writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

const PENDING_COLUMNS: &str = "session_id, token_sha256, waiting_on, root_id, serial, cert_sha256, \
     not_after, terminal_id, method, consent_version, attempts, accepted_at, next_attempt_at, \
     deadline";

const REGISTRATION_COLUMNS: &str = "registration_id, root_id, serial, cert_sha256, linkage_code, \
     terminal_id, method, consent_version, registered_at, relinked_at";

impl Store {
    /// Connects (creating a SQLite file if needed) and applies the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let backend = Backend::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        sqlx::any::install_default_drivers();
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file handle that does not drop; pinging it before each
            // use cost a round trip to its worker thread per query.
            .test_before_acquire(backend != Backend::Sqlite)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; NORMAL keeps every
                        // committed transaction across a process crash (not a power cut);
                        // the busy timeout makes writers queue instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = (backend == Backend::Sqlite).then(Default::default);
        Ok(Store {
            pool,
            backend,
            writer,
        })
    }

    async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.writer {
            Some(lock) => Some(std::sync::Arc::clone(lock).lock_owned().await),
            None => None,
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a new challenge.
    pub async fn insert_challenge(&self, c: &ChallengeRecord) -> Result<(), StoreError> {
        let _writing = self.write_turn().await;
        sqlx::query(
            "INSERT INTO challenges (session_id, nonce, terminal_id, purpose, methods, \
             consent_version, consent_sha256, issued_at, expires_at, bound_terminal_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&c.session_id)
        .bind(&c.nonce)
        .bind(&c.terminal_id)
        .bind(&c.purpose)
        .bind(&c.methods)
        .bind(&c.consent_version)
        .bind(&c.consent_sha256)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .bind(&c.bound_terminal_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Reads a challenge by session id.
    pub async fn challenge(&self, session_id: &str) -> Result<Option<ChallengeRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT session_id, nonce, terminal_id, purpose, methods, consent_version, \
             consent_sha256, issued_at, expires_at, used_at, proof_sha256, outcome, \
             bound_terminal_id FROM challenges WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| challenge_from_row(&r)).transpose()
    }

    /// The registration of a card, if any.
    pub async fn registration(
        &self,
        card: &CardKey,
    ) -> Result<Option<RegistrationRecord>, StoreError> {
        let sql = format!(
            "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE root_id = $1 AND serial = $2"
        );
        let row = sqlx::query(&sql)
            .bind(&card.root_id)
            .bind(&card.serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| registration_from_row(&r)).transpose()
    }

    /// A registration by id, if it still exists.
    pub async fn registration_by_id(
        &self,
        registration_id: &str,
    ) -> Result<Option<RegistrationRecord>, StoreError> {
        let sql =
            format!("SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE registration_id = $1");
        let row = sqlx::query(&sql)
            .bind(registration_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| registration_from_row(&r)).transpose()
    }

    /// Number of registration rows (for operators and tests).
    pub async fn registration_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM registrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// The expiry times (Unix ms) of at most `limit` challenges not used and not expired at
    /// `now`, soonest first (the open-challenge ceiling's starting count; the index on
    /// `expires_at` keeps it cheap).
    pub async fn open_challenge_expiries(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT expires_at FROM challenges WHERE expires_at > $1 AND used_at IS NULL \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// Number of challenge rows, used or not (for operators and tests).
    pub async fn challenge_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM challenges")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Deletes challenges never used that expired before `before` (Unix ms): they hold no
    /// answer to keep for retries. Returns how many.
    pub async fn purge_unused_challenges(&self, before: i64) -> Result<u64, StoreError> {
        let _writing = self.write_turn().await;
        let done = sqlx::query("DELETE FROM challenges WHERE used_at IS NULL AND expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes challenges that expired before `before` (Unix ms), except those of registrations
    /// still pending, and the ended pending rows of deleted challenges; returns how many
    /// challenges.
    pub async fn purge_challenges(&self, before: i64) -> Result<u64, StoreError> {
        let _writing = self.write_turn().await;
        let done = sqlx::query(
            "DELETE FROM challenges WHERE expires_at < $1 AND session_id NOT IN \
             (SELECT session_id FROM pending_registrations WHERE state = 'pending')",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM pending_registrations WHERE state <> 'pending' AND session_id NOT IN \
             (SELECT session_id FROM challenges)",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// A pending registration's status, if the session ever went pending.
    pub async fn pending_status(
        &self,
        session_id: &str,
    ) -> Result<Option<PendingStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT token_sha256, state, waiting_on, accepted_at, deadline \
             FROM pending_registrations WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<PendingStatus, StoreError> {
            Ok(PendingStatus {
                token_sha256: r.try_get(0)?,
                done: r.try_get::<String, _>(1)? != "pending",
                waiting_on: r.try_get(2)?,
                accepted_at: r.try_get(3)?,
                deadline: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Numbers of pending registrations still pending and ended (for operators and tests).
    pub async fn pending_counts(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN state = 'pending' THEN 0 ELSE 1 END), 0) \
             FROM pending_registrations",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?))
    }

    /// Claims the pending registration due first (its next attempt and any earlier lease over
    /// at `now`) for `owner` until `lease_until`, counting the attempt. One statement: of two
    /// workers racing for a row, one gets it and the other gets nothing (PostgreSQL re-checks
    /// the lease on the locked row; SQLite runs one writer at a time).
    pub async fn claim_pending(
        &self,
        now: i64,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<PendingRecord>, StoreError> {
        let _writing = self.write_turn().await;
        let sql = format!(
            "UPDATE pending_registrations \
             SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE session_id = (SELECT session_id FROM pending_registrations \
                 WHERE state = 'pending' AND next_attempt_at <= $3 AND lease_until <= $3 \
                 ORDER BY next_attempt_at LIMIT 1) \
               AND state = 'pending' AND lease_until <= $3 \
             RETURNING {PENDING_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| pending_from_row(&r)).transpose()
    }

    /// Gives a claimed item back for another attempt at `next_attempt_at`; `false` when `owner`
    /// no longer holds it.
    pub async fn reschedule_pending(
        &self,
        session_id: &str,
        owner: &str,
        next_attempt_at: i64,
        waiting_on: &str,
    ) -> Result<bool, StoreError> {
        let _writing = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE pending_registrations SET next_attempt_at = $1, waiting_on = $2, \
             lease_owner = NULL, lease_until = 0 \
             WHERE session_id = $3 AND lease_owner = $4 AND state = 'pending'",
        )
        .bind(next_attempt_at)
        .bind(waiting_on)
        .bind(session_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a claimed pending registration: in one transaction, marks it done (clearing the
    /// card), applies `effect` and stores the answer with the session. `None`, with nothing
    /// changed, when `owner` no longer holds the item (its lease ran out and another worker
    /// took it).
    pub async fn finish_pending<F>(
        &self,
        session_id: &str,
        owner: &str,
        now: i64,
        effect: Effect,
        answer: F,
    ) -> Result<Option<Applied>, StoreError>
    where
        F: FnOnce(&Applied) -> String + Send,
    {
        let _writing = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(
            "UPDATE pending_registrations SET state = 'done', finished_at = $1, root_id = NULL, \
             serial = NULL, cert_sha256 = NULL, not_after = NULL, lease_owner = NULL, \
             lease_until = 0 \
             WHERE session_id = $2 AND lease_owner = $3 AND state = 'pending'",
        )
        .bind(now)
        .bind(session_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let applied = match effect {
            Effect::Register {
                registration,
                relink_from,
                linked,
            } => register(&mut tx, registration, &relink_from, &linked, now).await?,
            Effect::Read(applied) => applied,
            // A registration ends registered or with an answer; nothing else applies here.
            _ => Applied::Nothing,
        };
        let outcome = answer(&applied);
        sqlx::query("UPDATE challenges SET outcome = $1 WHERE session_id = $2")
            .bind(&outcome)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(applied))
    }

    /// Claims the challenge for this proof, applies the effect and stores the answer, all in one
    /// transaction. If another submission claimed it first, nothing changes and that earlier
    /// record is returned.
    pub async fn settle<F>(
        &self,
        session_id: &str,
        proof_sha256: &str,
        now: i64,
        effect: Effect,
        answer: F,
    ) -> Result<Settled, StoreError>
    where
        F: FnOnce(&Applied) -> String + Send,
    {
        let writing = self.write_turn().await;
        let effect = match effect {
            // Nothing to write beside the claim: one statement claims the challenge and stores
            // the answer, with no explicit transaction (a third of the round trips).
            Effect::None => {
                return self
                    .claim_with_answer(
                        writing,
                        session_id,
                        proof_sha256,
                        now,
                        Applied::Nothing,
                        answer,
                    )
                    .await;
            }
            Effect::Read(applied) => {
                return self
                    .claim_with_answer(writing, session_id, proof_sha256, now, applied, answer)
                    .await;
            }
            other => other,
        };
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so SQLite takes its write lock at once (no read-to-write
        // upgrade that could fail with SQLITE_BUSY under concurrency).
        let claimed = sqlx::query(
            "UPDATE challenges SET used_at = $1, proof_sha256 = $2 \
             WHERE session_id = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(proof_sha256)
        .bind(session_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            tx.rollback().await?;
            drop(writing);
            return self.earlier(session_id).await;
        }
        let applied = match effect {
            Effect::None => Applied::Nothing,
            Effect::Register {
                registration,
                relink_from,
                linked,
            } => register(&mut tx, registration, &relink_from, &linked, now).await?,
            Effect::Eligibility {
                card,
                cert_sha256,
                relink_from,
                linked,
                lapse,
            } => {
                eligibility(
                    &mut tx,
                    &card,
                    &cert_sha256,
                    &relink_from,
                    &linked,
                    lapse,
                    now,
                )
                .await?
            }
            // Settled above without a transaction; kept correct here as well.
            Effect::Read(applied) => applied,
            Effect::Pending(record) => {
                insert_pending(&mut tx, &record).await?;
                Applied::Pending
            }
            Effect::Deregister { card } => match select_registration(&mut tx, &card).await? {
                Some(found) => {
                    delete_registration(&mut tx, &found.registration_id).await?;
                    Applied::Deregistered(found)
                }
                None => Applied::NotRegistered,
            },
        };
        let outcome = answer(&applied);
        sqlx::query("UPDATE challenges SET outcome = $1 WHERE session_id = $2")
            .bind(&outcome)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Settled::Fresh { applied, outcome })
    }
}

impl Store {
    /// Claims the challenge and stores the answer in one statement; if another submission
    /// claimed it first, nothing changes and that earlier record is returned.
    async fn claim_with_answer<F>(
        &self,
        writing: Option<tokio::sync::OwnedMutexGuard<()>>,
        session_id: &str,
        proof_sha256: &str,
        now: i64,
        applied: Applied,
        answer: F,
    ) -> Result<Settled, StoreError>
    where
        F: FnOnce(&Applied) -> String + Send,
    {
        let outcome = answer(&applied);
        let claimed = sqlx::query(
            "UPDATE challenges SET used_at = $1, proof_sha256 = $2, outcome = $3 \
             WHERE session_id = $4 AND used_at IS NULL",
        )
        .bind(now)
        .bind(proof_sha256)
        .bind(&outcome)
        .bind(session_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        drop(writing);
        if claimed == 1 {
            return Ok(Settled::Fresh { applied, outcome });
        }
        self.earlier(session_id).await
    }

    /// The record of the submission that claimed the session first.
    async fn earlier(&self, session_id: &str) -> Result<Settled, StoreError> {
        match self.challenge(session_id).await? {
            Some(earlier) => Ok(Settled::Earlier(earlier)),
            // Purged between the caller's read and now: treat as unknown upstream.
            None => Err(StoreError::Database(sqlx::Error::RowNotFound)),
        }
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn register(
    tx: &mut Tx<'_>,
    new: RegistrationRecord,
    relink_from: &[CardKey],
    linked: &[CardKey],
    now: i64,
) -> Result<Applied, StoreError> {
    if let Some(existing) = select_registration(tx, &new.card).await? {
        return Ok(Applied::AlreadyRegistered(existing));
    }
    if let Some(existing) = first_registered(tx, linked).await? {
        return Ok(Applied::AlreadyRegistered(existing));
    }
    if let Some(relinked) = relink(tx, &new.card, &new.cert_sha256, relink_from, now).await? {
        return Ok(Applied::Relinked(relinked));
    }
    let inserted = sqlx::query(
        "INSERT INTO registrations (registration_id, root_id, serial, cert_sha256, linkage_code, \
         terminal_id, method, consent_version, registered_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (root_id, serial) DO NOTHING",
    )
    .bind(&new.registration_id)
    .bind(&new.card.root_id)
    .bind(&new.card.serial)
    .bind(&new.cert_sha256)
    .bind(&new.linkage_code)
    .bind(&new.terminal_id)
    .bind(&new.method)
    .bind(&new.consent_version)
    .bind(new.registered_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Applied::Registered(new));
    }
    // A concurrent transaction registered this card between our read and our insert.
    match select_registration(tx, &new.card).await? {
        Some(existing) => Ok(Applied::AlreadyRegistered(existing)),
        None => Err(StoreError::Database(sqlx::Error::RowNotFound)),
    }
}

async fn eligibility(
    tx: &mut Tx<'_>,
    card: &CardKey,
    cert_sha256: &str,
    relink_from: &[CardKey],
    linked: &[CardKey],
    lapse: bool,
    now: i64,
) -> Result<Applied, StoreError> {
    let own = match select_registration(tx, card).await? {
        Some(found) => Some(found),
        None => first_registered(tx, linked).await?,
    };
    let (found, relinked) = match own {
        Some(found) => (found, false),
        None => match relink(tx, card, cert_sha256, relink_from, now).await? {
            Some(found) => (found, true),
            None => return Ok(Applied::NotRegistered),
        },
    };
    if lapse {
        delete_registration(tx, &found.registration_id).await?;
        return Ok(Applied::Lapsed(found));
    }
    Ok(Applied::Found {
        registration: found,
        relinked,
    })
}

/// Points the first registered earlier certificate's row at `card`.
async fn relink(
    tx: &mut Tx<'_>,
    card: &CardKey,
    cert_sha256: &str,
    relink_from: &[CardKey],
    now: i64,
) -> Result<Option<RegistrationRecord>, StoreError> {
    for old in relink_from {
        let Some(mut row) = select_registration(tx, old).await? else {
            continue;
        };
        let moved = sqlx::query(
            "UPDATE registrations SET root_id = $1, serial = $2, cert_sha256 = $3, \
             relinked_at = $4 WHERE registration_id = $5 AND root_id = $6 AND serial = $7",
        )
        .bind(&card.root_id)
        .bind(&card.serial)
        .bind(cert_sha256)
        .bind(now)
        .bind(&row.registration_id)
        .bind(&old.root_id)
        .bind(&old.serial)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if moved == 1 {
            row.card = card.clone();
            cert_sha256.clone_into(&mut row.cert_sha256);
            row.relinked_at = Some(now);
            return Ok(Some(row));
        }
    }
    Ok(None)
}

async fn first_registered(
    tx: &mut Tx<'_>,
    cards: &[CardKey],
) -> Result<Option<RegistrationRecord>, StoreError> {
    for card in cards {
        if let Some(found) = select_registration(tx, card).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

async fn select_registration(
    tx: &mut Tx<'_>,
    card: &CardKey,
) -> Result<Option<RegistrationRecord>, StoreError> {
    let sql = format!(
        "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE root_id = $1 AND serial = $2"
    );
    let row = sqlx::query(&sql)
        .bind(&card.root_id)
        .bind(&card.serial)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| registration_from_row(&r)).transpose()
}

async fn insert_pending(tx: &mut Tx<'_>, p: &PendingRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pending_registrations (session_id, token_sha256, state, waiting_on, root_id, \
         serial, cert_sha256, not_after, terminal_id, method, consent_version, attempts, \
         accepted_at, next_attempt_at, deadline, lease_until) \
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0)",
    )
    .bind(&p.session_id)
    .bind(&p.token_sha256)
    .bind(&p.waiting_on)
    .bind(&p.card.root_id)
    .bind(&p.card.serial)
    .bind(&p.cert_sha256)
    .bind(p.not_after)
    .bind(&p.terminal_id)
    .bind(&p.method)
    .bind(&p.consent_version)
    .bind(p.attempts)
    .bind(p.accepted_at)
    .bind(p.next_attempt_at)
    .bind(p.deadline)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn pending_from_row(r: &sqlx::any::AnyRow) -> Result<PendingRecord, StoreError> {
    Ok(PendingRecord {
        session_id: r.try_get(0)?,
        token_sha256: r.try_get(1)?,
        waiting_on: r.try_get(2)?,
        card: CardKey {
            root_id: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
            serial: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        },
        cert_sha256: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
        not_after: r.try_get::<Option<i64>, _>(6)?.unwrap_or_default(),
        terminal_id: r.try_get(7)?,
        method: r.try_get(8)?,
        consent_version: r.try_get(9)?,
        attempts: r.try_get(10)?,
        accepted_at: r.try_get(11)?,
        next_attempt_at: r.try_get(12)?,
        deadline: r.try_get(13)?,
    })
}

async fn delete_registration(tx: &mut Tx<'_>, registration_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM registrations WHERE registration_id = $1")
        .bind(registration_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn challenge_from_row(r: &sqlx::any::AnyRow) -> Result<ChallengeRecord, StoreError> {
    Ok(ChallengeRecord {
        session_id: r.try_get(0)?,
        nonce: r.try_get(1)?,
        terminal_id: r.try_get(2)?,
        purpose: r.try_get(3)?,
        methods: r.try_get(4)?,
        consent_version: r.try_get(5)?,
        consent_sha256: r.try_get(6)?,
        issued_at: r.try_get(7)?,
        expires_at: r.try_get(8)?,
        used_at: r.try_get(9)?,
        proof_sha256: r.try_get(10)?,
        outcome: r.try_get(11)?,
        bound_terminal_id: r.try_get(12)?,
    })
}

fn registration_from_row(r: &sqlx::any::AnyRow) -> Result<RegistrationRecord, StoreError> {
    Ok(RegistrationRecord {
        registration_id: r.try_get(0)?,
        card: CardKey {
            root_id: r.try_get(1)?,
            serial: r.try_get(2)?,
        },
        cert_sha256: r.try_get(3)?,
        linkage_code: r.try_get(4)?,
        terminal_id: r.try_get(5)?,
        method: r.try_get(6)?,
        consent_version: r.try_get(7)?,
        registered_at: r.try_get(8)?,
        relinked_at: r.try_get(9)?,
    })
}
