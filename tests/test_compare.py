"""`imagenet-regt compare` on two recorded runs of the 8 images, against numbers worked out by hand.

Run A: MC with scripted letters; run B: CW with the free-text answers (see test_e2e_scripted.py).
    image              0  1  2  3  4  5  6  7          category: 6 (the ATM) is M+, the others S+
    A (MC)   ImGT      1  1  1  1  0  0  1  0          "B", "(b)", "B. name", "Answer: B" and the name
             ReaL      1  1  1  1  0  0  1  0
    B (CW)   ImGT      1  0  1  0  0  0  0  0          only exact names; "vending machine" is ReaL only
             ReaL      1  0  1  0  0  0  1  0
ImGT, all 8: right in A only 1, 3, 6 (3), in B only none: A − B = +37.5%, McNemar p = 2·(½)³ = 0.25.
ReaL, all 8: A only 1, 3 (2): +25%, p = 2·(½)² = 0.5.  S+ (7 images), ImGT: A only 1, 3: +2/7, p = 0.5.
M+ (1 image), ImGT: A only 6: +100%, p = 1; ReaL: both right, 0 discordant, p = 1.
"""

import json
import shutil

import numpy as np
import pytest

from lmms_eval_imagenet_regt.outputs.compare import compare_files
from tests.lmms_run import regt_cli
from tests.test_e2e_scripted import IDS

pytestmark = pytest.mark.slow


def cli(*args):
    return regt_cli(*args, check=False)


@pytest.fixture(scope="module")
def pair(scripted_runs):
    return (
        scripted_runs["imagenet_real_mc_imgt_random"]["samples_path"],
        scripted_runs["imagenet_real_cw"]["samples_path"],
    )


def paired_bootstrap(first, second, seed=0, resamples=1000):
    """The same draws as the plugin's (one `integers(0, n, n)` per resample), the mean written out."""
    rng = np.random.default_rng(seed)
    n = len(first)
    means = []
    for _ in range(resamples):
        picked = rng.integers(0, n, n)
        means.append(sum(first[i] - second[i] for i in picked) / n)
    return list(np.percentile(means, [2.5, 97.5]))


def test_compare_gives_the_hand_values(pair):
    comparison = compare_files(*pair)
    assert comparison["images"] == 8 and comparison["same_labels"]
    a_imgt, b_imgt = [1, 1, 1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 0, 0, 0, 0]
    a_real, b_real = [1, 1, 1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 0, 0, 1, 0]
    everything = comparison["categories"]["A"]
    imgt = everything["imgt"]
    assert (everything["count"], imgt["a"], imgt["b"], imgt["difference"]) == (8, 5 / 8, 2 / 8, 3 / 8)
    assert (imgt["a_only"], imgt["b_only"], imgt["p_value"]) == (3, 0, 0.25)
    assert imgt["interval"] == pytest.approx(paired_bootstrap(a_imgt, b_imgt), abs=1e-12)
    real = everything["labels"]
    assert (real["difference"], real["a_only"], real["b_only"], real["p_value"]) == (2 / 8, 2, 0, 0.5)
    assert real["interval"] == pytest.approx(paired_bootstrap(a_real, b_real), abs=1e-12)
    single = comparison["categories"]["S+"]
    assert (single["count"], single["imgt"]["difference"], single["imgt"]["p_value"]) == (7, 2 / 7, 0.5)
    s_plus = [i for i in range(8) if i != 6]  # the ATM is M+
    expected = paired_bootstrap([a_imgt[i] for i in s_plus], [b_imgt[i] for i in s_plus])
    assert single["imgt"]["interval"] == pytest.approx(expected, abs=1e-12)
    multi = comparison["categories"]["M+"]
    assert (multi["count"], multi["imgt"]["difference"], multi["imgt"]["p_value"]) == (1, 1.0, 1.0)
    assert (multi["labels"]["difference"], multi["labels"]["a_only"] + multi["labels"]["b_only"]) == (0.0, 0)
    assert comparison["categories"]["S-"] == {"count": 0}
    # the command prints the same, and a different seed draws differently
    printed = cli("compare", *pair).stdout
    low, high = (100 * bound for bound in paired_bootstrap(a_imgt, b_imgt))
    assert f"| A | 8 | 62.50 | 25.00 | +37.50 | [{low:+.2f}, {high:+.2f}] | 3 | 0 | 0.25 |" in printed
    other = json.loads(cli("compare", *pair, "--seed", "7", "--format", "json").stdout)
    assert other["categories"]["A"]["imgt"]["interval"] == pytest.approx(paired_bootstrap(a_imgt, b_imgt, seed=7))
    assert tuple(sorted(IDS)) == IDS  # the bootstrap's image order is the sorted ids, as here


def test_runs_on_other_labels_are_refused_unless_asked(pair, tmp_path):
    copies = []
    for name, samples in zip("ab", pair, strict=True):
        (tmp_path / name).mkdir()
        copies.append(shutil.copy(samples, tmp_path / name))
        shutil.copy(next(samples.parent.glob("*_results.json")), tmp_path / name)
    results = next((tmp_path / "b").glob("*_results.json"))
    data = json.loads(results.read_text())
    data["configs"]["imagenet_real_cw"]["metadata"]["imagenet_regt"]["labels"]["sha256"] = "0" * 64
    results.write_text(json.dumps(data))
    refused = cli("compare", *copies)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "was scored against other labels than" in refused.stderr and "--allow-different-labels" in refused.stderr
    allowed = cli("compare", *copies, "--allow-different-labels")
    assert allowed.returncode == 0 and "scored against different labels: each against its own" in allowed.stdout
