"""The models layer: recording an UnbinnedNLL, its replay cost against the hand-written NLL, and
sampling.

Targets: recording ``UnbinnedNLL`` of the tutorial model <= 50 ms; its value_and_grad at
N = 1e6 within 1.2x of the hand-written numpy NLL recorded directly; sampling 1e6 events <= 0.5 s.
"""
import numpy as np

import tape
from models import UnbinnedNLL, tutorial
from models.tutorial_model import build

from .bench_tape import median_seconds

tape.set_num_threads(1)
_STATE = {}


def _state():
    if not _STATE:
        model, x, params = build()
        data = model.sample(10**6, np.random.default_rng(0))
        nll = UnbinnedNLL(model, data)
        hand = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": data})
        order = [nll.names.index(n) for n in tutorial.NAMES]
        p_hand = tutorial.TRUTH * 1.01
        p_nll = np.empty(7)
        p_nll[order] = p_hand
        _STATE.update(model=model, data=data, nll=nll, hand=hand, p_hand=p_hand, p_nll=p_nll)
    return _STATE


class TutorialNLL:
    """UnbinnedNLL of the tutorial model at N = 1e6 against the hand-written NLL on the tape."""

    timeout = 300

    def setup(self):
        s = _state()
        self.s = s
        s["nll"].value_and_grad(s["p_nll"])
        s["hand"].value_and_grad(s["p_hand"])

    def time_record(self):
        UnbinnedNLL(self.s["model"], self.s["data"][:1000])

    def time_value_and_grad(self):
        self.s["nll"].value_and_grad(self.s["p_nll"])

    def time_sample(self):
        self.s["model"].sample(10**6, np.random.default_rng(1))

    def track_value_and_grad_over_hand_written(self):
        s = self.s
        a, b = median_seconds(lambda: s["nll"].function.value_and_grad(s["p_nll"]),
                              lambda: s["hand"].value_and_grad(s["p_hand"]), repeat=9)
        return a / b

    track_value_and_grad_over_hand_written.unit = "ratio"
