//! Compile-time behaviour: every supported fn shape compiles, every misuse is an error at the
//! offending token with a message that names the fix. `TRYBUILD=overwrite` regenerates the
//! `.stderr` snapshots; review them as the messages users will read.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
