//! The simulated Prometheus's query engine: evaluates a subset of PromQL over a
//! [`SeriesSource`], for the query API in [`super::prom_api`].
//!
//! The source is continuous (any instant can be computed), so there is no scraping, staleness
//! or lookback: a vector selector sees the points at exactly `t`. Range functions read the
//! source as if scraped every [`SAMPLE_INTERVAL`]:
//!
//! - `rate`, `increase`: `(v(t) - v(t - range))`, per second for `rate`. A counter lower at `t`
//!   than at `t - range` was reset and counts `v(t)`; so does one that did not exist yet at
//!   `t - range` (it started from zero within the range).
//! - `irate`: the same over the last sample interval; nothing when the range holds one sample.
//! - `max_over_time`, `min_over_time`, `avg_over_time`: over samples at `t`, `t - 60s`, ...
//!   within `(t - range, t]`.
//!
//! Also supported: vector selectors with `=`, `!=`, `=~`, `!~` (regexes fully anchored), number
//! literals, unary minus, `sum`/`max`/`min`/`avg`/`count` with `by`/`without`, and `+ - * / % ^`
//! between scalars and vectors and between two vectors matched one-to-one on all labels but
//! `__name__`. Functions, aggregations and arithmetic drop the metric name, as Prometheus does.
//! Anything else (offset, @, subqueries, comparisons, `on`/`group_left`, other functions) is
//! an error starting with "unsupported in the simulated Prometheus".

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use promql_parser::label::METRIC_NAME;
use promql_parser::parser::token::{self, TokenId};
use promql_parser::parser::{
    AggregateExpr, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    VectorMatchCardinality, VectorSelector,
};

use super::series::{Labels, Point, SeriesSource};

/// How often range functions sample the source: one simulated scrape interval.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(60);

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub enum InstantValue {
    Scalar(f64),
    /// Series sorted by labels.
    Vector(Vec<(Labels, f64)>),
}

/// Evaluates `expr` at `t`, keeping scalars and vectors apart (the API reports them as
/// different result types).
pub fn evaluate(
    source: &dyn SeriesSource,
    expr: &str,
    t: DateTime<Utc>,
) -> Result<InstantValue, String> {
    let ast = parse(expr)?;
    Ok(match Evaluator::new(source).eval(&ast, t)? {
        Value::Scalar(v) => InstantValue::Scalar(v),
        Value::Vector(v) => InstantValue::Vector(v.into_iter().collect()),
    })
}

/// Evaluates `expr` at `t`. A scalar comes back as one entry with empty labels.
pub fn instant(
    source: &dyn SeriesSource,
    expr: &str,
    t: DateTime<Utc>,
) -> Result<Vec<(Labels, f64)>, String> {
    Ok(match evaluate(source, expr, t)? {
        InstantValue::Scalar(v) => vec![(Labels::new(), v)],
        InstantValue::Vector(v) => v,
    })
}

/// One series' values over a range query, in time order.
pub type SeriesValues = Vec<(DateTime<Utc>, f64)>;

/// Evaluates `expr` at `start`, `start + step`, ... up to `end` inclusive, and groups the
/// values by series (sorted by labels). A scalar expression is one series with empty labels.
pub fn range(
    source: &dyn SeriesSource,
    expr: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) -> Result<Vec<(Labels, SeriesValues)>, String> {
    let step = TimeDelta::from_std(step)
        .ok()
        .filter(|s| *s > TimeDelta::zero())
        .ok_or_else(|| format!("invalid step {step:?}: it must be positive"))?;
    if end < start {
        return Err("end timestamp must not be before start time".into());
    }
    let ast = parse(expr)?;
    let evaluator = Evaluator::new(source);
    let mut series: BTreeMap<Labels, SeriesValues> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        evaluator.forget_before(t);
        match evaluator.eval(&ast, t)? {
            Value::Scalar(v) => series.entry(Labels::new()).or_default().push((t, v)),
            Value::Vector(vector) => {
                for (labels, v) in vector {
                    series.entry(labels).or_default().push((t, v));
                }
            }
        }
        match t.checked_add_signed(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    Ok(series.into_iter().collect())
}

fn parse(expr: &str) -> Result<Expr, String> {
    promql_parser::parser::parse(expr).map_err(|e| format!("parse error: {e}"))
}

fn unsupported(what: impl std::fmt::Display) -> String {
    format!("unsupported in the simulated Prometheus: {what}")
}

/// An instant vector: unique label sets, sorted.
type Vector = BTreeMap<Labels, f64>;

enum Value {
    Scalar(f64),
    Vector(Vector),
}

struct Evaluator<'a> {
    source: &'a dyn SeriesSource,
    /// The source's points by instant: range functions, and successive steps of a range query,
    /// read the same instants again and again.
    cache: RefCell<BTreeMap<DateTime<Utc>, Rc<Vec<Point>>>>,
    /// The longest range a matrix selector looked back, to know which cached instants no later
    /// step will read.
    lookback: Cell<TimeDelta>,
}

impl<'a> Evaluator<'a> {
    fn new(source: &'a dyn SeriesSource) -> Self {
        Self {
            source,
            cache: RefCell::default(),
            lookback: Cell::new(TimeDelta::zero()),
        }
    }

    /// Drops cached instants older than any evaluation at `t` or later can read.
    fn forget_before(&self, t: DateTime<Utc>) {
        let Some(cutoff) = t.checked_sub_signed(self.lookback.get()) else {
            return;
        };
        let mut cache = self.cache.borrow_mut();
        let kept = cache.split_off(&cutoff);
        *cache = kept;
    }

    fn points(&self, t: DateTime<Utc>) -> Rc<Vec<Point>> {
        if let Some(points) = self.cache.borrow().get(&t) {
            return Rc::clone(points);
        }
        let points = Rc::new(self.source.points_at(t));
        self.cache.borrow_mut().insert(t, Rc::clone(&points));
        points
    }

    fn eval(&self, expr: &Expr, t: DateTime<Utc>) -> Result<Value, String> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.select(vs, t)?)),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(vector) => {
                    unique_without_names(vector.into_iter().map(|(l, v)| (l, -v)))
                        .map(Value::Vector)
                }
            },
            Expr::Call(call) => self.call(call, t).map(Value::Vector),
            Expr::Aggregate(agg) => self.aggregate(agg, t).map(Value::Vector),
            Expr::Binary(bin) => self.binary(bin, t),
            Expr::MatrixSelector(ms) => Err(unsupported(format!(
                "a range vector ({ms}) outside rate, irate, increase and *_over_time"
            ))),
            Expr::Subquery(sq) => Err(unsupported(format!("subqueries ({sq})"))),
            Expr::StringLiteral(s) => Err(unsupported(format!("string literals ({s})"))),
            Expr::Extension(_) => Err(unsupported("extension expressions")),
        }
    }

    /// The series the selector matches at `t`, metric names kept.
    fn select(&self, vs: &VectorSelector, t: DateTime<Utc>) -> Result<Vector, String> {
        if vs.offset.is_some() {
            return Err(unsupported(format!("the offset modifier ({vs})")));
        }
        if vs.at.is_some() {
            return Err(unsupported(format!("the @ modifier ({vs})")));
        }
        Ok(self
            .points(t)
            .iter()
            .filter(|p| selects(vs, &p.labels))
            .map(|p| (p.labels.clone(), p.value))
            .collect())
    }

    fn call(&self, call: &Call, t: DateTime<Utc>) -> Result<Vector, String> {
        let name = call.func.name;
        let function = match name {
            "rate" => RangeFunction::Rate,
            "irate" => RangeFunction::Irate,
            "increase" => RangeFunction::Increase,
            "max_over_time" => RangeFunction::MaxOverTime,
            "min_over_time" => RangeFunction::MinOverTime,
            "avg_over_time" => RangeFunction::AvgOverTime,
            _ => return Err(unsupported(format!("the function {name}()"))),
        };
        let ms = match call.args.args.as_slice() {
            [arg] => match arg.as_ref() {
                Expr::MatrixSelector(ms) => ms,
                Expr::Subquery(sq) => return Err(unsupported(format!("subqueries ({sq})"))),
                other => {
                    return Err(format!(
                        "{name}() expects a range vector selector like metric[5m], got {other}"
                    ));
                }
            },
            args => {
                return Err(format!("{name}() expects one argument, got {}", args.len()));
            }
        };
        self.range_function(function, ms, t)
    }

    fn range_function(
        &self,
        function: RangeFunction,
        ms: &MatrixSelector,
        t: DateTime<Utc>,
    ) -> Result<Vector, String> {
        let range = TimeDelta::from_std(ms.range)
            .ok()
            .filter(|r| *r > TimeDelta::zero())
            .ok_or_else(|| format!("invalid range in {ms}"))?;
        if range > self.lookback.get() {
            self.lookback.set(range);
        }
        let range_secs = ms.range.as_secs_f64();
        let interval = TimeDelta::seconds(SAMPLE_INTERVAL.as_secs() as i64);
        let before = |d: TimeDelta| {
            t.checked_sub_signed(d)
                .ok_or_else(|| format!("{ms} reaches before the earliest representable time"))
        };
        match function {
            RangeFunction::Rate | RangeFunction::Increase | RangeFunction::Irate => {
                let (earlier_at, per) = match function {
                    RangeFunction::Irate if interval >= range => return Ok(Vector::new()),
                    RangeFunction::Irate => {
                        (before(interval)?, Some(SAMPLE_INTERVAL.as_secs_f64()))
                    }
                    RangeFunction::Rate => (before(range)?, Some(range_secs)),
                    _ => (before(range)?, None),
                };
                let now = self.select(&ms.vs, t)?;
                let earlier = self.select(&ms.vs, earlier_at)?;
                let mut out = Vec::with_capacity(now.len());
                for (labels, v) in now {
                    let increase = match (earlier.get(&labels), function) {
                        (Some(&v0), _) if v >= v0 => v - v0,
                        // Lower than before: the counter was reset.
                        (Some(_), _) => v,
                        // irate needs two samples.
                        (None, RangeFunction::Irate) => continue,
                        // Created since: counted from zero.
                        (None, _) => v,
                    };
                    out.push((labels, per.map_or(increase, |secs| increase / secs)));
                }
                unique_without_names(out)
            }
            RangeFunction::MaxOverTime
            | RangeFunction::MinOverTime
            | RangeFunction::AvgOverTime => {
                let mut acc: BTreeMap<Labels, Accumulator> = BTreeMap::new();
                let mut offset = TimeDelta::zero();
                while offset < range {
                    for (labels, v) in self.select(&ms.vs, before(offset)?)? {
                        acc.entry(labels)
                            .and_modify(|a| a.add(v))
                            .or_insert_with(|| Accumulator::new(v));
                    }
                    offset += interval;
                }
                unique_without_names(acc.into_iter().map(|(labels, a)| {
                    let v = match function {
                        RangeFunction::MaxOverTime => a.max,
                        RangeFunction::MinOverTime => a.min,
                        _ => a.avg(),
                    };
                    (labels, v)
                }))
            }
        }
    }

    fn aggregate(&self, agg: &AggregateExpr, t: DateTime<Utc>) -> Result<Vector, String> {
        let op: TokenId = agg.op.id();
        let supported = [
            token::T_SUM,
            token::T_MAX,
            token::T_MIN,
            token::T_AVG,
            token::T_COUNT,
        ];
        if !supported.contains(&op) || agg.param.is_some() {
            return Err(unsupported(format!("the aggregation {}", agg.op)));
        }
        let input = match self.eval(&agg.expr, t)? {
            Value::Vector(v) => v,
            Value::Scalar(_) => {
                return Err(format!(
                    "expected an instant vector in {} aggregation, got a scalar",
                    agg.op
                ));
            }
        };
        let mut groups: BTreeMap<Labels, Accumulator> = BTreeMap::new();
        for (labels, v) in input {
            groups
                .entry(group_labels(&labels, agg.modifier.as_ref()))
                .and_modify(|a| a.add(v))
                .or_insert_with(|| Accumulator::new(v));
        }
        Ok(groups
            .into_iter()
            .map(|(labels, a)| {
                let v = match op {
                    token::T_SUM => a.sum,
                    token::T_MAX => a.max,
                    token::T_MIN => a.min,
                    token::T_AVG => a.avg(),
                    _ => a.count as f64,
                };
                (labels, v)
            })
            .collect())
    }

    fn binary(&self, bin: &BinaryExpr, t: DateTime<Utc>) -> Result<Value, String> {
        let op = Arithmetic::from_token(bin.op.id())
            .ok_or_else(|| unsupported(format!("the binary operator {}", bin.op)))?;
        if let Some(modifier) = &bin.modifier
            && !is_plain(modifier)
        {
            return Err(unsupported(format!(
                "vector matching modifiers (bool, on, ignoring, group_left, group_right, fill) in {bin}"
            )));
        }
        let lhs = self.eval(&bin.lhs, t)?;
        let rhs = self.eval(&bin.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(a), Value::Scalar(b)) => Ok(Value::Scalar(op.apply(a, b))),
            (Value::Vector(l), Value::Scalar(b)) => {
                unique_without_names(l.into_iter().map(|(labels, a)| (labels, op.apply(a, b))))
                    .map(Value::Vector)
            }
            (Value::Scalar(a), Value::Vector(r)) => {
                unique_without_names(r.into_iter().map(|(labels, b)| (labels, op.apply(a, b))))
                    .map(Value::Vector)
            }
            (Value::Vector(l), Value::Vector(r)) => {
                let mut right = Vector::new();
                for (labels, v) in r {
                    let signature = without_name(labels);
                    if right.contains_key(&signature) {
                        return Err(format!(
                            "found duplicate series for the match group {} on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                            display_labels(&signature)
                        ));
                    }
                    right.insert(signature, v);
                }
                let mut out = Vector::new();
                for (labels, a) in l {
                    let signature = without_name(labels);
                    let Some(&b) = right.get(&signature) else {
                        continue;
                    };
                    if out.contains_key(&signature) {
                        return Err(format!(
                            "multiple matches for labels {}: many-to-one matching must be explicit (group_left/group_right)",
                            display_labels(&signature)
                        ));
                    }
                    out.insert(signature, op.apply(a, b));
                }
                Ok(Value::Vector(out))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeFunction {
    Rate,
    Irate,
    Increase,
    MaxOverTime,
    MinOverTime,
    AvgOverTime,
}

#[derive(Debug, Clone, Copy)]
enum Arithmetic {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl Arithmetic {
    fn from_token(id: TokenId) -> Option<Self> {
        Some(match id {
            token::T_ADD => Self::Add,
            token::T_SUB => Self::Sub,
            token::T_MUL => Self::Mul,
            token::T_DIV => Self::Div,
            token::T_MOD => Self::Mod,
            token::T_POW => Self::Pow,
            _ => return None,
        })
    }

    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Self::Add => a + b,
            Self::Sub => a - b,
            Self::Mul => a * b,
            Self::Div => a / b,
            // Rust's % on floats is fmod, like Go's math.Mod that Prometheus uses.
            Self::Mod => a % b,
            Self::Pow => a.powf(b),
        }
    }
}

/// sum, min, max, count and mean of a set of values; NaN loses to any number in min and max,
/// as in Prometheus.
struct Accumulator {
    sum: f64,
    min: f64,
    max: f64,
    count: usize,
}

impl Accumulator {
    fn new(v: f64) -> Self {
        Self {
            sum: v,
            min: v,
            max: v,
            count: 1,
        }
    }

    fn add(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
        if v < self.min || self.min.is_nan() {
            self.min = v;
        }
        if v > self.max || self.max.is_nan() {
            self.max = v;
        }
    }

    fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Whether a binary expression's modifier asks for nothing beyond plain one-to-one matching.
fn is_plain(modifier: &BinModifier) -> bool {
    !modifier.return_bool
        && modifier.card == VectorMatchCardinality::OneToOne
        && modifier.fill_values.lhs.is_none()
        && modifier.fill_values.rhs.is_none()
        && modifier
            .matching
            .as_ref()
            .is_none_or(|m| matches!(m, LabelModifier::Exclude(l) if l.is_empty()))
}

/// Whether a series' labels satisfy the selector. A missing label matches as the empty
/// string, as in Prometheus.
fn selects(vs: &VectorSelector, labels: &Labels) -> bool {
    let value = |name: &str| labels.get(name).map_or("", String::as_str);
    if let Some(name) = &vs.name
        && value(METRIC_NAME) != name
    {
        return false;
    }
    let matchers = &vs.matchers;
    matchers.matchers.iter().all(|m| m.is_match(value(&m.name)))
        && (matchers.or_matchers.is_empty()
            || matchers
                .or_matchers
                .iter()
                .any(|group| group.iter().all(|m| m.is_match(value(&m.name)))))
}

/// The labels an aggregation groups a series under.
fn group_labels(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::new(),
        Some(LabelModifier::Include(by)) => labels
            .iter()
            .filter(|(name, _)| by.labels.contains(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(without)) => labels
            .iter()
            .filter(|(name, _)| *name != METRIC_NAME && !without.labels.contains(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn without_name(mut labels: Labels) -> Labels {
    labels.remove(METRIC_NAME);
    labels
}

/// Drops metric names; two series left with the same labels is an error, as in Prometheus.
fn unique_without_names(
    entries: impl IntoIterator<Item = (Labels, f64)>,
) -> Result<Vector, String> {
    let mut out = Vector::new();
    for (labels, v) in entries {
        let labels = without_name(labels);
        if out.contains_key(&labels) {
            return Err(format!(
                "vector cannot contain metrics with the same labelset {}",
                display_labels(&labels)
            ));
        }
        out.insert(labels, v);
    }
    Ok(out)
}

fn display_labels(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name}={value:?}");
    }
    out.push('}');
    out
}

/// A small series source for tests of the evaluator and the API.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::super::series::{Labels, Point, SeriesKind, SeriesSource};

    /// `now` is 10:00 on 2024-01-01; `s(t)` is seconds since midnight.
    ///
    /// - `mem_bytes{namespace="shop", pod="api-1", container="app"}` = 100 + s/60 (gauge)
    /// - `mem_bytes{namespace="shop", pod="api-2", container="app"}` = 50
    /// - `mem_bytes{namespace="other", pod="db-0", container="db"}` = 10
    /// - `http_requests_total{namespace="shop", service="api", route="/a"}` = 2·s (counter)
    /// - `http_requests_total{namespace="shop", service="api", route="/b"}` = 0.5·s
    /// - `http_requests_total{namespace="shop", service="api", route="/c"}` = s - s(09:58),
    ///   existing from 09:58 on
    /// - `restarts_total{pod="api-1"}` = s mod 1800 (resets every half hour)
    /// - `cpu_seconds_total{pod="api-1"}` = s/4 (same labels as `restarts_total`)
    pub(crate) struct FakeSource;

    pub(crate) fn midnight() -> DateTime<Utc> {
        DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default()
    }

    pub(crate) fn at_hms(h: i64, m: i64, s: i64) -> DateTime<Utc> {
        midnight() + TimeDelta::seconds(h * 3600 + m * 60 + s)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    impl SeriesSource for FakeSource {
        fn now(&self) -> DateTime<Utc> {
            at_hms(10, 0, 0)
        }

        fn points_at(&self, t: DateTime<Utc>) -> Vec<Point> {
            let s = (t - midnight()).as_seconds_f64();
            let gauge = |pairs: &[(&str, &str)], value| Point {
                labels: labels(pairs),
                kind: SeriesKind::Gauge,
                value,
            };
            let counter = |pairs: &[(&str, &str)], value| Point {
                labels: labels(pairs),
                kind: SeriesKind::Counter,
                value,
            };
            let mem = "mem_bytes";
            let req = "http_requests_total";
            let mut points = vec![
                gauge(
                    &[
                        ("__name__", mem),
                        ("namespace", "shop"),
                        ("pod", "api-1"),
                        ("container", "app"),
                    ],
                    100.0 + s / 60.0,
                ),
                gauge(
                    &[
                        ("__name__", mem),
                        ("namespace", "shop"),
                        ("pod", "api-2"),
                        ("container", "app"),
                    ],
                    50.0,
                ),
                gauge(
                    &[
                        ("__name__", mem),
                        ("namespace", "other"),
                        ("pod", "db-0"),
                        ("container", "db"),
                    ],
                    10.0,
                ),
                counter(
                    &[
                        ("__name__", req),
                        ("namespace", "shop"),
                        ("service", "api"),
                        ("route", "/a"),
                    ],
                    2.0 * s,
                ),
                counter(
                    &[
                        ("__name__", req),
                        ("namespace", "shop"),
                        ("service", "api"),
                        ("route", "/b"),
                    ],
                    0.5 * s,
                ),
                counter(
                    &[("__name__", "restarts_total"), ("pod", "api-1")],
                    s % 1800.0,
                ),
                counter(
                    &[("__name__", "cpu_seconds_total"), ("pod", "api-1")],
                    0.25 * s,
                ),
            ];
            let c_from = (at_hms(9, 58, 0) - midnight()).as_seconds_f64();
            if s >= c_from {
                points.push(counter(
                    &[
                        ("__name__", req),
                        ("namespace", "shop"),
                        ("service", "api"),
                        ("route", "/c"),
                    ],
                    s - c_from,
                ));
            }
            points
        }

        fn help(&self, metric: &str) -> Option<&'static str> {
            match metric {
                "mem_bytes" => Some("Working set of a container.\nIn bytes, with a \\."),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::fixtures::{FakeSource, at_hms};
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn eval(expr: &str) -> Vec<(Labels, f64)> {
        instant(&FakeSource, expr, at_hms(10, 0, 0)).unwrap()
    }

    fn values(expr: &str) -> Vec<f64> {
        eval(expr).into_iter().map(|(_, v)| v).collect()
    }

    fn pods(expr: &str) -> Vec<String> {
        eval(expr)
            .into_iter()
            .map(|(l, _)| l.get("pod").cloned().unwrap_or_default())
            .collect()
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
    }

    #[test]
    fn selector_sees_points_at_exactly_t_with_the_metric_name() {
        let result = eval(r#"mem_bytes{pod="api-1"}"#);
        assert_eq!(
            result,
            vec![(
                labels(&[
                    ("__name__", "mem_bytes"),
                    ("container", "app"),
                    ("namespace", "shop"),
                    ("pod", "api-1")
                ]),
                100.0 + 36_000.0 / 60.0
            )]
        );
    }

    #[test]
    fn all_four_matchers_work_and_regexes_are_anchored() {
        assert_eq!(pods(r#"mem_bytes{namespace="shop"}"#), ["api-1", "api-2"]);
        assert_eq!(pods(r#"mem_bytes{namespace!="shop"}"#), ["db-0"]);
        assert_eq!(pods(r#"mem_bytes{pod=~"api-[0-9]+"}"#), ["api-1", "api-2"]);
        assert_eq!(pods(r#"mem_bytes{pod!~"api-.*"}"#), ["db-0"]);
        // Anchored: "api" alone matches no pod; "pi-1" does not match inside "api-1".
        assert!(pods(r#"mem_bytes{pod=~"api"}"#).is_empty());
        assert!(pods(r#"mem_bytes{pod=~"pi-1"}"#).is_empty());
        // A missing label matches the empty string.
        assert_eq!(pods(r#"mem_bytes{zone=""}"#).len(), 3);
        assert_eq!(pods(r#"{__name__=~"mem_.*", container="db"}"#), ["db-0"]);
    }

    #[test]
    fn rate_is_the_increase_over_the_range_per_second() {
        let result = eval(r#"rate(http_requests_total{route=~"/a|/b"}[5m])"#);
        assert_eq!(result.len(), 2);
        assert_eq!(
            result[0].0,
            labels(&[("namespace", "shop"), ("route", "/a"), ("service", "api")])
        );
        assert_close(result[0].1, 2.0);
        assert_close(result[1].1, 0.5);
    }

    #[test]
    fn increase_is_rate_times_the_range() {
        assert_close(
            values(r#"increase(http_requests_total{route="/a"}[5m])"#)[0],
            600.0,
        );
    }

    #[test]
    fn a_counter_that_went_down_was_reset() {
        // At 10:02 the counter is 120 (reset at 10:00); at 09:57 it was 1620.
        let result = instant(&FakeSource, "rate(restarts_total[5m])", at_hms(10, 2, 0)).unwrap();
        assert_close(result[0].1, 120.0 / 300.0);
    }

    #[test]
    fn a_counter_created_within_the_range_counts_from_zero() {
        // /c started at 09:58 and is 120 at 10:00.
        assert_close(
            values(r#"rate(http_requests_total{route="/c"}[5m])"#)[0],
            120.0 / 300.0,
        );
    }

    #[test]
    fn irate_uses_the_last_sample_interval_and_needs_two_samples() {
        assert_close(
            values(r#"irate(http_requests_total{route="/a"}[5m])"#)[0],
            2.0,
        );
        assert!(values(r#"irate(http_requests_total{route="/a"}[1m])"#).is_empty());
    }

    #[test]
    fn over_time_functions_sample_every_minute_within_the_range() {
        // api-1 grows by 1 per minute; at 10:00 it is 700; samples at 10:00, 09:59, ..., 09:51.
        let q = |f: &str| values(&format!(r#"{f}(mem_bytes{{pod="api-1"}}[10m])"#))[0];
        assert_close(q("max_over_time"), 700.0);
        assert_close(q("min_over_time"), 691.0);
        assert_close(q("avg_over_time"), 695.5);
        let result = eval(r#"max_over_time(mem_bytes{pod="api-2"}[10m])"#);
        assert!(!result[0].0.contains_key("__name__"));
    }

    #[test]
    fn aggregations_with_by_and_without() {
        let sum = eval(r#"sum by (namespace) (mem_bytes)"#);
        assert_eq!(sum[0].0, labels(&[("namespace", "other")]));
        assert_close(sum[0].1, 10.0);
        assert_eq!(sum[1].0, labels(&[("namespace", "shop")]));
        assert_close(sum[1].1, 750.0);

        assert_eq!(values("max(mem_bytes)"), [700.0]);
        assert_eq!(values("min(mem_bytes)"), [10.0]);
        assert_close(values("avg(mem_bytes)")[0], 760.0 / 3.0);
        assert_eq!(values("count(mem_bytes)"), [3.0]);
        assert!(eval("count(mem_bytes)")[0].0.is_empty());

        let without = eval(r#"sum without (pod) (mem_bytes)"#);
        assert_eq!(
            without
                .iter()
                .map(|(l, v)| (l.clone(), *v))
                .collect::<Vec<_>>(),
            vec![
                (
                    labels(&[("container", "app"), ("namespace", "shop")]),
                    750.0
                ),
                (labels(&[("container", "db"), ("namespace", "other")]), 10.0),
            ]
        );
    }

    #[test]
    fn request_rate_by_route_as_the_cluster_adapter_asks_for_it() {
        let result = eval(
            r#"sum by (route) (rate(http_requests_total{namespace="shop", service="api"}[5m]))"#,
        );
        let by_route: Vec<(String, f64)> = result
            .into_iter()
            .map(|(l, v)| (l["route"].clone(), v))
            .collect();
        assert_eq!(by_route.len(), 3);
        assert_eq!(by_route[0].0, "/a");
        assert_close(by_route[0].1, 2.0);
        assert_close(by_route[1].1, 0.5);
        assert_close(by_route[2].1, 0.4);
    }

    #[test]
    fn number_literals_and_scalar_arithmetic() {
        assert_eq!(eval("1 + 2 * 3"), vec![(Labels::new(), 7.0)]);
        assert_eq!(
            evaluate(&FakeSource, "2 ^ 10 % 1000", at_hms(10, 0, 0)).unwrap(),
            InstantValue::Scalar(24.0)
        );
        assert_eq!(values("-(4 - 6)"), [2.0]);
    }

    #[test]
    fn vector_scalar_arithmetic_drops_the_metric_name() {
        let result = eval(r#"mem_bytes{pod="api-2"} / 2"#);
        assert_eq!(
            result,
            vec![(
                labels(&[
                    ("container", "app"),
                    ("namespace", "shop"),
                    ("pod", "api-2")
                ]),
                25.0
            )]
        );
        assert_eq!(values(r#"100 - mem_bytes{pod="api-2"}"#), [50.0]);
        assert_eq!(values(r#"-mem_bytes{pod="db-0"}"#), [-10.0]);
    }

    #[test]
    fn vector_vector_arithmetic_matches_identical_label_sets() {
        // Both sides keep namespace and route after the aggregation; /c is only on the left.
        let result = eval(
            r#"sum by (route) (rate(http_requests_total[5m])) / sum by (route) (rate(http_requests_total{route!="/c"}[5m]))"#,
        );
        assert_eq!(result.len(), 2);
        assert_close(result[0].1, 1.0);

        let ratio = eval(r#"mem_bytes{pod="api-1"} / mem_bytes{pod="api-1"}"#);
        assert_eq!(ratio[0].1, 1.0);
        assert!(!ratio[0].0.contains_key("__name__"));
        assert!(eval(r#"mem_bytes{pod="api-1"} + mem_bytes{pod="api-2"}"#).is_empty());
    }

    #[test]
    fn series_left_with_the_same_labels_after_dropping_names_are_an_error() {
        let t = at_hms(10, 0, 0);
        let err = instant(
            &FakeSource,
            r#"rate({__name__=~".+_total", pod="api-1"}[5m])"#,
            t,
        )
        .unwrap_err();
        assert!(err.contains(r#"same labelset {pod="api-1"}"#), "{err}");

        let err = instant(
            &FakeSource,
            r#"{__name__=~".+_total", pod="api-1"} + restarts_total"#,
            t,
        )
        .unwrap_err();
        assert!(
            err.contains("many-to-one matching must be explicit"),
            "{err}"
        );
    }

    #[test]
    fn range_evaluates_each_step_and_groups_by_series() {
        let series = range(
            &FakeSource,
            r#"mem_bytes{namespace="shop"}"#,
            at_hms(9, 0, 0),
            at_hms(9, 2, 30),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].0["pod"], "api-1");
        assert_eq!(
            series[0].1,
            vec![
                (at_hms(9, 0, 0), 640.0),
                (at_hms(9, 1, 0), 641.0),
                (at_hms(9, 2, 0), 642.0)
            ]
        );
        assert_eq!(series[1].1.len(), 3);
    }

    #[test]
    fn range_of_a_scalar_is_one_unlabelled_series() {
        let series = range(
            &FakeSource,
            "3",
            at_hms(9, 0, 0),
            at_hms(9, 1, 0),
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(series.len(), 1);
        assert!(series[0].0.is_empty());
        assert_eq!(series[0].1.len(), 3);
    }

    #[test]
    fn range_series_appear_when_they_come_into_existence() {
        let series = range(
            &FakeSource,
            r#"rate(http_requests_total{route="/c"}[5m])"#,
            at_hms(9, 56, 0),
            at_hms(10, 0, 0),
            Duration::from_secs(120),
        )
        .unwrap();
        assert_eq!(
            series[0].1.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [at_hms(9, 58, 0), at_hms(10, 0, 0)]
        );
    }

    #[test]
    fn range_rejects_a_zero_step_and_an_end_before_the_start() {
        assert!(
            range(
                &FakeSource,
                "1",
                at_hms(9, 0, 0),
                at_hms(10, 0, 0),
                Duration::ZERO
            )
            .is_err()
        );
        assert!(
            range(
                &FakeSource,
                "1",
                at_hms(10, 0, 0),
                at_hms(9, 0, 0),
                Duration::from_secs(1)
            )
            .is_err()
        );
    }

    #[test]
    fn unsupported_constructs_say_so() {
        for (expr, what) in [
            ("mem_bytes offset 5m", "offset"),
            ("mem_bytes @ 1704067200", "@ modifier"),
            ("histogram_quantile(0.9, mem_bytes)", "histogram_quantile()"),
            ("topk(2, mem_bytes)", "topk"),
            ("mem_bytes > 10", ">"),
            ("mem_bytes / on(pod) mem_bytes", "vector matching"),
            ("max_over_time(mem_bytes[10m:1m])", "subqueries"),
            ("mem_bytes[5m]", "range vector"),
        ] {
            let err = instant(&FakeSource, expr, at_hms(10, 0, 0)).unwrap_err();
            assert!(
                err.starts_with("unsupported in the simulated Prometheus: "),
                "{expr}: {err}"
            );
            assert!(err.contains(what), "{expr}: {err}");
        }
    }

    #[test]
    fn parse_errors_are_reported() {
        let err = instant(&FakeSource, "sum(", at_hms(10, 0, 0)).unwrap_err();
        assert!(err.starts_with("parse error"), "{err}");
    }
}
