"""Runs rocrate-validator (PyPI roc-validator) on a crate without network.

The validator reads a crate's JSON-LD with rdflib, which fetches remote
@context documents. This machine (and CI) reaches no web site, so the
RO-Crate 1.1 context is served from a local copy of the published document
(the one PyPI's rocrate 0.10.0 ships as rocrate/data/ro-crate.jsonld; scripts/setup
puts it in place). Nothing else changes: the validator's own checks run as
released.

usage: python3 validate_crate.py CONTEXT_1_1_FILE -- VALIDATOR ARGS...
"""

import io
import json
import sys

import urllib3
from requests.adapters import HTTPAdapter

LOCAL = {}


def serve_local(adapter_send):
    """HTTPAdapter.send that answers the local documents itself."""

    def send(self, request, *args, **kwargs):
        url = request.url.rstrip("/")
        if url in LOCAL:
            raw = urllib3.HTTPResponse(
                body=io.BytesIO(LOCAL[url]),
                headers={"Content-Type": "application/ld+json"},
                status=200,
                preload_content=False,
                request_url=request.url,
            )
            return self.build_response(request, raw)
        return adapter_send(self, request, *args, **kwargs)

    return send


def main():
    context_file, sep, *args = sys.argv[1:]
    if sep != "--":
        sys.exit(__doc__)
    with open(context_file, "rb") as f:
        document = f.read()
    json.loads(document)  # fail here, clearly, on a broken copy
    for url in ("https://w3id.org/ro/crate/1.1/context", "http://w3id.org/ro/crate/1.1/context"):
        LOCAL[url] = document
    HTTPAdapter.send = serve_local(HTTPAdapter.send)
    from rocrate_validator.cli import cli

    sys.argv = ["rocrate-validator", *args]
    cli()


if __name__ == "__main__":
    main()
