"""fw.metrics on both backends: a one-column output is read as a logit or a probability, by an
explicit argument; accuracy and confusion_matrix (rows: true class, columns: predicted)."""

from __future__ import annotations

from types import ModuleType

import pytest

import pyfw


def xor_logit_classifier(fw: ModuleType) -> tuple:
    """A perfect XOR classifier with one logit output: ``relu(a - b) + relu(b - a) - 0.5``."""
    model = fw.Sequential(fw.Linear(2, 2, generator=fw.Generator(0)), fw.ReLU(),
                          fw.Linear(2, 1, generator=fw.Generator(0)))
    model.load_state_dict({"0.weight": [[1.0, -1.0], [-1.0, 1.0]], "0.bias": [0.0, 0.0],
                           "2.weight": [[1.0, 1.0]], "2.bias": [-0.5]})
    x = fw.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return model, x, [0, 1, 1, 0]


def test_a_perfect_xor_classifier_with_one_logit_column(fw: ModuleType) -> None:
    model, x, labels = xor_logit_classifier(fw)
    out = model(x)
    assert out.shape == (4, 1)
    assert fw.error_rate(out, labels, binary="logit") == 0.0
    assert fw.metrics.accuracy(out, labels, binary="logit") == 1.0
    assert fw.metrics.confusion_matrix(out, labels, binary="logit") == [[2, 0], [0, 2]]
    probs = fw.Sigmoid()(out)
    assert fw.error_rate(probs, labels, binary="probability") == 0.0
    # read the logits as probabilities (threshold 0.5): two rows wrong, and said so
    assert fw.error_rate(out, labels, binary="probability") == 0.5


@pytest.mark.parametrize("metric", ["error_rate", "accuracy", "confusion_matrix"])
def test_one_column_without_binary_is_a_clear_error(fw: ModuleType, metric: str) -> None:
    model, x, labels = xor_logit_classifier(fw)
    with pytest.raises(ValueError, match=f"{metric}: the output has one column.*binary='logit'"):
        getattr(fw.metrics, metric)(model(x), labels)
    with pytest.raises(ValueError, match="'logit' or 'probability'"):
        getattr(fw.metrics, metric)(model(x), labels, binary="sigmoid")
    with pytest.raises(ValueError, match="2 columns"):
        getattr(fw.metrics, metric)([[0.1, 0.9]], [1], binary="logit")


def test_one_column_thresholds_and_targets(fw: ModuleType) -> None:
    out = fw.tensor([[-0.1], [0.0], [0.2], [3.0]])
    assert fw.metrics.accuracy(out, [0, 0, 1, 1], binary="logit") == 1.0  # 0.0 is not above 0
    assert fw.metrics.accuracy(out, [0, 0, 0, 1], binary="probability") == 1.0
    column = fw.tensor([[0.0], [0.0], [1.0], [1.0]])  # targets as BCEWithLogitsLoss takes them
    assert fw.error_rate(out, column, binary="logit") == 0.0
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        fw.error_rate(out, [[0.0], [0.5], [1.0], [1.0]], binary="logit")
    with pytest.raises(ValueError, match=r"labels\[2\] = 2"):
        fw.error_rate(out, [0, 0, 2, 1], binary="logit")


def test_accuracy_and_confusion_matrix_with_k_classes(fw: ModuleType) -> None:
    out = fw.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.0, 0.0, 1.0]])
    labels = [0, 1, 1, 2, 2]
    assert fw.metrics.accuracy(out, labels) == 3 / 5
    assert fw.metrics.error_rate(out, labels) == 2 / 5
    cm = fw.metrics.confusion_matrix(out, labels)
    assert cm == [[1, 0, 0], [0, 1, 1], [1, 0, 1]]  # rows: true class; columns: predicted
    assert all(type(v) is int for r in cm for v in r)
    assert fw.metrics.confusion_matrix(out, fw.data.one_hot(labels, 3)) == cm
    assert type(fw.metrics.accuracy(out, labels)) is float
    with pytest.raises(ValueError, match="not a class of the output"):
        fw.metrics.confusion_matrix(out, [0, 1, 3, 2, 2])
    with pytest.raises(ValueError, match="5 output rows but 4 labels"):
        fw.metrics.accuracy(out, labels[:4])


def test_the_metrics_are_written_once() -> None:
    assert pyfw.metrics.accuracy is pyfw.metrics.accuracy
    for name in ("accuracy", "confusion_matrix", "error_rate", "argmax_rows"):
        assert callable(getattr(pyfw.metrics, name))
    assert pyfw.error_rate is pyfw.metrics.error_rate
