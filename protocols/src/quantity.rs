//! Kubernetes resource quantities (`512Mi`, `1.5Gi`, `250m`, `2`, `1e3`): the one grammar squad
//! has for them. A [`Quantity`] is parsed exactly, to the billionth as the API server holds it,
//! and formatted either the way a person would write it in a manifest ([`fmt::Display`]) or the
//! way the API server serves it ([`Quantity::canonical`]).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// Billionths in a base unit: the finest a quantity is held to (the API server's `n`).
const NANO: i128 = 1_000_000_000;
/// Billionths in a thousandth.
const NANOS_PER_MILLI: i128 = 1_000_000;
const KI: i128 = 1024;

/// Binary suffixes and their sizes in base units, largest first.
const BINARY: [(&str, i128); 6] = [
    ("Ei", KI * KI * KI * KI * KI * KI),
    ("Pi", KI * KI * KI * KI * KI),
    ("Ti", KI * KI * KI * KI),
    ("Gi", KI * KI * KI),
    ("Mi", KI * KI),
    ("Ki", KI),
];

/// Decimal suffixes and their powers of ten, largest first.
const DECIMAL: [(&str, i64); 10] = [
    ("E", 18),
    ("P", 15),
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("", 0),
    ("m", -3),
    ("u", -6),
    ("n", -9),
];

/// How a quantity was written, which decides its canonical form (Kubernetes' `resource.Format`).
///
/// ```
/// use squad_protocols::Quantity;
/// use squad_protocols::quantity::Format;
/// assert_eq!("512Mi".parse::<Quantity>().unwrap().format(), Format::BinarySi);
/// assert_eq!("250m".parse::<Quantity>().unwrap().format(), Format::DecimalSi);
/// assert_eq!("1e3".parse::<Quantity>().unwrap().format(), Format::DecimalExponent);
/// assert_eq!(serde_json::to_string(&Format::BinarySi).unwrap(), "\"binary_si\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A binary suffix, `Ki` to `Ei`: `1536Mi`.
    BinarySi,
    /// A decimal suffix (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or none: `1500m`, `2`.
    DecimalSi,
    /// A decimal exponent: `1e3`, `15E-1`.
    DecimalExponent,
}

/// An exact Kubernetes quantity, held in billionths of the base unit (bytes for memory, cores for
/// CPU), so `250m`, `1.5Gi` and `100n` are all exact, with the [`Format`] it was written in.
///
/// The grammar is Kubernetes': an optional sign, a decimal number (`1`, `1.5`, `.5`, `1.`), and
/// a binary suffix, a decimal suffix or a decimal exponent (`e3`, `E-2`, `e+3`); surrounding
/// whitespace is ignored, as the API server ignores it in JSON. Precision finer than a billionth
/// is rounded up, away from zero, as the API server rounds it. Magnitudes past about 1.7e29 base
/// units (1.5e11 `Ei`) cannot be held to the billionth and do not parse.
///
/// Equality, ordering and hashing compare values only: `1Ki` equals `1024`.
///
/// ```
/// use squad_protocols::Quantity;
/// let q: Quantity = "1.5Gi".parse().unwrap();
/// assert_eq!(q.bytes(), 1536 * 1024 * 1024);
/// assert_eq!(q.to_string(), "1.5Gi");
/// assert_eq!(q.canonical(), "1536Mi");
/// assert_eq!(Quantity::from_bytes(512 * 1024 * 1024).to_string(), "512Mi");
/// assert_eq!("1Ki".parse::<Quantity>().unwrap(), "1024".parse().unwrap());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Quantity {
    pub const fn from_bytes(bytes: u64) -> Self {
        Self {
            nanos: bytes as i128 * NANO,
            format: Format::BinarySi,
        }
    }

    /// A quantity of `milli` thousandths (saturating past about 1.7e32 of them).
    pub const fn from_milli(milli: i128) -> Self {
        Self {
            nanos: milli.saturating_mul(NANOS_PER_MILLI),
            format: Format::DecimalSi,
        }
    }

    pub const fn mebibytes(mib: u64) -> Self {
        Self::from_bytes(mib * 1024 * 1024)
    }

    /// Whole base units, rounded up (a memory quantity in bytes).
    pub fn bytes(&self) -> u64 {
        let whole = self.nanos.div_euclid(NANO) + i128::from(self.nanos.rem_euclid(NANO) != 0);
        u64::try_from(whole.max(0)).unwrap_or(u64::MAX)
    }

    /// Thousandths of the base unit; a finer value is rounded up, away from zero.
    pub fn milli(&self) -> i128 {
        let magnitude = self
            .nanos
            .unsigned_abs()
            .div_ceil(NANOS_PER_MILLI.unsigned_abs());
        let milli = i128::try_from(magnitude).unwrap_or(i128::MAX);
        if self.nanos < 0 { -milli } else { milli }
    }

    /// How it was written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The value in MiB as a float, for display and ratios only.
    pub fn as_mib_f64(&self) -> f64 {
        self.as_f64() / (KI * KI) as f64
    }

    /// Rounds up to the next multiple of `step` (e.g. 256Mi); a zero step leaves it unchanged.
    pub fn round_up_to(&self, step: Quantity) -> Quantity {
        if step.nanos <= 0 {
            return *self;
        }
        let n =
            self.nanos.div_euclid(step.nanos) + i128::from(self.nanos.rem_euclid(step.nanos) != 0);
        Quantity {
            nanos: n * step.nanos,
            format: self.format,
        }
    }

    /// Multiplies by a ratio given as numerator/denominator, in thousandths, rounding up.
    pub fn scale(&self, num: u32, den: u32) -> Quantity {
        let den = i128::from(den.max(1));
        Quantity {
            format: self.format,
            ..Quantity::from_milli((self.milli() * i128::from(num) + den - 1).div_euclid(den))
        }
    }

    /// Ratio of self to other (e.g. observed peak / limit); 0 when other is zero.
    pub fn ratio(&self, other: Quantity) -> f64 {
        if other.nanos == 0 {
            0.0
        } else if self.whole_milli() && other.whole_milli() {
            self.milli() as f64 / other.milli() as f64
        } else {
            self.nanos as f64 / other.nanos as f64
        }
    }

    /// The form the Kubernetes API server serves the quantity in (`resource.Quantity`'s
    /// canonical form): no fractional digits, the largest suffix that keeps the value exact, in
    /// the [`Format`] it was written in.
    ///
    /// - Binary: the largest binary suffix that divides it (`16384Mi` is `16Gi`). Below 1024, or
    ///   not a whole number, it is served decimal (`0.5Ki` is `512`, `0.0015Ki` is `1536m`).
    /// - Decimal: the largest decimal suffix that leaves a whole number (`2000` is `2k`, `0.5`
    ///   is `500m`, `0.0001` is `100u`), `E` at most.
    /// - Exponent: a whole mantissa with the largest exponent that is a multiple of 3 (`1e3`
    ///   stays `1e3`, `1.5e3` is `1500`, `0.5e0` is `500e-3`).
    ///
    /// ```
    /// use squad_protocols::Quantity;
    /// let canonical = |s: &str| s.parse::<Quantity>().unwrap().canonical();
    /// assert_eq!(canonical("16384Mi"), "16Gi");
    /// assert_eq!(canonical("1.5Gi"), "1536Mi");
    /// assert_eq!(canonical("0.5Ki"), "512");
    /// assert_eq!(canonical("1000m"), "1");
    /// assert_eq!(canonical("0.5"), "500m");
    /// assert_eq!(canonical("2000"), "2k");
    /// assert_eq!(canonical("1.5e3"), "1500");
    /// assert_eq!(canonical("-0"), "0");
    /// ```
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".into();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let nanos = self.nanos.unsigned_abs();
        let nano = NANO.unsigned_abs();
        match self.format {
            Format::DecimalExponent => {
                let (mut mantissa, mut exponent) = (nanos, -9i64);
                while mantissa.is_multiple_of(10) {
                    mantissa /= 10;
                    exponent += 1;
                }
                let mut zeros = String::new();
                while exponent % 3 != 0 {
                    zeros.push('0');
                    exponent -= 1;
                }
                match exponent {
                    0 => format!("{sign}{mantissa}{zeros}"),
                    e => format!("{sign}{mantissa}{zeros}e{e}"),
                }
            }
            Format::BinarySi if nanos.is_multiple_of(nano) && nanos / nano >= KI.unsigned_abs() => {
                let units = nanos / nano;
                let (suffix, size) = BINARY
                    .iter()
                    .map(|(suffix, size)| (*suffix, size.unsigned_abs()))
                    .find(|(_, size)| units.is_multiple_of(*size))
                    .unwrap_or(("", 1));
                format!("{sign}{}{suffix}", units / size)
            }
            Format::BinarySi | Format::DecimalSi => {
                let (suffix, size) = DECIMAL
                    .iter()
                    .map(|(suffix, power)| (*suffix, 10u128.pow((power + 9) as u32)))
                    .find(|(_, size)| nanos.is_multiple_of(*size))
                    .unwrap_or(("n", 1));
                format!("{sign}{}{suffix}", nanos / size)
            }
        }
    }

    /// Whether the value is a whole number of thousandths (every quantity squad held before it
    /// held billionths is).
    fn whole_milli(&self) -> bool {
        self.nanos % NANOS_PER_MILLI == 0
    }

    /// The value in base units as a float: from thousandths when it is a whole number of them,
    /// so the float is the one it has always been.
    fn as_f64(&self) -> f64 {
        if self.whole_milli() {
            self.milli() as f64 / 1000.0
        } else {
            self.nanos as f64 / NANO as f64
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

/// Sums and differences keep the left side's format, or take the right side's when the left is
/// zero, as `resource.Quantity` does.
fn result_format(lhs: Quantity, rhs: Quantity) -> Format {
    if lhs.nanos == 0 {
        rhs.format
    } else {
        lhs.format
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos + rhs.nanos,
            format: result_format(self, rhs),
        }
    }
}

impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos - rhs.nanos,
            format: result_format(self, rhs),
        }
    }
}

/// What a suffix multiplies the number by.
enum Multiplier {
    /// `10^power`.
    Decimal(i64),
    /// `2^shift`.
    Binary(u32),
}

/// The format and multiplier a suffix stands for; `None` when it is not one.
fn suffix(s: &str) -> Option<(Format, Multiplier)> {
    if let Some((_, power)) = DECIMAL.iter().find(|(name, _)| *name == s) {
        return Some((Format::DecimalSi, Multiplier::Decimal(*power)));
    }
    if let Some(i) = BINARY.iter().position(|(name, _)| *name == s) {
        let shift = 10 * u32::try_from(BINARY.len() - i).ok()?;
        return Some((Format::BinarySi, Multiplier::Binary(shift)));
    }
    let exponent = s.strip_prefix(['e', 'E'])?;
    let (negative, digits) = match exponent.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, exponent.strip_prefix('+').unwrap_or(exponent)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Beyond i64 an exponent only decides between zero, the smallest quantity and too large.
    let power = digits.parse::<i64>().unwrap_or(i64::MAX);
    let power = if negative { -power } else { power };
    Some((Format::DecimalExponent, Multiplier::Decimal(power)))
}

/// `value × 10^power`, rounded up to a whole number; `None` past `i128`.
fn scaled(value: i128, power: i64) -> Option<i128> {
    if value == 0 {
        return Some(0);
    }
    match u32::try_from(power.unsigned_abs()) {
        Ok(p) if power >= 0 => value.checked_mul(10i128.checked_pow(p)?),
        Ok(p) => match 10i128.checked_pow(p) {
            Some(den) => Some(value / den + i128::from(value % den != 0)),
            // A positive `value` is below 10^39 <= 10^p: less than one, rounded up to one.
            None => Some(1),
        },
        Err(_) if power >= 0 => None,
        Err(_) => Some(1),
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
        let (negative, unsigned) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let split = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix_text) = unsigned.split_at(split);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
            return Err(bad());
        }
        let (format, multiplier) = suffix(suffix_text).ok_or_else(bad)?;
        let too_large = || {
            ProtocolError::invalid(
                "quantity",
                "a Kubernetes quantity below about 1.7e29 base units, with at most 38 significant \
                 digits (it is held exactly, to the billionth)",
                s,
            )
        };
        // The number without its point: `1.50` is 15 with one fractional digit.
        let fraction = fraction.trim_end_matches('0');
        let fraction_digits = i64::try_from(fraction.len()).map_err(|_| too_large())?;
        let digits = format!("{whole}{fraction}");
        let digits = match digits.trim_start_matches('0') {
            "" => 0,
            d => d.parse::<i128>().map_err(|_| too_large())?,
        };
        // In billionths: digits × 10^(9 - fraction digits) × the suffix's multiplier.
        let magnitude = match multiplier {
            Multiplier::Decimal(power) => scaled(
                digits,
                power.saturating_add(9).saturating_sub(fraction_digits),
            ),
            Multiplier::Binary(shift) => digits
                .checked_mul(1 << shift)
                .and_then(|n| scaled(n, 9 - fraction_digits)),
        }
        .ok_or_else(too_large)?;
        Ok(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
            format,
        })
    }
}

impl fmt::Display for Quantity {
    /// Binary suffixes for whole byte counts, with up to two exact decimals (`1.5Gi`),
    /// plain milli units otherwise (`250m`), and `u` or `n` for what is finer (`100n`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.whole_milli() {
            return if self.nanos % 1000 == 0 {
                write!(f, "{}u", self.nanos / 1000)
            } else {
                write!(f, "{}n", self.nanos)
            };
        }
        let milli = self.nanos / NANOS_PER_MILLI;
        if milli % 1000 != 0 {
            return write!(f, "{milli}m");
        }
        let units = milli / 1000;
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

    /// Every form the manifest editor has accepted: a sign, a number with or without a point,
    /// and each suffix or exponent.
    #[test]
    fn parses_every_form_kubernetes_writes() {
        for (written, milli) in [
            ("1", 1000),
            ("+1", 1000),
            ("-1", -1000),
            ("1.", 1000),
            (".5", 500),
            ("007", 7000),
            ("1n", 1),
            ("1u", 1),
            ("1m", 1),
            ("1k", 1_000_000),
            ("1M", 1_000_000_000),
            ("1G", 1_000_000_000_000),
            ("1T", 1_000_000_000_000_000),
            ("1P", 1_000_000_000_000_000_000),
            ("1E", 1_000_000_000_000_000_000_000),
            ("1Ki", 1_024_000),
            ("1Mi", 1_048_576_000),
            ("1Gi", 1_073_741_824_000),
            ("1Ti", 1_099_511_627_776_000),
            ("1Pi", 1_125_899_906_842_624_000),
            ("1Ei", 1_152_921_504_606_846_976_000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1e+3", 1_000_000),
            ("1e-2", 10),
            ("15E-1", 1500),
            ("2.5e2", 250_000),
            ("0e9", 0),
            ("-1.5Gi", -1_610_612_736_000),
            (" 512Mi ", 536_870_912_000),
        ] {
            let q = written.parse::<Quantity>();
            assert_eq!(
                q.as_ref().map(Quantity::milli),
                Ok(milli),
                "{written}: {q:?}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for bad in [
            ".", "-", "+", "--1", "+-1", "1-", "1 Gi", "1e", "1e+", "1e3.5", "1Ki3", "1ki", "1K",
            "1.5.", "e3", "1i", "0x10",
        ] {
            let err = bad.parse::<Quantity>().unwrap_err().to_string();
            assert!(err.contains("512Mi"), "{bad}: {err}");
        }
    }

    #[test]
    fn holds_nano_and_micro_units_exactly() {
        assert_eq!(q("1n").to_string(), "1n");
        assert_eq!(q("250u").to_string(), "250u");
        assert_eq!(q("1500u").to_string(), "1500u");
        assert_eq!(q("0.0000005").to_string(), "500n");
        assert_eq!(q("1e-7").to_string(), "100n");
        assert!(q("1n") < q("1m"));
        assert_eq!(q("1000n"), q("1u"));
        assert_eq!(q("1000000n"), q("1m"));
        // Thousandths and bytes round up, as they did when nothing finer was held.
        assert_eq!(q("1n").milli(), 1);
        assert_eq!(q("-1n").milli(), -1);
        assert_eq!(q("1n").bytes(), 1);
        assert_eq!(q("-1n").bytes(), 0);
        assert_eq!(q("1500001n").scale(1, 1), q("2m"));
    }

    #[test]
    fn rounds_what_is_finer_than_a_billionth_up() {
        assert_eq!(q("0.0000000001"), q("1n"));
        assert_eq!(q("-0.0000000001"), q("-1n"));
        assert_eq!(q("1.0000000001"), q("1000000001n"));
        assert_eq!(q("1e-100"), q("1n"));
        assert_eq!(q("0.0000000001Ki"), q("103n"));
        assert_eq!(q("0e-100").milli(), 0);
        // Trailing zeros are not precision.
        assert_eq!(
            q("0.50000000000000000000000000000000000000000000000000"),
            q("500m")
        );
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        for big in ["1e30", "1e99999999999999999999", "200000000000Ei"] {
            let err = big.parse::<Quantity>().unwrap_err().to_string();
            assert!(err.contains("1.7e29"), "{big}: {err}");
        }
        assert_eq!(q("100000000000Ei").bytes(), u64::MAX);
    }

    #[test]
    fn equality_and_order_compare_values_not_formats() {
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1k"), q("1e3"));
        assert_ne!(q("1Ki").format(), q("1024").format());
        let mut sorted = vec![q("1Gi"), q("-1"), q("1n"), q("512Mi"), q("1e3")];
        sorted.sort();
        assert_eq!(sorted, [q("-1"), q("1n"), q("1e3"), q("512Mi"), q("1Gi")]);
    }

    #[test]
    fn remembers_the_format_it_was_written_in() {
        assert_eq!(q("1Gi").format(), Format::BinarySi);
        assert_eq!(q("1").format(), Format::DecimalSi);
        assert_eq!(q("1E").format(), Format::DecimalSi);
        assert_eq!(q("1E3").format(), Format::DecimalExponent);
        assert_eq!(Quantity::from_bytes(1).format(), Format::BinarySi);
        assert_eq!(Quantity::from_milli(1).format(), Format::DecimalSi);
        assert_eq!((q("0") + q("1Ki")).format(), Format::BinarySi);
        assert_eq!((q("1k") + q("1Ki")).format(), Format::DecimalSi);
        for format in [Format::BinarySi, Format::DecimalSi, Format::DecimalExponent] {
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), format);
        }
    }

    /// The forms the simulated API server serves (`sim`'s world), as a real one does.
    #[test]
    fn canonical_form_is_the_api_servers() {
        for (written, served) in [
            ("16384Mi", "16Gi"),
            ("15564Mi", "15564Mi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1024", "1024"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("0.0015Ki", "1536m"),
            ("1025Ki", "1025Ki"),
            ("1.0009765625Ki", "1025"),
            ("1.5", "1500m"),
            ("3800m", "3800m"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("2000", "2k"),
            ("4", "4"),
            ("110", "110"),
            ("512M", "512M"),
            ("0", "0"),
            ("-0.0", "0"),
            ("0Gi", "0"),
            ("0.0001", "100u"),
            ("0.0000000001", "1n"),
            ("1500000n", "1500u"),
            ("1E", "1E"),
            ("1000E", "1000E"),
            ("1024Ei", "1024Ei"),
            ("+1Gi", "1Gi"),
            ("-1Gi", "-1Gi"),
            ("-1023", "-1023"),
            ("-0.5Ki", "-512"),
            ("-0.5", "-500m"),
            (" 2k ", "2k"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1000e0", "1e3"),
            ("1.5e3", "1500"),
            ("1e-2", "10e-3"),
            ("5e-1", "500e-3"),
            ("1e-12", "1e-9"),
            ("12e6", "12e6"),
            ("-2e3", "-2e3"),
        ] {
            assert_eq!(q(written).canonical(), served, "{written}");
        }
    }

    #[test]
    fn arithmetic_on_billionths_is_exact() {
        assert_eq!(q("1n") + q("1m"), q("1000001n"));
        assert_eq!(q("1m") - q("1n"), q("999999n"));
        assert_eq!(q("5n").round_up_to(q("2n")), q("6n"));
        assert!((q("1n").ratio(q("2n")) - 0.5).abs() < 1e-12);
        assert!((q("1m").ratio(q("4m")) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn finer_quantities_round_trip_through_serde() {
        for text in ["1n", "250u", "-3n", "1e3", "1E"] {
            let v = q(text);
            let s = serde_json::to_string(&v).unwrap();
            assert_eq!(
                serde_json::from_str::<Quantity>(&s).unwrap(),
                v,
                "{text}: {s}"
            );
        }
        assert_eq!(serde_json::from_str::<Quantity>("0.5").unwrap(), q("500m"));
    }
}
