//! simd-json tape parsing with reused buffers.
//!
//! simd-json unescapes in place, so each frame is copied into a scratch buffer (a `memcpy` of a
//! few hundred bytes) padded for its SIMD loads, and parsed into a reused tape. After the largest
//! frame has been seen once, parsing allocates nothing (STACK-NOTES §3: `fill_tape_padded` with a
//! reset tape is the allocation-free path). Decoders walk the tape with [`simd_json::tape::Value`].

use simd_json::tape::{Tape, Value};
use simd_json::{Buffers, INPUT_PADDING};

/// A JSON parser that owns and reuses all of its buffers.
pub struct JsonParser {
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
}

impl JsonParser {
    /// `expected_len` pre-sizes the buffers (they grow on demand).
    pub fn new(expected_len: usize) -> Self {
        Self {
            scratch: Vec::with_capacity(expected_len + INPUT_PADDING),
            buffers: Buffers::new(expected_len),
            tape: Some(Tape(Vec::with_capacity(expected_len / 4 + 16))),
        }
    }

    /// Parses `input` and hands the root value to `f`. The value borrows the parser's buffers, so
    /// everything needed afterwards must be extracted inside `f`.
    #[inline]
    pub fn parse<R>(
        &mut self,
        input: &[u8],
        f: impl FnOnce(Value<'_, '_>) -> R,
    ) -> Result<R, simd_json::Error> {
        let len = input.len();
        self.scratch.clear();
        self.scratch.extend_from_slice(input);
        self.scratch.resize(len + INPUT_PADDING, b' ');
        let mut tape: Tape<'_> = self.tape.take().unwrap_or_else(|| Tape(Vec::new())).reset();
        let res = simd_json::fill_tape_padded(&mut self.scratch, len, &mut self.buffers, &mut tape);
        let out = res.map(|()| f(tape.as_value()));
        self.tape = Some(tape.reset());
        out
    }
}

impl Default for JsonParser {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    #[test]
    fn parses_and_reuses() {
        let mut p = JsonParser::new(16);
        let a = p
            .parse(br#"{"a":"x\ny","b":[1,2]}"#, |v| {
                v.get("a").and_then(|s| s.as_str().map(str::to_owned))
            })
            .unwrap();
        assert_eq!(a.as_deref(), Some("x\ny"));
        let n = p
            .parse(b"[1,2,3]", |v| v.as_array().map(|a| a.len()))
            .unwrap();
        assert_eq!(n, Some(3));
        assert!(p.parse(b"{\"a\":", |_| ()).is_err());
        assert!(p.parse(b"", |_| ()).is_err());
        // Still usable after an error.
        assert_eq!(p.parse(b"7", |v| v.as_u64()).unwrap(), Some(7));
    }
}
