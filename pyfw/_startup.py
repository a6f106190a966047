"""Ctrl-C while the command line is still starting.

``python -m pyfw`` and the ``pyfw`` command import the whole package, which takes
tens of milliseconds, before :func:`pyfw.cli.main` can catch a Ctrl-C. The
package's first line calls :func:`guard_cli_startup`, which, in the CLI's own
process only, makes an interrupt that nothing caught the CLI's one line and
exit status 130, as during a run, instead of a traceback. A program that
imports pyfw as a library is left as it is.
"""

import os  # os and sys only: both are loaded already, so this module costs no time of its own
import sys

MESSAGE = "pyfw: interrupted"
"""What the CLI prints on a Ctrl-C that comes before it has started any work."""


def _is_cli() -> bool:
    """Whether this process runs the CLI: ``python -m pyfw`` (runpy is then looking for
    ``pyfw.__main__``, below us on the stack) or the ``pyfw`` command."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "_run_module_as_main" and frame.f_globals.get("__name__") == "runpy":
            return str(frame.f_locals.get("mod_name", "")).partition(".")[0] == "pyfw"
        frame = frame.f_back
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("pyfw", "pyfw.exe", "pyfw-script.py")


def guard_cli_startup() -> None:
    """In the CLI's process, install a ``sys.excepthook`` that turns a ``KeyboardInterrupt``
    nothing caught into one line on stderr and exit status 130; any other exception
    goes to the hook that was there."""
    if not _is_cli():
        return
    previous = sys.excepthook

    def hook(kind: "type[BaseException]", value: BaseException, tb: "object") -> None:
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
            if sys.stderr is not None:
                sys.stderr.write(MESSAGE + "\n")
                sys.stderr.flush()
        finally:
            os._exit(130)  # not the interpreter's own exit, which would kill this process with SIGINT

    sys.excepthook = hook
