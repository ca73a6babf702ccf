"""The ``suyuan`` command as the console script and ``python -m suyuan`` start it.

This module loads nothing but the command itself, and does so inside a guard: a Ctrl-C that
arrives while the command's modules are still loading (a slow start on a busy machine) stops it
with the same one line and exit status as a Ctrl-C later on, never a traceback.
"""

import sys


def main(argv: list[str] | None = None) -> None:
    try:
        from suyuan.cli import main as command
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    command(argv)


if __name__ == "__main__":
    main()
