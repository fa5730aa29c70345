//! Integration tests of `reliable` live in `tests/` beside this file; UI tests in `tests/ui/`.
