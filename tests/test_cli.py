"""The azc command in-process: located errors after parsing, folding without F, F from a
run's best.az header."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from azc import cli
from azc.errors import VerifyError
from azc.frontend import RUN_HEADER, parse_with_source, run_features, run_header
from azc.ir import Component, MemoryConfig

PROGRAM = """\
def Setup():
  s2 = 0.5
  v1[3] = 1.0
  m2[1, 2] = 2.0
def Predict():
  s4 = s2 * s2
  s1 = dot(v0, v1)
def Learn():
  v3 = v0 * s4
  m1 = outer(v3, v1)
"""


def write(tmp_path: Path, text: str, name: str = "prog.az") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def azc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def located(err: str, path: Path, line: int, column: int, message: str, caret: str) -> None:
    """One error, printed as a parse error is: file:line:col, the line and a caret."""
    head, text, marks = err.rstrip("\n").split("\n")
    assert head == f"{path}:{line}:{column}: error: {message}", err
    assert text == "    " + PROGRAM.splitlines()[line - 1], err
    assert marks == "    " + " " * (column - 1) + caret, err


@pytest.mark.parametrize("flag, count, line, column, message, caret", [
    ("--scalars", 4, 6, 3, "address s4 is out of range: the memory has 4 scalar addresses "
     "(s0..s3)", "^^"),
    ("--vectors", 3, 9, 3, "address v3 is out of range: the memory has 3 vector addresses "
     "(v0..v2)", "^^"),
    ("--matrices", 2, 4, 3, "address m2 is out of range: the memory has 2 matrix addresses "
     "(m0..m1)", "^^"),
    ("--features", 3, 3, 6, "element index 3 is out of range for feature size F=3 (0..2)", "^"),
    ("--features", 2, 3, 6, "element index 3 is out of range for feature size F=2 (0..1)", "^"),
])
def test_check_locates_out_of_range_addresses_and_indices(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, count: int, line: int,
        column: int, message: str, caret: str) -> None:
    path = write(tmp_path, PROGRAM)
    assert azc(capsys, "check", path)[0] == 0
    code, out, err = azc(capsys, "check", path, flag, count)
    assert code == 1 and out == ""
    located(err, path, line, column, message, caret)


def test_an_input_address_is_located_at_the_input(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PROGRAM.replace("s4 = s2 * s2", "s4 = s2 * s200"))
    code, _, err = azc(capsys, "check", path, "--scalars", "20")
    assert code == 1
    head, text, marks = err.rstrip("\n").split("\n")
    assert head == (f"{path}:6:13: error: address s200 is out of range: the memory has 20 "
                    f"scalar addresses (s0..s19)")
    assert text == "      s4 = s2 * s200" and marks == "    " + " " * 12 + "^^^^"


@pytest.mark.parametrize("argv", [
    ["show", "--features", "3"], ["show", "--optimized", "--features", "3"],
    ["llvm", "--features", "3"], ["eval", "--task", "linear", "--backend", "interp"],
])
def test_other_subcommands_locate_index_errors(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               argv: list[str]) -> None:
    # v1[3] needs F >= 4: the linear tasks have F=4, so v1[3] becomes v1[5] there
    path = write(tmp_path, PROGRAM.replace("v1[3]", "v1[5]") if argv[0] == "eval" else PROGRAM)
    code, _, err = azc(capsys, argv[0], path, *argv[1:])
    assert code == 1
    index, features = (5, 4) if argv[0] == "eval" else (3, 3)
    assert err.startswith(f"{path}:3:6: error: element index {index} is out of range for "
                          f"feature size F={features}"), err


def test_source_map_locates_verify_errors() -> None:
    program, source = parse_with_source(PROGRAM, "p.az")
    assert source.position(Component.SETUP, 1) == (3, 3)
    assert source.position(Component.LEARN, 1) == (10, 3)
    assert source.span(Component.LEARN, 1).column == 8  # the right-hand side
    assert source.position(Component.LEARN, 2) is None
    with pytest.raises(VerifyError) as info:
        source.verify(program, MemoryConfig.fitting(program, 4).with_features(2))
    err = info.value
    assert err.span is not None and (err.span.line, err.span.column) == (3, 6)
    assert (err.component, err.index, err.field) == ("Setup", 1, "c0")
    assert str(err).startswith("p.az:3:6: error: element index 3")


FOLDABLE = """\
def Setup():
  s2 = 0.5
  s3 = s2 * s2
  v1[2] = 1.0
def Predict():
  s4 = s3 + s2
  s5 = dot(v0, v1)
  s1 = s5 * s4
def Learn():
  s6 = s0 * s3
"""


def test_show_optimized_folds_scalar_constants_without_features(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, FOLDABLE)
    code, out, _ = azc(capsys, "show", "--optimized", path)
    assert code == 0
    assert out == textwrap.dedent("""\
        def Setup():
          v1[2] = 1.0
        def Predict():
          s4 = 0.75
          s5 = dot(v0, v1)
          s1 = s5 * s4
        def Learn():
          pass
        """)
    code, out, _ = azc(capsys, "show", "--stats", path)
    assert code == 0
    assert "fold: 2 instructions replaced by constants (scalar-only ops, no feature size)" in out
    # with F, the vector ops fold too: v1 is invariant, but v0 is not, so s5 stays
    code, out, _ = azc(capsys, "show", "--stats", path, "--features", "4")
    assert code == 0 and "(F=4)" in out


def best_az(tmp_path: Path, features: int) -> Path:
    header = run_header("demo", 1, 0.5, 0.25, features)
    return write(tmp_path, header + FOLDABLE.replace("v1[2]", "v1[3]"), "best.az")


def test_run_header_round_trips() -> None:
    line = run_header("demo", 7, 0.324243, 0.334932, 4)
    assert line == ("# Discovered by azc evolve demo (seed 7): final fitness 0.324243, "
                    "select 0.334932, F=4.\n")
    assert line.rstrip("\n") == RUN_HEADER.format(name="demo", seed=7, final=0.324243,
                                                  select=0.334932, features=4)
    assert run_features(line + FOLDABLE) == 4
    assert run_features("# F=4\n" + FOLDABLE) is None
    assert run_features(FOLDABLE + line) is None


def test_features_come_from_a_best_az_header(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = best_az(tmp_path, 4)
    code, out, _ = azc(capsys, "show", "--stats", path)
    assert code == 0 and "(F=4)" in out
    code, out, _ = azc(capsys, "check", path)
    assert code == 0 and "F=4" in out
    code, out, _ = azc(capsys, "llvm", path)
    assert code == 0 and "F=4," in out.splitlines()[0]
    # a header with too small an F is checked like --features
    small = best_az(tmp_path, 3)
    code, _, err = azc(capsys, "check", small)
    assert code == 1 and err.startswith(f"{small}:5:6: error: element index 3 is out of "
                                        f"range for feature size F=3")


@pytest.mark.parametrize("command", ["show", "check", "llvm"])
def test_features_that_disagree_with_the_header_are_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    path = best_az(tmp_path, 4)
    code, out, err = azc(capsys, command, path, "--features", "5")
    assert code == 1 and out == ""
    assert err == f"error: --features is 5 but {path} is from a run with F=4 (its header " \
                  f"says so)\n"
    assert azc(capsys, command, path, "--features", "4")[0] == 0


def test_features_from_a_real_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, _, _ = azc(capsys, "evolve", "demo", "--max-individuals", "20", "--out", run,
                     "-q", "--workers", "1")
    assert code == 0
    best = run / "best.az"
    assert run_features(best.read_text()) == 4  # the demo's tasks have F=4
    code, out, _ = azc(capsys, "show", "--stats", best)
    assert code == 0 and "(F=4)" in out
    code, _, err = azc(capsys, "llvm", best, "--features", "2")
    assert code == 1 and "is from a run with F=4" in err


def test_export_locates_errors_and_checks_the_header(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PROGRAM)
    code, _, err = azc(capsys, "export", path, "-o", tmp_path / "out", "--features", "4",
                       "--vectors", "3")
    assert code == 1
    located(err, path, 9, 3, "address v3 is out of range: the memory has 3 vector addresses "
            "(v0..v2)", "^^")
    best = best_az(tmp_path, 4)
    code, _, err = azc(capsys, "export", best, "-o", tmp_path / "out", "--features", "5")
    assert code == 1 and "is from a run with F=4" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["s32768", "v65536", "m99999999"])
def test_addresses_beyond_the_limit_are_located_errors(tmp_path, capsys, address) -> None:
    path = write(tmp_path, f"def Predict():\n  s1 = s0 + s0\n  s2 = {address} + s0\n"
                 if address[0] == "s" else
                 f"def Predict():\n  s1 = s0 + s0\n  v1 = {address} + v0\n")
    code, _, err = azc(capsys, "check", path)
    assert code != 0
    assert f"{path}:3:" in err and f"address {address} is beyond the limit" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["evolve", "demo", "--seed", "-1"], "argument --seed: must be in [0, 2**64), got -1"),
    (["evolve", "demo", "--seed", "x"], "argument --seed: expected a non-negative integer"),
    (["evolve", "demo", "--batch-size", "0"], "argument --batch-size: must be at least 1"),
    (["evolve", "demo", "--workers", "-2"], "argument --workers: must be at least 1"),
    (["evolve", "demo", "--max-individuals", "0"], "argument --max-individuals: must be at"),
    (["evolve", "demo", "--time-limit", "nan"], "argument --time-limit: must be a positive"),
    (["evolve", "demo", "--checkpoint-every", "-1"], "argument --checkpoint-every: must be"),
    (["show", "x.az", "--features", "0"], "argument --features: must be at least 1"),
    (["check", "x.az", "--scalars", "0"], "argument --scalars: must be at least 1"),
])
def test_command_line_values_are_checked_by_the_parser(capsys, monkeypatch, argv,
                                                       message) -> None:
    def no_run(*args, **kwargs):
        raise AssertionError("the parser let a bad value through to a run")
    monkeypatch.setattr("azc.search.experiment.evolve", no_run)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_folder(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("azc.search.experiment.evolve", lambda *a, **k: 1 / 0)
    path = tmp_path / "afile"
    path.write_text("")
    with pytest.raises(SystemExit):
        cli.main(["evolve", "demo", "--out", str(path)])
    assert "exists and is not a folder" in capsys.readouterr().err


def test_internal_errors_are_one_line_with_a_traceback_file(monkeypatch, capsys) -> None:
    import azc.cli as cli

    def broken(args):
        raise ValueError("boom")
    monkeypatch.setattr(cli, "cmd_ops", broken)
    assert cli.main(["ops"]) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("internal error: ValueError: boom (a bug in azc")
    path = Path(err.split("the traceback is in ")[1].split(";")[0])
    assert "ValueError: boom" in path.read_text() and "Traceback" in path.read_text()
    path.unlink()
