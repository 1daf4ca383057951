"""Model selection: the best score so far, patience, and the state a checkpoint keeps."""

from captioner.atomic import atomic_replace_folder
from captioner.training.early_stopping import EarlyStopping


def test_the_best_score_is_kept_and_patience_runs_out():
    selection = EarlyStopping(patience=2)
    assert [selection.update(epoch, score) for epoch, score in enumerate([0.3, 0.5, 0.4, 0.5])] == [True, True, False, False]
    assert (selection.best_epoch, selection.best_score, selection.exhausted) == (1, 0.5, True)
    resumed = EarlyStopping(patience=2)
    resumed.load(selection.state())
    assert resumed == selection


def test_a_folder_is_replaced_only_once_its_new_content_is_complete(tmp_path):
    target = tmp_path / "best"
    atomic_replace_folder(target, lambda folder: (folder / "model.txt").write_text("one"))
    try:
        atomic_replace_folder(target, lambda folder: (folder / "model.txt").write_text("two") and 1 / 0)
    except ZeroDivisionError:
        pass
    assert (target / "model.txt").read_text() == "one"  # a failed write leaves the old folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # and no staging folder behind
    atomic_replace_folder(target, lambda folder: (folder / "model.txt").write_text("two"))
    assert (target / "model.txt").read_text() == "two"
