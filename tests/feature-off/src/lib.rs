//! Uses the attributes whose features are off, only under `--cfg reliable_feature_off`
//! (which `tests/tests/feature_off.rs` sets): the workspace's own builds compile it without
//! them.

#[cfg(reliable_feature_off)]
mod uses_gated_attributes {
    use reliable_runtime::{bulkhead, cached, rate_limited, with_backoff, Rejected};

    #[cached(ttl = 5)]
    pub fn price(symbol: &str) -> Result<f64, Rejected> {
        let _ = symbol;
        Ok(1.0)
    }

    #[with_backoff]
    pub async fn fetch() -> Result<(), Rejected> {
        Ok(())
    }

    #[rate_limited(per_second = 10)]
    pub async fn limited() -> Result<(), Rejected> {
        Ok(())
    }

    #[bulkhead(max_concurrent = 4)]
    pub async fn capped() -> Result<(), Rejected> {
        Ok(())
    }
}

/// An attribute whose feature is always there still works.
#[reliable_runtime::circuit_breaker]
pub async fn guarded() -> Result<(), reliable_runtime::Rejected> {
    Ok(())
}
