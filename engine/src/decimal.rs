//! Exact fixed-point numbers for prices, quantities and rates.
//!
//! Exchanges send prices and sizes as decimal strings (`"63943.90"`, `"0.000"`). They are parsed
//! digit by digit into an `i64` count of `10^-8` units — never through `f64` — so `"0.1"` is exactly
//! `10_000_000` and equality between a rebuilt book and the exchange's own quote is exact.
//! Eight decimals cover every Binance USD-M and Bybit linear tick and step size (the finest seen are
//! `1e-8`), and `i64` leaves room for `9.2e10` whole units, far above any price or per-level size.

use std::fmt;

/// Number of fractional decimal digits carried by [`Price`] and [`Qty`].
pub const FIXED_DECIMALS: u32 = 8;
/// `10^FIXED_DECIMALS`: the integer value of `1` in fixed-point units.
pub const FIXED_SCALE: i64 = 100_000_000;

/// Why a decimal string could not be turned into a fixed-point number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("empty decimal string")]
    Empty,
    #[error("invalid character in decimal string")]
    InvalidChar,
    #[error("more than {FIXED_DECIMALS} significant fractional digits")]
    TooPrecise,
    #[error("decimal value out of range")]
    Overflow,
}

/// Parses an ASCII decimal (`-12.345`, `0.000`, `7`, `1e-5` is rejected) into `10^-8` units.
///
/// Trailing fractional zeros beyond eight digits are accepted (`"4096.0000000000"`); a non-zero digit
/// beyond the eighth is an error rather than a silent rounding.
#[inline]
pub fn parse_fixed(s: &[u8]) -> Result<i64, DecimalError> {
    let (neg, digits) = match s.first() {
        None => return Err(DecimalError::Empty),
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        Some(_) => (false, s),
    };
    if digits.is_empty() {
        return Err(DecimalError::Empty);
    }
    let mut int_part: i64 = 0;
    let mut i = 0;
    let mut saw_digit = false;
    while i < digits.len() {
        let c = digits[i];
        if c == b'.' {
            break;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err(DecimalError::InvalidChar);
        }
        saw_digit = true;
        int_part = int_part
            .checked_mul(10)
            .and_then(|v| v.checked_add(d as i64))
            .ok_or(DecimalError::Overflow)?;
        i += 1;
    }
    let mut frac: i64 = 0;
    let mut frac_digits = 0u32;
    if i < digits.len() {
        // skip '.'
        i += 1;
        while i < digits.len() {
            let d = digits[i].wrapping_sub(b'0');
            if d > 9 {
                return Err(DecimalError::InvalidChar);
            }
            saw_digit = true;
            if frac_digits < FIXED_DECIMALS {
                frac = frac * 10 + d as i64;
                frac_digits += 1;
            } else if d != 0 {
                return Err(DecimalError::TooPrecise);
            }
            i += 1;
        }
    }
    if !saw_digit {
        return Err(DecimalError::InvalidChar);
    }
    frac *= POW10[(FIXED_DECIMALS - frac_digits) as usize];
    let v = int_part
        .checked_mul(FIXED_SCALE)
        .and_then(|v| v.checked_add(frac))
        .ok_or(DecimalError::Overflow)?;
    Ok(if neg { -v } else { v })
}

const POW10: [i64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Writes a fixed-point value as a plain decimal with trailing zeros trimmed (at least one decimal
/// is never forced: `1.5`, `2`, `-0.001`).
fn fmt_fixed(v: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let neg = v < 0;
    let a = v.unsigned_abs();
    let int = a / FIXED_SCALE as u64;
    let mut frac = a % FIXED_SCALE as u64;
    if neg {
        f.write_str("-")?;
    }
    write!(f, "{int}")?;
    if frac != 0 {
        let mut width = FIXED_DECIMALS as usize;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        write!(f, ".{frac:0width$}")?;
    }
    Ok(())
}

macro_rules! fixed_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(
            Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
        )]
        #[rkyv(derive(Debug, PartialEq))]
        #[repr(transparent)]
        pub struct $name(pub i64);

        impl $name {
            pub const ZERO: Self = Self(0);

            /// Parses an exchange decimal string exactly (see [`parse_fixed`]).
            #[inline]
            pub fn parse(s: &str) -> Result<Self, DecimalError> {
                parse_fixed(s.as_bytes()).map(Self)
            }

            /// The raw count of `10^-8` units.
            #[inline]
            pub const fn raw(self) -> i64 {
                self.0
            }

            /// From a whole number of units (test and config convenience).
            pub const fn from_units(units: i64) -> Self {
                Self(units * FIXED_SCALE)
            }

            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            /// Lossy conversion for features and models only — never for accounting.
            #[inline]
            pub fn to_f64(self) -> f64 {
                self.0 as f64 / FIXED_SCALE as f64
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_fixed(self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DecimalError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

fixed_type!(
    /// An exact price in `10^-8` quote units.
    Price
);
fixed_type!(
    /// An exact quantity (base units, or a rate/ratio where noted) in `10^-8` units.
    Qty
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exchange_strings_exactly() {
        assert_eq!(Price::parse("63943.90").unwrap().raw(), 6_394_390_000_000);
        assert_eq!(Qty::parse("0.000").unwrap(), Qty::ZERO);
        assert_eq!(Qty::parse("569.567").unwrap().raw(), 56_956_700_000);
        assert_eq!(
            Price::parse("4096.00000000").unwrap(),
            Price::from_units(4096)
        );
        assert_eq!(
            Price::parse("4096.0000000000").unwrap(),
            Price::from_units(4096)
        );
        assert_eq!(Qty::parse("0.00002754").unwrap().raw(), 2754);
        assert_eq!(Qty::parse("-0.5").unwrap().raw(), -50_000_000);
        assert_eq!(Qty::parse("7").unwrap().raw(), 700_000_000);
        assert_eq!(Qty::parse(".5").unwrap().raw(), 50_000_000);
        assert_eq!(Qty::parse("5.").unwrap().raw(), 500_000_000);
    }

    #[test]
    fn rejects_what_it_cannot_represent() {
        assert_eq!(Price::parse(""), Err(DecimalError::Empty));
        assert_eq!(Price::parse("-"), Err(DecimalError::Empty));
        assert_eq!(Price::parse("."), Err(DecimalError::InvalidChar));
        assert_eq!(Price::parse("1e5"), Err(DecimalError::InvalidChar));
        assert_eq!(Price::parse("1.2.3"), Err(DecimalError::InvalidChar));
        assert_eq!(Price::parse("0.000000001"), Err(DecimalError::TooPrecise));
        assert_eq!(
            Price::parse("99999999999999999999"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            Price::parse("92233720368.54775808"),
            Err(DecimalError::Overflow)
        );
        assert_eq!(Price::parse("NaN"), Err(DecimalError::InvalidChar));
    }

    #[test]
    fn displays_round_trip() {
        for s in [
            "63943.9",
            "0",
            "0.00002754",
            "-12.5",
            "1000",
            "92233720368.54775807",
        ] {
            let p = Price::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(Price::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn ordering_is_numeric() {
        let a = Price::parse("9.99").unwrap();
        let b = Price::parse("10.0").unwrap();
        assert!(a < b);
    }
}
