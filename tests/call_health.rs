//! Call health end to end: one bot drops a share of its outgoing packets on purpose; within 10 s the
//! call's health names that participant's uplink as degraded (loss near the injected share, score
//! below the threshold, an event), the others stay healthy, and a recovery event follows when the
//! loss stops. Against the real server on loopback.

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dragoman_bot::{Bot, BotConfig, PublishSpec, SubscribeSpec};
use dragoman_server::RunningServer;
use dragoman_server::health::{CallHealth, Direction, EventKind, Status};
use dragoman_server::history::CallState;
use dragoman_signal::Role;
use dragoman_signal::token::unix_now;
use dragoman_tests::http_get;
use dragoman_tests::{signal_url, start_server_with, temp_path, token};

const CALL: &str = "health-1";
const LOSS: f64 = 0.25;

async fn join(url: &str, identity: &str, role: Role) -> Bot {
    let config = BotConfig::new(url, token(CALL, identity, role))
        .with_publish(PublishSpec::AUDIO_VIDEO)
        .with_subscribe(SubscribeSpec::All)
        .with_loss_seed(7);
    Bot::join(config).await.unwrap()
}

/// Poll the call's health until `check` holds, for at most `limit`.
async fn wait_for_health(
    server: &RunningServer,
    what: &str,
    limit: Duration,
    check: impl Fn(&CallHealth) -> bool,
) -> CallHealth {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(health) = server.state.health.call(CALL)
            && check(&health)
        {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}: {:#?}",
            server.state.health.call(CALL)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn participant<'a>(
    health: &'a CallHealth,
    id: &str,
) -> &'a dragoman_server::health::ParticipantHealth {
    health.participants.iter().find(|p| p.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_uplink_loss_is_seen_named_and_recovered() {
    let history = temp_path("history.sqlite");
    let path = history.clone();
    let server = start_server_with(move |c| c.history_path = path)
        .await
        .unwrap();
    let url = signal_url(&server);
    let mut company = join(&url, "company", Role::Company).await;
    let mut interpreter = join(&url, "interpreter", Role::Interpreter).await;
    let mut buyer = join(&url, "buyer", Role::Buyer).await;

    // A clean call first: everyone connected and good.
    wait_for_health(
        &server,
        "three healthy participants",
        Duration::from_secs(15),
        |h| {
            h.participants.len() == 3
                && h.participants
                    .iter()
                    .all(|p| p.connected && p.status == Status::Good && p.score.is_some())
        },
    )
    .await;

    interpreter.set_uplink_loss(LOSS).unwrap();
    let injected = Instant::now();
    let degraded = wait_for_health(
        &server,
        "the interpreter's uplink degraded",
        Duration::from_secs(10),
        |h| {
            h.events.iter().any(|e| {
                e.participant == "interpreter"
                    && e.kind == EventKind::Degraded
                    && e.direction == Some(Direction::Uplink)
            })
        },
    )
    .await;
    let seen_after = injected.elapsed();
    let sick = participant(&degraded, "interpreter");
    assert_eq!(sick.status, Status::Degraded);
    let loss = sick.uplink.loss_percent.unwrap();
    assert!(
        (15.0..=35.0).contains(&loss),
        "uplink loss {loss}% for an injected 25%"
    );
    assert!(sick.uplink.score.unwrap() < 3.5, "{sick:?}");
    for healthy in ["company", "buyer"] {
        let p = participant(&degraded, healthy);
        assert_eq!(p.status, Status::Good, "{p:?}");
        assert!(p.uplink.loss_percent.unwrap_or(0.0) < 5.0, "{p:?}");
    }
    // Nobody else's direction was called degraded.
    assert!(
        degraded
            .events
            .iter()
            .all(|e| e.kind != EventKind::Degraded || e.participant == "interpreter")
    );

    interpreter.set_uplink_loss(0.0).unwrap();
    let recovered = wait_for_health(
        &server,
        "the interpreter recovered",
        Duration::from_secs(15),
        |h| {
            h.events
                .iter()
                .any(|e| e.participant == "interpreter" && e.kind == EventKind::Recovered)
        },
    )
    .await;
    assert_eq!(participant(&recovered, "interpreter").status, Status::Good);
    println!("degradation seen {seen_after:?} after the loss started; uplink loss {loss:.1}%");

    for bot in [&mut company, &mut interpreter, &mut buyer] {
        bot.leave().await.unwrap();
    }
    server.shutdown().await;

    // The history outlives the server: a new one on the same file lists the finished call with its
    // parties and a quality summary, and exports it as CSV.
    let path = history.clone();
    let server = start_server_with(move |c| c.history_path = path)
        .await
        .unwrap();
    let record = server
        .state
        .history
        .call(CALL, unix_now())
        .unwrap()
        .expect("the call in the history");
    assert_eq!(record.state, CallState::Ended);
    assert_eq!(record.parties.len(), 3);
    let interpreter = record
        .parties
        .iter()
        .find(|p| p.party.identity == "interpreter")
        .unwrap();
    let company = record
        .parties
        .iter()
        .find(|p| p.party.identity == "company")
        .unwrap();
    assert!(interpreter.worst_score.unwrap() < 3.5, "{interpreter:?}");
    assert!(
        interpreter.worst_loss_percent.unwrap() > 10.0,
        "{interpreter:?}"
    );
    assert!(company.worst_score.unwrap() > 3.5, "{company:?}");
    let key = server.state.config.operator_api_key.clone();
    let (status, csv) = http_get(
        server.http_addr,
        &format!("/v1/calls/{CALL}/export.csv"),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[0].contains("average_score") && rows[0].contains("total_loss_percent"));
    for identity in ["company", "interpreter", "buyer"] {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!(",{identity},")))
            .unwrap();
        assert!(row.contains(",ended,"), "{row}");
    }
    server.shutdown().await;
}
