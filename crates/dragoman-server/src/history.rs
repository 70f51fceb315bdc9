//! Call history in an embedded SQLite database: booked calls with their parties, when each call
//! and participant started and ended, and a quality summary per participant (average and worst
//! score, loss, reconnects). Survives restarts; exported as CSV.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A party booked into a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Party {
    pub identity: String,
    pub name: String,
    pub role: String,
    pub languages: Vec<String>,
}

/// A call as booked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewCall {
    pub id: String,
    pub booth: String,
    /// Slot start and end, seconds since the Unix epoch.
    pub slot_start: u64,
    pub slot_end: u64,
    pub mode: String,
    pub parties: Vec<Party>,
}

/// A party's record: booking plus what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartyRecord {
    #[serde(flatten)]
    pub party: Party,
    pub first_joined_at: Option<u64>,
    pub last_left_at: Option<u64>,
    pub reconnects: u64,
    /// Quality score (MOS, 1.0–4.5) averaged over the samples taken while connected.
    pub average_score: Option<f64>,
    pub worst_score: Option<f64>,
    /// Worst packet loss seen in a sample, percent.
    pub worst_loss_percent: Option<f64>,
    /// Packets the SFU expected from or for this participant, and how many of those were lost.
    pub packets_expected: u64,
    pub packets_lost: u64,
}

impl PartyRecord {
    /// Total loss over the call, percent.
    pub fn total_loss_percent(&self) -> Option<f64> {
        (self.packets_expected > 0)
            .then(|| 100.0 * self.packets_lost as f64 / self.packets_expected as f64)
    }
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Upcoming,
    Live,
    Ended,
}

impl CallState {
    pub fn parse(text: &str) -> Option<CallState> {
        match text {
            "upcoming" => Some(CallState::Upcoming),
            "live" => Some(CallState::Live),
            "ended" => Some(CallState::Ended),
            _ => None,
        }
    }
}

/// A call with its parties and history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub id: String,
    pub booth: String,
    pub slot_start: u64,
    pub slot_end: u64,
    pub mode: String,
    pub state: CallState,
    /// Booked through the API (false: created by a first join with a hand-minted token).
    pub booked: bool,
    pub started_at: Option<u64>,
    pub ended_at: Option<u64>,
    pub parties: Vec<PartyRecord>,
}

/// Which calls to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub state: Option<CallState>,
    /// Slots starting at or after / before these times (seconds since the epoch).
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub booth: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a call with id {0:?} exists already")]
    Duplicate(String),
    #[error("the history database lock was poisoned")]
    Poisoned,
}

/// The history store.
#[derive(Debug)]
pub struct History {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY,
    booth TEXT NOT NULL,
    slot_start INTEGER NOT NULL,
    slot_end INTEGER NOT NULL,
    mode TEXT NOT NULL,
    booked INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_by_slot ON calls (slot_start);
CREATE TABLE IF NOT EXISTS parties (
    call_id TEXT NOT NULL REFERENCES calls (id),
    identity TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    languages TEXT NOT NULL,
    first_joined_at INTEGER,
    last_left_at INTEGER,
    reconnects INTEGER NOT NULL DEFAULT 0,
    score_sum REAL NOT NULL DEFAULT 0,
    score_samples INTEGER NOT NULL DEFAULT 0,
    worst_score REAL,
    worst_loss REAL,
    packets_expected INTEGER NOT NULL DEFAULT 0,
    packets_lost INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (call_id, identity)
);
";

impl History {
    /// Open (creating if needed) the database file.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        History::init(Connection::open(path)?)
    }

    /// A throw-away database, for tests.
    pub fn in_memory() -> Result<History, HistoryError> {
        History::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<History, HistoryError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(History {
            db: Mutex::new(conn),
        })
    }

    fn db(&self) -> Result<std::sync::MutexGuard<'_, Connection>, HistoryError> {
        self.db.lock().map_err(|_| HistoryError::Poisoned)
    }

    /// Book a call.
    pub fn create_call(&self, call: &NewCall) -> Result<(), HistoryError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        let exists: Option<String> = tx
            .query_row("SELECT id FROM calls WHERE id = ?1", [&call.id], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(HistoryError::Duplicate(call.id.clone()));
        }
        tx.execute(
            "INSERT INTO calls (id, booth, slot_start, slot_end, mode, booked) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
            params![call.id, call.booth, call.slot_start, call.slot_end, call.mode],
        )?;
        for party in &call.parties {
            insert_party(&tx, &call.id, party)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Note that a participant joined (creating the call and the party for ad-hoc joins).
    pub fn record_join(
        &self,
        call: &str,
        party: &Party,
        now: u64,
        resumed: bool,
    ) -> Result<(), HistoryError> {
        let mut db = self.db()?;
        let tx = db.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO calls (id, booth, slot_start, slot_end, mode, booked) VALUES (?1, '', ?2, ?2, 'consecutive', 0)",
            params![call, now],
        )?;
        tx.execute(
            "UPDATE calls SET started_at = COALESCE(started_at, ?2), ended_at = NULL WHERE id = ?1",
            params![call, now],
        )?;
        insert_party(&tx, call, party)?;
        tx.execute(
            "UPDATE parties SET first_joined_at = COALESCE(first_joined_at, ?3), last_left_at = NULL,
                 reconnects = reconnects + (CASE WHEN ?4 OR first_joined_at IS NOT NULL THEN 1 ELSE 0 END)
             WHERE call_id = ?1 AND identity = ?2",
            params![call, party.identity, now, resumed],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Note that a participant left.
    pub fn record_leave(&self, call: &str, identity: &str, now: u64) -> Result<(), HistoryError> {
        self.db()?.execute(
            "UPDATE parties SET last_left_at = ?3 WHERE call_id = ?1 AND identity = ?2",
            params![call, identity, now],
        )?;
        Ok(())
    }

    /// An operator ended the call: it is over for good, and joins are refused.
    pub fn end_call(&self, call: &str, now: u64) -> Result<(), HistoryError> {
        self.db()?.execute(
            "UPDATE calls SET closed = 1, ended_at = COALESCE(ended_at, ?2) WHERE id = ?1",
            params![call, now],
        )?;
        Ok(())
    }

    /// Has an operator ended this call?
    pub fn is_closed(&self, call: &str) -> Result<bool, HistoryError> {
        let closed: Option<bool> = self
            .db()?
            .query_row("SELECT closed FROM calls WHERE id = ?1", [call], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(closed.unwrap_or(false))
    }

    /// Note that a call emptied (its last participant left); it is live again if someone rejoins.
    pub fn record_call_end(&self, call: &str, now: u64) -> Result<(), HistoryError> {
        self.db()?.execute(
            "UPDATE calls SET ended_at = ?2 WHERE id = ?1 AND started_at IS NOT NULL",
            params![call, now],
        )?;
        Ok(())
    }

    /// Add one quality sample of a connected participant.
    pub fn record_quality(
        &self,
        call: &str,
        identity: &str,
        score: f64,
        loss_percent: f64,
        packets_expected: u64,
        packets_lost: u64,
    ) -> Result<(), HistoryError> {
        self.db()?.execute(
            "UPDATE parties SET score_sum = score_sum + ?3, score_samples = score_samples + 1,
                 worst_score = MIN(COALESCE(worst_score, ?3), ?3),
                 worst_loss = MAX(COALESCE(worst_loss, ?4), ?4),
                 packets_expected = packets_expected + ?5, packets_lost = packets_lost + ?6
             WHERE call_id = ?1 AND identity = ?2",
            params![
                call,
                identity,
                score,
                loss_percent,
                packets_expected,
                packets_lost
            ],
        )?;
        Ok(())
    }

    /// One call with its parties.
    pub fn call(&self, id: &str, now: u64) -> Result<Option<CallRecord>, HistoryError> {
        let db = self.db()?;
        let row = db
            .query_row(
                "SELECT id, booth, slot_start, slot_end, mode, booked, started_at, ended_at FROM calls WHERE id = ?1",
                [id],
                call_row,
            )
            .optional()?;
        let Some(mut call) = row else { return Ok(None) };
        call.state = state_of(&call, now);
        call.parties = parties_of(&db, &call.id)?;
        Ok(Some(call))
    }

    /// Calls matching a filter, by slot start.
    pub fn list_calls(
        &self,
        filter: &CallFilter,
        now: u64,
    ) -> Result<Vec<CallRecord>, HistoryError> {
        let db = self.db()?;
        let mut statement = db.prepare(
            "SELECT id, booth, slot_start, slot_end, mode, booked, started_at, ended_at FROM calls
             WHERE (?1 IS NULL OR slot_start >= ?1) AND (?2 IS NULL OR slot_start < ?2)
               AND (?3 IS NULL OR booth = ?3)
             ORDER BY slot_start, booth, id",
        )?;
        let rows = statement.query_map(params![filter.from, filter.to, filter.booth], call_row)?;
        let mut calls = Vec::new();
        for row in rows {
            let mut call = row?;
            call.state = state_of(&call, now);
            if filter.state.is_some_and(|s| s != call.state) {
                continue;
            }
            call.parties = parties_of(&db, &call.id)?;
            calls.push(call);
        }
        Ok(calls)
    }
}

fn insert_party(
    tx: &rusqlite::Transaction<'_>,
    call: &str,
    party: &Party,
) -> Result<(), HistoryError> {
    tx.execute(
        "INSERT INTO parties (call_id, identity, name, role, languages) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (call_id, identity) DO NOTHING",
        params![
            call,
            party.identity,
            party.name,
            party.role,
            party.languages.join(",")
        ],
    )?;
    Ok(())
}

fn call_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        id: r.get(0)?,
        booth: r.get(1)?,
        slot_start: r.get(2)?,
        slot_end: r.get(3)?,
        mode: r.get(4)?,
        booked: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        state: CallState::Upcoming,
        parties: Vec::new(),
    })
}

fn state_of(call: &CallRecord, now: u64) -> CallState {
    match (call.started_at, call.ended_at) {
        (_, Some(_)) => CallState::Ended,
        (Some(_), None) => CallState::Live,
        (None, None) if now > call.slot_end => CallState::Ended,
        (None, None) => CallState::Upcoming,
    }
}

fn parties_of(db: &Connection, call: &str) -> Result<Vec<PartyRecord>, HistoryError> {
    let mut statement = db.prepare(
        "SELECT identity, name, role, languages, first_joined_at, last_left_at, reconnects,
                score_sum, score_samples, worst_score, worst_loss, packets_expected, packets_lost
         FROM parties WHERE call_id = ?1 ORDER BY rowid",
    )?;
    let rows = statement.query_map([call], |r| {
        let languages: String = r.get(3)?;
        let sum: f64 = r.get(7)?;
        let samples: u64 = r.get(8)?;
        Ok(PartyRecord {
            party: Party {
                identity: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
                languages: languages
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
            first_joined_at: r.get(4)?,
            last_left_at: r.get(5)?,
            reconnects: r.get(6)?,
            average_score: (samples > 0).then(|| sum / samples as f64),
            worst_score: r.get(9)?,
            worst_loss_percent: r.get(10)?,
            packets_expected: r.get(11)?,
            packets_lost: r.get(12)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// CSV of calls with one row per party and its quality summary.
pub fn to_csv(calls: &[CallRecord]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "call",
        "booth",
        "slot_start",
        "slot_end",
        "mode",
        "state",
        "started_at",
        "ended_at",
        "identity",
        "name",
        "role",
        "languages",
        "first_joined_at",
        "last_left_at",
        "reconnects",
        "average_score",
        "worst_score",
        "total_loss_percent",
        "worst_loss_percent",
    ])?;
    let time = |t: Option<u64>| t.map(rfc3339).unwrap_or_default();
    let number = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    for call in calls {
        for party in &call.parties {
            writer.write_record([
                call.id.clone(),
                call.booth.clone(),
                rfc3339(call.slot_start),
                rfc3339(call.slot_end),
                call.mode.clone(),
                format!("{:?}", call.state).to_lowercase(),
                time(call.started_at),
                time(call.ended_at),
                party.party.identity.clone(),
                party.party.name.clone(),
                party.party.role.clone(),
                party.party.languages.join(" "),
                time(party.first_joined_at),
                time(party.last_left_at),
                party.reconnects.to_string(),
                number(party.average_score),
                number(party.worst_score),
                number(party.total_loss_percent()),
                number(party.worst_loss_percent),
            ])?;
        }
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Seconds since the epoch as an RFC 3339 UTC time.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(identity: &str, role: &str) -> Party {
        Party {
            identity: identity.into(),
            name: identity.to_uppercase(),
            role: role.into(),
            languages: vec!["ko".into(), "en".into()],
        }
    }

    fn booked() -> NewCall {
        NewCall {
            id: "CL_1".into(),
            booth: "Booth 3".into(),
            slot_start: 10_000,
            slot_end: 13_600,
            mode: "simultaneous".into(),
            parties: vec![party("company", "company"), party("buyer", "buyer")],
        }
    }

    #[test]
    fn a_booked_call_goes_upcoming_live_ended() {
        let h = History::in_memory().unwrap();
        h.create_call(&booked()).unwrap();
        assert!(matches!(
            h.create_call(&booked()),
            Err(HistoryError::Duplicate(_))
        ));
        assert_eq!(
            h.call("CL_1", 9_000).unwrap().unwrap().state,
            CallState::Upcoming
        );
        h.record_join("CL_1", &party("company", "company"), 10_010, false)
            .unwrap();
        assert_eq!(
            h.call("CL_1", 10_020).unwrap().unwrap().state,
            CallState::Live
        );
        h.record_leave("CL_1", "company", 11_000).unwrap();
        h.record_call_end("CL_1", 11_000).unwrap();
        let call = h.call("CL_1", 11_001).unwrap().unwrap();
        assert_eq!(call.state, CallState::Ended);
        assert_eq!(call.parties[0].first_joined_at, Some(10_010));
        assert_eq!(call.parties[1].first_joined_at, None);
        // A booked call nobody joined counts as ended after its slot.
        let mut missed = booked();
        missed.id = "CL_2".into();
        h.create_call(&missed).unwrap();
        assert_eq!(
            h.call("CL_2", 20_000).unwrap().unwrap().state,
            CallState::Ended
        );
    }

    #[test]
    fn quality_summary_and_reconnects() {
        let h = History::in_memory().unwrap();
        h.create_call(&booked()).unwrap();
        let buyer = party("buyer", "buyer");
        h.record_join("CL_1", &buyer, 10_000, false).unwrap();
        h.record_quality("CL_1", "buyer", 4.2, 0.0, 100, 0).unwrap();
        h.record_quality("CL_1", "buyer", 2.0, 20.0, 100, 20)
            .unwrap();
        h.record_join("CL_1", &buyer, 10_100, true).unwrap();
        let record = &h.call("CL_1", 10_200).unwrap().unwrap().parties[1];
        assert_eq!(record.reconnects, 1);
        assert!((record.average_score.unwrap() - 3.1).abs() < 1e-9);
        assert_eq!(record.worst_score, Some(2.0));
        assert_eq!(record.total_loss_percent(), Some(10.0));
        assert_eq!(record.worst_loss_percent, Some(20.0));
    }

    #[test]
    fn ad_hoc_joins_create_the_call() {
        let h = History::in_memory().unwrap();
        h.record_join("demo", &party("alice", "company"), 500, false)
            .unwrap();
        let call = h.call("demo", 600).unwrap().unwrap();
        assert!(!call.booked);
        assert_eq!(call.state, CallState::Live);
        assert_eq!(call.parties.len(), 1);
    }

    #[test]
    fn filters_and_csv() {
        let h = History::in_memory().unwrap();
        h.create_call(&booked()).unwrap();
        let mut other = booked();
        other.id = "CL_9".into();
        other.booth = "Booth \"7\", east".into();
        other.slot_start = 50_000;
        other.slot_end = 53_600;
        h.create_call(&other).unwrap();
        let filter = CallFilter {
            from: Some(40_000),
            ..CallFilter::default()
        };
        let calls = h.list_calls(&filter, 0).unwrap();
        assert_eq!(calls.len(), 1);
        let csv = to_csv(&calls).unwrap();
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().starts_with("call,booth,"));
        let row = lines.next().unwrap();
        assert!(row.starts_with("CL_9,\"Booth \"\"7\"\", east\","), "{row}");
        assert_eq!(csv.lines().count(), 3);
    }

    #[test]
    fn survives_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("dragoman-history-{}", std::process::id()));
        let path = dir.join("history.sqlite");
        let _ = std::fs::remove_file(&path);
        History::open(&path)
            .unwrap()
            .create_call(&booked())
            .unwrap();
        let reopened = History::open(&path).unwrap();
        assert_eq!(reopened.call("CL_1", 0).unwrap().unwrap().parties.len(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
