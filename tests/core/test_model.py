"""core.nn.model: config validation, the factory for every architecture/encoder, output helpers."""

from __future__ import annotations

import socket
import time

import pytest
import torch

from core.nn.model import (
    ARCHITECTURES,
    ENCODERS,
    ClassicUNet,
    ModelConfig,
    build_model,
    count_parameters,
    labels_from_logits,
    probabilities,
    required_multiple,
)

SMP_ARCHS = [a for a in ARCHITECTURES if a != "classic"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("arch", SMP_ARCHS)
def test_every_smp_arch_and_encoder_builds_and_runs(arch, encoder):
    cfg = ModelConfig(arch=arch, encoder=encoder)
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 64, 64))
    assert out.shape == (1, 1, 64, 64)
    assert required_multiple(cfg) == model.encoder.output_stride


def test_classic_unet_has_five_levels_and_keeps_size():
    model = build_model(ModelConfig(arch="classic", classic_width=4)).eval()
    assert isinstance(model, ClassicUNet)
    assert [blk[0].out_channels for blk in model.down] == [4, 8, 16, 32, 64]
    with torch.no_grad():
        assert model(torch.rand(2, 1, 48, 32)).shape == (2, 1, 48, 32)
    with pytest.raises(RuntimeError, match="multiples of 16"):
        model(torch.rand(1, 1, 40, 40))


def test_classic_unet_paper_width_has_about_31m_parameters():
    n = count_parameters(ClassicUNet(1, 2, 64))
    assert 30_000_000 < n < 32_000_000  # Ronneberger et al.: ~31 M


def test_multiclass_head_and_shallow_encoder():
    cfg = ModelConfig(arch="Unet", encoder="resnet18", n_classes=3, encoder_depth=3)
    assert cfg.out_channels == 3 and required_multiple(cfg) == 8
    with torch.no_grad():
        out = build_model(cfg).eval()(torch.rand(1, 1, 24, 24))
    assert out.shape == (1, 3, 24, 24)


def test_scse_attention_is_in_every_decoder_block_and_an_old_config_has_none():
    cfg = ModelConfig.from_dict({"arch": "Unet", "encoder_depth": 3, "attention": "scse"})
    model = build_model(cfg).eval()
    kinds = {type(m).__name__ for m in model.decoder.modules()}
    assert "SCSEModule" in kinds and cfg.describe() == "Unet / resnet18, depth 3, scse"
    with torch.no_grad():
        assert model(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    old = {k: v for k, v in cfg.to_dict().items() if k != "attention"}  # a checkpoint from before
    assert ModelConfig.from_dict(old).attention is None
    assert "SCSEModule" not in {type(m).__name__ for m in build_model(ModelConfig.from_dict(old)).modules()}


def test_deep_supervision_heads_train_on_coarser_levels_and_predict_the_output_alone():
    cfg = ModelConfig.from_dict({"arch": "classic", "classic_width": 4, "deep_supervision": True})
    model = build_model(cfg)
    assert cfg.describe() == "classic U-Net (width 4, deep supervision)"
    out, aux = model(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 1, 64, 64) and [a.shape for a in aux] == [(2, 1, 16, 16), (2, 1, 32, 32)]
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    plain = build_model(ModelConfig(arch="classic", classic_width=4)).eval()
    # the heads are extra: the plain network's weights load into it, and it predicts the same
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("aux_heads.") for k in missing)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))


def test_config_validation_and_round_trip():
    cfg = ModelConfig.from_dict({"arch": "unetplusplus", "encoder": "MOBILENET_V2", "n_classes": 4})
    assert (cfg.arch, cfg.encoder, cfg.out_channels) == ("UnetPlusPlus", "mobilenet_v2", 4)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig(n_classes=2).out_channels == 1
    assert ModelConfig.from_dict({}) == ModelConfig()
    for bad in (
        {"arch": "segformer"},
        {"encoder": "vgg16"},
        {"n_classes": 1},
        {"in_channels": 0},
        {"encoder_weights": "ssl"},
        {"arch": "classic", "encoder_weights": "imagenet"},
        {"encoder_depth": 2},
        {"arch": "DeepLabV3Plus", "encoder_depth": 4},
        {"attention": "cbam"},
        {"arch": "classic", "attention": "scse"},
        {"arch": "Unet", "deep_supervision": True},
        {"arch": "classic", "deep_supervision": "yes"},
        {"colour": "red"},
    ):
        with pytest.raises(ValueError):
            ModelConfig.from_dict(bad)


def test_probabilities_binary_and_multiclass():
    logits = torch.tensor([[[[0.0, 2.0]]]])  # (1, 1, 1, 2)
    p = probabilities(logits, 2)
    assert p.shape == (1, 2, 1, 2)
    assert torch.allclose(p.sum(1), torch.ones(1, 1, 2))
    assert p[0, 1, 0, 1] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert labels_from_logits(logits, 2).tolist() == [[[0, 1]]]
    multi = torch.tensor([[[[1.0]], [[3.0]], [[2.0]]]])  # (1, 3, 1, 1)
    pm = probabilities(multi, 3)
    assert torch.allclose(pm.sum(1), torch.ones(1, 1, 1))
    assert labels_from_logits(multi, 3).item() == 1
    with pytest.raises(ValueError):
        probabilities(multi, 2)


def _online() -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=2).close()
        return True
    except OSError:
        return False


def test_pretrained_weights_offline_fail_fast_with_clear_message():
    import huggingface_hub as hf
    from segmentation_models_pytorch.encoders import encoders

    s = encoders["resnet18"]["pretrained_settings"]["imagenet"]
    if isinstance(hf.try_to_load_from_cache(s["repo_id"], "model.safetensors", revision=s["revision"]), str):
        pytest.skip("weights are cached here")
    if _online():
        pytest.skip("network available; this test is about offline behaviour")
    t = time.monotonic()
    with pytest.raises(ValueError, match="cannot be downloaded .*encoder_weights=None"):
        build_model(ModelConfig(encoder_weights="imagenet"))
    assert time.monotonic() - t < 10
