"""Cleaned occurrence records (species, lon, lat) of one species, read from a
GBIF occurrence download: a Darwin Core Archive, unpacked by twinflow (the
`gbif-occurrences` source). The archive's meta.xml says which file is the core,
how it is delimited and which column holds which Darwin Core term; records
without coordinates, with a zero-zero or out-of-range position, or of fossil or
living specimens are dropped, as GBIF's own cleaning guides suggest."""
import argparse
import csv
import os
import sys
import xml.etree.ElementTree as ET

DWC = "http://rs.tdwg.org/dwc/terms/"
GBIF = "http://rs.gbif.org/terms/1.0/"
TEXT = "{http://rs.tdwg.org/dwc/text/}"

p = argparse.ArgumentParser()
p.add_argument("--dwca", required=True, help="the unpacked Darwin Core Archive")
p.add_argument("--species", required=True, help="e.g. aegilops-tauschii")
p.add_argument("--min-records", type=int, default=30)
p.add_argument("--out", required=True)
a = p.parse_args()

meta = ET.parse(os.path.join(a.dwca, "meta.xml")).getroot()
core = meta.find(f"{TEXT}core")
if core is None:
    sys.exit(f"{a.dwca}/meta.xml has no <core>")
location = core.find(f"{TEXT}files/{TEXT}location").text.strip()
delimiter = core.get("fieldsTerminatedBy", ",").encode().decode("unicode_escape")
header = int(core.get("ignoreHeaderLines", "0"))
columns = {f.get("term"): int(f.get("index")) for f in core.findall(f"{TEXT}field") if f.get("index")}
# GBIF downloads name the species with GBIF's term; other archives may use
# Darwin Core's `scientificName` (binomial first).
species_term = next((t for t in (GBIF + "species", DWC + "species", DWC + "scientificName") if t in columns), None)
need = [species_term] + [DWC + t for t in ("decimalLongitude", "decimalLatitude")]
missing = [t or "the species" for t in need if t not in columns]
if missing:
    sys.exit(f"{a.dwca}: the core file has no column for {', '.join(missing)}")
basis = columns.get(DWC + "basisOfRecord")

wanted = a.species.replace("-", " ").capitalize()
kept = []
with open(os.path.join(a.dwca, location), newline="", encoding="utf-8") as f:
    rows = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    for i, row in enumerate(rows):
        if i < header:
            continue
        species, lon, lat = (row[columns[t]] if columns[t] < len(row) else "" for t in need)
        if " ".join(species.split()[:2]) != wanted:
            continue
        if basis is not None and basis < len(row) and row[basis] in ("FOSSIL_SPECIMEN", "LIVING_SPECIMEN"):
            continue
        try:
            x, y = float(lon), float(lat)
        except ValueError:
            continue
        if (x, y) == (0.0, 0.0) or not (-180 <= x <= 180 and -90 <= y <= 90):
            continue
        kept.append((x, y))

if len(kept) < a.min_records:
    sys.exit(f"{wanted}: {len(kept)} usable records in the download, fewer than --min-records {a.min_records}")
with open(a.out, "w") as f:
    f.write("species,lon,lat\n")
    for x, y in kept:
        f.write(f"{a.species},{x:.4f},{y:.4f}\n")
print(f"{wanted}: {len(kept)} records")
