"""``import multiviz`` is cheap: heavy dependencies load only when a model is used.

Each check runs in a fresh interpreter, since this test process has long imported them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "scvi", "lightning", "sklearn")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {list(HEAVY) + ['scanpy', 'matplotlib']!r}}}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_multiviz_loads_no_heavy_dependency():
    loaded = _loaded_after("import multiviz as mv\nmv.settings.num_threads = 1")
    assert [m for m in HEAVY if loaded[m]] == []
    assert not loaded["scanpy"]
    assert not loaded["matplotlib"]


@pytest.mark.parametrize(
    "code",
    [
        "import multiviz as mv; mv.pl; mv.pp; mv.tl; mv.models; mv.metrics; mv.datasets",
        "import multiviz as mv; mv.pl.latent_overlay; mv.pl.training_history; mv.pl.loadings",
        "from multiviz.pl import coupled_latents, cv_r2, cross_modal, selection_stability",
        "import multiviz as mv; dir(mv.tl); dir(mv.models); mv.train.fit_context",
    ],
)
def test_namespaces_and_plotting_load_no_heavy_dependency(code):
    loaded = _loaded_after(code)
    assert [m for m in HEAVY if loaded[m]] == []


def test_names_resolve_lazily_and_match_eager_objects():
    import multiviz as mv
    from multiviz.tl import sbnn
    from multiviz.tl._sbnn import sbnn as eager

    assert sbnn is eager is mv.tl.sbnn
    assert mv.models.SBNN.__name__ == "SBNN"
    assert mv.models.coupled.CoupledAutoencoder is mv.models.CoupledAutoencoder
    for namespace in (mv.tl, mv.pl, mv.pp, mv.models, mv.metrics, mv.datasets, mv.linear):
        assert set(namespace.__all__) <= set(dir(namespace))
        for name in namespace.__all__:
            assert callable(getattr(namespace, name)), (namespace.__name__, name)


def test_unknown_attribute_is_an_attribute_error():
    import multiviz as mv

    with pytest.raises(AttributeError, match="no attribute 'sbn'"):
        mv.tl.sbn  # noqa: B018
    assert not hasattr(mv.pl, "nothing_here")


def test_private_submodules_stay_reachable_as_attributes():
    import multiviz as mv

    assert callable(mv.metrics._consistency.kept_classes)  # as after an eager import
    with pytest.raises(AttributeError):
        mv.metrics._nothing  # noqa: B018
