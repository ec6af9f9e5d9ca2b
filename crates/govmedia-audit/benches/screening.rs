//! Screening benchmark: throughput of the bare Aho-Corasick automaton over the raw text
//! (the baseline: no normalisation, no offsets, no patterns, no whitelist) beside the
//! full pipeline (`Lexicon::screen`) on the same default lexicon and the same
//! 100-character comments.
//!
//! Run: `cargo bench -p govmedia-audit --bench screening`.

// A benchmark exists to print its figures.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasick, MatchKind};
use govmedia_audit::domain::screening::{Context, Lexicon, normalize};

/// 100-character comments: ordinary public comments, every tenth with a term.
fn comments(n: usize) -> Vec<String> {
    let base = "感谢市局的及时回应，希望能够进一步加强社区服务，方便老年人办理相关业务，也希望窗口工作时间能延长一些，辛苦了！";
    let hot = ["机密", "代开发票", "台湾政府", "傻逼", "13800138000"];
    (0..n)
        .map(|i| {
            let mut s: String = base.chars().cycle().skip(i % 17).take(100).collect();
            if i % 10 == 0 {
                let mut chars: Vec<char> = s.chars().collect();
                chars.truncate(100 - hot[i % hot.len()].chars().count());
                s = chars.into_iter().collect::<String>() + hot[i % hot.len()];
            }
            s
        })
        .collect()
}

fn measure(seconds: u64, texts: &[String], mut f: impl FnMut(&str) -> usize) -> (f64, f64, usize) {
    let bytes: usize = texts.iter().map(String::len).sum();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let (mut rounds, mut found) = (0_usize, 0_usize);
    while Instant::now() < deadline {
        for t in texts {
            found += f(t);
        }
        rounds += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    ((rounds * bytes) as f64 / elapsed / 1e6, (rounds * texts.len()) as f64 / elapsed, found / rounds.max(1))
}

fn main() {
    let seconds: u64 = std::env::var("GOVMEDIA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let (entries, whitelist) = govmedia_audit::lexicon::default_lexicon().expect("default lexicon");
    let phrases: Vec<String> = whitelist.into_iter().map(|(p, _)| p).collect();
    let patterns: Vec<String> = entries.iter().map(|e| normalize(&e.term).text).collect();
    let lexicon = Lexicon::build(1, entries, &phrases).expect("lexicon");
    let bare = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&patterns).expect("automaton");
    let texts = comments(10_000);
    println!(
        "screening benchmark: {} comments of 100 characters, {} lexicon terms, {seconds} s each",
        texts.len(),
        patterns.len()
    );

    let (mb, per_s, found) = measure(seconds, &texts, |t| bare.find_iter(t).count());
    println!(
        "baseline: bare automaton over raw text       {mb:>8.1} MB/s  {per_s:>12.0} texts/s  ({found} matches per pass)"
    );
    let (mb, per_s, found) = measure(seconds, &texts, |t| lexicon.screen(t, Context::Comment).len());
    println!(
        "full pipeline (normalise, match, patterns)   {mb:>8.1} MB/s  {per_s:>12.0} texts/s  ({found} findings per pass)"
    );
}
