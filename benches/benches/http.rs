//! The hardened HTTP client's cost per request over bare reqwest, on loopback, in one run.
//!
//! The server (axum) and the clients share one current-thread runtime, so each request is the
//! same work on one core: the floor is a bare `reqwest::Client` GET of a small JSON body, read
//! whole; the case is the same GET through `reliable_runtime::http::Client` (its source's
//! monitor, breaker, retry layer, attempt timeout and deadline, bulkhead, rate limit, the
//! connection cap), and the same with the body decoded inside the attempt (`get_json`) beside
//! reqwest's bytes decoded by serde_json.
//!
//! `cargo bench -p reliable-benches --bench http`

use criterion::{criterion_group, criterion_main, Criterion};
use reliable_runtime::http::{Client, Profile};
use std::hint::black_box;
use std::time::Duration;

#[derive(serde::Deserialize)]
struct Answer {
    #[allow(dead_code)]
    ok: bool,
}

fn http_get(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let address = runtime.block_on(async {
        let app =
            axum::Router::new().route("/api", axum::routing::get(|| async { r#"{"ok":true}"# }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    });
    let url = format!("http://{address}/api");
    let bare = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(20)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    // The default profile but for the rate limit, which a bench would hit at once (60 a
    // minute): its check is the lock-free sliding log measured in the `reliability` bench.
    let hardened = Client::builder()
        .profile(Profile::default().rate_limit_per_minute(None))
        .configure_reqwest(|reqwest| reqwest.no_proxy())
        .build()
        .unwrap();
    let limited = Client::builder()
        .profile(Profile::default().rate_limit_per_minute(Some(1_000_000)))
        .configure_reqwest(|reqwest| reqwest.no_proxy())
        .build()
        .unwrap();
    // Both warm: a connection in each pool.
    runtime.block_on(async {
        bare.get(&url).send().await.unwrap().bytes().await.unwrap();
        hardened.get(&url).send().await.unwrap();
        limited.get(&url).send().await.unwrap();
    });

    let mut group = c.benchmark_group("http_get");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("floor_reqwest", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = bare.get(&url).send().await.unwrap();
                black_box(response.bytes().await.unwrap());
            })
        })
    });
    group.bench_function("reliable_client", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = hardened.get(&url).send().await.unwrap();
                black_box(response.bytes().await.unwrap());
            })
        })
    });
    group.bench_function("reliable_client_rate_limited", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = limited.get(&url).send().await.unwrap();
                black_box(response.bytes().await.unwrap());
            })
        })
    });
    group.bench_function("floor_reqwest_json", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let bytes = bare.get(&url).send().await.unwrap().bytes().await.unwrap();
                black_box(serde_json::from_slice::<Answer>(&bytes).unwrap());
            })
        })
    });
    group.bench_function("reliable_client_get_json", |b| {
        b.iter(|| {
            runtime.block_on(async {
                black_box(hardened.get_json::<Answer>(&url).await.unwrap());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, http_get);
criterion_main!(benches);
