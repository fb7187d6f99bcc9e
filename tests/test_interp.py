"""The evaluation protocol of docs/semantics.md §4.3-§4.5, checked on hand-made tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from azc.evaluation import evaluate
from azc.frontend import parse
from azc.interp import Executor, evaluate_task
from azc.ir import MemoryConfig
from azc.results import combine, flip_and_squash, sigmoid
from azc.tasks.task import EvalType, Task

MEM = MemoryConfig(8, 4, 2)


def make_task(n=5, nv=3, F=2, epochs=1, eval_type=EvalType.RMS_ERROR, labels=None,
              valid_labels=None, index=0, features=None) -> Task:
    tx = features if features is not None else np.arange(n * F, dtype=float).reshape(n, F)
    vx = np.arange(nv * F, dtype=float).reshape(nv, F) + 100
    ty = np.zeros(n) if labels is None else np.asarray(labels, dtype=float)
    vy = np.zeros(nv) if valid_labels is None else np.asarray(valid_labels, dtype=float)
    return Task(tx, ty, vx, vy, eval_type, epochs, index=index)


def run(text: str, task: Task, **kw):
    return evaluate_task(parse(text), task, MEM, record=True, **kw)


def test_fitness_formulas() -> None:
    assert flip_and_squash(0.0) == 1.0
    assert flip_and_squash(math.inf) == 0.0 and flip_and_squash(math.nan) == 0.0
    assert abs(flip_and_squash(1.0) - 0.5) < 1e-15
    assert sigmoid(0.0) == 0.5 and sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0


def test_setup_runs_once_and_memory_persists_across_examples_and_validation() -> None:
    # s2 counts Predict runs: Setup sets it to 0 once; training and validation keep counting.
    res = run("def Setup():\n  s3 = 1.0\ndef Predict():\n  s2 = s2 + s3\n  s1 = s2 + s0\n",
              make_task(n=5, nv=3))
    assert res.train_predictions.tolist() == [1, 2, 3, 4, 5]
    assert res.valid_predictions.tolist() == [6, 7, 8]


def test_label_is_zeroed_before_predict_and_visible_in_learn() -> None:
    task = make_task(n=3, labels=[7.0, 8.0, 9.0])
    # Predict copies s0 (always 0) into s1; Learn stores the label in s2.
    res = run("def Predict():\n  s1 = s0 + s2\ndef Learn():\n  s2 = s0 + s4\n", task)
    # s1 during training sees the previous label through s2, never the current one
    assert res.train_predictions.tolist() == [0.0, 7.0, 8.0]


def test_features_are_reloaded_before_learn() -> None:
    task = make_task(n=2, F=2)  # features [0, 1], [2, 3]
    # Predict overwrites v0; Learn must still see the true features.
    res = run("def Predict():\n  v0 = bcast(s5)\n  s1 = s3 + s0\n"
              "def Learn():\n  s3 = mean(v0)\n", task)
    assert res.train_predictions.tolist() == [0.0, 0.5]


def test_accuracy_sigmoid_write_back_in_training_only() -> None:
    task = make_task(n=3, nv=2, eval_type=EvalType.ACCURACY, labels=[1, 1, 1],
                     valid_labels=[1, 0])
    # An empty Predict: training writes sigmoid(s1) back into s1 each step.
    ex = Executor(parse("def Learn():\n  s2 = s1 + s3\n"), task, MEM)
    fit = ex.execute()
    s1 = 0.0
    for _ in range(3):
        s1 = sigmoid(s1)
    assert ex.mem.s[1] == s1  # validation keeps the raw value: no write-back
    assert fit == 0.5  # p > 0.5: predicts positive, right on the first valid example only
    assert ex.mem.s[2] == s1  # Learn saw the sigmoided prediction


def test_training_stops_on_large_error_first_epoch_gives_zero() -> None:
    res = run("def Setup():\n  s2 = 101.0\ndef Predict():\n  s1 = s2 + s0\n", make_task())
    assert res.fitness == 0.0 and res.stopped_early
    assert res.train_steps == 1  # the failing step still counts


def test_error_of_exactly_max_abs_error_does_not_stop() -> None:
    res = run("def Setup():\n  s2 = 100.0\ndef Predict():\n  s1 = s2 + s0\n", make_task())
    assert not res.stopped_early and res.fitness == flip_and_squash(100.0)


def test_nan_prediction_stops_training() -> None:
    res = run("def Predict():\n  s1 = s0 / s0\n", make_task())
    assert res.fitness == 0.0 and res.stopped_early


def test_max_abs_error_is_configurable() -> None:
    text = "def Setup():\n  s2 = 5.0\ndef Predict():\n  s1 = s2 + s0\n"
    assert run(text, make_task(), max_abs_error=4.0).fitness == 0.0
    assert run(text, make_task(), max_abs_error=6.0).fitness > 0.0


def test_early_stop_in_a_later_epoch_keeps_the_best_fitness() -> None:
    # s2 counts Learn runs; s1 = 20 * s2 reaches 120 (> 100) in the 2nd epoch.
    text = ("def Setup():\n  s3 = 1.0\n  s5 = 20.0\ndef Predict():\n  s1 = s2 * s5\n"
            "def Learn():\n  s2 = s2 + s3\n")
    task = make_task(n=5, nv=1, epochs=2)
    res = run(text, task)
    assert res.stopped_early
    assert res.fitness == flip_and_squash(100.0)  # epoch 1's validation: s1 = 100
    assert res.train_steps == 7


def test_best_of_epochs() -> None:
    # Prediction grows by 1 per Learn: epoch 1 validates at s1 = 2, epoch 2 at s1 = 4.
    text = ("def Setup():\n  s3 = 1.0\ndef Predict():\n  s1 = s2 + s0\n"
            "def Learn():\n  s2 = s2 + s3\n")
    good_late = make_task(n=2, nv=1, epochs=2, valid_labels=[4.0])
    assert run(text, good_late).fitness == 1.0
    good_early = make_task(n=2, nv=1, epochs=2, valid_labels=[2.0])
    assert run(text, good_early).fitness == 1.0


def test_epoch_order_is_followed() -> None:
    task = Task(np.array([[0.0], [1.0], [2.0]]), np.zeros(3), np.zeros((1, 1)), np.zeros(1),
                num_train_epochs=2, train_order=np.array([[2, 0, 1], [1, 2, 0]]))
    res = run("def Predict():\n  s1 = mean(v0)\n", task)
    assert res.train_predictions.tolist() == [2.0, 0.0, 1.0, 1.0, 2.0, 0.0]


def test_rms_loss_is_divided_by_the_full_validation_size() -> None:
    task = make_task(nv=4, valid_labels=[1, 1, 1, 1])
    ex = Executor(parse("def Predict():\n  s1 = s0 + s0\n"), task, MEM)
    fit = ex.execute(num_valid=1)  # one example of error 1, divided by Nv = 4
    assert fit == flip_and_squash(math.sqrt(1 / 4))


def test_validation_nan_gives_zero_for_regression() -> None:
    task = make_task(n=2, nv=2)
    # s2 is 0 in training (0/0 never happens there), NaN appears only in validation
    text = ("def Setup():\n  s3 = 1.0\ndef Predict():\n  s1 = s4 * s2\n  s4 = s0 / s0\n"
            "def Learn():\n  s4 = s0 + s0\n")
    # training: s1 = 0 * 0, then Predict makes s4 NaN, Learn resets it; validation: NaN
    res = run(text, task)
    assert not res.stopped_early
    assert math.isnan(res.valid_predictions[-1]) and res.fitness == 0.0


def test_accuracy_nan_in_validation_counts_as_negative() -> None:
    task = make_task(n=2, nv=2, eval_type=EvalType.ACCURACY, labels=[0, 0], valid_labels=[0, 1])
    text = ("def Predict():\n  s1 = s4 + s0\n  s4 = s0 / s0\ndef Learn():\n  s4 = s0 + s0\n")
    res = run(text, task)
    assert res.fitness == 0.5  # NaN -> negative: right on label 0, wrong on label 1


def test_fresh_memory_per_task() -> None:
    text = ("def Setup():\n  s3 = 1.0\ndef Predict():\n  s1 = s2 + s0\n"
            "def Learn():\n  s2 = s2 + s3\n")
    tasks = [make_task(index=0), make_task(index=1)]
    res = evaluate(parse(text), tasks, MEM, record=True)
    assert res.tasks[0].train_predictions.tolist() == res.tasks[1].train_predictions.tolist()


def test_num_train_examples_limits_training() -> None:
    res = run("def Predict():\n  s1 = s0 + s0\n", make_task(n=5, epochs=2), num_train=3)
    assert res.train_steps == 3


def test_errors_are_recorded_for_the_first_epoch() -> None:
    task = make_task(n=3, nv=2, epochs=2, labels=[1, 2, 3], valid_labels=[4, 5])
    res = evaluate_task(parse("def Predict():\n  s1 = s0 + s0\n"), task, MEM,
                        record_errors=True)
    assert res.train_errors == [1.0, 2.0, 3.0]
    assert res.valid_errors == [4.0, 5.0]


def test_combination_mean_and_upper_median() -> None:
    assert combine([0.1, 0.2, 0.6]) == (0.1 + 0.2 + 0.6) / 3
    assert combine([0.1, 0.9, 0.2, 0.8], "median") == 0.8
    with pytest.raises(ValueError):
        combine([0.5], "mode")


def test_evaluate_with_median() -> None:
    tasks = [make_task(index=i, valid_labels=[i, i, i]) for i in range(3)]
    res = evaluate("def Predict():\n  s1 = s0 + s0\n", tasks, combination="median")
    assert res.fitness == sorted(res.task_fitness)[1]


def test_random_ops_are_reproducible_by_seed() -> None:
    text = "def Setup():\n  v1 = gaussian(0.0, 1.0)\ndef Predict():\n  s1 = dot(v0, v1)\n"
    task = make_task(labels=[1, 2, 3, 4, 5])
    a = evaluate(text, [task], MEM, seed=3).fitness
    assert a == evaluate(text, [task], MEM, seed=3).fitness
    assert a != evaluate(text, [task], MEM, seed=4).fitness


def test_random_draws_differ_per_example() -> None:
    res = run("def Predict():\n  s1 = uniform(0.0, 1.0)\n", make_task(n=5))
    assert len(set(res.train_predictions.tolist())) == 5
