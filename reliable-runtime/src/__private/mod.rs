//! What the attribute macros' generated code calls. Not a public API: it changes without notice.
//!
//! An attribute expands to a `static` [`PolicyCell`] that builds the fn's `Policy` once through
//! the public builder, and one call on it. The rest of this index checks types at the user's
//! tokens (so an error points there) and adapts the fn's shapes: its return type
//! ([`Run`]), callbacks ([`FnHooks`], [`NoHooks`]), a written-out retry loop ([`Retries`]),
//! fallbacks ([`Fallback`], [`AsyncFallback`]), cached calls ([`Cached`]) and any output type
//! ([`probe`]). One file per name; the traits the bounds name are in `bounds.rs`.

mod blocking;
mod bounds;
#[cfg(feature = "cache")]
mod cached;
mod calls;
mod cell;
mod fallback;
mod hooks;
pub mod probe;
#[cfg(feature = "retry")]
mod retries;
mod run;

#[cfg(feature = "cache")]
pub use cached::Cached;
pub use cell::PolicyCell;
pub use fallback::{AsyncFallback, Fallback};
pub use hooks::{FnHooks, NoHooks};
#[cfg(feature = "retry")]
pub use retries::Retries;
pub use run::Run;

#[cfg(feature = "cache")]
pub(crate) use bounds::{CacheKey, CacheOutput, CacheValue};

#[cfg(test)]
mod tests {
    /// The index stays short: at most 15 names (the generated code's whole vocabulary).
    #[test]
    fn the_index_has_at_most_fifteen_names() {
        let index = include_str!("mod.rs");
        let names: usize = index
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("pub use ") || line.starts_with("pub mod "))
            .map(|line| match (line.find('{'), line.find('}')) {
                (Some(open), Some(close)) => line[open + 1..close].split(',').count(),
                _ => 1,
            })
            .sum();
        assert!((1..=15).contains(&names), "{names} names in __private");
    }
}
