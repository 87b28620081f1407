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
        if name == "histogram_quantile" {
            return self.histogram_quantile(call, t);
        }
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

    /// `histogram_quantile(φ, v)`: per group of `v`'s series that differ only by `le`, the
    /// φ-quantile of their buckets (series without a readable `le` are left out).
    fn histogram_quantile(&self, call: &Call, t: DateTime<Utc>) -> Result<Vector, String> {
        let [phi, v] = call.args.args.as_slice() else {
            return Err(format!(
                "histogram_quantile() expects two arguments, got {}",
                call.args.args.len()
            ));
        };
        let Value::Scalar(phi) = self.eval(phi, t)? else {
            return Err("histogram_quantile() expects a scalar quantile first".into());
        };
        let Value::Vector(input) = self.eval(v, t)? else {
            return Err("histogram_quantile() expects an instant vector of buckets".into());
        };
        let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for (labels, value) in input {
            let Some(le) = labels.get("le").and_then(|l| histogram::upper_bound(l)) else {
                continue;
            };
            let mut key = without_name(labels);
            key.remove("le");
            groups.entry(key).or_default().push((le, value));
        }
        Ok(groups
            .into_iter()
            .map(|(labels, buckets)| (labels, histogram::bucket_quantile(phi, buckets)))
            .collect())
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

mod histogram;

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests;
