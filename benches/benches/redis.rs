//! Shared state's cost through a real Redis on loopback, in one run, against one round trip.
//!
//! One current-thread runtime runs every case; the server is a `redis-server` on a loopback
//! port the bench picks (`scripts/redis-server.sh` installs it when missing). Floors: a `GET`
//! and a trivial script (`EVALSHA` returning 1) on the same kind of connection. Cases: the
//! shared limit's admission (alone, and 8 in flight on one connection, which the connection
//! pipelines), the dedup store's `SET NX`, a cache miss answered by the second level, and a
//! closed breaker's call with a `SharedBreaker` syncing beside it against one without.
//!
//! `cargo bench -p reliable-benches --features redis --bench redis`

#[path = "../../tests/tests/redis_support/mod.rs"]
mod redis_support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redis_support::RedisServer;
use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
use reliable_runtime::cache::{Cache, CacheConfig};
use reliable_runtime::limit::RateLimit;
use reliable_runtime::shared::{
    DedupStore, SharedBreaker, SharedCache, SharedRateLimiter, SharedStore,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn shared_redis(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    // A generous timeout: a bench measures Redis answering, not the fallback.
    let store = SharedStore::with_timeout("bench", &server.url(), Duration::from_secs(1)).unwrap();
    let mut floor = runtime.block_on(async {
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = redis::aio::ConnectionManager::new(client).await.unwrap();
        let _: () = redis::cmd("SET")
            .arg("floor")
            .arg("1")
            .query_async(&mut connection)
            .await
            .unwrap();
        connection
    });
    let trivial = redis::Script::new("return 1");
    // A limit no iteration reaches: every admission is a write (the window holds every call
    // of the last second, as a busy service's would).
    let limit =
        SharedRateLimiter::new(&store, "bench", &[RateLimit::per_second(u32::MAX / 4)]).unwrap();
    let dedup = DedupStore::new(&store, "bench", Duration::from_secs(60)).unwrap();
    let cache: Cache<u64, Vec<(f64, f64)>> = Cache::new(
        "bench",
        CacheConfig::default().ttl(Duration::from_secs(600)),
    )
    .unwrap();
    SharedCache::new(&store).attach(&cache).unwrap();
    let book = vec![(97_000.5, 1.25); 20];
    runtime.block_on(async {
        assert!(limit.try_acquire(1).await.is_ok());
        cache
            .get_or_load(7, || async { Ok::<_, String>(book.clone()) })
            .await
            .unwrap();
        // The value stored on the server in the background.
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    assert_eq!(store.snapshot().fallbacks, 0, "Redis answers");

    let mut group = c.benchmark_group("shared_redis");
    group.bench_function("floor_get", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let value: String = redis::cmd("GET")
                    .arg("floor")
                    .query_async(&mut floor)
                    .await
                    .unwrap();
                black_box(value)
            })
        })
    });
    group.bench_function("floor_script", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let value: i64 = trivial.invoke_async(&mut floor).await.unwrap();
                black_box(value)
            })
        })
    });
    group.bench_function("limit_try_acquire", |b| {
        b.iter(|| runtime.block_on(async { black_box(limit.try_acquire(1).await.is_ok()) }))
    });
    group.throughput(Throughput::Elements(8));
    group.bench_function("limit_8_in_flight", |b| {
        let one = || limit.try_acquire(1);
        b.iter(|| {
            runtime.block_on(async {
                black_box(tokio::join!(
                    one(),
                    one(),
                    one(),
                    one(),
                    one(),
                    one(),
                    one(),
                    one()
                ))
            })
        })
    });
    group.throughput(Throughput::Elements(1));
    let mut id = 0u64;
    group.bench_function("dedup_first_time", |b| {
        b.iter(|| {
            id += 1;
            let id = format!("trade-{id}");
            runtime.block_on(async { black_box(dedup.first_time(&id).await) })
        })
    });
    group.bench_function("cache_miss_second_level_hit", |b| {
        b.iter(|| {
            cache.remove(&7);
            runtime.block_on(async {
                black_box(
                    cache
                        .get_or_load(7, || async {
                            Err::<Vec<(f64, f64)>, _>("not loaded".to_string())
                        })
                        .await
                        .unwrap(),
                )
            })
        })
    });
    group.finish();

    // The call path of a breaker shared with the fleet is the local one: no command per call.
    let mut group = c.benchmark_group("shared_breaker");
    let local = CircuitBreaker::new("bench_local", BreakerConfig::default()).unwrap();
    let shared = Arc::new(CircuitBreaker::new("bench_shared", BreakerConfig::default()).unwrap());
    let _syncing = SharedBreaker::start(&store, "bench", Arc::clone(&shared));
    group.bench_function("closed_call_local", |b| {
        b.iter(|| {
            black_box(&local)
                .try_acquire()
                .map(|permit| permit.success())
        })
    });
    group.bench_function("closed_call_shared", |b| {
        b.iter(|| {
            black_box(&*shared)
                .try_acquire()
                .map(|permit| permit.success())
        })
    });
    group.finish();
    assert_eq!(
        store.snapshot().fallbacks,
        0,
        "every case was answered by Redis"
    );
}

criterion_group!(benches, shared_redis);
criterion_main!(benches);
