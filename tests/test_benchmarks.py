"""The benchmark command runs end to end (a quick smoke run; the real numbers are in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from captioner.packed_layers import packing_available

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_prints_tables_and_writes_json(tmp_path):
    output = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--no-peers", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1. End to end, JPEG files to captions" in done.stdout and "images/s" in done.stdout
    report = json.loads(output.read_text())
    runs = report["sections"]["throughput"]
    assert [(r["batch_size"], r["beam_size"]) for r in runs] == [(1, 1), (1, 3), (16, 1), (16, 3), (64, 1), (64, 3)]
    assert all(r["images_per_s"] > 0 and r["peak_rss_mb"] > 0 for r in runs)
    assert [r["guide"] for r in report["sections"]["guidance"]] == [False, True]  # side by side, same run
    assert "1b. Open-world guidance" in done.stdout
    beam = report["sections"]["beam_search"]
    assert beam["same_captions"] == beam["images"]  # batching never changes a caption
    assert report["sections"]["latency"]["p95_ms"] >= report["sections"]["latency"]["p50_ms"] > 0
    stages = report["sections"]["stages"]
    assert "4. Each stage alone" in done.stdout and stages["images"] > 0
    assert min(stages[f"{stage}_images_per_s"] for stage in ("loading", "encoder", "search")) > 0
    assert f"encoder ({stages['encoder']}" in done.stdout and stages["encoder"] in ("OpenVINO", "PyTorch")


def test_the_search_profile_names_where_its_time_goes():
    done = subprocess.run([sys.executable, "benchmarks/profile_search.py", "--images", "8", "--batch-size", "4",
                           "--top", "5"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "batch 4: search and captions" in done.stdout and "images/s" in done.stdout
    assert "function calls" in done.stdout and "tottime" in done.stdout  # the profile itself


@pytest.mark.skipif(not packing_available(), reason="this PyTorch has no oneDNN")
def test_the_packed_layers_benchmark_times_each_layer_both_ways():
    done = subprocess.run([sys.executable, "benchmarks/packed_layers.py", "--rows", "3", "--calls", "2",
                           "--repeats", "1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for layer in ("attention LSTM cell", "output layer", "language model LSTM, one step"):
        assert layer in done.stdout
    assert done.stdout.count("x |") == 4  # a ratio per layer


def test_some_sections_alone_and_an_unknown_one_refused(tmp_path):
    output = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--sections", "latency,stages",
                           "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(json.loads(output.read_text())["sections"]) == {"latency", "stages"}
    assert "1. End to end" not in done.stdout and "whole pipeline" not in done.stdout  # no table 1 to compare with
    refused = subprocess.run([sys.executable, "benchmarks/run.py", "--sections", "latency,nonsense"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "unknown section(s) nonsense" in refused.stderr


def test_side_by_side_times_each_variant_from_its_own_checkout():
    done = subprocess.run([sys.executable, "benchmarks/side_by_side.py", "--variant", "float32=.:CAPTIONER_BFLOAT16=0",
                           "--variant", f"again={ROOT}", "--images", "8", "--batch-size", "4", "--runs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("|") and "images/s" not in line
            and not line.startswith("|-")]
    assert [row.split("|")[1].strip() for row in rows] == ["float32", "again"]
    first = [cell.strip() for cell in rows[0].split("|")[1:-1]]  # variant, runs, mean, %, best, %, peak RSS
    assert first[3] == first[5] == "100%" and float(first[6].replace(",", "")) > 100
    bad = subprocess.run([sys.executable, "benchmarks/side_by_side.py", "--variant", "nonsense"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "NAME=CHECKOUT" in bad.stderr


def test_multi30k_benchmark_scores_the_shipped_translator_as_the_task_did(tmp_path):
    pairs = [("A dog runs through the snow.", "Ein Hund rennt durch den Schnee."),
             ("Two men are playing soccer.", "Zwei Männer spielen Fußball."),
             ("A woman's red bag.", "Die rote Tasche einer Frau.")]
    (tmp_path / "test_2016_flickr.de.tsv").write_text("".join(f"{en}\t{de}\n" for en, de in pairs))
    output = tmp_path / "multi30k.json"
    done = subprocess.run([sys.executable, "benchmarks/multi30k.py", "--pairs", str(tmp_path), "--translator",
                           f"de={ROOT / 'assets' / 'postprocessors' / 'translate-rnn-de'}", "--sets", "test_2016_flickr",
                           "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(output.read_text())
    [row] = report["quality"]  # no Apertium way from English to German
    assert row["system"] == "translate-rnn" and row["sentences"] == 3 and 0 < row["chrf"] <= 100
    assert 0 <= row["bleu"] <= 100 and (row["meteor"] is None or 0 < row["meteor"] <= 100)
    assert [s["count"] for s in report["speed"]] == [3] and report["speed"][0]["per_s"] > 0
    assert "BLEU as the task scored it" in done.stdout


def test_task_tokenisation_rebuilds_the_multi30k_references():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from multi30k import task_tokenised

    assert task_tokenised(["Un chien, d'un homme (âgé)."], "fr") == ["un chien , d&apos; un homme ( âgé ) ."]
    assert task_tokenised(["Ein Schwarz-Weiß-Foto."], "de") == ["ein schwarz-weiß-foto ."]


def test_the_first_caption_benchmark_times_both_modes_in_fresh_processes():
    done = subprocess.run([sys.executable, "benchmarks/first_caption.py", "--rounds", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("|     1")]
    assert [row[1].strip() for row in rows] == ["as loaded", "warmed up"]
    assert float(rows[0][3]) == 0 < float(rows[1][3])  # only the second warmed up
