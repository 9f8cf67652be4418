//! Fetch benchmark (issue 20): one file of 1 GiB (`--size-mib N` or
//! `TWINFLOW_BENCH_FETCH_MIB=N` for another size) fetched over HTTP from
//! the in-process devserver into a fresh cache (streamed, hashed, verified,
//! published), beside `curl -o` of the same URL in the same run (the
//! floor); `--rounds N` (default 3) each, medians and the ratio printed
//! (target: within 1.2x of curl). Then a directory source of `--files N`
//! (default 10,000) small files: one fetch into the cache, the median time
//! of `resolve` on a hit (target: under 50 ms) and of materialising it
//! into a task directory (hard links).
//!
//! Run: `cargo bench -p twinflow-sources --bench fetch [-- --size-mib 1024 --rounds 3 --files 10000]`.

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use twinflow_core::{SourceScheme, SourceSpec};
use twinflow_sources::{
    Cache, Fetched, Fetcher, HttpFetcher, Policy, Request, Resolution, Retry, SourceError,
    Validators,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let env_mib = std::env::var("TWINFLOW_BENCH_FETCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok());
    let size_mib = arg("--size-mib", env_mib.unwrap_or(1024));
    let rounds = arg("--rounds", 3).max(1);
    let files = arg("--files", 10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(http(dir.path(), size_mib, rounds));
    rt.block_on(tree(dir.path(), files));
}

fn spec(name: &str, url: &str, directory: bool) -> SourceSpec {
    SourceSpec::new(name, url, SourceScheme::Http, directory)
}

async fn http(dir: &Path, size_mib: usize, rounds: usize) {
    let root = dir.join("served");
    std::fs::create_dir_all(&root).expect("served dir");
    let t = Instant::now();
    let mut f = std::fs::File::create(root.join("big.bin")).expect("big.bin");
    let block: Vec<u8> = (0..1 << 20).map(|i: usize| (i * 131 % 251) as u8).collect();
    for i in 0..size_mib {
        let mut b = block.clone();
        b[0] = (i % 256) as u8;
        f.write_all(&b).expect("write");
    }
    drop(f);
    let running = twinflow_devserver::start(
        twinflow_devserver::Config { root },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("devserver");
    let url = format!("{}/files/big.bin", running.base_url());
    println!(
        "HTTP fetch: {size_mib} MiB from the devserver at {url}, {rounds} rounds (file written in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let fetcher = HttpFetcher::new(Retry::default()).expect("fetcher");
    let s = spec("big", &url, false);
    let mut ours = Vec::new();
    let mut curl = Vec::new();
    for round in 0..rounds {
        let out = dir.join("curl.bin");
        let t = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "--fail", "-o"])
            .arg(&out)
            .arg(&url)
            .status();
        match status {
            Ok(s) if s.success() => curl.push(t.elapsed()),
            other => println!("  curl failed: {other:?}"),
        }
        let _ = std::fs::remove_file(&out);
        let cache_dir = dir.join(format!("cache{round}"));
        let cache = Cache::new(&cache_dir);
        let t = Instant::now();
        let r = cache
            .resolve(
                Request {
                    spec: &s,
                    url: &url,
                },
                &fetcher,
                &Policy::Current,
            )
            .await
            .expect("resolve");
        ours.push(t.elapsed());
        assert!(matches!(r, Resolution::Ready { fetched: true, .. }));
        let _ = std::fs::remove_dir_all(&cache_dir);
    }
    let (o, c) = (median(&mut ours), median(&mut curl));
    let mib = size_mib as f64;
    println!(
        "  twinflow (stream + sha256 + publish): {:.2} s ({:.0} MiB/s)",
        o.as_secs_f64(),
        mib / o.as_secs_f64()
    );
    if c > Duration::ZERO {
        let ratio = o.as_secs_f64() / c.as_secs_f64();
        println!(
            "  curl -o:                              {:.2} s ({:.0} MiB/s)",
            c.as_secs_f64(),
            mib / c.as_secs_f64()
        );
        println!(
            "  ratio twinflow/curl: {ratio:.2}x (target 1.2x) {}",
            if ratio <= 1.2 { "ok" } else { "MISS" }
        );
    }
}

/// Copies a local directory into staging: the directory source of the
/// tree benchmark (the hit path does not depend on the scheme).
#[derive(Debug)]
struct DirFetcher(PathBuf);

#[async_trait::async_trait]
impl Fetcher for DirFetcher {
    async fn fetch(
        &self,
        _request: Request<'_>,
        staging: &Path,
        _known: Option<&Validators>,
    ) -> Result<Fetched, SourceError> {
        copy_dir(&self.0, staging).expect("copy");
        Ok(Fetched::Content {
            directory: true,
            validators: Validators::default(),
            content_url: self.0.display().to_string(),
            citation: None,
        })
    }
}

fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), dst.join(e.file_name()))?;
        }
    }
    Ok(())
}

async fn tree(dir: &Path, files: usize) {
    let upstream = dir.join("tree");
    for i in 0..files {
        let sub = upstream.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub).expect("sub");
        }
        std::fs::write(
            sub.join(format!("f{i}.csv")),
            format!("id,value\n{i},{}\n", i * 7),
        )
        .expect("file");
    }
    let fetcher = DirFetcher(upstream.clone());
    let s = spec("tree", "file:///tree", true);
    let cache = Cache::new(dir.join("tree-cache"));
    let req = Request {
        spec: &s,
        url: "file:///tree",
    };
    let t = Instant::now();
    let first = cache
        .resolve(req, &fetcher, &Policy::Current)
        .await
        .expect("first resolve");
    let fetch = t.elapsed();
    let Resolution::Ready { entry, .. } = first else {
        println!("directory source: the first resolve was not ready: {first:?}");
        return;
    };
    let mut hits = Vec::new();
    let mut links = Vec::new();
    for round in 0..5 {
        let t = Instant::now();
        let r = cache
            .resolve(req, &fetcher, &Policy::Current)
            .await
            .expect("hit");
        hits.push(t.elapsed());
        assert!(matches!(r, Resolution::Ready { fetched: false, .. }));
        let target = dir.join(format!("task{round}"));
        let t = Instant::now();
        cache.materialise(&entry, &target).expect("materialise");
        links.push(t.elapsed());
    }
    let (h, l) = (median(&mut hits), median(&mut links));
    println!(
        "Directory source: {files} files; first fetch (copy + tree digest + publish) {:.0} ms",
        fetch.as_secs_f64() * 1e3
    );
    println!(
        "  cache hit (resolve): {:.1} ms (target 50 ms) {}",
        h.as_secs_f64() * 1e3,
        if h <= Duration::from_millis(50) {
            "ok"
        } else {
            "MISS"
        }
    );
    println!(
        "  materialise (hard links): {:.0} ms",
        l.as_secs_f64() * 1e3
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}
