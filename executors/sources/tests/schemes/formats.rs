//! `check_format` and the Darwin Core Archive checks on files.

use crate::support::{fixtures, spec};
use std::io::Write;
use twinflow_core::{SourceFormat, SourceScheme};
use twinflow_sources::check_format;
use twinflow_sources::formats::dwca;

fn check(format: SourceFormat, path: &std::path::Path) -> Result<(), String> {
    let mut s = spec("s", "https://example.org/x", SourceScheme::Http, false);
    s.format = format;
    check_format(&s, path)
}

#[test]
fn csv_json_netcdf_zarr() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |n: &str, data: &[u8]| {
        let path = tmp.path().join(n);
        std::fs::write(&path, data).expect("write");
        path
    };
    check(SourceFormat::Csv, &p("a.csv", b"a,b\n1,2\n\"x,y\",3\n")).expect("csv");
    check(SourceFormat::Csv, &p("t.tsv", b"a\tb\tc\n1\t2\t3\n")).expect("tsv");
    let e = check(SourceFormat::Csv, &p("bad.csv", b"a,b\n1,2,3\n")).expect_err("ragged");
    assert!(e.contains("line 2 has 3 fields, the header has 2"), "{e}");
    assert!(check(SourceFormat::Csv, &p("bin.csv", b"a,b\n\xff\xfe,1\n")).is_err());
    assert!(check(SourceFormat::Csv, &p("empty.csv", b"")).is_err());

    check(SourceFormat::Json, &p("a.json", br#"{"a": [1, 2]}"#)).expect("json");
    assert!(check(SourceFormat::Json, &p("b.json", b"{not json")).is_err());

    let nc = fixtures().join("stac/collections/climate-ensemble/assets/tas-r1-2020.nc");
    check(SourceFormat::Netcdf, &nc).expect("netcdf classic");
    check(SourceFormat::Netcdf, &p("h.nc", b"\x89HDF\r\n\x1a\nrest")).expect("netcdf-4");
    let e = check(SourceFormat::Netcdf, &p("x.nc", b"GRIB")).expect_err("not netcdf");
    assert!(e.contains("not NetCDF"), "{e}");

    let z = tmp.path().join("store.zarr");
    std::fs::create_dir_all(&z).expect("mkdir");
    assert!(check(SourceFormat::Zarr, &z).is_err());
    std::fs::write(z.join("zarr.json"), b"{}").expect("write");
    check(SourceFormat::Zarr, &z).expect("zarr v3");
    check(SourceFormat::Any, &z).expect("any");
}

#[test]
fn dwca_zip_and_directory() {
    let gbif = fixtures().join("gbif");
    let core = check(SourceFormat::Dwca, &gbif.join("crop-wild-relatives.zip"));
    core.expect("the fixture is a Darwin Core Archive");
    let c = dwca::check_zip(&gbif.join("crop-wild-relatives.zip")).expect("core");
    assert_eq!(c.location, "occurrence.txt");
    assert_eq!(c.columns, 28);
    let e = check(SourceFormat::Dwca, &gbif.join("corrupt.zip")).expect_err("corrupt");
    assert!(e.contains("not a readable zip"), "{e}");
    let e = check(SourceFormat::Dwca, &gbif.join("no-meta.zip")).expect_err("no meta");
    assert!(e.contains("no meta.xml"), "{e}");

    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("dwca");
    dwca::unpack(&gbif.join("crop-wild-relatives.zip"), &dir).expect("unpack");
    check(SourceFormat::Dwca, &dir).expect("unpacked archive");
    std::fs::remove_file(dir.join("occurrence.txt")).expect("rm");
    let e = check(SourceFormat::Dwca, &dir).expect_err("core missing");
    assert!(
        e.contains("core file occurrence.txt is not in the archive"),
        "{e}"
    );
}

fn zip_of(path: &std::path::Path, entries: &[(&str, &str)]) {
    let f = std::fs::File::create(path).expect("create");
    let mut z = zip::ZipWriter::new(f);
    for (name, text) in entries {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        z.write_all(text.as_bytes()).expect("write");
    }
    z.finish().expect("finish");
}

#[test]
fn header_shorter_than_meta_and_zip_slip_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let meta = r#"<archive><core ignoreHeaderLines="1" fieldsTerminatedBy="\t"><files><location>occurrence.txt</location></files><id index="0"/><field index="3" term="x"/></core></archive>"#;
    let short = tmp.path().join("short.zip");
    zip_of(
        &short,
        &[("meta.xml", meta), ("occurrence.txt", "id\tb\n1\t2\n")],
    );
    let e = check(SourceFormat::Dwca, &short).expect_err("short header");
    assert!(e.contains("2 columns") && e.contains("indexes 4"), "{e}");

    let slip = tmp.path().join("slip.zip");
    zip_of(&slip, &[("../evil.txt", "x")]);
    let out = tmp.path().join("out");
    let e = dwca::unpack(&slip, &out).expect_err("zip slip");
    assert!(e.contains("outside the directory"), "{e}");
    assert!(!tmp.path().join("evil.txt").exists());
}
