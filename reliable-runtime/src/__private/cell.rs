//! [`PolicyCell`]: the `static` in every expansion that builds the fn's [`Policy`] once.

use crate::policy::{Policy, PolicyBuilder};
use std::sync::OnceLock;

/// A call site's policy, built on its first call.
pub struct PolicyCell {
    cell: OnceLock<Policy>,
}

impl PolicyCell {
    /// An empty cell, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        PolicyCell {
            cell: OnceLock::new(),
        }
    }

    /// [`get_or_init`](Self::get_or_init) named after the fn whose body holds `build` (a
    /// closure, whose type name is that fn's path, module and type included).
    #[inline]
    pub fn get_or_init_here<Build>(&'static self, build: Build) -> &'static Policy
    where
        Build: FnOnce(&str) -> PolicyBuilder,
    {
        #[cfg(feature = "testing")]
        if let Some(scope) = crate::testing::current() {
            return self.scoped(
                scope,
                &function_path(core::any::type_name::<Build>()),
                build,
            );
        }
        match self.cell.get() {
            Some(policy) => policy,
            None => self.init_here(build),
        }
    }

    #[cold]
    fn init_here<Build>(&'static self, build: Build) -> &'static Policy
    where
        Build: FnOnce(&str) -> PolicyBuilder,
    {
        self.init(&function_path(core::any::type_name::<Build>()), build)
    }

    /// The policy, built by `build` from the call site's name on the first call. A
    /// configuration the runtime refuses (a custom preset's invalid values) is logged, and
    /// the fn then runs without its layers: a caller is never panicked on.
    #[inline]
    pub fn get_or_init(
        &'static self,
        name: &'static str,
        build: impl FnOnce(&str) -> PolicyBuilder,
    ) -> &'static Policy {
        #[cfg(feature = "testing")]
        if let Some(scope) = crate::testing::current() {
            return self.scoped(scope, name, build);
        }
        match self.cell.get() {
            Some(policy) => policy,
            None => self.init(name, build),
        }
    }

    /// The call site's policy in test scope `scope` (feature `testing`).
    #[cfg(feature = "testing")]
    #[cold]
    fn scoped(
        &'static self,
        scope: u64,
        name: &str,
        build: impl FnOnce(&str) -> PolicyBuilder,
    ) -> &'static Policy {
        crate::testing::policy(scope, self as *const PolicyCell as usize, || {
            make(name, build)
        })
    }

    #[cold]
    fn init(
        &'static self,
        name: &str,
        build: impl FnOnce(&str) -> PolicyBuilder,
    ) -> &'static Policy {
        self.cell.get_or_init(|| make(name, build))
    }
}

/// The policy `build` describes for the call site `name`. A layer registered under its name
/// with other settings is taken as it is (warned and published): a fn cannot refuse to run
/// for it.
fn make(name: &str, build: impl FnOnce(&str) -> PolicyBuilder) -> Policy {
    build(name)
        .taking_registered_layers()
        .build()
        .unwrap_or_else(|error| {
            tracing::error!(policy = %name, %error, "invalid configuration; calls run without the reliability layers");
            Policy::passthrough(name)
        })
}

/// The path of the fn a closure is defined in, from the closure's type name:
/// `app::Client::ticker<u8>::{{closure}}::{{closure}}` -> `app::Client::ticker` (an `async fn`'s
/// body is a closure too; generic arguments are dropped, since one `static` serves every
/// instance of a generic fn).
fn function_path(closure_type: &str) -> String {
    let mut path = closure_type;
    while let Some(stripped) = path.strip_suffix("::{{closure}}") {
        path = stripped;
    }
    let mut name = String::with_capacity(path.len());
    let mut depth = 0usize;
    let mut previous = ' ';
    for char in path.chars() {
        // A `<` right after a name opens its generic arguments; one at the start or after
        // `::` opens a qualified path (`<Client as Api>::get`), which stays.
        if char == '<' && (depth > 0 || previous.is_alphanumeric() || previous == '_') {
            depth += 1;
        } else if char == '>' && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            name.push(char);
        }
        if depth == 0 && char != '>' {
            previous = char;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_path_strips_closures_and_generic_arguments() {
        assert_eq!(
            function_path("app::Client::ticker<u8>::{{closure}}::{{closure}}"),
            "app::Client::ticker"
        );
        assert_eq!(function_path("app::fetch::{{closure}}"), "app::fetch");
        assert_eq!(
            function_path("app::Cache<alloc::string::String, u64>::get<T>::{{closure}}"),
            "app::Cache::get"
        );
        assert_eq!(
            function_path("<app::Client as app::Api<u8>>::get::{{closure}}"),
            "<app::Client as app::Api>::get"
        );
    }
}
