//! Darwin Core Archives (<https://dwc.tdwg.org/text/>): a zip (or the
//! directory it unpacks to) whose `meta.xml` names a `<core>` data file
//! and its columns. Checked: the zip opens, `meta.xml` parses, its core
//! file exists, and the core file's header line (when `ignoreHeaderLines`
//! is 1) has a column for every field `meta.xml` indexes. [`unpack`]
//! extracts an archive, refusing entries that would land outside the
//! target directory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

/// What `meta.xml` says of the core file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreFile {
    /// The core file's path inside the archive.
    pub location: String,
    /// Its row type (e.g. `http://rs.tdwg.org/dwc/terms/Occurrence`).
    pub row_type: String,
    /// The column separator.
    pub delimiter: String,
    /// Header lines before the data.
    pub ignore_header_lines: u32,
    /// Columns the indexed fields (and the id) need: the largest index + 1.
    pub columns: usize,
}

/// Parses `meta.xml`.
pub fn parse_meta(xml: &str) -> Result<CoreFile, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_core = false;
    let mut in_location = false;
    let mut core: Option<CoreFile> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("meta.xml does not parse: {e}"))?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == b"core" => {
                in_core = true;
                core = Some(core_of(&e)?);
            }
            Event::Empty(e) | Event::Start(e) if in_core => match e.local_name().as_ref() {
                b"location" => in_location = true,
                b"id" | b"coreid" | b"field" => {
                    if let (Some(c), Some(i)) = (core.as_mut(), attr(&e, "index")?) {
                        let i: usize = i
                            .trim()
                            .parse()
                            .map_err(|_| format!("meta.xml: bad field index `{i}`"))?;
                        c.columns = c.columns.max(i + 1);
                    }
                }
                _ => {}
            },
            Event::Text(t) if in_location => {
                let text = t
                    .decode()
                    .map_err(|e| format!("meta.xml does not parse: {e}"))?;
                if let Some(c) = core.as_mut()
                    && c.location.is_empty()
                {
                    c.location = text.trim().to_owned();
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"location" => in_location = false,
                b"core" => in_core = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    let core = core.ok_or("meta.xml has no <core> element")?;
    if core.location.is_empty() {
        return Err("meta.xml's <core> names no file (<files><location>)".into());
    }
    Ok(core)
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| format!("meta.xml does not parse: {e}"))?;
        if a.key.local_name().as_ref() == name.as_bytes() {
            let v = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("meta.xml does not parse: {e}"))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn core_of(e: &BytesStart<'_>) -> Result<CoreFile, String> {
    let delimiter = match attr(e, "fieldsTerminatedBy")?.as_deref() {
        None | Some("\\t") => "\t".to_owned(),
        Some(d) => d.replace("\\t", "\t"),
    };
    let ignore_header_lines = match attr(e, "ignoreHeaderLines")? {
        None => 0,
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| format!("meta.xml: bad ignoreHeaderLines `{n}`"))?,
    };
    Ok(CoreFile {
        location: String::new(),
        row_type: attr(e, "rowType")?.unwrap_or_default(),
        delimiter,
        ignore_header_lines,
        columns: 0,
    })
}

/// Checks the core file's header line against `core`.
fn check_header(core: &CoreFile, header: &str) -> Result<(), String> {
    if core.ignore_header_lines != 1 || core.delimiter.is_empty() {
        return Ok(());
    }
    let got = header.split(core.delimiter.as_str()).count();
    if header.is_empty() || got < core.columns {
        return Err(format!(
            "core file {}: its header line has {got} columns, meta.xml indexes {}",
            core.location, core.columns
        ));
    }
    Ok(())
}

/// Checks a zipped archive; returns its core file.
pub fn check_zip(path: &Path) -> Result<CoreFile, String> {
    let mut zip = open_zip(path)?;
    let mut xml = String::new();
    zip.by_name("meta.xml")
        .map_err(|_| {
            format!(
                "{} is not a Darwin Core Archive: no meta.xml",
                path.display()
            )
        })?
        .read_to_string(&mut xml)
        .map_err(|e| format!("{}: cannot read meta.xml: {e}", path.display()))?;
    let core = parse_meta(&xml).map_err(|e| format!("{}: {e}", path.display()))?;
    let entry = zip.by_name(&core.location).map_err(|_| {
        format!(
            "{}: meta.xml's core file {} is not in the archive",
            path.display(),
            core.location
        )
    })?;
    let header = super::first_line(entry)
        .map_err(|e| format!("{}: cannot read {}: {e}", path.display(), core.location))?;
    check_header(&core, &header).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(core)
}

/// Checks an unpacked archive; returns its core file.
pub fn check_dir(dir: &Path) -> Result<CoreFile, String> {
    let meta = dir.join("meta.xml");
    let xml = std::fs::read_to_string(&meta).map_err(|_| {
        format!(
            "{} is not a Darwin Core Archive: no meta.xml",
            dir.display()
        )
    })?;
    let core = parse_meta(&xml).map_err(|e| format!("{}: {e}", meta.display()))?;
    let rel = Path::new(&core.location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "{}: core file {} is outside the archive",
            meta.display(),
            core.location
        ));
    }
    let file = File::open(dir.join(rel)).map_err(|_| {
        format!(
            "{}: meta.xml's core file {} is not in the archive",
            dir.display(),
            core.location
        )
    })?;
    let header = super::first_line(file)
        .map_err(|e| format!("{}: cannot read {}: {e}", dir.display(), core.location))?;
    check_header(&core, &header).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(core)
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<File>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    zip::ZipArchive::new(file)
        .map_err(|e| format!("{} is not a readable zip archive: {e}", path.display()))
}

/// Extracts the zip at `archive` into the directory `dest` (created if
/// missing); refuses an entry whose name is absolute, has `..`, or is a
/// symbolic link. Returns the files written.
pub fn unpack(archive: &Path, dest: &Path) -> Result<Vec<PathBuf>, String> {
    let mut zip = open_zip(archive)?;
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut written = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("{}: entry {i}: {e}", archive.display()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!(
                "{}: refusing entry `{name}`: it would land outside the directory",
                archive.display()
            ));
        };
        if entry.is_symlink() {
            return Err(format!(
                "{}: refusing entry `{name}`: a symbolic link",
                archive.display()
            ));
        }
        let out = dest.join(rel);
        if !entry.is_dir() && out.exists() {
            return Err(format!(
                "{}: refusing entry `{name}`: {} exists already",
                archive.display(),
                out.display()
            ));
        }
        if entry.is_dir() {
            std::fs::create_dir_all(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut f =
            File::create(&out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        std::io::copy(&mut entry, &mut f)
            .map_err(|e| format!("{}: cannot extract `{name}`: {e}", archive.display()))?;
        written.push(out);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">
  <core encoding="UTF-8" fieldsTerminatedBy="\t" linesTerminatedBy="\n" fieldsEnclosedBy="" ignoreHeaderLines="1" rowType="http://rs.tdwg.org/dwc/terms/Occurrence">
    <files>
      <location>occurrence.txt</location>
    </files>
    <id index="0" />
    <field index="1" term="http://rs.tdwg.org/dwc/terms/species"/>
    <field index="2" term="http://rs.tdwg.org/dwc/terms/countryCode"/>
    <field term="http://rs.tdwg.org/dwc/terms/kingdom" default="Plantae"/>
  </core>
</archive>"#;

    #[test]
    fn parses_gbif_meta() {
        let c = parse_meta(META).expect("parses");
        assert_eq!(c.location, "occurrence.txt");
        assert_eq!(c.delimiter, "\t");
        assert_eq!(c.ignore_header_lines, 1);
        assert_eq!(c.columns, 3);
        assert!(check_header(&c, "gbifID\tspecies\tcountryCode").is_ok());
        let e = check_header(&c, "gbifID\tspecies").expect_err("short header");
        assert!(e.contains("2 columns") && e.contains("indexes 3"), "{e}");
    }

    #[test]
    fn refuses_meta_without_core() {
        let e = parse_meta("<archive></archive>").expect_err("no core");
        assert!(e.contains("no <core>"), "{e}");
        let e = parse_meta("<archive><core><files></files></core>").expect_err("bad");
        assert!(e.contains("meta.xml"), "{e}");
    }
}
