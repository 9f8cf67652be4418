//! S3 hand-off benchmark (issue 8), against the local S3 server of
//! `deploy/dev/s3-up`: one artefact of 1 GiB (`--size-mib N` for another
//! size) handed from one "site" to another through the store
//! (`put_output`, then a second `Store` reads the manifest and
//! `get_output`s it to another path, sha256 verified both ways), beside a
//! plain upload + download of the same file with a standard client in the
//! same run: `curl --aws-sigv4` (one PUT, one GET, no verification) and,
//! where it is installed, the `aws` CLI (`aws s3 cp` up and down, its own
//! multipart and parallel parts). Each variant runs `--rounds N` times
//! (default 3) under a fresh key and deletes what it wrote; the median is
//! printed, with the ratio to curl.
//!
//! twinflow is measured twice: with its defaults (over plain http each
//! part's sha256 is signed, and the download is fsynced before it is renamed
//! into place) and the way curl works here (`sign_payload: Some(false)`,
//! i.e. `UNSIGNED-PAYLOAD`, and `sync_downloads: false`). Both hash the file
//! before and while uploading it and verify the download's sha256.
//!
//! Run: `deploy/dev/s3-up && source /tmp/twinflow-s3/env &&
//! cargo bench -p twinflow-store --bench handoff [-- --size-mib 1024 --rounds 3]`
//! (`--part-mib N`, `--parts-in-flight N` and `--threshold-mib N` change
//! twinflow's multipart settings, default 16, 4 and 64).

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use twinflow_store::{ArtefactName, Store, StoreOptions};

const MIB: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let size_mib = arg("--size-mib", 1024);
    let rounds = arg("--rounds", 3).max(1);
    let base = StoreOptions {
        part_size: arg("--part-mib", 16) * MIB,
        parts_in_flight: arg("--parts-in-flight", 4),
        multipart_threshold: (arg("--threshold-mib", 64) * MIB) as u64,
        ..StoreOptions::default()
    };
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("AWS_ENDPOINT_URL"),
        std::env::var("TWINFLOW_S3_BUCKET"),
    ) else {
        println!("skipped: no S3 store (deploy/dev/s3-up; source /tmp/twinflow-s3/env)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("artefact.bin");
    let t = Instant::now();
    write_data(&src, size_mib * MIB);
    println!(
        "S3 hand-off: {size_mib} MiB file, store at {endpoint} (bucket {bucket}), {rounds} rounds; \
         test file written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut results: Vec<(String, Vec<Sample>)> = Vec::new();
    for (label, defaults) in [
        (
            "twinflow put_output + get_output, defaults (signed payload, fsync)",
            true,
        ),
        ("twinflow, as curl does (UNSIGNED-PAYLOAD, no fsync)", false),
    ] {
        let mut v = Vec::new();
        for round in 0..rounds {
            let s = rt.block_on(twinflow(&bucket, &src, dir.path(), &base, defaults, round));
            println!("  {label}: round {round}: {}", s.show());
            v.push(s);
        }
        results.push((label.to_owned(), v));
    }
    let mut v = Vec::new();
    for round in 0..rounds {
        let s = curl(&endpoint, &bucket, &src, dir.path(), round);
        println!("  curl: round {round}: {}", s.show());
        v.push(s);
    }
    results.push(("curl --aws-sigv4 PUT + GET (no verification)".to_owned(), v));
    if Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let mut v = Vec::new();
        for round in 0..rounds {
            let s = aws_cli(&bucket, &src, dir.path(), round);
            println!("  aws: round {round}: {}", s.show());
            v.push(s);
        }
        results.push(("aws s3 cp up + down (no verification)".to_owned(), v));
    } else {
        println!("  (no `aws` CLI here: that row is left out)");
    }

    let curl_median = median(&results[2].1).total();
    println!();
    println!("| {size_mib} MiB, median of {rounds} | upload | download | hand-off | vs curl |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, samples) in &results {
        let m = median(samples);
        println!(
            "| {label} | {:.2} s | {:.2} s | {:.2} s ({:.0} MiB/s) | {:.2}x |",
            m.up.as_secs_f64(),
            m.down.as_secs_f64(),
            m.total().as_secs_f64(),
            size_mib as f64 / m.total().as_secs_f64(),
            m.total().as_secs_f64() / curl_median.as_secs_f64(),
        );
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    up: Duration,
    down: Duration,
}

impl Sample {
    fn total(&self) -> Duration {
        self.up + self.down
    }
    fn show(&self) -> String {
        format!(
            "{:.2} s (up {:.2} s, down {:.2} s)",
            self.total().as_secs_f64(),
            self.up.as_secs_f64(),
            self.down.as_secs_f64()
        )
    }
}

/// The sample with the median total.
fn median(samples: &[Sample]) -> Sample {
    let mut v = samples.to_vec();
    v.sort_by_key(Sample::total);
    v[v.len() / 2]
}

/// 1 MiB of xorshift noise repeated, each MiB with its number in front.
fn write_data(path: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = Vec::with_capacity(MIB);
    while block.len() < MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block.extend_from_slice(&x.to_le_bytes());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for i in 0..len.div_ceil(MIB) {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let n = MIB.min(len - i * MIB);
        f.write_all(&block[..n]).expect("write");
    }
    f.flush().expect("flush");
}

fn prefix(what: &str, round: usize) -> String {
    format!("bench-handoff-{what}-{}-{round}", std::process::id())
}

async fn twinflow(
    bucket: &str,
    src: &Path,
    dir: &Path,
    base: &StoreOptions,
    defaults: bool,
    round: usize,
) -> Sample {
    let prefix = prefix(if defaults { "tf" } else { "tf-light" }, round);
    let url = format!("s3://{bucket}/{prefix}");
    let opts = if defaults {
        base.clone()
    } else {
        StoreOptions {
            sync_downloads: false,
            sign_payload: Some(false),
            ..base.clone()
        }
    };
    let producer = Store::open_with(&url, opts.clone()).expect("open");
    let consumer = Store::open_with(&url, opts).expect("open");
    let name = ArtefactName::new("bench", "forest.0", "artefact").expect("name");
    let dest = dir.join(format!("tf-{round}.bin"));
    let t = Instant::now();
    let m = producer.put_output(&name, src).await.expect("put_output");
    let up = t.elapsed();
    let t = Instant::now();
    let read = consumer.manifest(&name).await.expect("manifest");
    consumer.get_output(&read, &dest).await.expect("get_output");
    let down = t.elapsed();
    assert_eq!(std::fs::metadata(&dest).expect("stat").len(), m.size);
    std::fs::remove_file(&dest).expect("remove");
    let raw = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .expect("raw client");
    let manifest_key = format!("{prefix}/manifests/bench/forest.0/artefact.json");
    for key in [m.files[0].blob.as_str(), manifest_key.as_str()] {
        raw.delete(&Key::from(key)).await.expect("delete");
    }
    Sample { up, down }
}

/// `curl` with SigV4 signing, the credentials given on stdin (not argv).
fn curl_cmd(extra: &[&str]) -> Sample {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let user = format!(
        "user = \"{}:{}\"\n",
        std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY")
    );
    let t = Instant::now();
    let mut child = Command::new("curl")
        .args(["-sS", "-f", "-K", "-"])
        .args(["--aws-sigv4", &format!("aws:amz:{region}:s3")])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .args(extra)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run curl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(user.as_bytes())
        .expect("curl stdin");
    let status = child.wait().expect("wait for curl");
    assert!(status.success(), "curl {extra:?} failed: {status}");
    Sample {
        up: t.elapsed(),
        down: Duration::ZERO,
    }
}

fn curl(endpoint: &str, bucket: &str, src: &Path, dir: &Path, round: usize) -> Sample {
    let url = format!("{endpoint}/{bucket}/{}/artefact.bin", prefix("curl", round));
    let dest = dir.join(format!("curl-{round}.bin"));
    let src = src.to_str().expect("utf-8 path");
    let up = curl_cmd(&["-o", "/dev/null", "-T", src, &url]).up;
    let dest_s = dest.to_str().expect("utf-8 path");
    let down = curl_cmd(&["-o", dest_s, &url]).up;
    assert_eq!(
        std::fs::metadata(&dest).expect("stat").len(),
        std::fs::metadata(src).expect("stat").len()
    );
    std::fs::remove_file(&dest).expect("remove");
    curl_cmd(&["-o", "/dev/null", "-X", "DELETE", &url]);
    Sample { up, down }
}

fn aws_cli(bucket: &str, src: &Path, dir: &Path, round: usize) -> Sample {
    let url = format!("s3://{bucket}/{}/artefact.bin", prefix("aws", round));
    let dest = dir.join(format!("aws-{round}.bin"));
    let run = |args: &[&str]| {
        let t = Instant::now();
        let out = Command::new("aws")
            .args(["--only-show-errors", "s3"])
            .args(args)
            .output()
            .expect("run aws");
        assert!(
            out.status.success(),
            "aws s3 {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    };
    let src_s = src.to_str().expect("utf-8 path");
    let dest_s = dest.to_str().expect("utf-8 path");
    let up = run(&["cp", src_s, &url]);
    let down = run(&["cp", &url, dest_s]);
    assert_eq!(
        std::fs::metadata(&dest).expect("stat").len(),
        std::fs::metadata(src).expect("stat").len()
    );
    std::fs::remove_file(&dest).expect("remove");
    run(&["rm", &url]);
    Sample { up, down }
}
