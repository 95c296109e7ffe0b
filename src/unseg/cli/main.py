"""Entry point of the ``unseg`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from unseg import __version__
from unseg.errors import UnsegError

COMMANDS = (
    "segment", "fit", "slide", "evaluate", "benchmark", "probe", "concepts", "backbones", "methods",
    "demo", "data", "report",
)

DESCRIPTION = """\
Segment pathology and medical images into meaningful regions without pixel labels.

examples:
  unseg demo                                          segment example images, print metrics
  unseg methods                                       the available methods
  unseg segment kmeans-color-dataset tiles/ --out labels/ --k 4
  unseg slide segment slide.svs --method fseg --k 16 --out maps/
  unseg evaluate --pred labels/ --gt ../shared/data/wsss4luad-val
  unseg data synthetic --out fruit/                   sky-and-fruit scenes with exact masks
  unseg benchmark --data ../shared/data/wsss4luad-val --methods random,slic --out bench/
  unseg report labels/ --out report/                  an HTML report that opens from disk

`unseg COMMAND --help` describes each command. Every command takes --quiet (warnings and
errors only), --verbose (debugging detail too) and --threads N (CPU threads; by default the
cores this process may use). Long steps show a progress bar on a terminal
and, in a log or pipe, a progress line every 30 s (UNSEG_PROGRESS_SECONDS sets the interval).
"""

#: Options every command takes, anywhere on its command line: the level of the ``unseg`` logger.
LEVELS = {"--quiet": logging.WARNING, "-q": logging.WARNING,
          "--verbose": logging.DEBUG, "-v": logging.DEBUG}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unseg", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"unseg {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print warnings and errors only (any command)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print debugging detail too (any command)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (any command; default: the cores this process may "
                             "use, from its affinity and CPU quota)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        importlib.import_module(f"unseg.cli.{command}").add_parser(subparsers, argv)
    return parser


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a batch scheduler's stop, ``kill``) ends the run as Ctrl-C does: files being
    written are removed, and what was finished stays for the next run to resume from."""
    raise KeyboardInterrupt


def _threads_option(argv: list[str]) -> tuple[list[str], int | None]:
    """``--threads N`` (anywhere on the command line) taken out of ``argv``."""
    from unseg.errors import ParameterError

    rest, threads = [], None
    tokens = iter(argv)
    for token in tokens:
        if token == "--threads" or token.startswith("--threads="):
            value = token.partition("=")[2] or next(tokens, "")
            if not value.isdigit() or int(value) < 1:
                raise ParameterError(f"--threads takes a whole number >= 1, got {value!r}")
            threads = int(value)
        else:
            rest.append(token)
    return rest, threads


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 when some inputs failed, 2 on an error, 130 when
    interrupted (Ctrl-C or SIGTERM)."""
    from unseg._threads import configure
    from unseg.cli._report import setup_logging

    argv = sys.argv[1:] if argv is None else argv
    # oneDNN caches a convolution for every input shape it meets: images of many sizes would
    # grow memory with the number of images. A few entries keep repeated shapes (tiles) fast.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    level = logging.INFO
    for token in argv:
        level = LEVELS.get(token, level)
    argv = [token for token in argv if token not in LEVELS]
    try:
        argv, threads = _threads_option(argv)
        configure(threads)
    except UnsegError as error:
        print(f"unseg: error: {error}", file=sys.stderr)
        return 2
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where = f"unseg {args.command}" + (f" {args.method}" if getattr(args, "method", None)
                                           else "")
        print(f"{where}: error: unrecognized arguments: {' '.join(unknown)}. Fix: "
              f"`{where} --help` lists the options.", file=sys.stderr)
        return 2
    setup_logging(level)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.run(args))
    except UnsegError as error:
        print(f"unseg: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unseg: interrupted; run the same command again to continue where it stopped",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
