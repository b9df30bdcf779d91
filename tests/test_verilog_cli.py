"""`dpfm verilog`: writes Verilog of the core that Icarus accepts, and rejects bad configurations cleanly."""

import shutil
import subprocess

import pytest

from dpfm.host.cli import main


@pytest.mark.iverilog
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("k, lanes, toper", [(8, 1, "serial"), (8, 2, "serial"), (2, 1, "parallel"),
                                            (4, 1, "parallel-2")])
def test_writes_verilog_that_iverilog_elaborates(tmp_path, capsys, k, lanes, toper):
    out = tmp_path / "core.v"
    assert main(["verilog", "--task", "seed-sum", "--k", str(k), "--lanes", str(lanes), "--toper", toper,
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert "module dpfm_core(" in text
    for port in ("bus__valid", "bus__we", "bus__addr", "bus__wdata", "bus__ready", "bus__rdata"):
        assert port in text
    done = subprocess.run(["iverilog", "-g2012", "-s", "dpfm_core", "-o", str(tmp_path / "a.out"), str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    printed = capsys.readouterr().out
    assert "61 parameters" in printed and f"lanes={lanes} {toper} toper" in printed


@pytest.mark.parametrize("argv, problem", [
    (["--task", "seed-sum", "--k", "0"], "K >= 1"),
    (["--task", "bernoulli", "--k", "4"], "MSE loss only"),
    (["--task", "no-such-task", "--k", "4"], "unknown task"),
    (["--task", "seed-sum", "--k", "4", "--max-batch", "0"], "max_batch"),
    (["--task", "seed-sum", "--k", "4", "--formats", "x=q1"], "fixed-point format"),
    (["--task", "seed-sum", "--k", "4", "--lanes", "6"], "widest layer has 5 units"),
    (["--task", "seed-sum", "--k", "2", "--toper", "parallel-4"], "only K + 1 = 3 candidates"),
])
def test_bad_configuration_is_one_line_error(tmp_path, capsys, argv, problem):
    assert main(["verilog", *argv, "-o", str(tmp_path / "x.v")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dpfm: error: ") and problem in err and err.count("\n") == 1
    assert not (tmp_path / "x.v").exists()


def test_missing_output_directory_is_an_error(tmp_path, capsys):
    assert main(["verilog", "--task", "seed-sum", "--k", "2", "-o", str(tmp_path / "nope" / "x.v")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture
def canned_verilog(monkeypatch):
    """The command's core and conversion replaced by a canned module: the tests that use it are about the
    file written, and a real conversion takes seconds."""
    from amaranth.back import verilog

    import dpfm.hw.core
    text = "module dpfm_core(\n" + "  wire w;\n" * 2000 + "endmodule\n"
    monkeypatch.setattr(dpfm.hw.core, "DpfmCore", lambda cfg: None)
    monkeypatch.setattr(verilog, "convert", lambda core, name: text)
    return text


def test_failed_write_leaves_the_old_file(tmp_path, canned_verilog, disk_full):
    out = tmp_path / "core.v"
    out.write_text("// the previous core\n")
    with pytest.raises(OSError):
        main(["verilog", "--task", "seed-sum", "--k", "2", "-o", str(out)])
    assert out.read_text() == "// the previous core\n"
    assert [p.name for p in tmp_path.iterdir()] == ["core.v"]


def test_output_gets_a_plain_files_permissions(tmp_path, canned_verilog, umask):
    umask(0o027)
    out = tmp_path / "core.v"
    assert main(["verilog", "--task", "seed-sum", "--k", "2", "-o", str(out)]) == 0
    assert out.read_text() == canned_verilog
    assert out.stat().st_mode & 0o777 == 0o640


def test_output_that_is_a_directory_is_an_error(tmp_path, capsys):
    assert main(["verilog", "--task", "seed-sum", "--k", "2", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dpfm: error: ") and "is a directory" in err and err.count("\n") == 1
