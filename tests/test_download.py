"""``fairbinn download``: a local HTTP server on 127.0.0.1 serves the shared data files as a mirror."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from fairbinn import download as dl
from fairbinn.cli import main
from fairbinn.download import DOWNLOADS, ChecksumError, DownloadError, download, manual_steps
from fairbinn.graph.datasets import GRAPH_DATASETS


class Mirror:
    """What the server serves (URL path -> bytes), how it misbehaves, and the requests it saw."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_first: set[str] = set()  # paths whose first response stops halfway
        self.cut_after: dict[str, int] = {}  # paths whose every response stops after this many bytes
        self.ignore_range = False
        self.no_length = False  # send no Content-Length: the body ends when the connection closes
        self.url = ""

    def ranges(self, path: str) -> list[str | None]:
        return [header for seen, header in self.requests if seen == path]


def _handler(mirror: Mirror):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            header = self.headers.get("Range")
            mirror.requests.append((self.path, header))
            body = mirror.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if header and not mirror.ignore_range:
                start = int(header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            if not mirror.no_length:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.path in mirror.cut_first:
                mirror.cut_first.discard(self.path)
                payload = payload[: len(payload) // 2]
            elif self.path in mirror.cut_after:
                payload = payload[: mirror.cut_after[self.path]]
            try:
                self.wfile.write(payload)  # then the connection closes, short of Content-Length when cut
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up: it refused the file after reading the headers

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def mirror():
    state = Mirror()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)


def _serve(mirror: Mirror, data_dir: Path, dataset: str) -> dict[str, bytes]:
    """Serve the shared copies of a dataset's files at ``/<folder>/<name>``; returns name -> bytes."""
    source = DOWNLOADS[dataset]
    served = {}
    for remote in source.files:
        served[remote.name] = (data_dir / source.folder / remote.name).read_bytes()
        mirror.files[f"/{source.folder}/{remote.name}"] = served[remote.name]
    return served


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.part"))


def test_clean_download_then_skip(mirror, data_dir, tmp_path):
    served = {**_serve(mirror, data_dir, "nba"), **_serve(mirror, data_dir, "adult")}
    lines = []
    paths = download("nba", tmp_path, mirror=mirror.url, progress=lines.append)
    paths += download("adult", tmp_path, mirror=mirror.url + "/", progress=lines.append)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "nba/nba.csv", "nba/nba_relationship.txt", "adult/adult.data", "adult/adult.test", "adult/adult.names",
    ]
    for path in paths:
        assert path.read_bytes() == served[path.name]
    assert _leftovers(tmp_path / "nba") == [] and _leftovers(tmp_path / "adult") == []
    assert any("nba/nba.csv: 128,489 bytes, sha256 verified" in line for line in lines)
    # the loaders read what was downloaded
    from fairbinn.tabular import load_adult

    assert len(load_adult(tmp_path).test) == 15_060

    seen = len(mirror.requests)
    lines.clear()
    assert download("nba", tmp_path, mirror=mirror.url, progress=lines.append) == paths[:2]
    assert len(mirror.requests) == seen  # nothing fetched
    assert all("already present and verified" in line for line in lines) and len(lines) == 2


def test_corrupted_file_is_not_kept(mirror, data_dir, tmp_path):
    served = _serve(mirror, data_dir, "nba")
    corrupted = bytearray(served["nba.csv"])
    corrupted[1000] ^= 0xFF  # same size, one byte flipped
    mirror.files["/nba/nba.csv"] = bytes(corrupted)
    with pytest.raises(ChecksumError) as error:
        download("nba", tmp_path, mirror=mirror.url, progress=None)
    message = str(error.value)
    expected = DOWNLOADS["nba"].files[0].sha256
    assert "nba/nba.csv" in message and f"{mirror.url}/nba/nba.csv" in message
    assert expected in message and hashlib.sha256(corrupted).hexdigest() in message
    assert not (tmp_path / "nba" / "nba.csv").exists()
    assert _leftovers(tmp_path / "nba") == []


def test_cut_connection_resumes_with_range(mirror, data_dir, tmp_path):
    served = _serve(mirror, data_dir, "nba")
    mirror.cut_first.add("/nba/nba_relationship.txt")
    lines = []
    download("nba", tmp_path, mirror=mirror.url, progress=lines.append)
    size = len(served["nba_relationship.txt"])
    assert mirror.ranges("/nba/nba_relationship.txt") == [None, f"bytes={size // 2}-"]
    assert (tmp_path / "nba" / "nba_relationship.txt").read_bytes() == served["nba_relationship.txt"]
    assert any(f"interrupted at {size // 2:,} of {size:,} bytes" in line for line in lines)
    assert _leftovers(tmp_path / "nba") == []


def test_part_from_an_earlier_run_is_resumed(mirror, data_dir, tmp_path):
    served = _serve(mirror, data_dir, "nba")
    folder = tmp_path / "nba"
    folder.mkdir()
    (folder / "nba.csv.part").write_bytes(served["nba.csv"][:50_000])
    lines = []
    download("nba", tmp_path, mirror=mirror.url, progress=lines.append)
    assert mirror.ranges("/nba/nba.csv") == ["bytes=50000-"]
    assert (folder / "nba.csv").read_bytes() == served["nba.csv"]
    assert any("resuming" in line and "50,000" in line for line in lines)
    # a .part holding every byte already: the server answers 416, the file is verified and kept
    (folder / "nba.csv").rename(folder / "nba.csv.part")
    download("nba", tmp_path, mirror=mirror.url, progress=None)
    assert mirror.ranges("/nba/nba.csv")[-1] == f"bytes={len(served['nba.csv'])}-"
    assert (folder / "nba.csv").read_bytes() == served["nba.csv"] and _leftovers(folder) == []


def test_server_ignoring_range_restarts_from_zero(mirror, data_dir, tmp_path):
    served = _serve(mirror, data_dir, "nba")
    mirror.ignore_range = True
    folder = tmp_path / "nba"
    folder.mkdir()
    (folder / "nba.csv.part").write_bytes(b"stale bytes of an earlier run")
    lines = []
    download("nba", tmp_path, mirror=mirror.url, progress=lines.append)
    assert mirror.ranges("/nba/nba.csv") == ["bytes=29-"]
    assert (folder / "nba.csv").read_bytes() == served["nba.csv"]
    assert any("starting again from zero" in line for line in lines)


def test_retries_exhausted_keep_the_part_and_a_rerun_resumes(mirror, data_dir, tmp_path):
    served = _serve(mirror, data_dir, "nba")
    mirror.cut_after["/nba/nba.csv"] = 10_000
    with pytest.raises(DownloadError) as error:
        download("nba", tmp_path, mirror=mirror.url, retries=2, progress=None)
    message = str(error.value)
    assert "failed 3 time(s)" in message and "30,000 of 128,489 bytes are kept" in message
    assert "run the command again to resume" in message
    folder = tmp_path / "nba"
    assert not (folder / "nba.csv").exists()
    assert (folder / "nba.csv.part").read_bytes() == served["nba.csv"][:30_000]
    assert mirror.ranges("/nba/nba.csv") == [None, "bytes=10000-", "bytes=20000-"]
    del mirror.cut_after["/nba/nba.csv"]
    download("nba", tmp_path, mirror=mirror.url, progress=None)
    assert mirror.ranges("/nba/nba.csv")[-1] == "bytes=30000-"
    assert (folder / "nba.csv").read_bytes() == served["nba.csv"]


def test_missing_file_on_server_is_a_clear_error(mirror, tmp_path):
    with pytest.raises(DownloadError, match=r"nba/nba.csv: .*/nba/nba.csv answered HTTP 404"):
        download("nba", tmp_path, mirror=mirror.url, progress=None)
    assert len(mirror.requests) == 1  # not retried


def test_existing_different_file_needs_force(mirror, data_dir, tmp_path):
    served = _serve(mirror, data_dir, "nba")
    folder = tmp_path / "nba"
    folder.mkdir()
    (folder / "nba.csv").write_text("my own table\n")
    with pytest.raises(DownloadError, match="is not the expected file.*--force"):
        download("nba", tmp_path, mirror=mirror.url, progress=None)
    assert (folder / "nba.csv").read_text() == "my own table\n"
    download("nba", tmp_path, mirror=mirror.url, force=True, progress=None)
    assert (folder / "nba.csv").read_bytes() == served["nba.csv"]


def test_celeba_prints_manual_steps_without_network(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("celeba must not touch the network")

    monkeypatch.setattr(dl.urllib.request, "urlopen", no_network)
    folder = tmp_path / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    (folder / "img_align_celeba" / "000001.jpg").write_bytes(b"")
    (folder / "img_align_celeba" / "000002.jpg").write_bytes(b"")
    (folder / "list_attr_celeba.txt").write_text("")
    lines = []
    present = download("celeba", tmp_path, progress=lines.append)
    assert present == [folder / "img_align_celeba", folder / "list_attr_celeba.txt"]
    text = "\n".join(lines)
    assert "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in text
    assert "img_align_celeba.zip" in text and f"{folder}/img_align_celeba/000001.jpg" in text
    assert "list_eval_partition.txt   missing" in text and "img_align_celeba/         2 images" in text
    assert text == manual_steps("celeba", tmp_path)


def test_pokec_expects_the_full_published_files(mirror, data_dir, tmp_path):
    for name in ("pokec_z", "pokec_n"):
        published = {(f.name, f.size, f.sha256) for f in GRAPH_DATASETS[name].published}
        assert {(f.name, f.size, f.sha256) for f in DOWNLOADS[name].files} == published
        assert DOWNLOADS[name].folder == "pokec"
    assert DOWNLOADS["pokec_z"].files[0].url == (
        "https://raw.githubusercontent.com/EnyanDai/FairGNN/main/dataset/pokec/region_job.csv"
    )
    # the shared copies are truncated prefixes: served as the mirror, they are refused
    truncated = (data_dir / "pokec_sample" / "region_job.csv").read_bytes()
    mirror.files["/pokec/region_job.csv"] = truncated
    with pytest.raises(ChecksumError) as error:
        download("pokec_z", tmp_path, mirror=mirror.url, progress=None)
    message = str(error.value)
    assert "pokec/region_job.csv" in message and f"offers {len(truncated):,} bytes" in message
    assert "the expected file has 38,608,131" in message and DOWNLOADS["pokec_z"].files[0].sha256 in message
    assert list((tmp_path / "pokec").iterdir()) == []


def test_truncated_file_without_announced_size_fails_verification(mirror, data_dir, tmp_path):
    # the server sends no Content-Length: the size and sha256 are checked on the bytes received
    truncated = (data_dir / "pokec_sample" / "region_job.csv").read_bytes()
    mirror.files["/pokec/region_job.csv"] = truncated
    mirror.no_length = True
    with pytest.raises(ChecksumError) as error:
        download("pokec_z", tmp_path, mirror=mirror.url, progress=None)
    message = str(error.value)
    assert f"got {len(truncated):,} bytes, sha256 {hashlib.sha256(truncated).hexdigest()}" in message
    assert f"expected 38,608,131 bytes, sha256 {DOWNLOADS['pokec_z'].files[0].sha256}" in message
    assert list((tmp_path / "pokec").iterdir()) == []


def test_cli_download(mirror, data_dir, tmp_path, capsys):
    served = _serve(mirror, data_dir, "nba")
    assert main(["download", "NBA", "--data-dir", str(tmp_path), "--mirror", mirror.url]) == 0
    out = capsys.readouterr().out
    assert f"nba/nba.csv: downloading {mirror.url}/nba/nba.csv (128,489 bytes)" in out
    assert "sha256 verified" in out
    assert (tmp_path / "nba" / "nba.csv").read_bytes() == served["nba.csv"]
    assert main(["download", "nba", "celeba", "--data-dir", str(tmp_path), "--mirror", mirror.url]) == 0
    out = capsys.readouterr().out
    assert "already present and verified" in out and "CelebA is not downloaded automatically" in out


def test_cli_download_errors(mirror, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "mnist"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'mnist'" in err and "pokec_z" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "nba", "--data-dir", str(tmp_path), "--mirror", mirror.url, "--retries", "0"])
    assert exit_info.value.code == 2
    assert "fairbinn: error: nba/nba.csv:" in capsys.readouterr().err
