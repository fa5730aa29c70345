//! DNS answers kept for a while: a source called many times a second resolves its host once
//! per `ttl`, not once per new connection.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How a host is looked up (the system resolver in production; a counting one in tests).
pub(crate) type Lookup = Arc<dyn Fn(String) -> Resolving + Send + Sync>;

/// A resolver that keeps each host's addresses for `ttl` (cloned into each lookup's future).
#[derive(Clone)]
pub(crate) struct CachingResolver(Arc<Cached>);

struct Cached {
    ttl: Duration,
    lookup: Lookup,
    cache: Mutex<HashMap<String, (Instant, Vec<SocketAddr>)>>,
}

impl CachingResolver {
    /// Keeps the system resolver's answers for `ttl`.
    pub(crate) fn system(ttl: Duration) -> Self {
        CachingResolver::with_lookup(
            ttl,
            Arc::new(|host: String| -> Resolving {
                Box::pin(async move {
                    let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
                    let addrs: Addrs = Box::new(addrs.collect::<Vec<_>>().into_iter());
                    Ok(addrs)
                })
            }),
        )
    }

    pub(crate) fn with_lookup(ttl: Duration, lookup: Lookup) -> Self {
        CachingResolver(Arc::new(Cached {
            ttl,
            lookup,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    fn cached(&self, host: &str) -> Option<Vec<SocketAddr>> {
        let cache = self.0.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(host)
            .filter(|(at, _)| at.elapsed() < self.0.ttl)
            .map(|(_, addrs)| addrs.clone())
    }
}

impl Resolve for CachingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        if let Some(addrs) = self.cached(&host) {
            return Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) });
        }
        let this = Arc::clone(&self.0);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = (this.lookup)(host.clone()).await?.collect();
            if !addrs.is_empty() {
                let mut cache = this.cache.lock().unwrap_or_else(PoisonError::into_inner);
                // Bounded: a client calls a handful of hosts; forget expired ones past 1024.
                if cache.len() >= 1024 {
                    let ttl = this.ttl;
                    cache.retain(|_, (at, _)| at.elapsed() < ttl);
                    if cache.len() >= 1024 {
                        // Still full of live answers: start over rather than grow.
                        cache.clear();
                    }
                }
                cache.insert(host, (Instant::now(), addrs.clone()));
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_host_is_looked_up_once_per_ttl() {
        let lookups = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&lookups);
        let resolver = CachingResolver::with_lookup(
            Duration::from_millis(50),
            Arc::new(move |_host| -> Resolving {
                counted.fetch_add(1, Ordering::Relaxed);
                Box::pin(async {
                    Ok(Box::new(vec![SocketAddr::from(([127, 0, 0, 1], 0))].into_iter()) as Addrs)
                })
            }),
        );
        for _ in 0..3 {
            let addrs: Vec<_> = resolver
                .resolve("exchange.test".parse().unwrap())
                .await
                .unwrap()
                .collect();
            assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 0))]);
        }
        assert_eq!(lookups.load(Ordering::Relaxed), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let _ = resolver
            .resolve("exchange.test".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(lookups.load(Ordering::Relaxed), 2);
    }
}
