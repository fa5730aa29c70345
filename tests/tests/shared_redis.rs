//! State shared through a real Redis server on loopback: limits exact across instances, the
//! deduplication store, and what happens when Redis dies, comes back, is slow or holds bad data.

mod redis_support;

use redis_support::RedisServer;
use reliable_runtime::limit::RateLimit;
use reliable_runtime::shared::{
    DedupStore, SharedBreaker, SharedBreakerOptions, SharedRateLimiter, SharedStore,
};
use reliable_runtime::Rejected;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A raw connection to the test's server, for what the library would not do.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_is_exact_across_instances() {
    let server = RedisServer::start();
    // Two instances: each its own store (connection and breaker), one limit name.
    let limiters: Vec<Arc<SharedRateLimiter>> = (0..2)
        .map(|instance| {
            let store = SharedStore::with_timeout(
                &format!("exact_{instance}"),
                &server.url(),
                Duration::from_secs(2),
            )
            .unwrap();
            Arc::new(
                SharedRateLimiter::new(&store, "shared_exact", &[RateLimit::per_minute(100)])
                    .unwrap(),
            )
        })
        .collect();
    let admitted = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let limiter = Arc::clone(&limiters[task % 2]);
            let admitted = Arc::clone(&admitted);
            tokio::spawn(async move {
                for _ in 0..40 {
                    if limiter.try_acquire(1).await.is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // 320 tries for a limit of 100: exactly 100 admitted, all by Redis.
    assert_eq!(admitted.load(Ordering::Relaxed), 100);
    // Weighted: 100 of 100 used; nothing fits, and the wait is under a minute.
    match limiters[0].try_acquire(1).await {
        Err(Rejected::RateLimited { retry_after, .. }) => {
            assert!(retry_after <= Duration::from_secs(60), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn weights_share_every_window() {
    let server = RedisServer::start();
    let store =
        SharedStore::with_timeout("weights", &server.url(), Duration::from_secs(2)).unwrap();
    let limiter = SharedRateLimiter::new(
        &store,
        "shared_weights",
        &[RateLimit::per_minute(100), RateLimit::per_second(70)],
    )
    .unwrap();
    assert!(limiter.try_acquire(40).await.is_ok());
    assert!(limiter.try_acquire(30).await.is_ok());
    // The second is full (70): refused for at most a second.
    match limiter.try_acquire(1).await {
        Err(Rejected::RateLimited { retry_after, .. }) => {
            assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    // A weight above a window's limit never fits.
    assert!(limiter.try_acquire(101).await.is_err());
    assert_eq!(store.snapshot().fallbacks, 0);
}

#[tokio::test]
async fn a_window_frees_what_leaves_it_and_recounts_lost_sums() {
    let server = RedisServer::start();
    let store = SharedStore::with_timeout("frees", &server.url(), Duration::from_secs(2)).unwrap();
    let limiter = SharedRateLimiter::new(
        &store,
        "shared_frees",
        &[RateLimit::per_minute(100), RateLimit::per_second(3)],
    )
    .unwrap();
    let fill = || async {
        for _ in 0..3 {
            assert!(limiter.try_acquire(1).await.is_ok());
        }
        match limiter.try_acquire(1).await {
            Err(Rejected::RateLimited { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
                retry_after
            }
            other => panic!("{other:?}"),
        }
    };
    let wait = fill().await;
    // The running sum forgets what left the window: three fit again once it has.
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    fill().await;
    // Sums lost (evicted, deleted): recounted from the window, not reset to zero.
    let mut connection = raw(&server).await;
    let _: () = redis::cmd("DEL")
        .arg("reliable:{shared_frees}:sums")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(limiter.try_acquire(1).await.is_err());
    assert_eq!(store.snapshot().fallbacks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_of_two_instances_share_one_limit() {
    use reliable_runtime::Policy;
    let server = RedisServer::start();
    // Two instances, each its own store, limiter and policy, one limit name.
    let instance = |i: usize, limit: &str, per_second: u32, waits: bool| {
        let store = SharedStore::with_timeout(
            &format!("policy_{limit}_{i}"),
            &server.url(),
            Duration::from_secs(2),
        )
        .unwrap();
        let limiter = Arc::new(
            SharedRateLimiter::new(&store, limit, &[RateLimit::per_second(per_second)]).unwrap(),
        );
        let builder = Policy::builder(format!("{limit}_{i}")).shared_rate_limit(limiter, 1);
        let builder = if waits {
            builder.wait_for_rate_limit()
        } else {
            builder
        };
        builder.build().unwrap()
    };
    let refusing = [
        instance(0, "policy_refuses", 3, false),
        instance(1, "policy_refuses", 3, false),
    ];
    let mut admitted = 0;
    for i in 0..6 {
        match refusing[i % 2]
            .call(|| async { Ok::<_, Rejected>(()) })
            .await
        {
            Ok(()) => admitted += 1,
            Err(Rejected::RateLimited { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted, 3, "the two policies together admitted the limit");

    // Waiting: the third call of a limit of 2 a second waits for the first to leave it.
    let waiting = [
        instance(0, "policy_waits", 2, true),
        instance(1, "policy_waits", 2, true),
    ];
    let start = Instant::now();
    for i in 0..3 {
        waiting[i % 2]
            .call(|| async { Ok::<_, Rejected>(()) })
            .await
            .unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );

    // A blocking call takes from the local share (it cannot wait on the server): the limit
    // holds for it too.
    let blocking = instance(0, "policy_blocking", 3, false);
    let admitted = tokio::task::spawn_blocking(move || {
        (0..5)
            .filter(|_| blocking.call_blocking(|| Ok::<_, Rejected>(())).is_ok())
            .count()
    })
    .await
    .unwrap();
    assert_eq!(admitted, 3);

    // A weight that could never be admitted is refused when the policy is built.
    let store = SharedStore::new("policy_weight", &server.url()).unwrap();
    let limiter = Arc::new(
        SharedRateLimiter::new(&store, "policy_weight", &[RateLimit::per_second(3)]).unwrap(),
    );
    let error = Policy::builder("policy_weight")
        .shared_rate_limit(limiter, 4)
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "weight");
}

#[tokio::test]
async fn a_sum_its_entries_do_not_back_is_recounted_never_trusted() {
    let server = RedisServer::start();
    let store = SharedStore::with_timeout("backed", &server.url(), Duration::from_secs(2)).unwrap();
    let limiter =
        SharedRateLimiter::new(&store, "shared_backed", &[RateLimit::per_minute(10)]).unwrap();
    assert!(limiter.try_acquire(1).await.is_ok());
    // A sum above what the window holds (written by hand, or left by a failure): 9 of 10.
    let mut connection = raw(&server).await;
    let _: () = redis::cmd("HSET")
        .arg("reliable:{shared_backed}:sums")
        .arg("60000000")
        .arg(9)
        .query_async(&mut connection)
        .await
        .unwrap();
    // 9 + 5 > 10, but the entries hold 1: recounted, the call fits, and the sum is right.
    assert!(limiter.try_acquire(5).await.is_ok());
    let sum: u64 = redis::cmd("HGET")
        .arg("reliable:{shared_backed}:sums")
        .arg("60000000")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(sum, 6);
    // A weight above the limit is refused without touching the window.
    assert!(limiter.try_acquire(11).await.is_err());
    assert!(limiter.try_acquire(4).await.is_ok());
    assert!(limiter.try_acquire(1).await.is_err(), "10 of 10 used");
}

#[tokio::test]
async fn a_wait_on_a_dead_redis_beyond_the_local_share_is_refused_at_once() {
    let mut server = RedisServer::start();
    let store = SharedStore::new("share_dies", &server.url()).unwrap();
    let limiter = SharedRateLimiter::new(&store, "shared_share", &[RateLimit::per_minute(100)])
        .unwrap()
        .local_share(0.1)
        .unwrap();
    server.kill();
    let start = Instant::now();
    // 20 fits the shared 100, not the local 10: refused, not waited a minute for.
    assert!(limiter.acquire(20).await.is_err());
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    // Within the local share, the wait is answered locally.
    assert!(limiter.acquire(5).await.is_ok());
}

/// A loopback HTTP server answering every request `200 {"ok":true}`; counts them.
async fn answering_server() -> (String, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        async { r#"{"ok":true}"# }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_clients_of_two_instances_share_a_weight_limit() {
    use reliable_runtime::http::{Client, HttpError, Profile};
    let server = RedisServer::start();
    let (url, seen) = answering_server().await;
    let client = |i: usize| {
        let store =
            SharedStore::with_timeout(&format!("http_{i}"), &server.url(), Duration::from_secs(2))
                .unwrap();
        let weight =
            SharedRateLimiter::new(&store, "http_weight", &[RateLimit::per_minute(10)]).unwrap();
        let profile = Profile::default()
            .rate_limit_per_minute(None)
            .max_retries(0)
            .shared_weight_limit(Arc::new(weight));
        Client::builder()
            .profile(profile)
            .configure_reqwest(|reqwest| reqwest.no_proxy())
            .build()
            .unwrap()
    };
    let (a, b) = (client(0), client(1));
    a.get(&url).weight(6).send().await.unwrap();
    // 6 of 10 used by the other instance: 6 more does not fit, and is not sent.
    let refused = b.get(&url).weight(6).send().await.unwrap_err();
    assert!(
        matches!(refused, HttpError::Rejected(Rejected::RateLimited { .. })),
        "{refused:?}"
    );
    b.get(&url).weight(4).send().await.unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 2);
    // A weight above the whole limit is never sent.
    match a.get(&url).weight(11).send().await {
        Err(HttpError::Config(error)) => assert_eq!(error.field(), "weight"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_dead_redis_is_not_waited_for_and_state_returns_to_it() {
    let mut server = RedisServer::start();
    let store = SharedStore::new("dies", &server.url()).unwrap();
    let limiter =
        SharedRateLimiter::new(&store, "shared_dies", &[RateLimit::per_minute(1000)]).unwrap();
    // Connected (the first connection may take longer than 50 ms on a busy machine).
    let start = Instant::now();
    while store.snapshot().fallbacks > 0 || limiter.try_acquire(1).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = store.snapshot();
    server.kill();
    // Every call goes on, answered locally, none waiting past the timeout (with slack for a
    // busy machine).
    for _ in 0..20 {
        let start = Instant::now();
        assert!(limiter.try_acquire(1).await.is_ok());
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
    }
    let during = store.snapshot();
    assert_eq!(during.fallbacks - before.fallbacks, 20);
    // Health shows the store's counters, and Prometheus too.
    let health = reliable_runtime::get_system_health();
    assert_eq!(health.shared_stores["dies"], during);
    assert!(health.circuit_breakers.contains_key("redis:dies"));
    let metrics = reliable_runtime::health::prometheus_text(&health);
    let line = format!(
        "reliable_shared_store_operations_total{{store=\"dies\",kind=\"local\"}} {}",
        during.fallbacks
    );
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
    assert!(store.breaker().state() != reliable_runtime::breaker::BreakerState::Closed);
    // Back: within the breaker's second, calls go to Redis again.
    server.restart();
    let start = Instant::now();
    loop {
        let fallbacks = store.snapshot().fallbacks;
        assert!(limiter.try_acquire(1).await.is_ok());
        if store.snapshot().fallbacks == fallbacks {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never went back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut connection = raw(&server).await;
    let recorded: u64 = redis::cmd("ZCARD")
        .arg("reliable:{shared_dies}:window:60000000")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(recorded >= 1);
}

#[tokio::test]
async fn a_slow_redis_is_not_waited_for() {
    let server = RedisServer::start();
    let store = SharedStore::new("slow", &server.url()).unwrap();
    let limiter =
        SharedRateLimiter::new(&store, "shared_slow", &[RateLimit::per_minute(1000)]).unwrap();
    let start = Instant::now();
    while limiter.try_acquire(1).await.is_err() || store.snapshot().fallbacks > 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut connection = raw(&server).await;
    let sleeping = tokio::spawn(async move {
        let _: redis::RedisResult<()> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(1)
            .query_async(&mut connection)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    assert!(limiter.try_acquire(1).await.is_ok(), "answered locally");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(store.snapshot().fallbacks >= 1);
    sleeping.await.unwrap();
}

#[tokio::test]
async fn bad_data_is_counted_and_skipped() {
    let server = RedisServer::start();
    let store =
        SharedStore::with_timeout("corrupt", &server.url(), Duration::from_secs(2)).unwrap();
    let limiter =
        SharedRateLimiter::new(&store, "shared_corrupt", &[RateLimit::per_minute(10)]).unwrap();
    let mut connection = raw(&server).await;
    let now: (u64, u64) = redis::cmd("TIME")
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("reliable:{shared_corrupt}:window:60000000")
        .arg(now.0 * 1_000_000)
        .arg("written by another version")
        .query_async(&mut connection)
        .await
        .unwrap();
    for _ in 0..10 {
        assert!(limiter.try_acquire(1).await.is_ok());
    }
    assert!(limiter.try_acquire(1).await.is_err());
    assert!(store.snapshot().bad_data >= 1);
    // A key of the wrong type is an error of Redis's: answered locally, nothing panics.
    let _: () = redis::cmd("SET")
        .arg("reliable:{shared_wrong}:window:60000000")
        .arg("a string")
        .query_async(&mut connection)
        .await
        .unwrap();
    let wrong =
        SharedRateLimiter::new(&store, "shared_wrong", &[RateLimit::per_minute(10)]).unwrap();
    let fallbacks = store.snapshot().fallbacks;
    assert!(wrong.try_acquire(1).await.is_ok());
    assert_eq!(store.snapshot().fallbacks, fallbacks + 1);
}

#[tokio::test]
async fn an_id_is_seen_first_by_exactly_one_instance() {
    let mut server = RedisServer::start();
    let stores: Vec<SharedStore> = (0..2)
        .map(|instance| {
            SharedStore::with_timeout(
                &format!("dedup_{instance}"),
                &server.url(),
                Duration::from_secs(2),
            )
            .unwrap()
        })
        .collect();
    let seen: Vec<DedupStore> = stores
        .iter()
        .map(|store| DedupStore::new(store, "trades", Duration::from_secs(60)).unwrap())
        .collect();
    assert!(seen[0].first_time("trade-1").await);
    assert!(!seen[1].first_time("trade-1").await);
    assert!(!seen[0].first_time("trade-1").await);
    assert!(seen[1].first_time("trade-2").await);
    // Redis gone: each instance still sees an id once.
    server.kill();
    assert!(seen[0].first_time("trade-3").await);
    assert!(!seen[0].first_time("trade-3").await);
    assert!(stores[0].snapshot().fallbacks >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_in_one_instance_opens_the_others_within_the_sync_delay() {
    use reliable_runtime::breaker::{BreakerConfig, BreakerState};
    use reliable_runtime::registry::breaker_registry;
    let mut server = RedisServer::start();
    // Alerts from the first change on: a dead Redis is one (its store's breaker opening).
    reliable_runtime::alert::alert_manager();
    let config = || {
        BreakerConfig::default()
            .failure_threshold(3)
            .timeout(Duration::from_secs(30))
    };
    // Two instances: each its own store and local breaker, one shared name.
    let instances: Vec<_> = ["fleet_a", "fleet_b"]
        .iter()
        .map(|name| {
            let store =
                SharedStore::with_timeout(name, &server.url(), Duration::from_secs(2)).unwrap();
            let breaker = breaker_registry().get_or_create(name, config()).unwrap();
            let shared = SharedBreaker::start(&store, "fleet", Arc::clone(&breaker));
            (breaker, shared, store)
        })
        .collect();
    let (a, b) = (&instances[0].0, &instances[1].0);
    for _ in 0..3 {
        a.try_acquire().unwrap().failure();
    }
    assert_eq!(a.state(), BreakerState::Open);
    let start = Instant::now();
    while b.state() != BreakerState::Open {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "b never learned of a's trip"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Within the sync delay (100 ms) and a command; slack for a busy machine.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // Opened by the sync, b does not echo its opening back: the record is a's.
    let mut connection = raw(&server).await;
    let by: String = redis::cmd("HGET")
        .arg("reliable:{fleet}:breaker")
        .arg("by")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(by.starts_with(&format!("{}:", std::process::id())), "{by}");
    let probers: Vec<String> = redis::cmd("SMEMBERS")
        .arg("reliable:{fleet}:breaker:probers")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(probers.is_empty(), "nobody probes within the open period");
    // Redis gone: the breakers go on alone; a trip is not shared and nothing hangs.
    server.kill();
    a.reset();
    b.reset();
    for _ in 0..3 {
        a.try_acquire().unwrap().failure();
    }
    assert_eq!(a.state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.state(), BreakerState::Closed);
    // Each store's breaker opened on the failed reads, and said so: a critical alert.
    // (Three failed reads: each refused at once, or cut by the store's 2 s timeout while the
    // connection manager tries to reconnect.)
    eventually(
        Duration::from_secs(10),
        "an alert for the dead Redis",
        || {
            reliable_runtime::alert::alert_manager()
                .history()
                .iter()
                .any(|alert| {
                    alert.source.starts_with("redis:fleet_")
                        && alert.severity == reliable_runtime::alert::Severity::Critical
                })
        },
    )
    .await;

    // Redis back: once each store's breaker has probed it, trips are shared again.
    server.restart();
    a.reset();
    let stores = [&instances[0].2, &instances[1].2];
    eventually(Duration::from_secs(8), "the stores back on Redis", || {
        stores
            .iter()
            .all(|store| store.breaker().state() == BreakerState::Closed)
    })
    .await;
    for _ in 0..3 {
        a.try_acquire().unwrap().failure();
    }
    eventually(Duration::from_secs(2), "b open again with a", || {
        b.state() == BreakerState::Open
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_fleet_record_is_counted_and_the_breaker_goes_on_alone() {
    use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
    let server = RedisServer::start();
    let mut connection = raw(&server).await;
    // Another version's record: a hash without the fields this one reads.
    let _: () = redis::cmd("HSET")
        .arg("reliable:{corrupt_fleet}:breaker")
        .arg(&["state", "tripped", "until", "soon"])
        .query_async(&mut connection)
        .await
        .unwrap();
    let store =
        SharedStore::with_timeout("corrupt_fleet", &server.url(), Duration::from_secs(2)).unwrap();
    let breaker = Arc::new(
        CircuitBreaker::new(
            "corrupt_fleet",
            BreakerConfig::default().failure_threshold(1),
        )
        .unwrap(),
    );
    let _shared = SharedBreaker::options(&store, "corrupt_fleet", Arc::clone(&breaker))
        .sync_every(Duration::from_millis(20))
        .start()
        .unwrap();
    eventually(Duration::from_secs(2), "the record counted as bad", || {
        store.snapshot().bad_data > 0
    })
    .await;
    assert_eq!(breaker.state(), BreakerState::Closed, "not opened by it");
    // Its own trip replaces the record with a good one.
    breaker.try_acquire().unwrap().failure();
    let start = Instant::now();
    loop {
        let state: String = redis::cmd("HGET")
            .arg("reliable:{corrupt_fleet}:breaker")
            .arg("state")
            .query_async(&mut connection)
            .await
            .unwrap();
        if state == "open" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(2), "state {state}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.snapshot().fallbacks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_racing_for_the_probe_slot_get_one_each_round() {
    use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
    use std::collections::BTreeSet;
    let server = RedisServer::start();
    let open_for = Duration::from_millis(200);
    // Six instances, more tasks than cores, one shared name.
    let config = BreakerConfig::default()
        .failure_threshold(1)
        .timeout(open_for)
        .half_open_max_calls(1);
    let instances = fleet(&server, "racing", 6, config, |options| {
        options.sync_every(Duration::from_millis(10))
    });
    let breakers: Vec<Arc<CircuitBreaker>> = instances.iter().map(|(b, _)| Arc::clone(b)).collect();
    for round in 0..3 {
        // A trip (the first round's, or the last prober's failure) opens every instance.
        let all_open = || breakers.iter().all(|b| b.state() == BreakerState::Open);
        eventually(Duration::from_secs(2), "every instance open", || {
            if round == 0 && breakers[0].state() == BreakerState::Closed {
                breakers[0].try_acquire().unwrap().failure();
            }
            all_open()
        })
        .await;
        // Every instance tries at once, each on its own task, through the open period's end.
        let tasks: Vec<_> = breakers
            .iter()
            .enumerate()
            .map(|(i, breaker)| {
                let breaker = Arc::clone(breaker);
                tokio::spawn(async move {
                    let until = Instant::now() + open_for * 4;
                    while Instant::now() < until {
                        if breaker.try_acquire().is_ok() {
                            return Some(i);
                        }
                        tokio::task::yield_now().await;
                    }
                    None
                })
            })
            .collect();
        let mut probers = BTreeSet::new();
        for task in tasks {
            probers.extend(task.await.unwrap());
        }
        assert_eq!(probers.len(), 1, "round {round}: {probers:?} probed");
        // The prober fails: the fleet opens again for the next round.
        let prober = *probers.first().unwrap();
        breakers[prober].try_acquire().unwrap().failure();
    }
}

/// Polls `done` every 5 ms until it holds, failing after `limit`.
/// `count` instances of the fleet breaker `fleet`, each with its own store (a 2 s timeout) and
/// local breaker (`config`), synced as `options` says.
fn fleet(
    server: &RedisServer,
    fleet: &str,
    count: usize,
    config: reliable_runtime::breaker::BreakerConfig,
    options: impl Fn(SharedBreakerOptions) -> SharedBreakerOptions,
) -> Vec<(
    Arc<reliable_runtime::breaker::CircuitBreaker>,
    SharedBreaker,
)> {
    (0..count)
        .map(|i| {
            let store = SharedStore::with_timeout(
                &format!("{fleet}_store_{i}"),
                &server.url(),
                Duration::from_secs(2),
            )
            .unwrap();
            let breaker = Arc::new(
                reliable_runtime::breaker::CircuitBreaker::new(
                    format!("{fleet}_{i}"),
                    config.clone(),
                )
                .unwrap(),
            );
            let shared = options(SharedBreaker::options(&store, fleet, Arc::clone(&breaker)))
                .start()
                .unwrap();
            (breaker, shared)
        })
        .collect()
}

async fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_probes_through_one_instance_and_recovers_together() {
    use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
    let server = RedisServer::start();
    let open_for = Duration::from_millis(300);
    // Three instances: each its own store and local breaker, one shared name.
    let config = BreakerConfig::default()
        .failure_threshold(1)
        .timeout(open_for)
        .success_threshold(1)
        .half_open_max_calls(1);
    let mut instances: Vec<_> = fleet(&server, "probing", 3, config, |options| {
        options
            .sync_every(Duration::from_millis(20))
            .probe_lease(Duration::from_millis(300))
    })
    .into_iter()
    .map(|(breaker, shared)| (breaker, Some(shared)))
    .collect();
    let breakers: Vec<Arc<CircuitBreaker>> = instances.iter().map(|(b, _)| Arc::clone(b)).collect();
    let all_open = || breakers.iter().all(|b| b.state() == BreakerState::Open);
    breakers[0].try_acquire().unwrap().failure();
    eventually(Duration::from_secs(1), "every instance open", all_open).await;

    // The open period ends: of the three, one takes the fleet's probe slot; the others stay
    // open. Try each instance, keeping each probe's slot, until three sync delays after the
    // first admission. Answers the prober and when it was first admitted.
    let probe_round = |breakers: Vec<Arc<CircuitBreaker>>| async move {
        tokio::time::sleep(open_for).await;
        let start = Instant::now();
        let mut prober: Option<(usize, Instant)> = None;
        while prober.is_none_or(|(_, at)| at.elapsed() < Duration::from_millis(60)) {
            assert!(start.elapsed() < Duration::from_secs(3), "nobody probed");
            for (i, breaker) in breakers.iter().enumerate() {
                if let Ok(permit) = breaker.try_acquire() {
                    assert!(
                        prober.is_none_or(|(p, _)| p == i),
                        "instances {prober:?} and {i} both probed"
                    );
                    prober.get_or_insert((i, Instant::now()));
                    // Back to the half-open breaker; the fleet's slot stays this instance's.
                    drop(permit);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        prober.unwrap()
    };
    let (first, granted) = probe_round(breakers.clone()).await;
    for (i, breaker) in breakers.iter().enumerate() {
        if i != first {
            assert_eq!(
                breaker.state(),
                BreakerState::Open,
                "instance {i} held open"
            );
        }
    }

    // The prober dies holding its slot: another instance probes once the lease is over.
    instances[first].1 = None;
    let survivors: Vec<Arc<CircuitBreaker>> = (0..3)
        .filter(|&i| i != first)
        .map(|i| Arc::clone(&breakers[i]))
        .collect();
    let (second, regranted) = probe_round(survivors.clone()).await;
    assert!(
        regranted.duration_since(granted) >= Duration::from_millis(280),
        "the slot passed on before its lease ended"
    );

    // Its probe fails: the fleet opens again, the other survivor held open meanwhile.
    survivors[second].try_acquire().unwrap().failure();
    assert_eq!(survivors[second].state(), BreakerState::Open);
    assert_eq!(survivors[1 - second].state(), BreakerState::Open);

    // The next round's probe succeeds: every survivor closes within the sync delay.
    let (third, _) = probe_round(survivors.clone()).await;
    survivors[third].try_acquire().unwrap().success();
    assert_eq!(survivors[third].state(), BreakerState::Closed);
    eventually(Duration::from_secs(1), "every survivor closed", || {
        survivors.iter().all(|b| b.state() == BreakerState::Closed)
    })
    .await;
}

mod second_level {
    use super::*;
    use reliable_runtime::cache::{Cache, CacheConfig, Lookup};
    use reliable_runtime::shared::SharedCache;

    type Book = Vec<(f64, f64)>;

    /// One instance's cache of orderbooks named `name`, behind the server's second level.
    fn instance(
        server: &RedisServer,
        name: &str,
        ttl: Duration,
        stale: Duration,
    ) -> (Cache<String, Book>, SharedStore) {
        let store = SharedStore::with_timeout(
            &format!("{name}_{}", rand_suffix()),
            &server.url(),
            Duration::from_secs(2),
        )
        .unwrap();
        let cache = Cache::new(name, CacheConfig::default().ttl(ttl).stale(stale)).unwrap();
        SharedCache::new(&store).attach(&cache).unwrap();
        (cache, store)
    }

    fn rand_suffix() -> u32 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    fn book() -> Book {
        vec![(97_000.5, 1.25), (97_001.0, 0.5)]
    }

    /// Waits until the server holds `key` (values are stored in the background), up to 3 s.
    async fn until_stored(server: &RedisServer, key: &str) {
        let mut connection = raw(server).await;
        let start = Instant::now();
        loop {
            let stored: bool = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut connection)
                .await
                .unwrap();
            if stored {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "{key} never stored"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn one_instance_load_serves_the_others_for_what_is_left_of_its_ttl() {
        let server = RedisServer::start();
        let ttl = Duration::from_millis(600);
        let (a, _) = instance(&server, "books", ttl, Duration::from_secs(10));
        let (b, _) = instance(&server, "books", ttl, Duration::from_secs(10));
        let loads = AtomicU32::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::Relaxed);
            Ok::<_, String>(book())
        };
        assert_eq!(
            a.get_or_load("BTC".to_string(), load).await.unwrap(),
            book()
        );
        until_stored(&server, "reliable:cache:{books:\"BTC\"}").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let served =
            reliable_runtime::served::observe(b.get_or_load("BTC".to_string(), load)).await;
        assert_eq!(served.value.unwrap(), book());
        assert_eq!(served.source, reliable_runtime::served::Source::Cached);
        assert_eq!(loads.load(Ordering::Relaxed), 1, "b took a's value");
        assert_eq!(b.snapshot().loads, 0);
        assert!(matches!(b.lookup("BTC"), Lookup::Fresh(_)));
        // Fresh in b for what was left of a's TTL (about 300 ms), not a whole TTL.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(matches!(b.lookup("BTC"), Lookup::Stale { .. }));
        // A key not loaded anywhere loads here.
        b.get_or_load("ETH".to_string(), load).await.unwrap();
        assert_eq!(loads.load(Ordering::Relaxed), 2);
    }

    static ATTRIBUTE_LOADS: AtomicU32 = AtomicU32::new(0);

    /// A `#[cached]` fn whose cache (registered by name first) has the second level.
    #[reliable_runtime::cached(name = "attribute_books", ttl = 60, key = symbol.to_string())]
    async fn attribute_book(symbol: &str) -> Result<Book, String> {
        let _ = symbol;
        ATTRIBUTE_LOADS.fetch_add(1, Ordering::Relaxed);
        Ok(vec![(1.0, 1.0)])
    }

    #[tokio::test]
    async fn a_cached_fn_takes_another_instance_load() {
        use reliable_runtime::registry::cache_registry;
        let server = RedisServer::start();
        let config = || CacheConfig::default().ttl(Duration::from_secs(60));
        // This instance: the fn's cache, registered before its first call, and shared.
        let store =
            SharedStore::with_timeout("attribute", &server.url(), Duration::from_secs(2)).unwrap();
        let registered = cache_registry()
            .get_or_create::<String, Book>("attribute_books", config())
            .unwrap()
            .expect("no cache of that name with other types");
        SharedCache::new(&store).attach(&registered).unwrap();
        // Another instance loads BTC first.
        let (other, _) = instance(
            &server,
            "attribute_books",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        other
            .get_or_load("BTC".to_string(), || async { Ok::<_, String>(book()) })
            .await
            .unwrap();
        until_stored(&server, "reliable:cache:{attribute_books:\"BTC\"}").await;
        // The fn's miss is answered by the other instance's load: its body does not run.
        assert_eq!(attribute_book("BTC").await.unwrap(), book());
        assert_eq!(ATTRIBUTE_LOADS.load(Ordering::Relaxed), 0);
        // A key nobody loaded runs the body.
        assert_eq!(attribute_book("ETH").await.unwrap(), vec![(1.0, 1.0)]);
        assert_eq!(ATTRIBUTE_LOADS.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_missing_together_load_once() {
        let server = RedisServer::start();
        let ttl = Duration::from_secs(10);
        let caches: Vec<_> = (0..3)
            .map(|_| instance(&server, "flight", ttl, ttl).0)
            .collect();
        let loads = AtomicU32::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, String>(book())
        };
        let (x, y, z) = tokio::join!(
            caches[0].get_or_load("BTC".to_string(), load),
            caches[1].get_or_load("BTC".to_string(), load),
            caches[2].get_or_load("BTC".to_string(), load),
        );
        assert_eq!(
            (x.unwrap(), y.unwrap(), z.unwrap()),
            (book(), book(), book())
        );
        assert_eq!(
            loads.load(Ordering::Relaxed),
            1,
            "one load for three instances"
        );
    }

    #[tokio::test]
    async fn a_cancelled_load_gives_up_its_claim() {
        let server = RedisServer::start();
        let ttl = Duration::from_secs(10);
        let (a, _) = instance(&server, "cancelled", ttl, ttl);
        let (b, _) = instance(&server, "cancelled", ttl, ttl);
        // a claims BTC's load, and its caller gives up before it ends.
        let hung = a.get_or_load("BTC".to_string(), || {
            std::future::pending::<Result<Book, String>>()
        });
        assert!(tokio::time::timeout(Duration::from_millis(200), hung)
            .await
            .is_err());
        // b does not wait out the claim's lease (5 s): the claim went with the caller.
        let start = Instant::now();
        let value = b
            .get_or_load("BTC".to_string(), || async { Ok::<_, String>(book()) })
            .await
            .unwrap();
        assert_eq!(value, book());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_stale_value_on_the_server_serves_when_a_load_fails() {
        let server = RedisServer::start();
        let ttl = Duration::from_millis(200);
        let (a, _) = instance(&server, "stale", ttl, Duration::from_secs(10));
        let (b, _) = instance(&server, "stale", ttl, Duration::from_secs(10));
        a.get_or_load("BTC".to_string(), || async { Ok::<_, String>(book()) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let failed = AtomicU32::new(0);
        let served =
            reliable_runtime::served::observe(b.get_or_load("BTC".to_string(), || async {
                failed.fetch_add(1, Ordering::Relaxed);
                Err::<Book, _>("503".to_string())
            }))
            .await;
        assert_eq!(
            failed.load(Ordering::Relaxed),
            1,
            "the stale value did not stop the load"
        );
        assert_eq!(served.value.unwrap(), book());
        assert!(
            matches!(served.source, reliable_runtime::served::Source::Stale { age } if age >= Duration::from_millis(200))
        );
    }

    #[tokio::test]
    async fn bad_entries_are_counted_and_replaced() {
        let server = RedisServer::start();
        let (cache, store) = instance(
            &server,
            "corrupt",
            Duration::from_secs(10),
            Duration::from_secs(10),
        );
        let mut connection = raw(&server).await;
        // Another version's value, fresh by its own record; and a key of another type.
        let _: () = redis::cmd("HSET")
            .arg("reliable:cache:{corrupt:\"BTC\"}")
            .arg(&[
                "format",
                "reliable-cache-1",
                "value",
                "{\"bids\":[]}",
                "loaded",
                "1",
                "fresh_until",
                "99999999999999",
            ])
            .query_async(&mut connection)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("reliable:cache:{corrupt:\"ETH\"}")
            .arg("garbage")
            .query_async(&mut connection)
            .await
            .unwrap();
        let loads = AtomicU32::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::Relaxed);
            Ok::<_, String>(book())
        };
        assert_eq!(
            cache.get_or_load("BTC".to_string(), load).await.unwrap(),
            book()
        );
        assert_eq!(
            cache.get_or_load("ETH".to_string(), load).await.unwrap(),
            book()
        );
        assert_eq!(
            loads.load(Ordering::Relaxed),
            2,
            "bad entries count as absent"
        );
        assert_eq!(store.snapshot().bad_data, 2);
        // Each replaced by the load: another instance now takes it.
        for key in ["BTC", "ETH"] {
            let key = format!("reliable:cache:{{corrupt:\"{key}\"}}");
            let mut connection = raw(&server).await;
            let start = Instant::now();
            loop {
                let value: Option<String> = redis::cmd("HGET")
                    .arg(&key)
                    .arg("value")
                    .query_async(&mut connection)
                    .await
                    .unwrap_or(None);
                if value == Some(serde_json::to_string(&book()).unwrap()) {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(3), "{key}: {value:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let (other, other_store) = instance(
            &server,
            "corrupt",
            Duration::from_secs(10),
            Duration::from_secs(10),
        );
        for key in ["BTC", "ETH"] {
            assert_eq!(
                other.get_or_load(key.to_string(), load).await.unwrap(),
                book()
            );
        }
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        assert_eq!(other_store.snapshot().bad_data, 0);
    }

    #[tokio::test]
    async fn a_dead_redis_leaves_the_cache_local_within_the_timeout() {
        let mut server = RedisServer::start();
        let store = SharedStore::new("cache_dead", &server.url()).unwrap(); // 50 ms
        let cache: Cache<String, Book> = Cache::new("dead", CacheConfig::default()).unwrap();
        SharedCache::new(&store).attach(&cache).unwrap();
        assert!(
            SharedCache::new(&store).attach(&cache).is_err(),
            "one second level per cache"
        );
        server.kill();
        for i in 0..5 {
            let start = Instant::now();
            let value = cache
                .get_or_load(format!("key{i}"), || async { Ok::<_, String>(book()) })
                .await
                .unwrap();
            assert_eq!(value, book());
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "{:?}",
                start.elapsed()
            );
        }
        assert!(store.snapshot().fallbacks >= 5);
        // Back: misses are shared again once the store's breaker has probed Redis (a second
        // after it opened, or two after a probe that came too early).
        server.restart();
        let mut connection = raw(&server).await;
        let start = Instant::now();
        for attempt in 0.. {
            let key = format!("after{attempt}");
            cache
                .get_or_load(key.clone(), || async { Ok::<_, String>(book()) })
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let stored: bool = redis::cmd("EXISTS")
                .arg(format!("reliable:cache:{{dead:\"{key}\"}}"))
                .query_async(&mut connection)
                .await
                .unwrap();
            if stored {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(6),
                "never shared again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
