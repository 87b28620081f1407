//! Kubernetes resource quantities (`512Mi`, `1.5Gi`, `250m`, `2`), parsed exactly and formatted
//! the way a person would write them in a manifest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

const KI: i128 = 1024;
const BINARY: [(&str, i128); 6] = [
    ("Ei", KI * KI * KI * KI * KI * KI),
    ("Pi", KI * KI * KI * KI * KI),
    ("Ti", KI * KI * KI * KI),
    ("Gi", KI * KI * KI),
    ("Mi", KI * KI),
    ("Ki", KI),
];
const DECIMAL: [(&str, i128); 6] = [
    ("E", 1_000_000_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("k", 1_000),
];

/// An exact Kubernetes quantity, held in thousandths of the base unit (bytes for memory,
/// cores for CPU), so `250m` and `1.5Gi` are both exact.
///
/// ```
/// use squad_protocols::Quantity;
/// let q: Quantity = "1.5Gi".parse().unwrap();
/// assert_eq!(q.bytes(), 1536 * 1024 * 1024);
/// assert_eq!(q.to_string(), "1.5Gi");
/// assert_eq!(Quantity::from_bytes(512 * 1024 * 1024).to_string(), "512Mi");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    milli: i128,
}

impl Quantity {
    pub const fn from_bytes(bytes: u64) -> Self {
        Self {
            milli: bytes as i128 * 1000,
        }
    }

    pub const fn from_milli(milli: i128) -> Self {
        Self { milli }
    }

    pub const fn mebibytes(mib: u64) -> Self {
        Self::from_bytes(mib * 1024 * 1024)
    }

    /// Whole base units, rounded up (a memory quantity in bytes).
    pub fn bytes(&self) -> u64 {
        let whole = (self.milli + 999).div_euclid(1000);
        u64::try_from(whole.max(0)).unwrap_or(u64::MAX)
    }

    pub fn milli(&self) -> i128 {
        self.milli
    }

    /// The value in MiB as a float, for display and ratios only.
    pub fn as_mib_f64(&self) -> f64 {
        self.milli as f64 / 1000.0 / (KI * KI) as f64
    }

    /// Rounds up to the next multiple of `step` (e.g. 256Mi); a zero step leaves it unchanged.
    pub fn round_up_to(&self, step: Quantity) -> Quantity {
        if step.milli <= 0 {
            return *self;
        }
        let n = (self.milli + step.milli - 1).div_euclid(step.milli);
        Quantity {
            milli: n * step.milli,
        }
    }

    /// Multiplies by a ratio given as numerator/denominator, rounding up.
    pub fn scale(&self, num: u32, den: u32) -> Quantity {
        let den = i128::from(den.max(1));
        Quantity {
            milli: (self.milli * i128::from(num) + den - 1).div_euclid(den),
        }
    }

    /// Ratio of self to other (e.g. observed peak / limit); 0 when other is zero.
    pub fn ratio(&self, other: Quantity) -> f64 {
        if other.milli == 0 {
            0.0
        } else {
            self.milli as f64 / other.milli as f64
        }
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity {
            milli: self.milli + rhs.milli,
        }
    }
}

impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(self, rhs: Quantity) -> Quantity {
        Quantity {
            milli: self.milli - rhs.milli,
        }
    }
}

impl FromStr for Quantity {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ProtocolError::invalid(
                "quantity",
                "a Kubernetes quantity such as 512Mi, 1.5Gi, 250m or 2",
                s,
            )
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(t.len());
        let (num, suffix) = t.split_at(split);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let negative = num.starts_with('-');
        let num = num.trim_start_matches(['+', '-']);
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if !int_part.chars().all(|c| c.is_ascii_digit())
            || !frac_part.chars().all(|c| c.is_ascii_digit())
            || frac_part.len() > 9
        {
            return Err(bad());
        }
        // value = digits / 10^frac_len, exactly, as a rational with a power-of-ten denominator.
        let digits: i128 = format!("{int_part}{frac_part}")
            .parse()
            .map_err(|_| bad())?;
        let den: i128 = 10i128.pow(frac_part.len() as u32);
        let multiplier_milli: (i128, i128) = match suffix {
            "" => (1000, 1),
            "m" => (1, 1),
            "u" => (1, 1000),
            "n" => (1, 1_000_000),
            s if s.starts_with(['e', 'E']) => {
                let exp: u32 = s[1..].parse().map_err(|_| bad())?;
                (1000 * 10i128.checked_pow(exp).ok_or_else(bad)?, 1)
            }
            s => BINARY
                .iter()
                .chain(DECIMAL.iter())
                .find(|(name, _)| *name == s)
                .map(|(_, m)| (m * 1000, 1))
                .ok_or_else(bad)?,
        };
        let numerator = digits.checked_mul(multiplier_milli.0).ok_or_else(bad)?;
        let denominator = den * multiplier_milli.1;
        // Kubernetes rounds sub-milli precision up.
        let milli = (numerator + denominator - 1).div_euclid(denominator);
        Ok(Quantity {
            milli: if negative { -milli } else { milli },
        })
    }
}

impl fmt::Display for Quantity {
    /// Binary suffixes for whole byte counts, with up to two exact decimals (`1.5Gi`),
    /// plain milli units otherwise (`250m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.milli % 1000 != 0 {
            return write!(f, "{}m", self.milli);
        }
        let units = self.milli / 1000;
        if units == 0 {
            return write!(f, "0");
        }
        for (name, size) in BINARY {
            if units.abs() >= size {
                let hundredths = units * 100 / size;
                if hundredths * size == units * 100 {
                    let whole = hundredths / 100;
                    let frac = (hundredths % 100).abs();
                    return match frac {
                        0 => write!(f, "{whole}{name}"),
                        f10 if f10 % 10 == 0 => write!(f, "{whole}.{}{name}", f10 / 10),
                        f100 => write!(f, "{whole}.{f100:02}{name}"),
                    };
                }
            }
        }
        write!(f, "{units}")
    }
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(f64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::N(n) => n.to_string().parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn parses_binary_decimal_and_milli_suffixes() {
        assert_eq!(q("512Mi").bytes(), 512 * 1024 * 1024);
        assert_eq!(q("1.24Gi").bytes(), 1_331_439_862); // rounded up to a whole byte
        assert_eq!(q("1G").bytes(), 1_000_000_000);
        assert_eq!(q("250m").milli(), 250);
        assert_eq!(q("2").milli(), 2000);
        assert_eq!(q("1e3").milli(), 1_000_000);
        assert_eq!(q("0.5").milli(), 500);
    }

    #[test]
    fn rejects_garbage_with_a_clear_error() {
        for bad in ["", "Mi", "12XB", "1.2.3Gi", "abc"] {
            let err = bad.parse::<Quantity>().unwrap_err().to_string();
            assert!(err.contains("quantity"), "{err}");
            assert!(err.contains("512Mi"), "{err}");
        }
    }

    #[test]
    fn formats_like_a_person_writes_manifests() {
        assert_eq!(q("1536Mi").to_string(), "1.5Gi");
        assert_eq!(q("512Mi").to_string(), "512Mi");
        assert_eq!(q("1Gi").to_string(), "1Gi");
        assert_eq!(q("1.25Gi").to_string(), "1.25Gi");
        assert_eq!(q("100m").to_string(), "100m");
        assert_eq!(q("1000").to_string(), "1000");
    }

    #[test]
    fn rounds_up_to_a_step_and_scales() {
        let step = q("256Mi");
        assert_eq!(q("1523Mi").round_up_to(step), q("1.5Gi"));
        assert_eq!(q("1536Mi").round_up_to(step), q("1.5Gi"));
        assert_eq!(q("1000Mi").scale(6, 5), q("1200Mi"));
        assert!((q("1Gi").ratio(q("512Mi")) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn round_trips_through_serde() {
        let v = q("1.5Gi");
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(s, "\"1.5Gi\"");
        assert_eq!(serde_json::from_str::<Quantity>(&s).unwrap(), v);
    }
}
