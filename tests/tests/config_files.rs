//! Every configuration type reads from TOML and JSON with durations as people write them, and
//! refuses a field it does not know.

use reliable_runtime::breaker::{BreakerConfig, BreakerWindow};
use reliable_runtime::cache::CacheConfig;
use reliable_runtime::limit::{BulkheadConfig, RateLimit};
use reliable_runtime::retry::{BackoffConfig, RetryConfig};
use reliable_runtime::sla::SlaThresholds;
use std::time::Duration;

#[test]
fn a_breaker_reads_human_durations_from_toml_and_keeps_the_rest_default() {
    let config: BreakerConfig = toml::from_str(
        r#"
        failure_threshold = 3
        timeout = "20s"
        slow_call_duration = "1500ms"
        max_timeout = 600
        window = { time = "1m" }
        "#,
    )
    .unwrap();
    assert_eq!(config.failure_threshold, 3);
    assert_eq!(config.timeout, Duration::from_secs(20));
    assert_eq!(config.slow_call_duration, Duration::from_millis(1500));
    assert_eq!(config.max_timeout, Duration::from_secs(600));
    assert_eq!(config.window, BreakerWindow::Time(Duration::from_secs(60)));
    assert_eq!(
        config.success_threshold,
        BreakerConfig::default().success_threshold
    );
    config.validate().unwrap();
}

#[test]
fn every_configuration_reads_from_json_and_writes_back_the_same() {
    let sla: SlaThresholds = serde_json::from_str(
        r#"{"max_latency_p95": "800ms", "max_latency_p99": "2s", "min_success_rate": 0.9}"#,
    )
    .unwrap();
    assert_eq!(sla.max_latency_p95, Duration::from_millis(800));
    let retry: RetryConfig = serde_json::from_str(
        r#"{"backoff": {"max_attempts": 4, "initial_delay": "250ms", "jitter": "equal"}, "budget": {"ratio": 0.2, "window": "10s"}}"#,
    )
    .unwrap();
    assert_eq!(retry.backoff.max_attempts, 4);
    assert_eq!(retry.backoff.initial_delay, Duration::from_millis(250));
    assert_eq!(retry.budget.unwrap().window, Duration::from_secs(10));
    let bulkhead: BulkheadConfig =
        serde_json::from_str(r#"{"max_concurrent": 5, "max_wait": "100ms"}"#).unwrap();
    assert_eq!(bulkhead.max_wait, Duration::from_millis(100));
    let limit: RateLimit =
        serde_json::from_str(r#"{"limit": 1200, "window": "1m", "burst": 50}"#).unwrap();
    assert_eq!(
        limit,
        RateLimit::per_second(1200)
            .window(Duration::from_secs(60))
            .burst(Some(50))
    );
    let cache: CacheConfig = serde_json::from_str(
        r#"{"ttl": "5s", "min_ttl": "2s", "max_ttl": "15s", "max_entries": 1000}"#,
    )
    .unwrap();
    assert_eq!(cache.ttl, Duration::from_secs(5));

    // Written back: durations in the largest exact unit, read back to the same values.
    let written = serde_json::to_value(&retry).unwrap();
    assert_eq!(written["backoff"]["initial_delay"], "250ms");
    let read: RetryConfig = serde_json::from_value(written).unwrap();
    assert_eq!(read.backoff, retry.backoff);
    let backoff: BackoffConfig =
        serde_json::from_str(&serde_json::to_string(&BackoffConfig::cex()).unwrap()).unwrap();
    assert_eq!(backoff, BackoffConfig::cex());
}

#[test]
fn an_unknown_field_or_a_bad_duration_is_an_error_naming_it() {
    let unknown = toml::from_str::<BreakerConfig>("failure_treshold = 3")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("failure_treshold"), "{unknown}");
    assert!(unknown.contains("line 1"), "{unknown}");
    let unknown = serde_json::from_str::<SlaThresholds>(r#"{"p95": "1s"}"#)
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("p95"), "{unknown}");
    let nested = serde_json::from_str::<RetryConfig>(r#"{"backoff": {"attempts": 3}}"#)
        .unwrap_err()
        .to_string();
    assert!(nested.contains("attempts"), "{nested}");
    let no_unit = toml::from_str::<BulkheadConfig>("max_concurrent = 5\nmax_wait = \"100\"")
        .unwrap_err()
        .to_string();
    assert!(
        no_unit.contains("has no unit") && no_unit.contains("line 2"),
        "{no_unit}"
    );
    let negative = serde_json::from_str::<BreakerConfig>(r#"{"timeout": -5}"#)
        .unwrap_err()
        .to_string();
    assert!(negative.contains("negative"), "{negative}");
}

mod file {
    use reliable_runtime::config::ConfigFile;
    use reliable_runtime::event::{subscribe, Event};
    use reliable_runtime::registry::{breaker_registry, retry_registry, sla_registry};
    use reliable_runtime::{circuit_breaker, monitored, Rejected};
    use std::time::Duration;

    #[derive(Debug)]
    struct ApiError;

    impl From<Rejected> for ApiError {
        fn from(_: Rejected) -> Self {
            ApiError
        }
    }

    /// A file path in the system's temporary folder, unique to this test.
    fn write_file(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("reliable-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[monitored(name = "file_orderbook")]
    #[circuit_breaker(name = "file_binance")]
    async fn orderbook() -> Result<u32, ApiError> {
        Ok(1)
    }

    /// Asks for a breaker setting of its own under the file's name.
    #[circuit_breaker(name = "file_binance", failure_threshold = 10)]
    async fn ticker() -> Result<u32, ApiError> {
        Ok(2)
    }

    #[tokio::test]
    async fn the_attributes_take_the_files_values_for_their_names() {
        let path = write_file(
            "attributes",
            r#"
# The exchange's breaker, shared by its endpoints.
[breakers.file_binance]
failure_threshold = 3
timeout = "20s"

[monitors.file_orderbook]
max_latency_p95 = "800ms"
max_latency_p99 = "1500ms"
"#,
        );
        let file = ConfigFile::load(&path).unwrap();
        assert_eq!(file.path(), Some(path.as_path()));
        file.apply().unwrap();
        let mut events = subscribe();

        assert_eq!(orderbook().await.unwrap(), 1);
        assert_eq!(ticker().await.unwrap(), 2);

        let breaker = breaker_registry().get("file_binance").unwrap();
        assert_eq!(breaker.config().failure_threshold, 3);
        assert_eq!(breaker.config().timeout, Duration::from_secs(20));
        let monitor = sla_registry().get("file_orderbook").unwrap();
        assert_eq!(
            monitor.thresholds().max_latency_p95,
            Duration::from_millis(800)
        );
        assert_eq!(monitor.metrics().total_calls, 1);
        // The fn that asked for 10 runs with the file's 3, and that is reported.
        let reported = std::iter::from_fn(|| events.try_recv().ok()).any(|event| {
            matches!(event, Event::ConfigConflict(conflict)
                if &*conflict.name == "file_binance" && conflict.field == "failure_threshold")
        });
        assert!(reported);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_the_line_and_the_key_and_applies_nothing() {
        let syntax =
            ConfigFile::parse("[breakers.file_bad]\nfailure_threshold = = 3\n").unwrap_err();
        assert_eq!(syntax.line(), Some(2), "{syntax}");

        let wrong_type =
            ConfigFile::parse("[retries.file_bad]\nbackoff = { max_attempts = \"three\" }\n")
                .unwrap_err();
        assert_eq!(wrong_type.line(), Some(2), "{wrong_type}");

        let bad_duration =
            ConfigFile::parse("[timeouts]\nfile_bad = \"2 fortnights\"\n").unwrap_err();
        assert_eq!(bad_duration.line(), Some(2), "{bad_duration}");
        assert!(
            bad_duration.reason().contains("unknown unit"),
            "{bad_duration}"
        );

        // Valid entries beside an invalid one: none is registered.
        let file = ConfigFile::parse(
            "[retries.file_half_a]\nbackoff = { max_attempts = 3 }\n\n[breakers.file_half_b]\ntimeout = \"30s\"\nmax_timeout = \"10s\"\n",
        )
        .unwrap();
        let error = file.apply().unwrap_err();
        assert_eq!(error.key(), Some("breakers.file_half_b.max_timeout"));
        assert_eq!(error.line(), Some(6));
        assert!(
            error
                .to_string()
                .starts_with("configuration, line 6, `breakers.file_half_b.max_timeout`: "),
            "{error}"
        );
        assert!(
            retry_registry().get("file_half_a").is_none(),
            "nothing half-applied"
        );
        assert!(breaker_registry().get("file_half_b").is_none());
    }

    #[test]
    fn a_file_that_disagrees_with_a_registered_layer_is_refused_and_the_same_file_is_harmless() {
        let first = ConfigFile::parse("[breakers.file_twice]\nfailure_threshold = 4\n").unwrap();
        assert_eq!(first.apply().unwrap().registered, ["breakers.file_twice"]);
        assert_eq!(first.apply().unwrap().unchanged, ["breakers.file_twice"]);

        let changed = ConfigFile::parse(
            "[monitors.file_twice_new]\n\n[breakers.file_twice]\nfailure_threshold = 6\n",
        )
        .unwrap();
        let error = changed.apply().unwrap_err();
        assert_eq!(error.key(), Some("breakers.file_twice.failure_threshold"));
        assert_eq!(error.line(), Some(4));
        assert!(error.reason().contains("failure_threshold = 4"), "{error}");
        assert!(
            sla_registry().get("file_twice_new").is_none(),
            "nothing half-applied"
        );
        assert_eq!(
            breaker_registry()
                .get("file_twice")
                .unwrap()
                .config()
                .failure_threshold,
            4
        );
    }

    #[test]
    fn watching_outside_a_runtime_is_an_error_not_a_panic() {
        let path = write_file("unwatched", "[breakers.unwatched]\n");
        let error = ConfigFile::watch(&path, Duration::from_secs(1)).unwrap_err();
        assert!(error.reason().contains("tokio runtime"), "{error}");
        assert!(
            breaker_registry().get("unwatched").is_none(),
            "nothing applied"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let path = std::env::temp_dir().join("reliable-no-such-file.toml");
        let error = ConfigFile::load(&path).unwrap_err();
        assert_eq!(error.path(), Some(path.as_path()));
        assert!(error.to_string().contains("cannot be read"), "{error}");
    }

    /// A reloaded file reconfigures the registered instances in place (a breaker keeps its
    /// count, a limiter what it admitted), registers the new entries and says which were which.
    #[test]
    fn a_reload_reconfigures_registered_layers_in_place() {
        use reliable_runtime::registry::{rate_limiter_registry, timeout_registry};
        let first = ConfigFile::parse(
            "[breakers.reload_binance]\nfailure_threshold = 5\n\n\
             [rate_limits.reload_binance]\nlimit = 10\nwindow = \"1m\"\n\n\
             [timeouts]\nreload_binance = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(first.reload().unwrap().registered.len(), 3);
        let breaker = breaker_registry().get("reload_binance").unwrap();
        let limiter = rate_limiter_registry().get("reload_binance").unwrap();
        breaker.try_acquire().unwrap().failure();
        for _ in 0..4 {
            limiter.try_acquire().unwrap();
        }
        let mut events = subscribe();
        let second = ConfigFile::parse(
            "[breakers.reload_binance]\nfailure_threshold = 2\n\n\
             [rate_limits.reload_binance]\nlimit = 4\nwindow = \"1m\"\n\n\
             [monitors.reload_new]\n\n\
             [timeouts]\nreload_binance = \"2s\"\n",
        )
        .unwrap();
        let applied = second.reload().unwrap();
        assert_eq!(applied.registered, ["monitors.reload_new"]);
        assert_eq!(
            applied.reconfigured,
            ["breakers.reload_binance", "rate_limits.reload_binance"]
        );
        assert_eq!(applied.unchanged, ["timeouts.reload_binance"]);
        breaker.try_acquire().unwrap().failure();
        assert!(
            breaker.state().is_open(),
            "the kept failure and this one: 2"
        );
        assert!(
            limiter.try_acquire().is_err(),
            "4 admitted this minute: the new limit"
        );
        assert_eq!(
            timeout_registry().get("reload_binance").unwrap().after(),
            Duration::from_secs(2)
        );
        let reconfigured: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|event| match event {
                Event::Reconfigured(change) if change.name == "reload_binance" => {
                    Some(change.layer)
                }
                _ => None,
            })
            .collect();
        assert_eq!(reconfigured, ["breaker", "rate limit"]);
    }

    /// A reload with one change its instance cannot take is an error at that key and line, and
    /// changes nothing: not the other instances, not the new entries.
    #[test]
    fn a_reload_an_instance_cannot_take_changes_nothing() {
        use reliable_runtime::registry::bulkhead_registry;
        ConfigFile::parse(
            "[breakers.reload_refused]\nfailure_threshold = 5\n\n\
             [bulkheads.reload_refused]\nmax_concurrent = 4\n",
        )
        .unwrap()
        .reload()
        .unwrap();
        let changed = ConfigFile::parse(
            "[bulkheads.reload_refused]\nmax_concurrent = 8\n\n\
             [monitors.reload_refused_new]\n\n\
             [breakers.reload_refused]\nfailure_threshold = 3\nwindow = { calls = 20 }\n\
             failure_rate_threshold = 0.5\n",
        )
        .unwrap();
        let error = changed.reload().unwrap_err();
        assert_eq!(
            error.key(),
            Some("breakers.reload_refused.failure_rate_threshold")
        );
        assert_eq!(error.line(), Some(9));
        assert!(error.reason().contains("cannot be turned on"), "{error}");
        assert_eq!(
            bulkhead_registry()
                .get("reload_refused")
                .unwrap()
                .config()
                .max_concurrent,
            4
        );
        assert_eq!(
            breaker_registry()
                .get("reload_refused")
                .unwrap()
                .config()
                .failure_threshold,
            5
        );
        assert!(sla_registry().get("reload_refused_new").is_none());
    }

    /// A watched file is applied when watching starts and again whenever its text changes; a
    /// broken edit changes nothing, and the next good one applies.
    #[tokio::test(start_paused = true)]
    async fn a_watched_file_applies_its_edits() {
        let path = write_file("watched", "[breakers.watched]\nfailure_threshold = 5\n");
        let watching = ConfigFile::watch(&path, Duration::from_secs(1)).unwrap();
        let breaker = breaker_registry().get("watched").unwrap();
        let threshold = || breaker.config().failure_threshold;
        assert_eq!(threshold(), 5);

        std::fs::write(&path, "[breakers.watched]\nfailure_threshold = 3\n").unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(threshold(), 3);

        std::fs::write(&path, "[breakers.watched]\nfailure_threshold = 0\n").unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(threshold(), 3, "an invalid value changes nothing");

        std::fs::write(&path, "[breakers.watched]\nfailure_threshold = 7\n").unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(threshold(), 7);
        watching.abort();
        std::fs::remove_file(&path).unwrap();
    }

    /// A `[presets.name]` entry declares a preset from a base and the fields it changes;
    /// attributes and policies naming it take its values.
    #[tokio::test]
    async fn a_files_preset_is_its_base_with_the_fields_it_sets() {
        use reliable_runtime::{reliable, Policy};
        ConfigFile::parse(
            "[presets.file_binance]\nbase = \"cex\"\n\
             breaker = { failure_threshold = 2, timeout = \"45s\" }\n\
             cache = { ttl = \"1s\" }\n",
        )
        .unwrap()
        .apply()
        .unwrap();
        let policy = Policy::builder("file_preset_policy")
            .preset("file_binance")
            .build()
            .unwrap();
        let breaker = policy.breaker().unwrap().config();
        assert_eq!(breaker.failure_threshold, 2);
        assert_eq!(breaker.timeout, Duration::from_secs(45));
        assert_eq!(
            breaker.success_threshold,
            reliable_runtime::breaker::BreakerConfig::cex().success_threshold,
            "the rest from the base"
        );

        let cache = reliable_runtime::preset::preset_values("file_binance")
            .unwrap()
            .cache;
        assert_eq!(
            (cache.ttl, cache.min_ttl, cache.stale),
            (
                Duration::from_secs(1),
                Duration::from_millis(400),
                Duration::from_secs(1)
            ),
            "a TTL brings its range and stale period"
        );

        #[reliable(preset = "file_binance", name = "file_preset_fn", key = symbol)]
        async fn ticker(symbol: &str) -> Result<usize, ApiError> {
            Ok(symbol.len())
        }
        assert_eq!(ticker("BTCUSDT").await.unwrap(), 7);
        assert_eq!(
            breaker_registry()
                .get("file_preset_fn")
                .unwrap()
                .config()
                .failure_threshold,
            2
        );
    }

    /// A preset entry that cannot be used names its key and line: an unknown base, an unknown
    /// or invalid field, a name registered in code; apply refuses a change, reload makes it.
    #[test]
    fn a_bad_preset_entry_names_its_key_and_line() {
        let error = |text: &str| ConfigFile::parse(text).unwrap().apply().unwrap_err();
        let unknown_base = error("[presets.file_bad]\nbase = \"cexx\"\n");
        assert_eq!(unknown_base.key(), Some("presets.file_bad.base"));
        assert_eq!(unknown_base.line(), Some(2));
        let unknown_field = error("[presets.file_bad]\n\nbreaker = { failure_treshold = 2 }\n");
        assert_eq!(unknown_field.key(), Some("presets.file_bad.breaker"));
        assert_eq!(unknown_field.line(), Some(3));
        assert!(
            unknown_field.reason().contains("failure_treshold"),
            "{unknown_field}"
        );
        let invalid = error("[presets.file_bad]\nsla = { min_success_rate = 1.5 }\n");
        assert_eq!(invalid.key(), Some("presets.file_bad.sla.min_success_rate"));
        assert_eq!(invalid.line(), Some(2));
        let built_in = error("[presets.cex]\nbreaker = { failure_threshold = 2 }\n");
        assert_eq!(built_in.key(), Some("presets.cex"));
        assert!(reliable_runtime::preset::preset_values("file_bad").is_none());

        let first = "[presets.file_changed]\nbreaker = { failure_threshold = 4 }\n";
        ConfigFile::parse(first).unwrap().apply().unwrap();
        let second =
            ConfigFile::parse("[presets.file_changed]\nbreaker = { failure_threshold = 6 }\n")
                .unwrap();
        assert_eq!(
            second.apply().unwrap_err().key(),
            Some("presets.file_changed")
        );
        assert_eq!(
            second.reload().unwrap().reconfigured,
            ["presets.file_changed"]
        );
        let threshold = reliable_runtime::preset::preset_values("file_changed")
            .unwrap()
            .breaker
            .failure_threshold;
        assert_eq!(threshold, 6);
    }

    /// A `[caches.name]` entry: a cache not created yet is created with it (whatever the fn
    /// asks); a running one is reconfigured by a reload and left alone, with an error, by apply.
    #[tokio::test]
    async fn a_files_cache_is_declared_before_its_fn_and_reconfigured_after() {
        use reliable_runtime::cached;
        use reliable_runtime::registry::cache_registry;
        ConfigFile::parse("[caches.file_books]\nttl = \"2s\"\nmax_entries = 50\n")
            .unwrap()
            .apply()
            .unwrap();

        #[cached(name = "file_books", ttl = 60, key = id)]
        async fn book(id: u32) -> Result<u32, ApiError> {
            Ok(id)
        }
        assert_eq!(book(7).await.unwrap(), 7);
        let stats = cache_registry().snapshot("file_books").unwrap();
        assert_eq!(
            stats.ttl_seconds, 2.0,
            "the file's, not the attribute's 60 s"
        );

        let changed =
            ConfigFile::parse("[caches.file_books]\nttl = \"2s\"\nmax_entries = 80\n").unwrap();
        let error = changed.apply().unwrap_err();
        assert_eq!(error.key(), Some("caches.file_books.max_entries"));
        assert_eq!(error.line(), Some(3));
        assert_eq!(
            changed.reload().unwrap().reconfigured,
            ["caches.file_books"]
        );
        let typed = cache_registry()
            .get_or_create::<u32, u32>("file_books", Default::default())
            .unwrap()
            .expect("the fn's cache: u32 keys and values");
        assert_eq!(typed.config().max_entries, 80);

        let invalid = ConfigFile::parse("[caches.file_books]\n\neviction_ratio = 3.0\n")
            .unwrap()
            .reload()
            .unwrap_err();
        assert_eq!(invalid.key(), Some("caches.file_books.eviction_ratio"));
        assert_eq!(invalid.line(), Some(3));
    }
}
