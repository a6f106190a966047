"""Learning-rate schedulers, written once: they work on the ``param_groups`` of
either backend's optimizers (``fw.optim.lr_scheduler.X``)."""

from __future__ import annotations
