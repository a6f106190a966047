"""Grad mode, as in torch: whether a module's ``forward`` keeps what its ``backward`` needs.

Inside ``with fw.no_grad():`` every module of the backend computes the same output,
bit for bit, keeps nothing for ``backward`` and drops what an earlier ``forward``
kept; its ``backward`` then raises a ``RuntimeError`` that says so (see
``error.not_forwarded``). Inference (validation, ``predict``, a plot) takes no memory
beyond its outputs. ``fit`` and ``train_epoch`` refuse to run with grad disabled.

Grad mode is per thread, as in torch: every thread starts with it enabled, and
``no_grad`` in one thread leaves the others recording. Each backend has its own
switch: pyfw's is a thread-local here; pyfw_rs's is a native thread-local that its
modules read once per ``forward`` (``rust/grad_mode.rs``), and it binds the classes
below to it (``python/pyfw_rs/grad_mode.py``).
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable


class _State(threading.local):
    """The grad mode of the calling thread, and the modes that the open ``no_grad``
    blocks of the thread will restore (innermost last)."""

    enabled = True

    def __init__(self) -> None:
        self.saved: list = []


_STATE = _State()


def is_grad_enabled() -> bool:
    """Whether a module's ``forward`` in the calling thread keeps what ``backward`` needs."""
    return _STATE.enabled


def _swap(mode: bool) -> bool:
    """Set the calling thread's grad mode to ``mode``; returns the mode it had."""
    prev = _STATE.enabled
    _STATE.enabled = mode
    return prev


class _GradMode:
    """What the classes below share: the backend's switch (pyfw_rs overrides ``_set``)."""

    _set: Callable[[bool], bool] = staticmethod(_swap)


class no_grad(_GradMode):
    """Disable grad mode in the calling thread, as ``torch.no_grad``: a context manager
    (``with fw.no_grad(): ...``) and a decorator (``@fw.no_grad()`` or ``@fw.no_grad``).

    Blocks nest: leaving one restores the mode it found, so an inner ``no_grad`` (or
    ``enable_grad``) ends without changing the outer block's mode. A generator function
    cannot be decorated (the mode would end when the generator is created): use a
    ``with`` block inside it.
    """

    _mode = False

    def __new__(cls, func: Any = None) -> Any:
        if func is None:
            return super().__new__(cls)
        return cls()(func)  # used bare: ``@fw.no_grad``

    def __enter__(self) -> None:
        _STATE.saved.append(self._set(self._mode))

    def __exit__(self, *exc: Any) -> None:
        self._set(_STATE.saved.pop())

    def __call__(self, func: Callable) -> Callable:
        """``func`` wrapped so that each call runs in this mode."""
        name = type(self).__name__
        if not callable(func):
            raise TypeError(f"{name}: can decorate a function, got {type(func).__name__}")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func) or inspect.iscoroutinefunction(func):
            raise TypeError(f"{name}: cannot decorate {getattr(func, '__qualname__', func)!r}, a generator or "
                            f"coroutine function (the mode would end before its body runs): use 'with "
                            f"{name}():' inside it")
        mode = type(self)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return func(*args, **kwargs)
        return wrapper

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class enable_grad(no_grad):
    """Enable grad mode in the calling thread, as ``torch.enable_grad``: inside a
    ``no_grad`` block, modules record again until the block ends. A context manager
    and a decorator, as :class:`no_grad`."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(mode)`` sets the calling thread's grad mode at once, as torch's;
    used as a context manager (``with fw.set_grad_enabled(False): ...``), the mode it
    found comes back when the block ends. ``mode`` must be a bool."""

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled: mode must be a bool, got {type(mode).__name__}")
        self.mode = mode
        self._prev = self._set(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        self._set(self._prev)

    def __repr__(self) -> str:
        return f"set_grad_enabled(mode={self.mode})"
