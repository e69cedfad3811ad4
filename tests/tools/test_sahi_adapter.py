import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

pytest.importorskip('sahi', reason="SAHI is an optional extra: pip install '.[bench]'")
from sahi.predict import get_sliced_prediction  # noqa: E402
from sahi.prediction import ObjectPrediction  # noqa: E402
from sahi_adapter import InMemoryMmdetModel, ndarray_pipeline, to_instances  # noqa: E402

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='Resize', scale_factor=1.0, keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]


def prediction(box, score, label=0):
    return ObjectPrediction(bbox=list(box), category_id=label, score=score, category_name=str(label))


class TestToInstances:

    def test_best_first_capped_and_in_original_pixels(self):
        sahi_result = [prediction([10, 20, 30, 60], 0.3), prediction([0, 4, 8, 12], 0.9, 1),
                       prediction([2, 2, 6, 6], 0.6), prediction([40, 40, 48, 44], 0.1)]
        instances = to_instances(sahi_result, max_dets=3, scale=(2.0, 4.0))
        np.testing.assert_allclose(instances.bboxes.numpy(), [[0, 1, 4, 3], [1, 0.5, 3, 1.5], [5, 5, 15, 15]])
        np.testing.assert_allclose(instances.scores.numpy(), [0.9, 0.6, 0.3])
        assert instances.labels.tolist() == [1, 0, 0]
        assert instances.bboxes.dtype == torch.float32 and instances.labels.dtype == torch.int64

    def test_no_prediction(self):
        instances = to_instances([], max_dets=300)
        assert instances.bboxes.shape == (0, 4) and len(instances.scores) == 0


class TestNdarrayPipeline:

    def test_reads_the_image_from_results_without_annotations(self):
        types = [t['type'] for t in ndarray_pipeline(PIPELINE)]
        assert types == ['mmdet.LoadImageFromNDArray', 'Resize', 'PackDetInputs']

    def test_a_pipeline_without_the_file_loader_is_an_error(self):
        with pytest.raises(ValueError, match='LoadImageFromFile'):
            ndarray_pipeline(PIPELINE[1:])


class FakeDetector(torch.nn.Module):
    """One box at (1, 2)-(11, 12) of every image it is given, with a score from its first pixel's blue."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.inputs = []

    def test_step(self, data):
        results = []
        for image in data['inputs']:
            self.inputs.append(image)
            sample = DetDataSample()
            sample.pred_instances = InstanceData(bboxes=torch.tensor([[1., 2., 11., 12.]]),
                                                 scores=torch.tensor([image[0, 0, 0].item() / 255]),
                                                 labels=torch.tensor([0]))
            results.append(sample)
        return results


def test_sahi_runs_the_detector_in_memory_on_bgr_slices_and_shifts_their_boxes():
    from mmdet.utils import register_all_modules
    register_all_modules()
    image = np.zeros((20, 40, 3), np.uint8)  # RGB, as SAHI takes it: blue 200 on the left half, 100 right
    image[:, :20, 2] = 200
    image[:, 20:, 2] = 100
    image[:, :, 0] = 7
    detector = FakeDetector()
    model = InMemoryMmdetModel(detector, PIPELINE, classes=('tree',), confidence_threshold=0.5)
    assert not model.has_mask
    result = get_sliced_prediction(image, model, slice_height=20, slice_width=20, overlap_height_ratio=0,
                                   overlap_width_ratio=0, perform_standard_pred=False, postprocess_type='NMS',
                                   postprocess_match_metric='IOU', verbose=0)
    # Two slices at x 0 and 20; the right one's score 100/255 is below the confidence threshold.
    instances = to_instances(result.object_prediction_list, max_dets=300)
    np.testing.assert_allclose(instances.bboxes.numpy(), [[1, 2, 11, 12]])
    np.testing.assert_allclose(instances.scores.numpy(), [200 / 255], rtol=1e-6)
    assert [tuple(x.shape) for x in detector.inputs] == [(3, 20, 20), (3, 20, 20)]
    # The detector gets BGR, as from mmdet's LoadImageFromFile: blue first.
    assert detector.inputs[0][0].unique().tolist() == [200] and detector.inputs[0][2].unique().tolist() == [7]

    model.confidence_threshold = 0.1
    result = get_sliced_prediction(image, model, slice_height=20, slice_width=20, overlap_height_ratio=0,
                                   overlap_width_ratio=0, perform_standard_pred=False, postprocess_type='NMS',
                                   postprocess_match_metric='IOU', verbose=0)
    np.testing.assert_allclose(to_instances(result.object_prediction_list, max_dets=300).bboxes.numpy(),
                               [[1, 2, 11, 12], [21, 2, 31, 12]])
