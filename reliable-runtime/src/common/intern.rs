//! Name interning: one `&'static str` per distinct registry name.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The process-wide copy of `name`, stored once per distinct name.
///
/// Breakers hand their name to every rejection; a `&'static str` makes that free, where an
/// `Arc<str>` would cost two atomic reference-count updates per rejected call.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(interned) = names.get(name) {
        return interned;
    }
    let interned: &'static str = Box::leak(name.into());
    names.insert(interned);
    interned
}
