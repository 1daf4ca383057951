"""Readers for Flickr (CSV and token files), COCO and Karpathy split files, on tiny fixtures."""

import json

import pytest

from captioner.data import load_dataset
from captioner.data.readers import DatasetError


def test_flickr_csv_with_quoted_commas_and_unsplit_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "splits").mkdir()
    (tmp_path / "captions.txt").write_text(
        'image,caption\na.jpg,A dog runs .\na.jpg,"A dog, brown, runs ."\nb.jpg,A cat .\nc.jpg,A bird .\n'
    )
    (tmp_path / "splits" / "Flickr_8k.trainImages.txt").write_text("a.jpg\n")
    (tmp_path / "splits" / "Flickr_8k.devImages.txt").write_text("b.jpg\n")
    dataset = load_dataset(tmp_path)
    assert set(dataset.splits) == {"train", "val", "rest"}
    assert dataset.split("train")[0].captions == ("A dog runs .", "A dog, brown, runs .")
    assert dataset.split("train")[0].path == tmp_path / "images" / "a.jpg"
    assert [i.name for i in dataset.split("rest")] == ["c.jpg"]
    assert [i.name for i in dataset.select(["train", "val"])] == ["a.jpg", "b.jpg"]
    with pytest.raises(DatasetError, match="no split 'test'; it has: rest, train, val"):
        dataset.split("test")


def test_flickr_original_token_file_and_text_folder(tmp_path):
    (tmp_path / "Flicker8k_Dataset").mkdir()
    (tmp_path / "Flickr8k_text").mkdir()
    (tmp_path / "Flickr8k_text" / "Flickr8k.token.txt").write_text(
        "a.jpg#0\tA dog runs .\na.jpg#1\tA brown dog .\nb.jpg#0\tA cat .\n"
    )
    (tmp_path / "Flickr8k_text" / "Flickr_8k.testImages.txt").write_text("b.jpg\n")
    dataset = load_dataset(tmp_path)
    assert dataset.split("test")[0].captions == ("A cat .",)
    assert dataset.split("rest")[0].captions == ("A dog runs .", "A brown dog .")
    assert dataset.split("test")[0].path == tmp_path / "Flicker8k_Dataset" / "b.jpg"


def test_coco_captions_json(tmp_path):
    coco = {
        "images": [{"id": 7, "file_name": "000007.jpg"}, {"id": 3, "file_name": "000003.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 7, "caption": "A train at a station."},
            {"id": 2, "image_id": 3, "caption": "A plate of food. "},
            {"id": 3, "image_id": 7, "caption": "A red train."},
        ],
    }
    (tmp_path / "captions_val2017.json").write_text(json.dumps(coco))
    dataset = load_dataset(tmp_path / "captions_val2017.json", images=tmp_path / "val2017", split="val")
    images = dataset.split("val")
    assert [i.name for i in images] == ["000003.jpg", "000007.jpg"]
    assert images[1].captions == ("A train at a station.", "A red train.")
    assert images[0].path == tmp_path / "val2017" / "000003.jpg"


def test_karpathy_split_json(tmp_path):
    karpathy = {"images": [
        {"filepath": "val2014", "filename": "x.jpg", "split": "restval", "sentences": [{"raw": "A man ."}]},
        {"filepath": "val2014", "filename": "y.jpg", "split": "test", "sentences": [{"raw": "A woman ."}, {"raw": "Lady."}]},
        {"filename": "z.jpg", "split": "train", "sentences": [{"raw": "Dogs ."}]},
    ]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(karpathy))
    dataset = load_dataset(tmp_path / "dataset_coco.json", images=tmp_path)
    assert {name: len(v) for name, v in dataset.splits.items()} == {"rest": 1, "test": 1, "train": 1}
    assert dataset.split("test")[0].path == tmp_path / "val2014" / "y.jpg"
    assert dataset.split("test")[0].captions == ("A woman .", "Lady.")


def test_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no Flickr caption file"):
        load_dataset(tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(tmp_path / "bad.json", images=tmp_path)
    with pytest.raises(DatasetError, match="needs the image folder"):
        load_dataset(tmp_path / "bad.json")
    (tmp_path / "captions.txt").write_text("file,text\n")
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="expected a CSV header"):
        load_dataset(tmp_path)


def test_data_check_passes_the_fixture_layout_and_names_each_bad_photo(tiny_flickr):
    from click.testing import CliRunner

    from captioner.cli import cli

    good = CliRunner().invoke(cli, ["data", "check", str(tiny_flickr)])
    assert good.exit_code == 0, good.output
    assert "train       6 photos       12 captions (2 per photo)" in good.stdout
    assert good.stdout.rstrip().endswith(f"ok: every photo is there and readable; train with --data {tiny_flickr}")
    (tiny_flickr / "images" / "img3.jpg").unlink()
    (tiny_flickr / "images" / "img6.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    bad = CliRunner().invoke(cli, ["data", "check", str(tiny_flickr)])
    assert bad.exit_code == 1
    errors = bad.stderr.splitlines()
    assert errors[0] == f"captioner: error: {tiny_flickr / 'images' / 'img3.jpg'}: no such file"
    assert errors[1].startswith(f"captioner: error: {tiny_flickr / 'images' / 'img6.jpg'}: not a readable image (")
    assert errors[2:] == ["2 problems"]
    (tiny_flickr / "splits" / "Flickr_8k.trainImages.txt").unlink()
    untrainable = CliRunner().invoke(cli, ["data", "check", str(tiny_flickr)])
    assert f"captioner: error: {tiny_flickr}: no train split" in untrainable.stderr
    missing = CliRunner().invoke(cli, ["data", "check", str(tiny_flickr / "nowhere")])
    assert missing.exit_code == 1 and missing.stderr == f"captioner: error: {tiny_flickr / 'nowhere'}: no such file or folder\n"


def test_distillation_data_adds_the_teachers_captions_to_training_photos_only(tiny_flickr, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    teacher = tmp_path / "teacher.jsonl"
    rows = [{"image": str(tiny_flickr / "images" / f"img{i}.jpg"), "caption": "a dog",
             "nbest": [{"caption": "a dog"}, {"caption": "a dog"}, {"caption": "a red dog"}, {"caption": "a cat"}]}
            for i in range(8)]  # the teacher's 8 photos include the 2 validation ones: never added
    teacher.write_text("".join(json.dumps(row) + "\n" for row in rows[:5] + [{"image": "img5.jpg", "error": "x"}]
                               + rows[6:]))
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_distillation_data.py"
    done = subprocess.run([sys.executable, str(script), str(tiny_flickr), str(teacher), str(tmp_path / "out")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("wrote 26 captions (10 from the teacher) to ")
    assert done.stdout.endswith(" (no teacher caption for 1 training photos)\n")
    dataset = load_dataset(tmp_path / "out")
    human = load_dataset(tiny_flickr)
    for split in ("train", "val"):
        for mine, theirs in zip(dataset.split(split), human.split(split)):
            extra = list(mine.captions[len(theirs.captions):])
            assert mine.captions[:len(theirs.captions)] == theirs.captions and mine.path.is_file()
            expected = [] if split == "val" or mine.name == "img5.jpg" else ["a dog", "a red dog"]
            assert extra == expected, mine.name
