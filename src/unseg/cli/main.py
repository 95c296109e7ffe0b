"""Entry point of the ``unseg`` command."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from unseg import __version__
from unseg.errors import UnsegError

COMMANDS = (
    "segment", "fit", "slide", "evaluate", "benchmark", "probe", "concepts", "backbones", "methods",
    "demo", "data",
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

`unseg COMMAND --help` describes each command.
"""


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unseg", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"unseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        importlib.import_module(f"unseg.cli.{command}").add_parser(subparsers, argv)
    return parser


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a batch scheduler's stop, ``kill``) ends the run as Ctrl-C does: files being
    written are removed, and what was finished stays for the next run to resume from."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 when some inputs failed, 2 on an error, 130 when
    interrupted (Ctrl-C or SIGTERM)."""
    from unseg.cli._report import setup_logging

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    setup_logging()
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
