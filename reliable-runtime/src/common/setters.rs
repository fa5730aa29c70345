//! Chainable setters for configuration structs, so a layer reads as
//! `|breaker| breaker.failure_threshold(3).timeout(Duration::from_secs(10))` in a
//! [`PolicyBuilder`](crate::PolicyBuilder). The configuration types are `#[non_exhaustive]`
//! (a field added later breaks no user), so these setters, with `Default` and the named
//! constructors, are how users build them; the fields stay public to read and to assign.

/// `setters! { Type { field: Type, optional: Option<T> => Some, ... } }` adds one
/// `pub fn field(self, value) -> Self` per field, documented with the field's name.
macro_rules! setters {
    ($type:ty { $($field:ident : $value:ty $(=> $wrap:ident)?),* $(,)? }) => {
        impl $type {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the field).")]
                #[must_use]
                pub fn $field(mut self, value: $value) -> Self {
                    self.$field = $crate::common::setters::setters!(@wrap value $(, $wrap)?);
                    self
                }
            )*
        }
    };
    (@wrap $value:ident) => { $value };
    (@wrap $value:ident, $wrap:ident) => { $wrap($value) };
}

pub(crate) use setters;
