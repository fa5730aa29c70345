//! `#[cached]` on every fn shape: free and associated fns, every receiver, sync and async,
//! `Result` and `Option`, default keys over owned and borrowed arguments, keys of arguments
//! looked up borrowed, generics, trait impls, and stacked with the other layers.

use reliable_runtime::{cached, circuit_breaker, monitored, with_backoff, Rejected};
use std::sync::Arc;

/// Callers that waited for a failed load get a clone of its error.
#[derive(Clone, Debug)]
pub struct ApiError;

/// Not `Clone`: fine with a layer that refuses calls, whose `Rejected` the waiting callers get.
#[derive(Debug)]
pub enum TransportError {
    Io(std::io::Error),
    Rejected(Rejected),
}

impl From<Rejected> for TransportError {
    fn from(rejected: Rejected) -> Self {
        TransportError::Rejected(rejected)
    }
}

#[circuit_breaker]
#[cached(ttl = 5, key = symbol)]
async fn error_not_clone(symbol: &str) -> Result<u64, TransportError> {
    if symbol.is_empty() {
        return Err(TransportError::Io(std::io::ErrorKind::InvalidInput.into()));
    }
    Ok(symbol.len() as u64)
}

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[cached]
async fn no_arguments() -> Result<u64, ApiError> {
    Ok(1)
}

#[cached(ttl = 5)]
async fn default_key_owned_and_borrowed(exchange: String, symbol: &str, depth: u32) -> Result<Vec<u64>, ApiError> {
    Ok(vec![exchange.len() as u64, symbol.len() as u64, u64::from(depth)])
}

#[cached(ttl = "500ms", key = format!("binance:{symbol}"))]
async fn format_key(symbol: &str) -> Option<String> {
    Some(symbol.to_owned())
}

#[cached(key = symbol.to_owned(), policy = "lru", max_entries = 100)]
fn blocking(symbol: &str) -> Result<usize, ApiError> {
    Ok(symbol.len())
}

#[cached(key = (), policy = "adaptive", min_ttl = "1s", max_ttl = "10s")]
fn blocking_option() -> Option<Arc<[u8]>> {
    None
}

#[cached(key = id)]
async fn generic<T: Clone + Send + Sync + 'static>(id: u64, value: T) -> Result<T, ApiError> {
    let _ = id;
    Ok(value)
}

#[cached(key = symbol.to_string())]
async fn impl_trait_argument(symbol: impl ToString, _extra: impl Send) -> Result<u8, ApiError> {
    let _ = symbol.to_string();
    Ok(0)
}

#[with_backoff(max_attempts = 2, initial_delay = "1ms")]
#[circuit_breaker]
#[monitored]
#[cached(ttl = 5, stale = "10s", key = symbol.to_owned())]
async fn stacked(symbol: &str) -> Result<u64, ApiError> {
    Ok(symbol.len() as u64)
}

#[cached(key = symbol)]
async fn borrowed_argument(symbol: &str) -> Result<u64, ApiError> {
    Ok(symbol.len() as u64)
}

#[cached(key = (symbol, depth))]
fn borrowed_tuple(symbol: &mut String, depth: u8) -> Option<u8> {
    symbol.push('!');
    Some(depth)
}

#[cached(key = ((value)))]
async fn borrowed_generic<T: std::hash::Hash + Eq + Clone + Send + Sync + 'static>(value: &T) -> Result<T, ApiError> {
    Ok(value.clone())
}

pub struct Client {
    exchange: String,
}

impl Client {
    #[cached(key = (self.exchange.clone(), symbol.to_owned()))]
    pub async fn per_instance(&self, symbol: &str) -> Result<u64, ApiError> {
        Ok(symbol.len() as u64)
    }

    #[cached(key = (self.exchange.clone(), symbol))]
    pub async fn per_instance_borrowed(&self, symbol: &str) -> Result<u64, ApiError> {
        Ok(symbol.len() as u64)
    }

    #[cached(key = symbol)]
    async fn shared_across_instances(&mut self, symbol: &str) -> Result<u64, ApiError> {
        self.exchange.push_str(symbol);
        Ok(1)
    }

    #[cached(key = self.exchange.clone())]
    async fn by_value(self) -> Option<String> {
        Some(self.exchange)
    }

    #[cached(key = self.exchange.clone())]
    async fn by_arc(self: Arc<Self>) -> Result<usize, ApiError> {
        Ok(self.exchange.len())
    }

    #[cached(key = symbol)]
    fn associated(symbol: u32) -> Result<Self, ApiError>
    where
        Self: Clone,
    {
        Ok(Client { exchange: symbol.to_string() })
    }

    #[cached(key = self.exchange.clone())]
    fn sync_by_ref(&self) -> Result<String, ApiError> {
        Ok(self.exchange.clone())
    }
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Client { exchange: self.exchange.clone() }
    }
}

trait Api {
    async fn ticker(&self, symbol: &str) -> Result<u64, ApiError>;
}

impl Api for Client {
    #[cached(key = symbol.to_owned(), ttl = 1)]
    async fn ticker(&self, symbol: &str) -> Result<u64, ApiError> {
        Ok(symbol.len() as u64)
    }
}

/// A generic error without `Clone`: waiting callers load on their own.
#[cached(ttl = 5)]
async fn generic_error<E: Send + 'static>(id: u64, fail: fn() -> E) -> Result<u64, E> {
    if id == 0 {
        return Err(fail());
    }
    Ok(id)
}

/// A generic error bound to be shared: waiting callers get a clone.
#[cached(ttl = 5)]
async fn generic_shared_error<E: Clone + Send + Sync + 'static>(id: u64, fail: fn() -> E) -> Result<u64, E> {
    if id == 0 {
        return Err(fail());
    }
    Ok(id)
}

fn main() {
    let _ = generic_error::<std::io::Error>(1, || std::io::ErrorKind::Other.into());
    let _ = generic_shared_error::<String>(1, String::new);
    let _ = error_not_clone("BTC");
    let mut client = Client { exchange: "binance".into() };
    let _ = no_arguments();
    let _ = default_key_owned_and_borrowed(String::new(), "BTC", 5);
    let _ = format_key("BTC");
    let _ = blocking("BTC");
    let _ = blocking_option();
    let _ = generic(1, "x");
    let _ = impl_trait_argument("BTC", ());
    let _ = stacked("BTC");
    let _ = borrowed_argument("BTC");
    let _ = borrowed_tuple(&mut String::new(), 1);
    let _ = borrowed_generic(&5u8);
    let _ = client.per_instance_borrowed("BTC");
    let _ = client.per_instance("BTC");
    let _ = client.shared_across_instances("BTC");
    let _ = client.sync_by_ref();
    let _ = client.ticker("BTC");
    let _ = Client::associated(1);
    let _ = Arc::new(client.clone()).by_arc();
    let _ = client.by_value();
}
