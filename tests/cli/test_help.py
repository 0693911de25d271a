"""--help shows boolean flags as flags (no ``<bool>`` value), in click's plain help and in typer's rich
panels alike, on every verb; the flags parse as before."""

import pytest
import typer.main
from typer.testing import CliRunner

from trabecula.cli import app, main
from trabecula.cli.iq import iq_app

VERBS = [[], ["measure"], ["recon"], ["scan"], ["train"], ["enhance"], ["render"], ["info"], ["iq", "mtf"]]


def _all_verbs() -> list[list[str]]:
    group = typer.main.get_command(app)
    verbs = [[]]
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        verbs += [[name, s] for s in subs] if subs else [[name]]
    return verbs


def test_plain_help_of_every_verb_has_no_bool_metavar(capsys):
    verbs = _all_verbs()
    assert ["measure"] in verbs and ["iq", "mtf"] in verbs
    for verb in verbs:
        code = main([*verb, "--help"])
        out = capsys.readouterr().out
        assert code == 0, verb
        assert "<bool>" not in out, verb
        assert "--help" in out, verb


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "trabecula")
def test_rich_help_has_no_bool_metavar(monkeypatch, verb):
    """typer's rich panels label every option with its type; flags must not read as taking a value."""
    monkeypatch.setattr(app, "rich_markup_mode", "rich")
    monkeypatch.setattr(iq_app, "rich_markup_mode", "rich")
    r = CliRunner().invoke(app, [*verb, "--help"], terminal_width=160)
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output and "<bool>" not in r.output
    assert "<str>" in r.output or "<int>" in r.output or not verb  # other options keep their type labels


def test_flags_still_parse_as_flags():
    group = typer.main.get_command(app)
    measure = group.commands["measure"]
    ctx = measure.make_context("measure", ["--bonej", "a.nii", "--force", "b.nii"])
    assert ctx.params["bonej"] is True and ctx.params["force"] is True
    assert [str(p) for p in ctx.params["volumes"]] == ["a.nii", "b.nii"]  # a flag takes no value
    ctx = measure.make_context("measure", ["a.nii"])
    assert ctx.params["bonej"] is False and ctx.params["force"] is False
    train = group.commands["train"]
    base = ["--model", "dlr", "--data", "pairs", "--out", "run"]
    assert train.make_context("train", [*base, "--resume"]).params["resume"] is True
    assert train.make_context("train", [*base, "--no-resume"]).params["resume"] is False


def test_flag_given_a_value_is_refused(capsys, tmp_path):
    code = main(["info", str(tmp_path / "x.nii"), "--json=yes"])
    err = capsys.readouterr().err
    assert code == 2 and "--json" in err


def test_version_flag_works(capsys):
    from trabecula import __version__

    assert main(["--version"]) == 0 and __version__ in capsys.readouterr().out
