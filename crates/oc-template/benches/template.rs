//! Benchmarks: rendering the seed poller URL, and formatting / parsing `yyyy-MM-dd'T'HH:mm:ss'Z'` side by
//! side with chrono's own `format` / `NaiveDateTime::parse_from_str` of the equivalent strftime pattern.
//! Figures and the command that produced them: `docs/bench/oc-template.md`.

use std::fmt::Write as _;
use std::hint::black_box;

use chrono::{DateTime, NaiveDateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oc_template::{Mask, Template, Zone};

const SEED_URL: &str = "/hubs/finance/customers?where=lastModifiedDate>='${date:yyyy-MM-dd'T'HH:mm:ss'Z'}' and attributes='created_at,updated_at'";
const MASK: &str = "yyyy-MM-dd'T'HH:mm:ss'Z'";
const STRFTIME: &str = "%Y-%m-%dT%H:%M:%SZ";
const TEXT: &str = "2019-03-25T15:31:02Z";

fn instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2019-03-25T15:31:02.120Z").unwrap().with_timezone(&Utc)
}

fn render(c: &mut Criterion) {
    let template = Template::parse(SEED_URL).unwrap();
    let t = instant();
    let mut g = c.benchmark_group("render_seed_url");
    g.throughput(Throughput::Elements(1));
    g.bench_function("render", |b| b.iter(|| black_box(&template).render(black_box(t))));
    let mut buf = String::with_capacity(256);
    g.bench_function("render_into", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&template).render_into(black_box(t), &mut buf);
            black_box(buf.len())
        })
    });
    g.finish();
}

fn format(c: &mut Criterion) {
    let mask = Mask::compile(MASK).unwrap();
    let zone = Zone::utc();
    let t = instant();
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(1));
    let mut buf = String::with_capacity(64);
    g.bench_function("oc_template_format_into", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&mask).format_into(black_box(t), &zone, &mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("chrono_format_write", |b| {
        b.iter(|| {
            buf.clear();
            write!(buf, "{}", black_box(t).format(black_box(STRFTIME))).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("oc_template_format", |b| b.iter(|| black_box(&mask).format(black_box(t), &zone)));
    g.bench_function("chrono_format_to_string", |b| b.iter(|| black_box(t).format(black_box(STRFTIME)).to_string()));
    g.finish();
}

fn parse(c: &mut Criterion) {
    let mask = Mask::compile(MASK).unwrap();
    let zone = Zone::gmt();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("oc_template_parse", |b| b.iter(|| black_box(&mask).parse(black_box(TEXT), &zone).unwrap()));
    g.bench_function("chrono_parse_from_str", |b| {
        b.iter(|| NaiveDateTime::parse_from_str(black_box(TEXT), black_box(STRFTIME)).unwrap().and_utc())
    });
    g.finish();
}

criterion_group!(benches, render, format, parse);
criterion_main!(benches);
