#![no_main]
// The `capture` target of qalpha_tools::fuzz (see tools/src/fuzz.rs for what must hold).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qalpha_tools::fuzz::run_target("capture", data);
});
