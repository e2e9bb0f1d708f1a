"""curate.io's folder swap: a folder a command writes is replaced whole or not at all."""

import pytest

from curate.errors import CurateError
from curate.atomic import staged_folder
from curate.io import check_replaceable


def test_staged_folder_creates_and_replaces_whole(tmp_path):
    target = tmp_path / "out"
    with staged_folder(target) as tmp:
        (tmp / "a.txt").write_text("one")
        assert not target.exists()  # nothing shows before the block ends
    assert (target / "a.txt").read_text() == "one"
    seen = {}

    def before_discard(old, new):
        seen["old"] = sorted(p.name for p in old.iterdir())
        seen["new"] = sorted(p.name for p in new.iterdir())
        (old / "a.txt").rename(new / "kept.txt")

    with staged_folder(target, before_discard) as tmp:
        (tmp / "b.txt").write_text("two")
    assert seen == {"old": ["a.txt"], "new": ["b.txt"]}
    assert sorted(p.name for p in target.iterdir()) == ["b.txt", "kept.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or replaced folder left


def test_an_error_inside_leaves_the_target_as_it_was(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("one")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_folder(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_check_replaceable(tmp_path):
    check_replaceable(tmp_path / "missing", "results.json", "a compare folder")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "results.json", "a compare folder")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "results.json").write_text("{}")
    check_replaceable(tmp_path / "mine", "results.json", "a compare folder")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("x")
    with pytest.raises(CurateError, match=r"theirs: exists and is not a compare folder \(no results.json\)"):
        check_replaceable(tmp_path / "theirs", "results.json", "a compare folder")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CurateError, match="not a compare folder"):
        check_replaceable(tmp_path / "file", "results.json", "a compare folder")
