"""The seed task as data: its options in :class:`Config`, and :func:`train` for either backend.

``Config.task`` also picks one of Playground's data sets (:data:`TASKS`), with the
input ``features``, hidden ``layers``, ``noise`` and L1/L2 regularization on the
weights (``fw.optim.Regularized``); ``task="denoise"`` is the image denoiser
(:func:`make_denoiser`, trained Noise2Noise style and scored by PSNR, with ``arch``,
``channels`` and ``image_size``); :func:`build_run` builds any task's run. What
follows describes the seed task, ``task="disk"``.

The task: the disk data set (``fw.data.disk``) and a network of 2 inputs, three
hidden layers of ``hidden`` units each followed by the chosen activation (and,
with ``dropout > 0``, a ``Dropout``), and 2 outputs, trained with the chosen
loss, optimizer and learning-rate schedule. ``Config()`` is the seed
configuration: ``MSELoss`` on one-hot targets and plain ``SGD``. ``PRESETS``
names other recipes; ``PRESETS["best"]`` is the most accurate one found.

The loss decides the targets and the output head (:data:`LOSS_SETUP`):
``CrossEntropyLoss`` and ``NLLLoss`` take class indices, the others one-hot
rows; ``NLLLoss`` gets a ``LogSoftmax`` head and ``BCELoss`` a ``Sigmoid`` head,
so that their inputs are what they expect. A head keeps the order of the two
outputs, so the predicted class is the larger output in every case.

Draw order from one ``Generator(seed)``, the same in both backends:

1. data: the training set, then the test set (``data.disk``);
2. init: the four Linear layers in module order, each its weight, then its bias
   (activations and Dropout layers draw nothing when built);
3. per epoch: one ``randperm(n_train)``, before its first batch;
4. with ``dropout > 0``, per training forward pass (one per batch, after that
   epoch's ``randperm``): each Dropout layer draws its mask, in module order
   (the first hidden layer's Dropout first), one ``random()`` per element of
   its input in row-major order, as documented for ``Dropout``.

With ``dropout == 0`` no Dropout module is built, so step 4 draws nothing and
the default run is the seed's, bit for bit. The error rates are measured in
eval mode, which draws nothing.

The inputs are standardized before training with the fixed map
``x -> (x - 0.5) * sqrt(12.0)``, which gives the uniform distribution on [0, 1]
zero mean and unit variance; the labels stay those of the raw points. Centred
inputs let the ReLU units split the square around the disk from the first
epoch, and halve the test error of the 150-epoch run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import data as _data
from . import io
from .activations import ACTIVATIONS
from .losses import LOSSES
from .metrics import error_rate, psnr
from .optim import OPTIMIZERS
from .optim.lr_scheduler import SCHEDULERS
from .training import fit

SCALE = math.sqrt(12.0)
"""The standardization's factor: ``1 / std`` of the uniform distribution on [0, 1]."""

PREPROCESS = {"kind": "affine", "shift": -0.5, "scale": SCALE}
"""The standardization as a model file stores it (``pyfw.io.Preprocess``): ``(x + -0.5) * SCALE``,
bit for bit :func:`standardize`."""

BACKENDS = {"py": "pyfw", "rs": "pyfw_rs"}
"""The backends by their short name (``--backend``, the ``"backend"`` of a result): module names."""

ACTIVATION_CHOICES = {name.lower(): name for name in ACTIVATIONS}
"""Every member of the activation table ``pyfw.activations.ACTIVATIONS`` by its choice
(the class name in lower case, as ``--activation`` takes it): its class name."""


OPTIMIZER_CHOICES = {name.lower(): name for name in OPTIMIZERS}
"""Every member of the optimizer table by its choice (``--optimizer sgd``): its class name."""

LOSS_CHOICES = {name[:-len("Loss")].lower(): name for name in LOSSES}
"""Every member of the loss table by its choice (its class name without ``Loss``, in lower
case: ``--loss crossentropy``): its class name."""

LOSS_SETUP: dict = {
    "MSELoss": ("one_hot", None), "L1Loss": ("one_hot", None), "HuberLoss": ("one_hot", None),
    "SmoothL1Loss": ("one_hot", None), "CrossEntropyLoss": ("index", None), "NLLLoss": ("index", "LogSoftmax"),
    "BCELoss": ("one_hot", "Sigmoid"), "BCEWithLogitsLoss": ("one_hot", None),
}
"""For each loss: the targets it takes (``"index"``: class indices; ``"one_hot"``: rows of
0.0 / 1.0) and the activation put after the last Linear layer (None: none)."""

SCHEDULE_CHOICES = {"none": None, **{(n[:-2] if n.endswith("LR") else n).lower(): n for n in SCHEDULERS}}
"""``none`` and every member of the scheduler table, by its class name without ``LR`` in
lower case (``--schedule cosineannealing``): its class name."""

EPOCH_FREE_SCHEDULES = frozenset({"none", "linear", "reducelronplateau"})
"""The choices of :data:`SCHEDULE_CHOICES` that :func:`make_scheduler` builds without using the
epoch count (LinearLR warms up over a fixed 5 epochs; ReduceLROnPlateau watches the loss). A
run on one of them can be extended: trained for N epochs, then resumed with more, it gives the
bits of a run trained for the larger count from the start. The others are built for the run's
length (StepLR's step, CosineAnnealingLR's period, ...), so a longer run is another run."""

HISTORY_KEYS = ("train_errors", "test_errors", "test_losses")
"""What :func:`train` records after every epoch with ``track_errors`` (in eval mode, which
draws nothing): the train and test error and the test loss (None where it is not finite)."""

DENOISE_HISTORY_KEYS = ("test_psnrs", "test_losses")
"""What :func:`train` records after every epoch of the denoiser, always (``track_errors`` adds
nothing): the validation PSNR against the clean images, in dB, and the validation loss against the
second noisy copy (the training loss's own quantity); None where a value is not finite."""

ARCH_CHOICES = ("upsample", "transpose")
"""The denoiser's decoders (``--arch``): nearest ``Upsample`` then ``Conv2d``, or ``ConvTranspose2d``."""

IMAGE_CHANNELS = 3
"""The colour channels of the denoiser's images (``data.denoise_pairs``'s default)."""


TASKS: dict = {
    "disk": ("classification", "the seed task: points in [0, 1]^2, class 1 inside a disk of half the area"),
    **{name: ("classification", f"Playground's {name}, in [-6, 6]^2") for name in _data.CLASSIFICATION_SETS},
    **{name: ("regression", f"Playground's {name}, in [-6, 6]^2, float targets") for name in _data.REGRESSION_SETS},
    "denoise": ("denoising", "the image denoiser: Noise2Noise on fw.data.denoise_pairs, scored by PSNR"),
}
"""Every task by name: ``(kind, description)``; the kind is ``classification``, ``regression`` or
``denoising`` (the image denoiser)."""

TASK_DEFAULTS: dict = {
    **{name: {"n_train": 250, "n_test": 250, "layers": "4,2", "activation": "tanh", "lr": 0.03}
       for name in _data.CLASSIFICATION_SETS},
    **{name: {"n_train": 600, "n_test": 600, "layers": "4,2", "activation": "tanh", "lr": 0.03}
       for name in _data.REGRESSION_SETS},
    "denoise": {"n_train": 1000, "n_test": 100, "epochs": 100, "batch_size": 16, "optimizer": "adam",
                "lr": 0.003, "loss": "mse", "schedule": "cosineannealing", "noise": 0.1},
}
"""The defaults of each Playground task (Playground's: 500 points, half of them for training, 1200
for regression, a 4-2 network of tanh units, learning rate 0.03); a preset and the options given
override them. The disk task has none: its defaults are ``Config``'s. The denoiser's: 1000 training
and 100 validation images of 32x32 (``image_size``), noise 0.1, 32 and 64 channels (``channels``,
``Config``'s default), Adam at 0.003 annealed to 0 (cosine) on ``MSELoss``, batches of 16, 100 epochs
(README.md, "Image denoiser", for the figures)."""

REGRESSION_LOSSES = ("mse", "l1", "huber", "smoothl1")
"""The losses a regression task takes (on one float target per point)."""


def hidden_sizes(config: "Config") -> list:
    """The hidden layer sizes of ``config``: ``layers`` parsed (``"0"``: none), or three of ``hidden``."""
    if config.layers == "":
        return [config.hidden] * 3
    if config.layers == "0":
        return []
    return [int(v) for v in config.layers.split(",")]


def _valid_layers(text: str) -> bool:
    if text in ("", "0"):
        return True
    parts = text.split(",")
    return all(p.isascii() and p.isdigit() and 1 <= int(p) <= 1024 for p in parts) and len(parts) <= 64


def _valid_channels(text: str) -> bool:
    parts = text.split(",")
    return len(parts) == 2 and all(p.isascii() and p.isdigit() and 1 <= int(p) <= 1024 for p in parts)


def _valid_features(text: str) -> bool:
    names = text.split(",")
    return all(n in _data.FEATURES for n in names) and len(set(names)) == len(names)


def make_scheduler(fw: Any, optimizer: Any, name: Optional[str], epochs: int) -> Any:
    """The scheduler of class ``name`` for a run of ``epochs`` epochs, stepped once per epoch.

    StepLR divides the rate by 10 every third of the run; MultiStepLR at 1/2 and 3/4
    of it; ExponentialLR by 100 over the run; CosineAnnealingLR anneals to 0 over
    the run; LinearLR is torch's default warm-up; OneCycleLR peaks at the given
    learning rate (and cycles the momentum of optimizers that have one);
    ReduceLROnPlateau watches the epoch loss with torch's defaults.
    """
    if name is None:
        return None
    s = fw.optim.lr_scheduler
    lr = optimizer.param_groups[0]["lr"]
    cycles = "momentum" in optimizer.defaults or "betas" in optimizer.defaults
    build = {
        "StepLR": lambda: s.StepLR(optimizer, step_size=max(1, epochs // 3)),
        "MultiStepLR": lambda: s.MultiStepLR(optimizer, milestones=[max(1, epochs // 2), max(1, 3 * epochs // 4)]),
        "ExponentialLR": lambda: s.ExponentialLR(optimizer, gamma=0.01 ** (1.0 / epochs)),
        "CosineAnnealingLR": lambda: s.CosineAnnealingLR(optimizer, T_max=epochs),
        "LinearLR": lambda: s.LinearLR(optimizer),
        "OneCycleLR": lambda: s.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs + 1, cycle_momentum=cycles),
        "ReduceLROnPlateau": lambda: s.ReduceLROnPlateau(optimizer),
    }
    return build[name]()


def _option(default: Any, help: str, must_be: str, valid: Callable[[Any], bool], **extra: Any) -> Any:
    """A :class:`Config` field: its default, and in its metadata the help text, the
    requirement in words (``must_be``), the check of a value of the field's type
    (``valid``), and optionally ``choices`` and ``metavar``."""
    return field(default=default, metadata={"help": help, "must_be": must_be, "valid": valid, **extra})


def _positive(v: Any) -> bool:
    return v > 0


@dataclass(frozen=True)
class Config:
    """Every option of the seed task, with its default: ``Config()`` is the seed run.

    Each field's ``metadata`` holds ``help``, ``must_be`` (the requirement in words),
    ``valid`` (a predicate on a value of the field's type) and, where needed,
    ``choices`` and ``metavar``; the CLI builds its options from them. Building a
    ``Config`` checks every field: a wrong type is a ``TypeError``, a value out of
    range a ``ValueError``. Ints given for float fields are stored as floats.
    """

    epochs: int = _option(150, "passes over the training set", "a positive integer", _positive, metavar="N")
    batch_size: int = _option(10, "samples per SGD step (the last batch of an epoch may be smaller)",
                              "a positive integer", _positive, metavar="N")
    lr: float = _option(0.1, "learning rate", "a finite non-negative number",
                        lambda v: 0.0 <= v < math.inf, metavar="LR")
    activation: str = _option("relu", "activation after each hidden layer: a member of "
                              "pyfw.activations.ACTIVATIONS, by its class name in lower case",
                              "one of " + ", ".join(ACTIVATION_CHOICES), lambda v: v in ACTIVATION_CHOICES,
                              choices=tuple(ACTIVATION_CHOICES))
    seed: int = _option(0, "seed of the one generator that draws data, init, shuffling and dropout",
                        "an integer", lambda v: True)
    n_train: int = _option(1000, "training points", "a positive integer", _positive, metavar="N")
    n_test: int = _option(1000, "test points", "a positive integer", _positive, metavar="N")
    dropout: float = _option(0.0, "probability of Dropout after each hidden activation; 0 builds no Dropout",
                             "a number in [0, 1)", lambda v: 0.0 <= v < 1.0, metavar="P")
    hidden: int = _option(25, "units in each of the three hidden layers", "a positive integer", _positive,
                          metavar="N")
    optimizer: str = _option("sgd", "optimizer: a member of pyfw.optim.OPTIMIZERS in lower case",
                             "one of " + ", ".join(OPTIMIZER_CHOICES), lambda v: v in OPTIMIZER_CHOICES,
                             choices=tuple(OPTIMIZER_CHOICES))
    loss: str = _option("mse", "loss: a member of pyfw.losses.LOSSES, without 'Loss', in lower case",
                        "one of " + ", ".join(LOSS_CHOICES), lambda v: v in LOSS_CHOICES,
                        choices=tuple(LOSS_CHOICES))
    schedule: str = _option("none", "learning-rate schedule, stepped once per epoch: a member of "
                            "pyfw.optim.lr_scheduler.SCHEDULERS without 'LR', in lower case (see "
                            "pyfw.task.make_scheduler)", "one of " + ", ".join(SCHEDULE_CHOICES),
                            lambda v: v in SCHEDULE_CHOICES, choices=tuple(SCHEDULE_CHOICES))
    weight_decay: float = _option(0.0, "weight decay of the optimizer", "a finite non-negative number",
                                  lambda v: 0.0 <= v < math.inf, metavar="WD")
    task: str = _option("disk", "the data set: disk (the seed task), one of Playground's (classification: "
                        + ", ".join(_data.CLASSIFICATION_SETS) + "; regression: " + ", ".join(_data.REGRESSION_SETS)
                        + ") or denoise (the image denoiser), which also sets that task's defaults "
                        "(pyfw.task.TASK_DEFAULTS)",
                        "one of " + ", ".join(TASKS), lambda v: v in TASKS, choices=tuple(TASKS))
    noise: float = _option(0.0, "noise of a Playground data set, as a fraction (0.5 is Playground's 50 percent); "
                           "for denoise, the standard deviation of the images' Gaussian noise",
                           "a number in [0, 0.5]", lambda v: 0.0 <= v <= 0.5, metavar="F")
    classes: int = _option(2, "arms (classes) of the spiral task", "an integer from 2 to 16",
                           lambda v: 2 <= v <= 16, metavar="K")
    features: str = _option("x1,x2", "input features, comma-separated: " + ", ".join(_data.FEATURES),
                            "a comma-separated list of distinct features among " + ", ".join(_data.FEATURES),
                            _valid_features, metavar="NAMES")
    layers: str = _option("", "hidden layer sizes, comma-separated ('4,2'; '0': no hidden layer); empty: three "
                          "layers of 'hidden' units", "empty, '0' or comma-separated sizes from 1 to 1024",
                          _valid_layers, metavar="SIZES")
    l1: float = _option(0.0, "L1 regularization rate on the weights (not the biases)",
                        "a finite non-negative number", lambda v: 0.0 <= v < math.inf, metavar="RATE")
    l2: float = _option(0.0, "L2 regularization rate on the weights (not the biases)",
                        "a finite non-negative number", lambda v: 0.0 <= v < math.inf, metavar="RATE")
    arch: str = _option("upsample", "the denoiser's decoder: upsample (nearest Upsample then Conv2d) or "
                        "transpose (ConvTranspose2d)", "one of " + ", ".join(ARCH_CHOICES),
                        lambda v: v in ARCH_CHOICES, choices=ARCH_CHOICES)
    channels: str = _option("32,64", "the denoiser's channels after its first and second strided Conv2d, "
                            "'C1,C2'", "two comma-separated sizes from 1 to 1024", _valid_channels,
                            metavar="C1,C2")
    image_size: int = _option(32, "height and width of the denoiser's images", "a multiple of 4 from 4 to 256",
                              lambda v: 4 <= v <= 256 and v % 4 == 0, metavar="N")

    def __post_init__(self) -> None:
        """Check every field against its type and its ``valid`` predicate."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            if kind is float and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if isinstance(value, bool) or not isinstance(value, kind):
                raise TypeError(f"Config: {f.name} must be {f.metadata['must_be']}, "
                                f"got {type(value).__name__} {value!r}")
            if not f.metadata["valid"](value):
                raise ValueError(f"Config: {f.name} must be {f.metadata['must_be']}, got {value!r}")
        if TASKS[self.task][0] in ("regression", "denoising") and self.loss not in REGRESSION_LOSSES:
            raise ValueError(f"Config: the {TASKS[self.task][0]} task {self.task} takes the loss "
                             f"{', '.join(REGRESSION_LOSSES)}, got {self.loss!r}")
        if self.task == "disk" and self.features != "x1,x2":
            raise ValueError(f"Config: the disk task takes the features x1,x2 only, got {self.features!r}")

    @classmethod
    def for_task(cls, task: str = "disk", **fields: Any) -> "Config":
        """The ``Config`` of ``task`` with its :data:`TASK_DEFAULTS`, overridden by ``fields``."""
        if task not in TASKS:
            raise ValueError(f"Config: task must be one of {', '.join(TASKS)}, got {task!r}")
        return cls(**{**TASK_DEFAULTS.get(task, {}), **fields, "task": task})


PRESETS: dict = {
    "seed": ("the seed report's recipe (the defaults)", {}),
    "best": ("the most accurate recipe found for 150 epochs on this network",
             {"optimizer": "adam", "lr": 0.01, "loss": "crossentropy", "schedule": "cosineannealing",
              "activation": "silu", "batch_size": 100}),
    "denoise": ("the image denoiser with its defaults (pyfw.task.TASK_DEFAULTS['denoise'])", {"task": "denoise"}),
}
"""Named recipes: ``(description, Config fields)``; ``Config(**PRESETS[name][1])`` is the recipe (for a
preset that names a task, ``Config.for_task(**PRESETS[name][1])``)."""


def make_task_data(fw: Any, g: Any, config: "Config") -> tuple:
    """``(x_train, labels_train, x_test, labels_test)`` of ``config``'s task: the training set, then the
    test set, drawn from ``g``; the disk task's inputs standardized (:func:`make_data`), a Playground
    task's raw, both then mapped to ``config.features`` (``fw.data.features``)."""
    if config.task == "disk":
        return make_data(fw, g, config.n_train, config.n_test)
    make = getattr(fw.data, config.task)
    extra = {"classes": config.classes} if config.task == "spiral" else {}
    x_train, y_train = make(config.n_train, config.noise, generator=g, **extra)
    x_test, y_test = make(config.n_test, config.noise, generator=g, **extra)
    names = config.features.split(",")
    return fw.data.features(x_train, names), y_train, fw.data.features(x_test, names), y_test


def preprocess_of(config: "Config") -> Optional[dict]:
    """The input preprocessing a model file of ``config``'s run stores (``pyfw.io.Preprocess``)."""
    if config.task == "disk":
        return PREPROCESS
    return None if config.features == "x1,x2" else {"kind": "features", "names": config.features.split(",")}


def outputs_of(config: "Config") -> int:
    """The model's outputs: one per class, or one for a regression task."""
    if TASKS[config.task][0] == "regression":
        return 1
    return config.classes if config.task == "spiral" else 2


def denoise_channels(config: "Config") -> tuple:
    """``(c1, c2)``: the denoiser's channels after its first and second strided ``Conv2d``."""
    c1, c2 = (int(v) for v in config.channels.split(","))
    return c1, c2


def make_denoiser(fw: Any, g: Any, channels: int = IMAGE_CHANNELS, c1: int = 32, c2: int = 64,
                  arch: str = "upsample") -> Any:
    """The course's denoiser as an ``fw.Sequential``: two ``Conv2d`` of kernel 3, stride 2 and padding 1
    (``channels -> c1 -> c2``, each followed by ``ReLU``) halve the height and width twice; the decoder
    doubles them twice and ends in ``Sigmoid``, so the outputs are in (0, 1).

    ``arch="upsample"``: ``Upsample(scale_factor=2), Conv2d(c2, c1, 3, padding=1), ReLU,
    Upsample(scale_factor=2), Conv2d(c1, channels, 3, padding=1)``; ``arch="transpose"``:
    ``ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), ReLU,
    ConvTranspose2d(c1, channels, 3, stride=2, padding=1, output_padding=1)``. The layers draw
    their initial values from ``g`` in module order (weight, then bias). The images' height and
    width must be multiples of 4.
    """
    if arch not in ARCH_CHOICES:
        raise ValueError(f"make_denoiser: arch must be one of {', '.join(ARCH_CHOICES)}, got {arch!r}")
    layers = [fw.Conv2d(channels, c1, 3, stride=2, padding=1, generator=g), fw.ReLU(),
              fw.Conv2d(c1, c2, 3, stride=2, padding=1, generator=g), fw.ReLU()]
    if arch == "upsample":
        layers += [fw.Upsample(scale_factor=2), fw.Conv2d(c2, c1, 3, padding=1, generator=g), fw.ReLU(),
                   fw.Upsample(scale_factor=2), fw.Conv2d(c1, channels, 3, padding=1, generator=g)]
    else:
        layers += [fw.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1, generator=g), fw.ReLU(),
                   fw.ConvTranspose2d(c1, channels, 3, stride=2, padding=1, output_padding=1, generator=g)]
    return fw.Sequential(*layers, fw.Sigmoid())


def _build_denoise_run(fw: Any, config: "Config") -> dict:
    """:func:`build_run` of the denoiser. Draws: the training pairs, then the validation pairs
    (``fw.data.denoise_pairs``, each drawing its clean images, then its two noises), then the
    model's initial values (:func:`make_denoiser`); then, per epoch, ``fit``'s ``randperm``."""
    g = fw.Generator(config.seed)
    size, noise = config.image_size, config.noise
    noisy_a, noisy_b, clean = fw.data.denoise_pairs(config.n_train, size, IMAGE_CHANNELS, noise, generator=g)
    val_a, val_b, val_clean = fw.data.denoise_pairs(config.n_test, size, IMAGE_CHANNELS, noise, generator=g)
    c1, c2 = denoise_channels(config)
    model = make_denoiser(fw, g, IMAGE_CHANNELS, c1, c2, config.arch)
    criterion = getattr(fw, LOSS_CHOICES[config.loss])()
    inner = getattr(fw, OPTIMIZER_CHOICES[config.optimizer])(model.param(), lr=config.lr,
                                                             weight_decay=config.weight_decay)
    optimizer = inner
    if config.l1 > 0.0 or config.l2 > 0.0:
        weights = [m.weight for m in model if hasattr(m, "weight")]
        optimizer = fw.optim.Regularized(inner, weights, config.l1, config.l2)
    scheduler = make_scheduler(fw, inner, SCHEDULE_CHOICES[config.schedule], config.epochs)
    return {"generator": g, "x_train": noisy_a, "y_train": None, "x_test": val_a, "y_test": None,
            "targets": noisy_b, "test_targets": val_b, "clean_train": clean, "clean_test": val_clean,
            "model": model, "criterion": criterion, "optimizer": optimizer, "scheduler": scheduler,
            "regression": False, "kind": "denoising"}


def validation_images(fw: Any, config: "Config") -> tuple:
    """``(noisy, clean)``: the validation images of a denoiser run of ``config``, drawn as
    :func:`build_run` draws them (the training pairs first, from ``fw.Generator(config.seed)``)."""
    g = fw.Generator(config.seed)
    fw.data.denoise_pairs(config.n_train, config.image_size, IMAGE_CHANNELS, config.noise, generator=g)
    noisy, _, clean = fw.data.denoise_pairs(config.n_test, config.image_size, IMAGE_CHANNELS, config.noise,
                                            generator=g)
    return noisy, clean


def build_run(fw: Any, config: "Config") -> dict:
    """Everything a run of ``config`` needs, drawn from one ``fw.Generator(config.seed)`` in the
    documented order: ``generator``, ``x_train``, ``y_train``, ``x_test``, ``y_test``, ``targets``
    and ``test_targets`` (what the loss takes), ``model``, ``criterion``, ``optimizer`` (wrapped in
    ``fw.optim.Regularized`` when ``l1`` or ``l2`` is set), ``scheduler``, ``regression`` and
    ``kind`` (:data:`TASKS`). The denoiser's run (:func:`_build_denoise_run`) has the noisy inputs
    and targets as ``x_*`` and ``targets``/``test_targets``, None as labels, and the clean images
    as ``clean_train`` and ``clean_test``."""
    if config.task == "denoise":
        return _build_denoise_run(fw, config)
    g = fw.Generator(config.seed)
    x_train, y_train, x_test, y_test = make_task_data(fw, g, config)
    loss_name = LOSS_CHOICES[config.loss]
    regression = TASKS[config.task][0] == "regression"
    target_kind, head = ("column", None) if regression else LOSS_SETUP[loss_name]
    k = outputs_of(config)
    model = make_model(fw, g, config.activation, config.hidden, config.dropout, head,
                       sizes=[len(config.features.split(","))] + hidden_sizes(config) + [k])
    criterion = getattr(fw, loss_name)()
    inner = getattr(fw, OPTIMIZER_CHOICES[config.optimizer])(model.param(), lr=config.lr,
                                                             weight_decay=config.weight_decay)
    optimizer = inner
    if config.l1 > 0.0 or config.l2 > 0.0:
        weights = [m.weight for m in model if isinstance(m, fw.Linear)]
        optimizer = fw.optim.Regularized(inner, weights, config.l1, config.l2)
    scheduler = make_scheduler(fw, inner, SCHEDULE_CHOICES[config.schedule], config.epochs)

    def targets_of(labels: list) -> Any:
        if target_kind == "column":
            return fw.tensor([[v] for v in labels])
        return list(labels) if target_kind == "index" else fw.data.one_hot(labels, k)

    return {"generator": g, "x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "targets": targets_of(y_train), "test_targets": targets_of(y_test), "model": model,
            "criterion": criterion, "optimizer": optimizer, "scheduler": scheduler, "regression": regression,
            "kind": TASKS[config.task][0]}


def make_data(fw: Any, g: Any, n_train: int = 1000, n_test: int = 1000) -> tuple:
    """``(x_train, labels_train, x_test, labels_test)`` from ``fw.data.disk``, inputs standardized."""
    x_train, y_train = fw.data.disk(n_train, generator=g)
    x_test, y_test = fw.data.disk(n_test, generator=g)
    return standardize(fw, x_train), y_train, standardize(fw, x_test), y_test


def standardize(fw: Any, x: Any) -> Any:
    """``(v - 0.5) * sqrt(12.0)`` for every element, in Python, as a new ``fw`` tensor."""
    return fw.tensor([[(v - 0.5) * SCALE for v in row] for row in x.tolist()])


def make_model(fw: Any, g: Any, activation: str = "relu", hidden: int = 25, dropout: float = 0.0,
               head: Optional[str] = None, sizes: Optional[list] = None) -> Any:
    """2 inputs, three hidden layers of ``hidden`` units, 2 outputs, as an ``fw.Sequential``.

    Each hidden Linear is followed by ``getattr(fw, name)()``, where ``name`` is the
    class name that :data:`ACTIVATION_CHOICES` gives ``activation``, and, if
    ``dropout > 0``, by ``fw.Dropout(dropout, generator=g)``; ``head`` names an
    activation put after the last Linear. The Linear layers draw their initial
    values from ``g`` in module order. ``sizes`` (inputs, hidden sizes..., outputs) replaces the
    seed's ``[2, hidden, hidden, hidden, 2]``.
    """
    if activation not in ACTIVATION_CHOICES:
        raise ValueError(f"make_model: activation must be one of {', '.join(ACTIVATION_CHOICES)}, "
                         f"got {activation!r}")
    act = getattr(fw, ACTIVATION_CHOICES[activation])
    if sizes is None:
        sizes = [2, hidden, hidden, hidden, 2]
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [fw.Linear(n_in, n_out, generator=g), act()]
        if dropout > 0.0:
            layers.append(fw.Dropout(dropout, generator=g))
    layers.append(fw.Linear(sizes[-2], sizes[-1], generator=g))
    if head is not None:
        layers.append(getattr(fw, head)())
    return fw.Sequential(*layers)


CONFIG_KEY = "pyfw.config"
"""The metadata key under which a denoiser's model file written by ``train --save`` stores its
run's ``Config`` (JSON of its fields); ``plot --model`` redraws the validation images from it."""


def save_model(model: Any, path: str, config: "Config") -> None:
    """Write ``model`` as a model file (``pyfw.io.save_model``) with its input preprocessing
    (:func:`preprocess_of`); a denoiser's also holds the ``config`` of its run under
    :data:`CONFIG_KEY` (the other tasks' files are ``io.save_model``'s, byte for byte)."""
    metadata = io.model_metadata(model, preprocess_of(config))
    if config.task == "denoise":
        metadata[CONFIG_KEY] = json.dumps(dataclasses.asdict(config), allow_nan=False)
    io.save_safetensors(model.state_dict(), path, metadata)


def stored_config(path: str) -> Optional["Config"]:
    """The ``Config`` stored in the model file ``path`` (:func:`save_model`), None if it holds none.
    A field it lacks (added since) takes its default; a stored value that is not valid, or a field
    this pyfw does not know, is a ``ValueError`` naming the file."""
    text = io.load_safetensors_metadata(path).get(CONFIG_KEY)
    if text is None:
        return None
    try:
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise TypeError(f"expected an object, got {type(fields).__name__}")
        return Config(**fields)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: its stored run configuration ({CONFIG_KEY}) is not valid: {e}") from None


def stored_run(path: str) -> tuple:
    """``(epoch, extra)`` of the checkpoint file ``path``, read from its metadata alone (no
    tensor is loaded): the epochs it holds and its ``checkpoint_extra`` (None if it has none).

    A file that is not a checkpoint gets a ``ValueError`` naming it.
    """
    info = io.checkpoint_info(path)
    return info["epoch"], info["extra"]


def _stored_history(path: str, epoch: int, extra: Any, keys: tuple = HISTORY_KEYS) -> dict:
    """The per-epoch history stored in a checkpoint's extra, checked: one value per epoch for each
    of ``keys`` (error rates in [0, 1]; losses and PSNRs any float, or None)."""
    history = extra.get("history") if isinstance(extra, dict) else None
    if not isinstance(history, dict):
        raise ValueError(f"{path}: its run did not track errors, so epochs 1 to {epoch} have none; "
                         "resume it without tracking errors, or start a new run")
    out = {}
    for key in keys:
        values = history.get(key)
        if not isinstance(values, list) or len(values) != epoch:
            raise ValueError(f"{path}: its history of {key} must be a list of {epoch} values, one per epoch")
        free = key in ("test_losses", "test_psnrs")
        for v in values:
            ok = (v is None and free) or (isinstance(v, float) and (0.0 <= v <= 1.0 or free))
            if not ok:
                raise ValueError(f"{path}: its history of {key} holds {v!r:.40}")
        out[key] = list(values)
    return out


def train(fw: Any, config: Config = Config(),
          on_epoch: Optional[Callable[[int, float], None]] = None,
          on_batch: Optional[Callable[[int, int, float], None]] = None,
          fit_options: Optional[dict] = None, track_errors: bool = False,
          on_measure: Optional[Callable[[int, dict], None]] = None,
          on_progress: Optional[Callable[[int, int, float], None]] = None) -> dict:
    """Train the seed task once on the backend module ``fw`` (``pyfw`` or ``pyfw_rs``).

    Returns the backend's short name under ``"backend"``, every field of ``config``,
    ``train_error``, ``test_error`` (measured in eval mode), ``final_loss``, the epoch
    ``losses``, the ``seconds`` spent in :func:`~pyfw.training.fit`, and the trained
    model (left in eval mode) under ``"model"``. ``on_epoch``, ``on_batch``, ``on_progress``
    and ``fit_options`` (more keyword arguments, such as ``checkpoint``) are passed to ``fit``;
    ``on_progress`` (for a progress line) keeps ``pyfw_rs``'s native epoch, ``on_batch`` does not.

    The denoiser (``task="denoise"``) returns ``test_psnr`` (the validation PSNR of the trained
    model's outputs against the clean images, in dB) and ``noisy_psnr`` (that of the noisy inputs
    themselves) instead of errors (None), and always tracks :data:`DENOISE_HISTORY_KEYS` after every
    epoch, as ``track_errors`` does for the other tasks; ``on_measure(epoch, values)`` is called
    with each epoch's measured values (a dict by history key).

    With ``track_errors``, ``"train_errors"``, ``"test_errors"`` and ``"test_losses"``
    (:data:`HISTORY_KEYS`) hold the errors and the test loss after every epoch,
    measured in eval mode, which draws nothing. With a checkpoint they are part of the
    run's state: each checkpoint stores them under ``"history"`` in its
    ``checkpoint_extra`` (which must then be a dict or None), and a resumed run
    continues them, so it returns the history of a run never stopped. Resuming a
    checkpoint that holds more epochs than ``config.epochs``, or that tracked errors
    when this run does not (or the other way round), is a ``ValueError`` naming the
    file, raised before training.
    """
    run = build_run(fw, config)
    g, model, criterion, optimizer, scheduler = (run[k] for k in ("generator", "model", "criterion", "optimizer",
                                                                  "scheduler"))
    x_train, y_train, x_test, y_test, targets = (run[k] for k in ("x_train", "y_train", "x_test", "y_test", "targets"))
    regression = run["regression"]
    denoise = run["kind"] == "denoising"
    if regression and track_errors:
        raise ValueError(f"train: the task {config.task} is a regression, which has no error to track; "
                         "its result holds the train and test loss")
    track = track_errors or denoise  # the denoiser always tracks its PSNR
    keys = DENOISE_HISTORY_KEYS if denoise else HISTORY_KEYS
    loss_name = LOSS_CHOICES[config.loss]
    options = dict(fit_options or {})
    checkpoint = options.get("checkpoint")
    history: dict = {key: [] for key in keys}
    if checkpoint is not None and options.get("resume") and os.path.exists(checkpoint):
        done, extra = stored_run(os.fspath(checkpoint))
        if done > config.epochs:
            raise ValueError(f"{checkpoint} holds {done} epochs, more than the {config.epochs} of this run")
        if track:
            history = _stored_history(os.fspath(checkpoint), done, extra, keys)
        elif isinstance(extra, dict) and extra.get("history") is not None:
            raise ValueError(f"{checkpoint}: its run tracked errors after every epoch; resume it tracking them "
                             "too, or its history would be lost")
    if track and checkpoint is not None:
        extra = options.get("checkpoint_extra")
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"train: checkpoint_extra must be a dict to hold the history, got {type(extra).__name__}")
        options["checkpoint_extra"] = {**(extra or {}), "history": history}  # the live lists: saved each epoch
    test_targets = run["test_targets"]
    test_criterion = getattr(fw, loss_name)()

    @fw.no_grad()  # inference: the modules keep nothing for backward
    def measure() -> None:
        """Record the errors (the denoiser: the PSNR) and the test loss of the model as it is now."""
        model.eval()
        out = model(x_test)
        if denoise:
            value = psnr(out, run["clean_test"])
            history["test_psnrs"].append(value if math.isfinite(value) else None)
        else:
            history["train_errors"].append(error_rate(model(x_train), y_train))
            history["test_errors"].append(error_rate(out, y_test))
        test_loss = test_criterion(out, test_targets)
        history["test_losses"].append(test_loss if math.isfinite(test_loss) else None)
        model.train()
        if on_measure is not None:
            on_measure(len(history[keys[0]]), {key: history[key][-1] for key in keys})

    def progress_done(k: int, n: int, loss: float) -> None:
        if on_progress is not None:
            on_progress(k, n, loss)
        if k == n and track and checkpoint is not None:
            measure()  # after the epoch's last step, before fit writes the checkpoint

    def epoch_done(epoch: int, loss: float) -> Optional[bool]:
        if track and len(history[keys[0]]) < epoch:
            measure()
        return on_epoch(epoch, loss) if on_epoch is not None else None

    hook = progress_done if on_progress is not None or (track and checkpoint is not None) else None
    start = time.perf_counter()
    losses = fit(model, criterion, optimizer, x_train, targets, config.epochs, config.batch_size, g,
                 on_epoch=epoch_done, on_batch=on_batch, on_progress=hook, scheduler=scheduler, **options)
    seconds = time.perf_counter() - start
    model.eval()
    backend = {module: short for short, module in BACKENDS.items()}.get(fw.__name__, fw.__name__)
    with fw.no_grad():
        if denoise:
            measured = {"train_error": None, "test_error": None, "test_psnr": psnr(model(x_test), run["clean_test"]),
                        "noisy_psnr": psnr(x_test, run["clean_test"])}
        elif regression:
            measured = {"train_error": None, "test_error": None,
                        "train_loss": getattr(fw, loss_name)()(model(x_train), targets),
                        "test_loss": getattr(fw, loss_name)()(model(x_test), test_targets)}
        else:
            measured = {"train_error": error_rate(model(x_train), y_train),
                        "test_error": error_rate(model(x_test), y_test)}
    return {
        "backend": backend, **dataclasses.asdict(config), **measured,
        "final_loss": losses[-1], "losses": losses, "seconds": seconds, "model": model,
        **(history if track else {}),
    }
