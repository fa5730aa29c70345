//! Registry keys of the current test scope (feature `testing`, see `crate::testing`); without
//! the feature a key is its name, at no cost.

use std::borrow::Cow;

/// The registry key of `name` where the caller runs.
#[inline]
pub(crate) fn key(name: &str) -> Cow<'_, str> {
    #[cfg(feature = "testing")]
    return crate::testing::key(name);
    #[cfg(not(feature = "testing"))]
    Cow::Borrowed(name)
}

/// The name `key` stands for, if it belongs where the caller runs.
#[inline]
pub(crate) fn name_here(key: &str) -> Option<&str> {
    #[cfg(feature = "testing")]
    return crate::testing::name_in_current(key);
    #[cfg(not(feature = "testing"))]
    Some(key)
}
