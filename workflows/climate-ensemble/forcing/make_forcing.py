"""Writes the example's static STAC catalog of synthetic boundary forcing.

catalog.json -> boundary-forcing/collection.json -> one item per month of
2030 (`2030-01` ... `2030-12`, at boundary-forcing/<id>/<id>.json), each with
one asset `forcing`: <id>/forcing.csv, a few rows of weekly sea-surface
temperature anomaly (K) and CO2 concentration (ppm). Deterministic: running
it again writes the same files. All links and hrefs are relative, so the
catalog works wherever the repository is checked out.

    python3 workflows/climate-ensemble/forcing/make_forcing.py
"""
import json, math, os

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = "boundary-forcing"
YEAR = 2030


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def forcing_rows(month):
    """Weekly rows (days 1, 8, 15, 22) of one month."""
    rows = []
    for day in (1, 8, 15, 22):
        t = month - 1 + (day - 1) / 31
        sst = 0.25 * math.sin(2 * math.pi * (t - 2) / 12) + 0.01 * t
        co2 = 428.0 + 0.2 * t + 3.0 * math.sin(2 * math.pi * (t - 1.5) / 12)
        rows.append(f"{YEAR}-{month:02d}-{day:02d},{sst:.3f},{co2:.2f}")
    return rows


def main():
    ids = [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    write_json(os.path.join(HERE, "catalog.json"), {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "climate-ensemble-forcing",
        "description": "Synthetic boundary forcing of the climate-ensemble example (sst, co2), one item per month.",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "child", "href": f"./{COLLECTION}/collection.json", "type": "application/json"},
        ],
    })
    write_json(os.path.join(HERE, COLLECTION, "collection.json"), {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "Monthly boundary forcing for 2030: weekly sea-surface temperature anomaly and CO2.",
        "license": "CC0-1.0",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[f"{YEAR}-01-01T00:00:00Z", f"{YEAR}-12-31T23:59:59Z"]]},
        },
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ] + [
            {"rel": "item", "href": f"./{i}/{i}.json", "type": "application/geo+json"} for i in ids
        ],
    })
    for month, item_id in enumerate(ids, start=1):
        item_dir = os.path.join(HERE, COLLECTION, item_id)
        write_json(os.path.join(item_dir, f"{item_id}.json"), {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "collection": COLLECTION,
            "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]},
            "bbox": [-180.0, -90.0, 180.0, 90.0],
            "properties": {"datetime": f"{item_id}-01T00:00:00Z"},
            "links": [
                {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../collection.json", "type": "application/json"},
                {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            ],
            "assets": {
                "forcing": {
                    "href": "./forcing.csv",
                    "type": "text/csv",
                    "title": "Weekly sea-surface temperature anomaly (K) and CO2 (ppm)",
                    "roles": ["data"],
                },
            },
        })
        with open(os.path.join(item_dir, "forcing.csv"), "w") as f:
            f.write("date,sst,co2\n")
            f.write("\n".join(forcing_rows(month)) + "\n")


if __name__ == "__main__":
    main()
