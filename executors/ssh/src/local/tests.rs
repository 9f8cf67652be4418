//! [`LocalHost`]: commands, files, and the link rule of downloads.

use super::*;

#[tokio::test]
async fn exec_read_write_copy() {
    let l = LocalHost::new();
    let out = l
        .exec("cat; echo err >&2; exit 3", Some(b"in".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
        (3, &b"in"[..], &b"err\n"[..])
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a/b/f");
    let p = p.to_str().unwrap();
    assert_eq!(l.read(p).await.unwrap(), None);
    l.write(p, b"x", 0o640).await.unwrap();
    assert_eq!(l.read(p).await.unwrap().as_deref(), Some(&b"x"[..]));
    let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    l.upload(
        &dir.path().join("a"),
        dir.path().join("c").to_str().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(fs::read(dir.path().join("c/b/f")).unwrap(), b"x");
    let err = l
        .upload(
            &dir.path().join("a"),
            dir.path().join("a/b/in").to_str().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("inside the source"), "{err}");
}

/// `root/` with `in.txt`, `sub/deep.txt`, and `secret.txt` beside it.
fn tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("in.txt"), "in").unwrap();
    fs::write(root.join("sub/deep.txt"), "deep").unwrap();
    fs::write(dir.join("secret.txt"), "secret").unwrap();
    root
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn download_copies_links_that_stay_inside_as_their_targets() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let out = root.join("out");
    fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink("../in.txt", out.join("rel.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("sub"), out.join("abs-dir")).unwrap();
    std::os::unix::fs::symlink("out/rel.txt", root.join("top.txt")).unwrap();
    let l = LocalHost::new();
    let back = dir.path().join("back");
    l.download_within(s(&out), &back.join("out"), s(&root))
        .await
        .unwrap();
    assert_eq!(fs::read(back.join("out/rel.txt")).unwrap(), b"in");
    assert_eq!(
        fs::read(back.join("out/abs-dir/deep.txt")).unwrap(),
        b"deep"
    );
    assert!(
        !fs::symlink_metadata(back.join("out/rel.txt"))
            .unwrap()
            .is_symlink()
    );
    // a top-level link inside the root
    l.download_within(s(&root.join("top.txt")), &back.join("top.txt"), s(&root))
        .await
        .unwrap();
    assert_eq!(fs::read(back.join("top.txt")).unwrap(), b"in");
    // the root itself may be reached through a link
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&root, &alias).unwrap();
    l.download_within(s(&alias.join("out")), &back.join("again"), s(&alias))
        .await
        .unwrap();
    assert_eq!(fs::read(back.join("again/rel.txt")).unwrap(), b"in");
}

#[tokio::test]
async fn download_refuses_links_out_of_the_root_before_copying() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let secret = dir.path().join("secret.txt");
    let out = root.join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("a.txt"), "a").unwrap();
    std::os::unix::fs::symlink(&secret, out.join("b.txt")).unwrap();
    let l = LocalHost::new();
    let back = dir.path().join("back");
    let err = l
        .download_within(s(&out), &back, s(&root))
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::LinkOutside { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "download from localhost refused: link {}/b.txt leads to {}, outside {}",
            out.display(),
            secret.display(),
            root.display()
        )
    );
    assert!(!back.exists(), "something was copied before the refusal");
    // relative, written otherwise than resolved
    fs::remove_file(out.join("b.txt")).unwrap();
    std::os::unix::fs::symlink("../../secret.txt", out.join("b.txt")).unwrap();
    let err = l
        .download_within(s(&out), &back, s(&root))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.ends_with(&format!(
            "b.txt leads to ../../secret.txt ({}), outside {}",
            secret.canonicalize().unwrap().display(),
            root.display()
        )),
        "{msg}"
    );
    // the downloaded path itself a link out (staging downloads each entry)
    let top = root.join("o.txt");
    std::os::unix::fs::symlink("/etc/hostname", &top).unwrap();
    let err = l
        .download_within(s(&top), &back, s(&root))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("link {} leads to /etc/hostname", top.display())),
        "{err}"
    );
    // a dangling link
    fs::remove_file(&top).unwrap();
    std::os::unix::fs::symlink("gone.txt", &top).unwrap();
    let err = l
        .download_within(s(&top), &back, s(&root))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("leads to gone.txt, which does not exist"),
        "{err}"
    );
    assert!(!back.exists());
}

#[tokio::test]
async fn download_checks_links_behind_linked_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    // out -> sub (inside), and sub/x -> ../../secret.txt (outside)
    std::os::unix::fs::symlink("../../secret.txt", root.join("sub/x")).unwrap();
    std::os::unix::fs::symlink("sub", root.join("out")).unwrap();
    let l = LocalHost::new();
    let back = dir.path().join("back");
    let err = l
        .download_within(s(&root.join("out")), &back, s(&root))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "link {}/out/x leads to ../../secret.txt",
            root.display()
        )),
        "{err}"
    );
    // plain download: the tree is the root (the path itself resolved)
    let err = l.download(s(&root.join("sub")), &back).await.unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    fs::remove_file(root.join("sub/x")).unwrap();
    l.download(s(&root.join("out")), &back).await.unwrap();
    assert_eq!(fs::read(back.join("deep.txt")).unwrap(), b"deep");
}

#[tokio::test]
async fn upload_still_follows_every_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    std::os::unix::fs::symlink("../secret.txt", root.join("s.txt")).unwrap();
    let up = dir.path().join("up");
    LocalHost::new().upload(&root, s(&up)).await.unwrap();
    assert_eq!(fs::read(up.join("s.txt")).unwrap(), b"secret");
}
