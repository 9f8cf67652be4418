//! The devserver's `/files` as a client sees it: HEAD, ranges, 416,
//! conditional requests, `If-Range`, `no_range`.

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_answer_ranges_validators_and_conditionals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.bin"), data(1000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/f.bin");
    let client = reqwest::Client::new();
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "1000");
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    let lm = head.headers()["last-modified"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'));

    let part = client
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data(1000)[10..20]);
    let tail = client
        .get(&url)
        .header("range", "bytes=990-")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap().len(), 10);
    let bad = client
        .get(&url)
        .header("range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 416);
    assert_eq!(bad.headers()["content-range"], "bytes */1000");

    let inm = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(inm.status(), 304);
    let ims = client
        .get(&url)
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(ims.status(), 304);
    let stale = client
        .get(&url)
        .header("range", "bytes=10-")
        .header("if-range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        200,
        "a changed validator gets the whole file"
    );
    let nr = client
        .get(format!("{url}?no_range=1"))
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(nr.status(), 200);
    assert_eq!(nr.bytes().await.unwrap().len(), 1000);
    let out = client
        .get(format!("{base}/files/../etc/passwd"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 404);

    let s = stats(&base, "f.bin").await;
    assert_eq!(s["heads"], 1);
    assert_eq!(s["ranges"][0], "bytes=10-19");
    assert_eq!(status_count(&s, 304), 2);
}
