"""The one registry helper (robustpose.utils.registry) and the tables built on it."""
from __future__ import annotations

import pytest

from robustpose.utils.registry import Registry, UnknownNameError


def _fresh() -> Registry:
    reg = Registry("widget")
    reg.register("alpha", 1, colour="red")

    @reg.register("beta", size=(2, 3))
    def beta():
        return "b"
    reg.register("alphabet", 3)
    return reg


def test_register_decorates_lists_and_reads_meta():
    reg = _fresh()
    assert reg.get("beta")() == "b" and reg["alpha"] == 1
    assert reg.names() == reg.choices() == ["alpha", "alphabet", "beta"]
    assert reg.list("alpha*") == ["alpha", "alphabet"] and reg.list("?eta") == ["beta"]
    assert reg.list("Alpha") == []                     # case-sensitive, like fnmatchcase
    assert "alpha" in reg and "gamma" not in reg and len(reg) == 3
    assert list(reg) == ["alpha", "beta", "alphabet"]  # mapping order: registration order
    meta = reg.meta("beta")
    meta["size"] = None                                # a copy: the registry keeps its own
    assert reg.meta("beta") == {"size": (2, 3)} and reg.meta("alphabet") == {}


def test_duplicates_are_refused_in_one_line():
    reg = _fresh()
    with pytest.raises(ValueError, match=r"^widget 'alpha' is already registered \(int\)$"):
        reg.register("alpha", 2)
    assert reg["alpha"] == 1
    reg.register("alpha", 1, colour="red")             # the very same object again: harmless
    with pytest.raises(ValueError, match="non-empty string"):
        reg.register("", 5)


def test_unknown_names_name_the_choices_and_the_nearest():
    reg = _fresh()
    with pytest.raises(UnknownNameError) as info:
        reg.get("alpah")
    assert str(info.value) == "unknown widget 'alpah'; choose from alpha, alphabet, beta (nearest: 'alpha')"
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    with pytest.raises(KeyError):
        reg["zzz"]
    assert "nearest" not in Registry("widget").unknown_message("zzz")
    assert reg.get("zzz", None) is None               # an explicit default is returned
    with pytest.raises(ValueError, match="unknown widget 'zzz'"):
        reg.meta("zzz")


def test_item_assignment_is_the_explicit_override_for_tests():
    reg = _fresh()
    reg["alpha"] = 10
    assert reg["alpha"] == 10 and reg.meta("alpha") == {"colour": "red"}
    scratch = reg.copy()
    scratch.register("gamma", 4)
    del reg["beta"]
    assert "gamma" not in reg and "beta" in scratch and "beta" not in reg


def test_every_table_is_a_registry_that_refuses_duplicates():
    from robustpose.attacks import ATTACKS, IGSM, attack_names
    from robustpose.codecs import CODECS, GaussianHeatmap, register_codec
    from robustpose.corruptions.registry import CORRUPTIONS, register
    from robustpose.losses import LOSSES, JointsMSELoss, register_loss
    from robustpose.models import MODELS, register_model
    from robustpose.training.methods import METHODS, StandardHeatmap, method_names, register_method
    import robustpose.training  # noqa: F401  (registers every method)

    for table in (ATTACKS, CODECS, CORRUPTIONS, LOSSES, MODELS, METHODS):
        assert isinstance(table, Registry)
    assert ATTACKS["igsm"] is IGSM and attack_names() == ["fgsm", "igsm", "spsa", "uap"]
    assert ATTACKS.meta("spsa") == {"access": "query"}
    # ImageNet-C's 19 + PoseBench's color_quant, low_light, mask
    assert len(CORRUPTIONS) == 22 and CORRUPTIONS.meta("contrast") == {"deterministic": True}
    assert {"standard", "advmix", "stable", "regression"} <= set(method_names())
    with pytest.raises(ValueError, match="^codec 'hrnet' is already registered"):
        register_codec("hrnet")(type("Other", (GaussianHeatmap,), {}))
    with pytest.raises(ValueError, match="^loss 'mse' is already registered"):  # overwrote silently before
        register_loss("mse")(type("Other", (JointsMSELoss,), {}))
    with pytest.raises(ValueError, match="^train.method 'standard' is already registered"):  # ditto
        register_method("standard")(type("Other", (StandardHeatmap,), {}))
    with pytest.raises(ValueError, match="^corruption 'snow' is already registered"):
        register("snow")(lambda image, severity, rng: image)
    with pytest.raises(ValueError, match="^model 'hrnet_w32' is already registered"):
        register_model("hrnet_w32", lambda num_joints=17, extra=None: None)
    assert LOSSES["mse"] is JointsMSELoss and METHODS["standard"] is StandardHeatmap


def test_build_functions_give_the_nearest_choice():
    from robustpose.codecs import build_codec
    from robustpose.losses import build_loss
    from robustpose.models import create_model
    from robustpose.training.methods import build_method
    import robustpose.training  # noqa: F401  (registers every method)

    with pytest.raises(ValueError, match=r"unknown codec 'unbiassed'; choose from .* \(nearest: 'unbiased'\)$"):
        build_codec("unbiassed")
    with pytest.raises(ValueError, match=r"\(nearest: 'mse'\)$"):
        build_loss("msee")
    with pytest.raises(ValueError, match=r"^unknown train.method 'advmixx'; .* \(nearest: 'advmix'\)$"):
        build_method({"train": {"method": "advmixx", "use_target_weight": True}})
    with pytest.raises(ValueError, match=r"^unknown model 'hrnet_w33'; .*\(nearest: 'hrnet_w32'\)$"):
        create_model("hrnet_w33")
