//! Tests of code that uses `reliable` (feature `testing`, for `[dev-dependencies]`): each
//! test in its own [`Scope`], with its own breakers, monitors, caches and policies, and a
//! test clock for all of them.
//!
//! Cargo runs the tests of one binary in parallel, and the runtime's registries and the
//! attributes' policies are process-wide: without scopes, a breaker one test trips is open in
//! the next, and a cache one test fills answers another. Inside a scope, every name resolves
//! to the scope's own instance (made on first use, as outside), the attributes build their
//! policies afresh for the scope, [`get_system_health()`](crate::get_system_health) shows the
//! scope's instances, and dropping the scope forgets them all. Code under test is unchanged.
//!
//! ```
//! use reliable_runtime::breaker::BreakerState;
//! use reliable_runtime::clock::Clock;
//! use reliable_runtime::registry::breaker_registry;
//! use reliable_runtime::testing::Scope;
//! use reliable_runtime::{circuit_breaker, Rejected};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! struct ApiError;
//! impl From<Rejected> for ApiError {
//!     fn from(_: Rejected) -> Self { ApiError }
//! }
//!
//! #[circuit_breaker(name = "testing_doc_api", failure_threshold = 2, timeout = "30s")]
//! async fn fetch(ok: bool) -> Result<u32, ApiError> {
//!     if ok { Ok(1) } else { Err(ApiError) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (clock, hand) = Clock::manual();
//! Scope::new().clock(clock).run(async move {
//!     let _ = fetch(false).await;
//!     let _ = fetch(false).await;
//!     let breaker = breaker_registry().get("testing_doc_api").unwrap();
//!     assert_eq!(breaker.state(), BreakerState::Open);
//!     hand.advance(Duration::from_secs(30)); // the scope's clock: no waiting
//!     assert_eq!(fetch(true).await.unwrap(), 1);
//! }).await;
//! // Another scope (another test) starts from a closed breaker.
//! Scope::new().run(async {
//!     assert!(breaker_registry().get("testing_doc_api").is_none());
//!     assert_eq!(fetch(true).await.unwrap(), 1);
//! }).await;
//! # }
//! ```
//!
//! A task spawned inside a scope runs outside it unless bound to it: `tokio::spawn(bind(fut))`.
//! The policies of the attributes a scope used are kept for the life of the process (a few
//! hundred bytes per fn and scope), since a call may still hold one when the scope ends.

use crate::clock::Clock;
use crate::policy::Policy;
use dashmap::DashMap;
use pin_project_lite::pin_project;
use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// Scopes alive anywhere: while none is, nothing reads the thread's scope.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The scope whose future (or [`Entered`] block) runs on this thread; 0 for none.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// What the scopes hold besides the registries' entries: their clocks and their policies.
#[derive(Default)]
struct Scopes {
    clocks: DashMap<u64, Clock>,
    /// The policy of each (scope, attribute call site), by the site's `static` address.
    policies: DashMap<(u64, usize), &'static Policy>,
}

fn scopes() -> &'static Scopes {
    static SCOPES: OnceLock<Scopes> = OnceLock::new();
    SCOPES.get_or_init(Scopes::default)
}

/// The scope running on this thread, if any.
#[inline]
pub(crate) fn current() -> Option<u64> {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    match CURRENT.with(Cell::get) {
        0 => None,
        id => Some(id),
    }
}

/// Separates a scope's registry names from the process-wide ones (a name cannot hold it).
const SEPARATOR: char = '\0';

/// The registry key of `name` in the current scope.
pub(crate) fn key(name: &str) -> Cow<'_, str> {
    match current() {
        None => Cow::Borrowed(name),
        Some(id) => Cow::Owned(format!("{name}{SEPARATOR}{id}")),
    }
}

/// The name a registry key stands for, if the key belongs to the current scope.
pub(crate) fn name_in_current(key: &str) -> Option<&str> {
    match (key.rsplit_once(SEPARATOR), current()) {
        (None, None) => Some(key),
        (Some((name, id)), Some(current)) if id.parse() == Ok(current) => Some(name),
        _ => None,
    }
}

/// Whether a registry key belongs to scope `id`.
fn key_in(key: &str, id: u64) -> bool {
    key.rsplit_once(SEPARATOR)
        .is_some_and(|(_, scope)| scope.parse() == Ok(id))
}

/// The current scope's clock, for the layers it makes without one of their own.
pub(crate) fn clock() -> Option<Clock> {
    let id = current()?;
    scopes().clocks.get(&id).map(|clock| clock.clone())
}

/// The policy of the attribute call site at `site` in scope `id`, built by `build` on its
/// first call there.
pub(crate) fn policy(id: u64, site: usize, build: impl FnOnce() -> Policy) -> &'static Policy {
    let policies = &scopes().policies;
    if let Some(policy) = policies.get(&(id, site)) {
        return *policy;
    }
    // Kept for the process's life: a call in flight may hold it after its scope ends.
    let built: &'static Policy = Box::leak(Box::new(build()));
    *policies.entry((id, site)).or_insert(built)
}

/// Every registry's entries of a scope, and its policies, forgotten.
fn forget(id: u64) {
    let keep = |key: &str| !key_in(key, id);
    crate::registry::retain_keys(&keep);
    scopes().policies.retain(|(scope, _), _| *scope != id);
}

/// A test's own instances: see the [module docs](self).
#[derive(Debug)]
#[must_use = "a scope applies only to what runs inside it (`run`, `enter`)"]
pub struct Scope {
    id: u64,
}

impl Scope {
    /// A new, empty scope.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Scope {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Scope {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Every layer made in the scope without a clock of its own (the attributes', a
    /// [`Policy`] built without [`clock`](crate::PolicyBuilder::clock)) reads `clock`: a
    /// manual clock or tokio's paused time, without restating any configuration.
    pub fn clock(self, clock: Clock) -> Scope {
        scopes().clocks.insert(self.id, clock);
        self
    }

    /// Runs `future` in the scope, which ends (its instances forgotten) when the future does.
    pub fn run<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            future,
            scope: self,
        }
    }

    /// Makes the scope current on this thread until the guard drops (for synchronous tests).
    ///
    /// ```
    /// use reliable_runtime::registry::breaker_registry;
    /// use reliable_runtime::breaker::BreakerConfig;
    /// use reliable_runtime::testing::Scope;
    ///
    /// let scope = Scope::new();
    /// {
    ///     let _in_scope = scope.enter();
    ///     breaker_registry().get_or_create("testing_enter_doc", BreakerConfig::default()).unwrap();
    ///     assert!(breaker_registry().get("testing_enter_doc").is_some());
    /// }
    /// assert!(breaker_registry().get("testing_enter_doc").is_none(), "not outside it");
    /// ```
    pub fn enter(&self) -> Entered<'_> {
        Entered {
            previous: CURRENT.with(|current| current.replace(self.id)),
            _scope: std::marker::PhantomData,
        }
    }

    /// Forgets the scope's instances and policies now, so the next calls start afresh.
    pub fn clear(&self) {
        forget(self.id);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        forget(self.id);
        scopes().clocks.remove(&self.id);
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The guard of [`Scope::enter`].
#[derive(Debug)]
pub struct Entered<'a> {
    previous: u64,
    _scope: std::marker::PhantomData<&'a Scope>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

/// Runs `poll` with scope `id` current on this thread.
fn in_scope<R>(id: u64, poll: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace(id)));
    poll()
}

pin_project! {
    /// The future of [`Scope::run`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        #[pin]
        future: F,
        scope: Scope,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        in_scope(this.scope.id, || future.poll(cx))
    }
}

pin_project! {
    /// The future of [`bind`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Bound<F> {
        #[pin]
        future: F,
        id: u64,
    }
}

/// Binds `future` to the scope current where it is made, wherever it is polled: for tasks a
/// scoped test spawns (`tokio::spawn(bind(async { .. }))`).
pub fn bind<F: Future>(future: F) -> Bound<F> {
    Bound {
        future,
        id: current().unwrap_or(0),
    }
}

impl<F: Future> Future for Bound<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        in_scope(*this.id, || future.poll(cx))
    }
}
