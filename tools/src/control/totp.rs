//! RFC 6238 TOTP (HMAC-SHA-1, 30 s steps) and RFC 4648 base32, for the control API's `X-TOTP`.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP_S: u64 = 30;

/// Decodes RFC 4648 base32 (upper or lower case, `=` padding and spaces ignored).
pub fn base32_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 5 / 8));
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.bytes().filter(|c| !matches!(c, b'=' | b' ' | b'-')) {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())? as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// HOTP (RFC 4226) of `counter` with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off]) & 0x7f) << 24
        | u32::from(h[off + 1]) << 16
        | u32::from(h[off + 2]) << 8
        | u32::from(h[off + 3]);
    bin % 10u32.pow(digits)
}

/// The TOTP code at Unix time `t_s`.
pub fn totp(secret: &[u8], t_s: u64, digits: u32) -> u32 {
    hotp(secret, t_s / STEP_S, digits)
}

/// The step a 6-digit `code` is valid for at `t_s`, allowing one step of clock skew either way;
/// `None` if it is not a valid code now.
pub fn verify(secret: &[u8], code: &str, t_s: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let step = t_s / STEP_S;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| hotp(secret, *s, 6) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, 8 digits.
        let k = b"12345678901234567890";
        for (t, want) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(totp(k, t, 8), want, "t = {t}");
        }
        // RFC 4226 appendix D, HOTP 6 digits.
        assert_eq!(hotp(k, 0, 6), 755224);
        assert_eq!(hotp(k, 9, 6), 520489);
    }

    #[test]
    fn base32_and_verify_window() {
        // "12345678901234567890" in base32.
        let k = base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(k.as_slice(), b"12345678901234567890");
        assert_eq!(
            base32_decode("gezd gnbv gy3t qojq").unwrap().as_slice(),
            b"1234567890"
        );
        assert!(base32_decode("not base32!").is_none());
        let t = 1_800_000_000;
        let now = format!("{:06}", totp(&k, t, 6));
        assert_eq!(verify(&k, &now, t), Some(t / STEP_S));
        let prev = format!("{:06}", totp(&k, t - STEP_S, 6));
        assert_eq!(verify(&k, &prev, t), Some(t / STEP_S - 1));
        let old = format!("{:06}", totp(&k, t - 3 * STEP_S, 6));
        assert_eq!(verify(&k, &old, t), None);
        assert_eq!(verify(&k, "12345", t), None);
        assert_eq!(verify(&k, "abcdef", t), None);
    }
}
