"""Reading part of a file: a staged blob in a pack. On gs:// it must be one ranged request of
exactly the blob's bytes (Beam's reader fetches 16 MB from the offset, and opens a new client at
every open). Cloud Storage cannot be reached from here: the real google-cloud-storage client talks
to a small local HTTP server that plays its JSON API's media download (STORAGE_EMULATOR_HOST, the
client's own switch for emulators) and records every request."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import threading

import pytest

from vlcurate.transforms.io import files
from vlcurate.transforms.io.files import read_range
from vlcurate.transforms.io.blobs import StagedSample
from vlcurate.transforms.io.staging import Staging, StagingLost

PACK = bytes(range(256)) * 4096  # 1 MB: a pack of staged blobs


class _MediaDownloads(http.server.BaseHTTPRequestHandler):
    """GET /download/storage/v1/b/BUCKET/o/NAME?alt=media with an optional Range header."""

    requests: list = []

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("Range")))
        if not self.path.startswith("/download/storage/v1/b/bucket/o/"):
            self.send_error(404)
            return
        asked = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range") or "")
        start, end = (int(asked[1]), int(asked[2])) if asked else (0, len(PACK) - 1)
        body = PACK[start:end + 1]
        self.send_response(206 if asked else 200)
        self.send_header("Content-Length", str(len(body)))
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(PACK)}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def cloud_storage(monkeypatch):
    """The local server as Cloud Storage, with no credentials (Beam then connects anonymously at
    once instead of retrying Google's default credentials for half a minute)."""
    from apache_beam.internal.gcp import auth

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MediaDownloads)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)
    monkeypatch.setattr(files, "_GCS", threading.local())  # no client of another test's server
    _MediaDownloads.requests = []
    yield _MediaDownloads.requests
    server.shutdown()


def downloads(requests) -> list:
    return [asked for path, asked in requests if path.startswith("/download/")]


def test_a_range_of_a_local_file(tmp_path):
    path = tmp_path / "pack"
    path.write_bytes(PACK)
    assert read_range(str(path), 1000, 5000) == PACK[1000:6000]
    assert read_range(str(path), len(PACK) - 3, 10) == PACK[-3:]  # the file ends first


def test_a_range_on_cloud_storage_is_one_request_of_exactly_its_bytes(cloud_storage):
    uri = "gs://bucket/out/.staging/p/samples/packs/a.pack"
    assert read_range(uri, 1000, 5000) == PACK[1000:6000]
    assert read_range(uri, 7, 3) == PACK[7:10]
    assert read_range(uri, 5, 0) == b""
    assert downloads(cloud_storage) == ["bytes=1000-5999", "bytes=7-9"]
    assert files._gcs_client() is files._gcs_client()  # one client for every read of a thread


def test_a_packed_blob_on_cloud_storage_loads_from_its_range_and_is_checked(cloud_storage):
    offset, size = 300_000, 150_000
    blob = PACK[offset:offset + size]
    record = StagedSample(key="pdf-0", uri="file:///a.pdf", blob="gs://bucket/out/.staging/p/samples/packs/a.pack",
                          sha256=hashlib.sha256(blob).hexdigest(), size=size, category="document_ocr",
                          locator="page=1", offset=offset)
    staging = Staging.of("gs://bucket/out", "p")
    assert staging.load(record) == blob
    assert downloads(cloud_storage) == [f"bytes={offset}-{offset + size - 1}"]

    with pytest.raises(StagingLost, match="not the bytes staged"):  # a record whose bytes changed
        staging.load(dataclasses.replace(record, offset=offset + 1))
