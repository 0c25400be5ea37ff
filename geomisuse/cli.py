"""The command line: wires the stages together, prints what happened, maps errors to exit codes.

Exit codes: 0 success, 2 bad input or usage (one-line message, no traceback), 1 anything else.
"""

from __future__ import annotations

import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from .errors import InputError
from .version import __version__
from .publish.escaping import terminal_text
from .pipeline import analyse, load_run, network_inputs, prepare
from .publish.tables import PublishSettings, check_out_folder, write_outputs
from .pipeline import StudyRun
from .config import DEFAULT_OUT
from .config import Study, load_study


#: Longest error message printed (one line; longer ones are cut with an ellipsis).
MAX_ERROR_LENGTH = 400


def echo(text: object = "", err: bool = False) -> None:
    """Print a line with the control characters of data (escape sequences) removed."""
    click.echo(terminal_text(text), err=err)


def main() -> None:
    """Console entry point (``geomisuse``): runs the command line and exits with its code."""
    sys.exit(run_command())


def run_command(args: list[str] | None = None) -> int:
    """Run the command line once and return its exit code (what :func:`main` exits with).

    Parameters
    ----------
    args
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 success, 2 bad input or usage (a one-line message on stderr), 1 anything else.
    """
    args = sys.argv[1:] if args is None else list(args)
    # --debug is accepted anywhere on the line (before or after the command name).
    debug = "--debug" in args
    try:
        cli.main([a for a in args if a != "--debug"], prog_name="geomisuse", standalone_mode=False)
    except InputError as err:
        echo(terminal_text(f"error: {err}", MAX_ERROR_LENGTH), err=True)
        return 2
    except click.exceptions.Abort:
        echo("aborted", err=True)
        return 1
    except click.ClickException as err:  # usage errors: one line too, naming the command's --help
        hint = f" (see '{err.ctx.command_path} --help')" if getattr(err, "ctx", None) is not None else ""
        echo(terminal_text(f"error: {err.format_message()}{hint}", MAX_ERROR_LENGTH), err=True)
        return 2
    except SystemExit as err:  # --help and --version exit through click
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except Exception as err:  # one line for users; --debug shows the traceback
        if debug:
            raise
        echo(terminal_text(f"error: unexpected {type(err).__name__}: {err}", MAX_ERROR_LENGTH - 40)
             + " (rerun with --debug for details)", err=True)
        return 1
    return 0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="geomisuse")
@click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")
def cli(debug: bool) -> None:
    """geomisuse: ward maps of drug-related harm, clusters and outreach gaps."""


def _study(path: str, seed: int | None) -> Study:
    study = load_study(path)
    if seed is not None:
        study.seed = seed
    return study


def _publish_settings(settings: PublishSettings, unsuppressed: bool = False, tiles: str | None = None,
                      offline: bool = False, pdf: bool = False, simplify: float | None = None) -> PublishSettings:
    """Publishing settings (a study's ``[publish]``, or those a saved run was written with)
    with the command-line options applied (a copy)."""
    return settings.with_changes(
        map_simplify_m=settings.map_simplify_m if simplify is None else simplify,
        unsuppressed=settings.unsuppressed or unsuppressed, tiles=tiles or settings.tiles,
        offline=settings.offline or offline, pdf=settings.pdf or pdf)


def _out_folder(study: Study, out: str | None) -> Path:
    """The output folder, checked before any work so that a refused folder costs nothing."""
    folder = Path(out) if out else Path(DEFAULT_OUT) / (study.path.stem if study.path else "study")
    check_out_folder(folder)
    return folder


def _finite_non_negative(ctx, param, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"must be a finite number of metres, 0 or more (got {value})")
    return value


def _report(run: StudyRun, summary: list[str], reasons: bool = False) -> None:
    """Print the accounting (with ``reasons``, every reason rows were excluded, one a line),
    the findings and the warnings."""
    for layer in run.layers.values():
        acc = layer.accounting()
        rejected = ", ".join(f"{k}: {v}" for k, v in acc["rows_rejected"].items()) or "none"
        excluded = sum(acc["rows_excluded"].values())
        echo(f"  {layer.kind:<19} read {acc['rows_read']:>8,}  used {acc['rows_used']:>8,}  "
                   f"excluded {excluded:>7,}  rejected {sum(acc['rows_rejected'].values()):>6,} ({rejected})")
        if reasons:
            for reason, count in acc["rows_excluded"].items():
                click.echo(f"      excluded {count:>8,}  {reason}")
    for line in summary:
        echo(f"  {line}")
    for warning in run.warnings:
        echo(f"warning: {warning}", err=True)


_OUT = click.option("--out", "out", type=click.Path(file_okay=False), default=None,
                    help=f"Output folder (default: {DEFAULT_OUT}/<study file name>).")
_SEED = click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=None, help="Seed for permutation inference (default: the study's).")
_UNSUPPRESSED = click.option("--unsuppressed", is_flag=True, help="Publish real small counts (internal use only).")
_TILES = click.option("--tiles", default=None, help="Basemap tiles: OpenStreetMap (default), another name, or none.")
_OFFLINE = click.option("--offline", is_flag=True, help="Embed map assets so the page works with no network.")
_SIMPLIFY = click.option("--simplify", type=float, default=None, callback=_finite_non_negative,
                         help="Map ward outline simplification in metres (default 10; 0 keeps every vertex).")
_PDF = click.option("--pdf", is_flag=True, help="Also print the briefings to briefings/briefings.pdf (needs chromium).")


def _options(*options):
    """Apply click options in the order given (top to bottom in --help)."""
    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


#: Options of the commands that write every output.
with_publish_options = _options(_OUT, _SEED, _UNSUPPRESSED, _TILES, _OFFLINE, _SIMPLIFY, _PDF)


def _run_and_write(study: Study, out: str | None, stages: tuple[str, ...], unsuppressed: bool = False,
                   tiles: str | None = None, offline: bool = False, pdf: bool = False,
                   simplify: float | None = None, skip_unavailable: bool = False) -> Path:
    settings = _publish_settings(study.publish, unsuppressed, tiles, offline, pdf, simplify)
    folder = _out_folder(study, out)
    run, summary = analyse(study, stages, skip_unavailable)
    write_outputs(run, folder, settings)
    period = f"{run.months[0]} to {run.months[-1]}" if run.months else "no dated records"
    echo(f"{study.name}: {len(run.wards)} wards, {period}")
    _report(run, summary)
    echo(f"map:    {folder / 'map.html'}")
    counts = "wards_monthly.csv, wards_yearly.csv" if (folder / "wards_yearly.csv").exists() else "wards_monthly.csv"
    echo(f"tables: {folder / 'wards.csv'} (and wards.gpkg, {counts}, manifest.json)")
    if settings.briefings:
        echo(f"briefings: {folder / 'briefings' / 'index.html'}")
    return folder


@cli.command()
@click.argument("study_file", type=click.Path())
@with_publish_options
def run(study_file: str, out, seed, unsuppressed, tiles, offline, pdf, simplify) -> None:
    """Run a study: ward table, clusters, gaps, map and tables into OUT."""
    _run_and_write(_study(study_file, seed), out, ("clusters", "gaps"), unsuppressed, tiles, offline, pdf, simplify,
                   skip_unavailable=True)


@cli.command()
@click.argument("study_file", type=click.Path())
def validate(study_file: str) -> None:
    """Check every input of a study and print the accounting; writes nothing."""
    study = load_study(study_file)
    run_ = prepare(study)
    # The gap stage's own inputs are read too, so a broken network or postcode file shows here.
    network, postcodes = network_inputs(run_, write_cache=False)
    echo(f"{study.name}: {len(run_.wards)} wards, {len(run_.months)} months; measures: "
               f"{', '.join(run_.measures) or 'none'}")
    _report(run_, [], reasons=True)
    if network is not None:
        r = network.report
        echo(f"  walking network    {r['nodes']:,} nodes, {r['segments']:,} segments, {r['km']:,} km "
             f"(cache: {r['cache']})")
    if postcodes is not None:
        r = postcodes.report
        echo(f"  postcodes          read {r['rows_read']:>8,}  used {r['rows_used']:>8,}  "
             f"without a position {r['rows_without_position']:,}")
    echo("ok: every input read")


def _stage(study_file: str, stages: tuple[str, ...], out, seed, **publish) -> None:
    """Run up to ``stages``: print the findings, and write the outputs when ``out`` is given."""
    study = _study(study_file, seed)
    if out:
        _run_and_write(study, out, stages, **publish)
        return
    run_, summary = analyse(study, stages)
    _report(run_, summary)


@cli.command()
@click.argument("study_file", type=click.Path())
@with_publish_options
def clusters(study_file: str, out, seed, **publish) -> None:
    """Spatial clusters (Moran's I, LISA, Gi*) for a study; writes outputs when --out is given."""
    _stage(study_file, ("clusters",), out, seed, **publish)


@cli.command()
@click.argument("study_file", type=click.Path())
@with_publish_options
def gaps(study_file: str, out, seed, **publish) -> None:
    """Outreach gaps and satellite sites for a study; writes outputs when --out is given."""
    _stage(study_file, ("clusters", "gaps"), out, seed, **publish)


@dataclass
class _Source:
    """What ``map`` and ``brief`` publish from: a run analysed now (a study file) or read
    back from the saved state of a finished run's folder (``RUN_DIR``)."""

    run: StudyRun
    #: The publishing settings before the command's options: the study's, or the saved run's
    #: without ``unsuppressed`` (real small counts are never carried over: give it again).
    settings: PublishSettings
    folder: Path
    #: The analysis' summary lines (a study file), or ``None`` for a saved run.
    summary: list[str] | None
    #: A saved run that was written unsuppressed.
    was_unsuppressed: bool = False


def _source(target: str, out: str | None, seed: int | None) -> _Source:
    """Analyse the study file ``target``, or read the saved run in the folder ``target``
    (refusing ``--seed``: it changes the analysis). A study's output folder is checked before
    the analysis, so that a refused folder costs nothing."""
    if not Path(target).is_dir():
        study = _study(target, seed)
        folder = _out_folder(study, out)
        run_, summary = analyse(study, skip_unavailable=True)
        return _Source(run_, study.publish, folder, summary)
    if seed is not None:
        raise InputError("--seed changes the analysis, and this is a finished run's folder; re-run "
                         "'geomisuse run STUDY --seed N' (or give the study file)", target)
    run_, saved = load_run(target)   # first: a folder without a saved run is told to re-run
    folder = Path(out) if out else Path(target)
    check_out_folder(folder)
    if saved.geomisuse_version != __version__:
        echo(f"warning: the saved run was written by geomisuse {saved.geomisuse_version} and this is "
             f"{__version__}; re-run 'geomisuse run' for this version's outputs", err=True)
    return _Source(run_, saved.settings.with_changes(unsuppressed=False), folder, None,
                   was_unsuppressed=saved.settings.unsuppressed)


def _publish_part(source: _Source, part: str, settings: PublishSettings, wards: list[str] | None = None) -> None:
    """Write one part of the outputs from ``source`` and print what a user should read: the
    analysis' accounting and findings, or (a saved run, whose were printed by its run) the
    warnings publishing adds."""
    run_ = source.run
    known = len(run_.warnings)
    write_outputs(run_, source.folder, settings, part=part, wards=wards)
    if source.summary is not None:
        _report(run_, source.summary)
        return
    for warning in run_.warnings[known:]:
        echo(f"warning: {warning}", err=True)
    if source.was_unsuppressed and not settings.unsuppressed:
        echo("note: the run was written --unsuppressed; this republished part protects small counts "
             "(give --unsuppressed again for real counts)", err=True)


_TARGET = click.argument("target", metavar="STUDY_FILE|RUN_DIR", type=click.Path())


@cli.command("map")
@_TARGET
@_options(_OUT, _SEED, _UNSUPPRESSED, _TILES, _OFFLINE, _SIMPLIFY)
def map_(target: str, out, seed, unsuppressed, tiles, offline, simplify) -> None:
    """Write only the interactive map (map.html): of a study file (analysed again), or of a
    finished run's folder RUN_DIR from its saved state (no analysis; written into RUN_DIR
    unless --out is given)."""
    source = _source(target, out, seed)
    settings = _publish_settings(source.settings, unsuppressed, tiles, offline, simplify=simplify)
    _publish_part(source, "map", settings)
    echo(f"map: {source.folder / 'map.html'}")


@cli.command()
@_TARGET
@click.option("--ward", "ward_args", multiple=True, help="Ward code or name (repeatable); default every ward.")
@_options(_OUT, _SEED, _UNSUPPRESSED, _PDF)
def brief(target: str, ward_args, out, seed, unsuppressed, pdf) -> None:
    """Write ward briefings (overview and one page per ward) into OUT/briefings: of a study
    file (analysed again), or of a finished run's folder RUN_DIR from its saved state (no
    analysis; written into RUN_DIR unless --out is given)."""
    from .publish.briefings.pages import resolve_ward

    source = _source(target, out, seed)
    codes = [resolve_ward(source.run, text) for text in ward_args] or None
    _publish_part(source, "briefings", _publish_settings(source.settings, unsuppressed, pdf=pdf), codes)
    echo(f"briefings: {source.folder / 'briefings' / 'index.html'}")


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default=f"{DEFAULT_OUT}/demo", show_default=True,
              help="Output folder.")
@click.option("--regenerate", is_flag=True, help="Rebuild the demo input files from the seed first.")
@_options(_TILES, _OFFLINE, _PDF)
def demo(out: str, regenerate: bool, tiles, offline, pdf) -> None:
    """Run the fictional demo borough end to end."""
    from .demo.borough import DEMO_DIR, generate_demo, regenerate as regenerate_files

    root = Path(__file__).resolve().parents[1]
    if regenerate:
        changed = regenerate_files(root)
        echo(f"demo files regenerated in {root} ({len(changed)} changed)")
    study_file = root / DEMO_DIR / "study.toml"
    if not study_file.is_file():
        # Installed without the checkout's data folder: the generator makes the same files.
        root = Path(tempfile.mkdtemp(prefix="geomisuse-demo-"))
        generate_demo(root)
        study_file = root / DEMO_DIR / "study.toml"
    study = load_study(study_file)
    _run_and_write(study, out, ("clusters", "gaps"), False, tiles, offline, pdf)
