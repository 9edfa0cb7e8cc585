"""Detectors: a detection's score is that of the best-overlapping output box
(pytorch-grad-cam's FasterRCNNBoxScoreTarget); every method runs on it and equals the
references on the same score; D-RISE explains any detector, ONNX included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import picasso
from detectors import BOX, CLASS, LABELS, BrightBox, faster_rcnn
from hf_models import save_yolos
from picasso.core.detection import box_iou, detection_scores
from picasso.core.errors import CapabilityError, TargetError
from picasso.core.model import Detection


@pytest.fixture(scope="module")
def detector():
    module = faster_rcnn()
    return module, picasso.from_torch(module, input_size=(64, 64), labels=LABELS)


@pytest.fixture(scope="module")
def scene():
    from picasso.demo import demo_images

    image = Image.open(demo_images("tank-overcast")[0]).convert("RGB").resize((64, 64))
    return np.asarray(image)


def batch_of(model, scene):
    return model.preprocess([Image.fromarray(scene)])


def test_torchvision_detectors_are_recognised_and_list_their_detections(detector, scene):
    module, model = detector
    assert model.info.task == "detection" and "detections" in model.capabilities
    found = model.detect(batch_of(model, scene))[0]
    with torch.no_grad():
        ref = module(torch.from_numpy(batch_of(model, scene)))[0]
    assert len(found) == len(ref["scores"]) > 10
    scores = [d.score for d in found]
    assert scores == sorted(scores, reverse=True)
    best = int(ref["scores"].argmax())
    assert found[0].box == pytest.approx(tuple(ref["boxes"][best].tolist()))
    exp = picasso.explain(model, scene, "saliency", target=3)
    assert exp.targets[0].index == 3 and exp.targets[0].probability == pytest.approx(found[3].score)
    assert exp.targets[0].label == f"{LABELS[found[3].label]} (detection 3)"
    listed = exp.extras["detections"]
    assert exp.extras["task"] == "detection" and len(listed) == len(found)
    assert listed[3]["box"] == pytest.approx(found[3].box, abs=0.01)


@pytest.mark.parametrize("index", [0, 5])
def test_grad_cam_equals_pytorch_grad_cam_with_the_box_score_target(detector, scene, index):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    module, model = detector
    exp = picasso.explain(model, scene, "grad-cam", target=index, layer="backbone.2")
    d = model.detect(batch_of(model, scene))[0][index]
    target = FasterRCNNBoxScoreTarget(labels=[d.label], bounding_boxes=np.array([d.box]))
    with GradCAM(model=module, target_layers=[module.backbone[2]]) as cam:
        ref = cam(input_tensor=torch.from_numpy(batch_of(model, scene)), targets=[target])
    assert ref.std() > 0.01
    np.testing.assert_allclose(exp.attributions, ref, atol=1e-3, rtol=0)


def test_occlusion_equals_captum_over_the_box_score(detector, scene):
    from captum.attr import Occlusion
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    module, model = detector
    exp = picasso.explain(model, scene, "occlusion", target=1, window=16, stride=16)
    d = model.detect(batch_of(model, scene))[0][1]
    target = FasterRCNNBoxScoreTarget(labels=[d.label], bounding_boxes=np.array([d.box]))

    def score(x):
        return torch.stack([target(out).reshape(()) for out in module(x)])[:, None]

    ref = Occlusion(score).attribute(
        torch.from_numpy(batch_of(model, scene)),
        sliding_window_shapes=(3, 16, 16),
        strides=(3, 16, 16),
        baselines=0.0,
        target=0,
    )
    expected = ref[0, 0].detach().numpy()
    assert np.abs(expected).max() > 1e-3  # a random detector: small, but there
    np.testing.assert_allclose(exp.attribution, expected, atol=1e-6, rtol=0)


def test_the_scores_follow_the_box_score_target():
    found = [
        Detection((0, 0, 10, 10), 1, 0.9),
        Detection((0, 0, 10, 12), 2, 0.8),
        Detection((20, 20, 30, 30), 1, 0.4),
    ]
    listed = [
        Detection((0, 0, 10, 11), 1, 0.0),  # best IoU is found[1] (class 2): no match
        Detection((21, 20, 30, 30), 1, 0.0),  # found[2], IoU 0.9
        Detection((40, 40, 50, 50), 1, 0.0),  # overlaps nothing
    ]
    iou = box_iou(np.array([listed[1].box]), np.array([found[2].box]))[0, 0]
    assert iou == pytest.approx(0.9)
    np.testing.assert_allclose(
        detection_scores(found, listed, "match"), [0.0, iou + 0.4, 0.0], rtol=1e-6
    )
    # D-RISE: the best IoU x [same class] x score over every box
    first = box_iou(np.array([listed[0].box]), np.array([found[0].box]))[0, 0]
    np.testing.assert_allclose(
        detection_scores(found, listed, "similarity"), [first * 0.9, iou * 0.4, 0.0], rtol=1e-6
    )
    assert detection_scores([], listed, "match").tolist() == [0, 0, 0]


def test_d_rise_equals_its_formula(detector, scene):
    """Masks weighted by the best similarity of the masked image's detections, the
    paper's estimate, computed here with torchvision's box IoU."""
    from torchvision.ops import box_iou as tv_iou

    from picasso.visualizations.rise import random_masks

    module, model = detector
    settings = {"masks": 48, "error": 0, "estimator": "paper", "batch_size": 16, "seed": 3}
    exp = picasso.explain(model, scene, "d-rise", target=2, **settings)
    batch = batch_of(model, scene)
    d = model.detect(batch)[0][2]
    masks = random_masks(np.random.default_rng(3), 48, 7, 0.5, 64, 64)
    weights = []
    with torch.no_grad():
        for out in module(torch.from_numpy(batch * masks[:, None])):
            iou = tv_iou(torch.tensor([d.box]), out["boxes"])[0]
            same = (out["labels"] == d.label).float()
            weights.append(float((iou * same * out["scores"]).max()))
    expected = np.tensordot(np.array(weights), masks, axes=1) / (48 * 0.5)
    np.testing.assert_allclose(exp.attribution, expected, atol=1e-5, rtol=1e-4)
    assert exp.extras["masks_used"] == 48


@pytest.mark.parametrize("method", ["d-rise", "occlusion", "saliency"])
def test_the_known_detection_lights_up_its_box(method):
    """BrightBox's score depends only on the red pixels inside BOX: the map's brightest
    tenth must lie there (the box is 14 % of the image)."""
    model = picasso.from_torch(BrightBox(), input_size=(64, 64), labels=LABELS, task="detection")
    rng = np.random.default_rng(0)
    image = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    exp = picasso.explain(model, image, method)
    assert exp.targets[0].index == 0 and exp.extras["detections"][0]["class"] == CLASS
    x0, y0, x1, y1 = (int(v) for v in BOX)
    heat = np.abs(exp.attribution)
    top = heat >= np.quantile(heat, 0.9)
    assert top[y0:y1, x0:x1].sum() / top.sum() > 0.8


def test_onnx_detectors_explain_with_forward_passes(detector, scene, tmp_path):
    pytest.importorskip("onnxruntime")
    module, model = detector
    torch.onnx.export(
        module,
        ([torch.rand(3, 64, 64)],),
        tmp_path / "frcnn.onnx",
        opset_version=11,
        dynamo=False,
        input_names=["image"],
        output_names=["boxes", "labels", "scores"],
    )
    (tmp_path / "frcnn.toml").write_text(
        'file = "frcnn.onnx"\ntask = "detection"\nlabels = ["background", "tank", "car"]\n'
    )
    onnx_model = picasso.load_model(tmp_path / "frcnn.toml")
    assert onnx_model.capabilities == {"detections"}
    for method, settings in (("d-rise", {"masks": 100}), ("occlusion", {"stride": 16})):
        ours = picasso.explain(onnx_model, scene, method, target=2, **settings)
        torch_map = picasso.explain(model, scene, method, target=2, **settings)
        assert ours.targets == torch_map.targets
        np.testing.assert_allclose(ours.attribution, torch_map.attribution, atol=1e-4)
    with pytest.raises(CapabilityError, match="d-rise, occlusion or rise"):
        picasso.explain(onnx_model, scene, "saliency")


def test_bad_requests_get_clear_errors(detector, scene, tiny_model):
    _, model = detector
    with pytest.raises(TargetError, match="detection 400 does not exist: the model found 100"):
        picasso.explain(model, scene, "saliency", target=400)
    with pytest.raises(TargetError, match="region is for segmentation models"):
        picasso.explain(model, scene, "saliency", region={"boxes": [(0, 0, 8, 8)]})
    with pytest.raises(CapabilityError, match="serves classifiers"):
        picasso.explain(model, scene, "saliency", hide={"boxes": [(0, 0, 8, 8)]})
    with pytest.raises(CapabilityError, match="sanity checks serve classifiers"):
        picasso.sanity_check(model, scene, "saliency")
    with pytest.raises(CapabilityError, match="not a detector"):
        picasso.explain(tiny_model, scene, "d-rise")

    class Nothing(torch.nn.Module):
        def forward(self, x):
            empty = torch.zeros(0)
            return [{"boxes": empty.reshape(0, 4), "labels": empty, "scores": empty} for _ in x]

    blind = picasso.from_torch(Nothing(), input_size=(64, 64), task="detection")
    with pytest.raises(TargetError, match="found no object"):
        picasso.explain(blind, scene, "occlusion")


def test_results_draw_the_explained_box(detector, scene, tmp_path):
    _, model = detector
    exp = picasso.explain(model, scene, "grad-cam", layer="backbone.2", top_k=2)
    paths = exp.save(tmp_path)
    summary = exp.summary()
    assert summary["model"]["task"] == "detection"
    assert [t["index"] for t in summary["targets"]] == [0, 1]
    assert Image.open(paths["png"]).size[0] > 0


def test_hugging_face_object_detection_folders_load(tmp_path):
    transformers = pytest.importorskip("transformers")
    save_yolos(tmp_path, LABELS)
    model = picasso.load_model(tmp_path)
    assert model.info.task == "detection" and model.info.labels == tuple(LABELS)
    assert model.info.preprocessing.resize == "stretch"
    rng = np.random.default_rng(1)
    image = Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8))
    found = model.detect(model.preprocess([image]))[0]
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    module = transformers.AutoModelForObjectDetection.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        out = module(**processor(images=image, return_tensors="pt"))
    ref = processor.post_process_object_detection(out, threshold=0.0, target_sizes=[(64, 64)])[0]
    order = torch.argsort(ref["scores"], descending=True)
    assert [d.label for d in found] == ref["labels"][order].tolist()
    np.testing.assert_allclose([d.score for d in found], ref["scores"][order], atol=1e-5)
    np.testing.assert_allclose([d.box for d in found], ref["boxes"][order], atol=1e-3)
    exp = picasso.explain(model, image, "grad-cam", target=1)
    assert exp.attribution.shape == (64, 64) and np.isfinite(exp.attribution).all()


def test_the_cli_explains_a_detection(detector, scene, tmp_path):
    from click.testing import CliRunner

    from picasso.cli import build_cli
    from picasso.plugins import discover

    module, _ = detector
    torch.onnx.export(
        module,
        ([torch.rand(3, 64, 64)],),
        tmp_path / "d.onnx",
        opset_version=11,
        dynamo=False,
        input_names=["image"],
        output_names=["boxes", "labels", "scores"],
    )
    (tmp_path / "d.toml").write_text('file = "d.onnx"\ntask = "detection"\n')
    Image.fromarray(scene).save(tmp_path / "scene.png")
    cli = build_cli(discover(plugin_dirs=[]))
    args = ["explain", "-q", "-m", str(tmp_path / "d.toml"), str(tmp_path / "scene.png")]
    result = CliRunner().invoke(
        cli, [*args, "--method", "d-rise", "--masks", "100", "--target", "1", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "(detection 1) (score=" in result.output
    bad = CliRunner().invoke(cli, [*args, "--target", "500"])
    assert bad.exit_code != 0 and "detection 500 does not exist" in bad.output
