"""Bulk captioning on a local Ray instance (loopback only), with a handful of images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from captioner import Captioner
from conftest import random_photo

ray = pytest.importorskip("ray", reason='needs pip install "captioner[ray]"') if not os.environ.get(
    "CAPTIONER_REQUIRE_RAY") else __import__("ray")


@pytest.fixture(scope="module")
def local_ray():
    # Logical CPUs: two model replicas and the file readers each need one (more than this machine has is fine).
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(random_photo(i, (60, 80))).save(folder / ("more" if i > 2 else ".") / f"p{i}.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n nothing else")
    return folder


def read_rows(folder: Path, pattern: str) -> list[dict]:
    rows = []
    for path in sorted(folder.glob(pattern)):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_bulk_job_writes_one_row_per_image_with_errors_kept(local_ray, photos, tmp_path):
    from captioner.bulk import BulkJob, run_bulk

    summary = run_bulk(BulkJob([str(photos)], str(tmp_path / "out"), workers=2, batch_size=2,
                               postprocess=("sentiment",)))
    assert summary.images == 6 and len(summary.errors) == 1 and summary.errors[0].startswith(str(photos / "broken.png"))
    assert not list((tmp_path / "out").glob("*.json"))  # JSON lines are *.jsonl
    raw = "".join(path.read_text() for path in (tmp_path / "out").glob("*.jsonl"))
    assert "\\/" not in raw  # paths as they are, not escaped
    rows = {Path(row["image"]).name: row for row in read_rows(tmp_path / "out", "*.jsonl")}
    assert sorted(rows) == ["broken.png", "p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg"]
    assert rows["broken.png"] == {"image": str(photos / "broken.png"), "error": summary.errors[0]}
    reference = Captioner.from_pretrained(device="cpu")
    for name in ("p0.jpg", "p4.jpg"):
        path = next(photos.rglob(name))
        expected = reference.caption(str(path), postprocess=["sentiment"]).to_dict()  # caption --format jsonl's row
        row = rows[name]
        assert set(row) == set(expected) >= {"nbest", "objects", "required_words", "sentiment"}
        assert row["image"] == str(path) and row["caption"] == expected["caption"]
        assert [c["caption"] for c in row["nbest"]] == [c["caption"] for c in expected["nbest"]]
        assert [o["label"] for o in row["objects"]] == [o["label"] for o in expected["objects"]]
        assert row["sentiment"] == expected["sentiment"]


def test_the_captioner_maps_over_read_images_too(local_ray, photos, tmp_path):
    from captioner.bulk import RayCaptioner

    dataset = ray.data.read_images(str(photos / "more"), include_paths=True, mode="RGB")
    captions = dataset.map_batches(RayCaptioner, fn_constructor_kwargs={"device": "cpu"}, batch_size=4,
                                   batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=1))
    captions.write_parquet(str(tmp_path / "parquet"))
    table = ray.data.read_parquet(str(tmp_path / "parquet")).take_all()
    assert sorted(Path(row["image"]).name for row in table) == ["p3.jpg", "p4.jpg"]
    assert all(row["caption"] and row["error"] is None for row in table)


def test_bulk_command(local_ray, photos, tmp_path):
    from click.testing import CliRunner

    from captioner.cli import cli

    done = CliRunner().invoke(cli, ["bulk", str(photos / "more"), "-o", str(tmp_path / "cli"), "--format", "parquet",
                                    "--beam-size", "1"])
    assert done.exit_code == 0, done.output
    rows = ray.data.read_parquet(str(tmp_path / "cli")).take_all()
    assert sorted(Path(row["image"]).name for row in rows) == ["p3.jpg", "p4.jpg"] and all(r["caption"] for r in rows)
