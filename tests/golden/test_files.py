"""golden/contract/files.py: outputs are replaced whole or not at all, with a plain file's permissions,
and an unwritable destination is refused before any work."""

import json
import os
import stat

import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import atomic_path, check_writable, write_json, write_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    write_json(path, {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert os.listdir(tmp_path) == ["r.json"]


def test_failed_write_leaves_the_old_file(tmp_path, disk_full):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(OSError):
        write_json(path, {"a": list(range(100))})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.json"]       # the temporary file is gone too


def test_error_inside_atomic_path_leaves_no_file(tmp_path):
    path = tmp_path / "out.png"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            open(tmp, "wb").close()
            raise RuntimeError("the figure could not be drawn")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=lambda m: f"umask-{m:03o}")
def test_output_gets_a_plain_files_permissions(tmp_path, umask, mask):
    """0666 less the umask, as `open(path, "w")` gives, not the temporary file's 0600; also when
    replacing a file that had other permissions."""
    umask(mask)
    new, old = tmp_path / "new.v", tmp_path / "old.v"
    old.write_text("old")
    old.chmod(0o600)
    write_text(new, "x")
    write_text(old, "x")
    assert mode(new) == mode(old) == 0o666 & ~mask


def test_check_writable_accepts_directories_it_can_create(tmp_path):
    check_writable(tmp_path / "a" / "b" / "r.json")
    assert not (tmp_path / "a").exists()           # checking creates nothing
    write_json(tmp_path / "a" / "b" / "r.json", [])
    assert (tmp_path / "a" / "b" / "r.json").read_text() == "[]\n"


def test_check_writable_refuses_a_directory_and_a_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DpfmError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(DpfmError, match="not a writable directory"):
        check_writable(tmp_path / "file" / "sub" / "r.json")
