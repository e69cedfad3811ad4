"""The configs load through mmengine, inherit mmdet's, and build with the SNIPER components."""
import shutil
from pathlib import Path

import pytest
from mmdet.registry import HOOKS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_sniper  # noqa: F401
from mmdet_sniper.engine import StopOnNonFiniteLossHook

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
register_all_modules()


@pytest.mark.parametrize('name', ['sniper_faster_rcnn.py', 'sniper_faster_rcnn_r18_tiny_cpu.py', 'sniper_rpn.py',
                                  'sniper_rpn_r18_tiny_cpu.py', 'sniper_faster_rcnn_mnv2_tiny_cpu.py',
                                  'sniper_rpn_mnv2_tiny_cpu.py', 'sniper_faster_rcnn_mnv2_trees_cpu.py',
                                  'sniper_rpn_mnv2_trees_cpu.py'])
def test_config_inherits_mmdet_and_builds_the_sniper_model(name):
    cfg = Config.fromfile(str(CONFIGS / name))
    assert cfg.custom_imports.imports == ['mmdet_sniper']
    loader = cfg.train_dataloader
    assert loader.sampler.type == 'ChipAwareSampler' and loader.batch_sampler is None
    assert loader.dataset.type == 'SniperDataset' and loader.dataset.dataset.type == 'CocoDataset'
    assert [t.type for t in loader.dataset.dataset.pipeline][:3] == ['CachedLoadImageFromFile', 'LoadAnnotations',
                                                                     'CropChip']
    assert {'chip_valid_range', 'scale_factor'} <= set(loader.dataset.dataset.pipeline[-1].meta_keys)
    assert cfg.train_cfg.type == 'ChipEpochTrainLoop'
    assert cfg.val_dataloader.dataset.type == 'CocoDataset'  # mmdet's test stays as inherited
    model = MODELS.build(cfg.model)
    rpn_head = model.bbox_head if type(model).__name__ == 'RPN' else model.rpn_head  # mmdet's RPN names it so
    assert type(rpn_head.assigner).__name__ == 'IgnoreRegionAssigner' and rpn_head.assigner.ignore_iou_thr == 0.3
    if 'rpn' in name:  # stage 1: an RPN on positive chips, and the scales to extract proposals at
        assert type(model).__name__ == 'RPN' and loader.dataset.proposals_file is None
        assert len(cfg.proposal_scales) == 3 and cfg.model.test_cfg.rpn.max_per_img == 300
    else:
        assert type(model.roi_head).__name__ == 'ValidRangeRoIHead'
        # Proposals are ignored by IoU with an ignore region, never by IoF (tests/models/test_rcnn_targets.py).
        assigner = model.roi_head.bbox_assigner
        assert type(assigner).__name__ == 'IgnoreRegionAssigner' and assigner.ignore_iou_thr == 0.5
        assert assigner.assigner.ignore_iof_thr == -1


def test_the_coco_config_has_the_papers_settings():
    cfg = Config.fromfile(str(CONFIGS / 'sniper_faster_rcnn.py'))
    dataset = cfg.train_dataloader.dataset
    assert tuple(dataset.scales) == (3.0, 1.667, 512) and dataset.chip_size == 512
    assert [tuple(r) for r in dataset.valid_ranges] == [(-1, 80), (32, 150), (120, -1)]
    assert cfg.train_dataloader.batch_size * 8 == 128
    assert cfg.model.backbone.depth == 50
    # The authors' test: three full-image scales with their valid ranges, Gaussian soft-NMS.
    views = cfg.tta_pipeline[-1]
    assert views.type == 'SniperTestViews' and [tuple(s) for s in views.scales] == [(1400, 2000), (800, 1280),
                                                                                    (480, 512)]
    assert [tuple(r) for r in views.valid_ranges] == [(-1, 90), (32, 180), (75, -1)]
    assert cfg.tta_model.type == 'SniperTestTimeAug' and cfg.tta_model.tta_cfg.max_per_img == 100
    assert cfg.tta_model.tta_cfg.nms == dict(type='soft_nms', method='gaussian', sigma=0.55, min_score=1e-3)
    assert views.flip is False  # the authors do not flip at test


@pytest.mark.parametrize('name, epochs, milestones', [('sniper_faster_rcnn.py', 14, [11]), ('sniper_rpn.py', 4, None)])
def test_the_coco_configs_optimise_as_the_authors(name, epochs, milestones):
    """docs/authors_settings.md: 0.015 per GPU summed over 8 GPUs, weight decay 1e-4 once per step,
    1000 warm-up iterations from 0.0005, 7 epochs over COCO stored twice (the RPN: 2)."""
    cfg = Config.fromfile(str(CONFIGS / name))
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.lr == pytest.approx(8 * 0.015) and optimizer.momentum == 0.9
    assert optimizer.lr * optimizer.weight_decay == pytest.approx(0.015 * 1e-4)
    assert cfg.optim_wrapper.clip_grad.max_norm > 0 and cfg.auto_scale_lr.base_batch_size == 128
    warmup = cfg.param_scheduler[0]
    assert warmup.type == 'LinearLR' and warmup.end == 1000 and not warmup.by_epoch
    assert optimizer.lr * warmup.start_factor == pytest.approx(0.0005 * 8)
    assert cfg.train_cfg.max_epochs == epochs
    steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
    assert [s.milestones for s in steps] == ([milestones] if milestones else [])
    backbone = cfg.model.backbone
    assert backbone.norm_eval is False and backbone.norm_cfg.requires_grad and backbone.frozen_stages == 1
    assert backbone.norm_cfg.momentum == pytest.approx(1 - 0.995)
    if 'roi_head' in cfg.model:
        assert cfg.model.roi_head.bbox_head.reg_class_agnostic is True


@pytest.mark.parametrize('path', sorted(CONFIGS.glob('*.py')), ids=lambda path: path.name)
def test_every_config_stops_at_the_first_non_finite_loss(path):
    """Issue 16: a run gone NaN trained on to its end and tested to nothing."""
    cfg = Config.fromfile(str(path))
    assert cfg.custom_hooks == [dict(type='StopOnNonFiniteLossHook')]
    hook = HOOKS.build(cfg.custom_hooks[0])
    assert isinstance(hook, StopOnNonFiniteLossHook) and hook.interval == 1


def test_the_tree_configs_test_and_extract_at_their_training_scales():
    detector = Config.fromfile(str(CONFIGS / 'sniper_faster_rcnn_mnv2_trees_cpu.py'))
    rpn = Config.fromfile(str(CONFIGS / 'sniper_rpn_mnv2_trees_cpu.py'))
    for cfg in (detector, rpn):
        dataset = cfg.train_dataloader.dataset
        assert tuple(dataset.scales) == (2.0, 1.0, 256) and dataset.chip_size == 256
        assert dataset.dataset.data_root.endswith('trees/train/') and dataset.dataset.metainfo.classes == ('tree',)
        assert cfg.val_dataloader.dataset.metainfo.classes == ('tree',)
        assert cfg.model.backbone.type == 'MobileNetV2'
    assert detector.model.roi_head.bbox_head.num_classes == 1
    # The last training scale is the long side in pixels: the same view is a (256, 256) pair at test.
    views = detector.tta_pipeline[-1]
    assert [s if isinstance(s, float) else tuple(s) for s in views.scales] == [2.0, 1.0, (256, 256)]
    assert [s if isinstance(s, float) else tuple(s) for s in rpn.proposal_scales] == [2.0, 1.0, (256, 256)]


def test_another_detector_takes_sniper_by_inheritance():
    """RetinaNet trains on SNIPER's chips with its ignore regions, and tests with SNIPER's views."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    cfg = Config.fromfile(str(CONFIGS / 'sniper_retinanet.py'))
    assert cfg.train_dataloader.dataset.type == 'SniperDataset'
    assert cfg.tta_model.type == 'SniperTestTimeAug' and cfg.tta_pipeline[-1].type == 'SniperTestViews'
    assert cfg.train_cfg.type == 'ChipEpochTrainLoop'
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'RetinaNet' and type(model.bbox_head.assigner).__name__ == 'IgnoreRegionAssigner'
    assert model.bbox_head.assigner.assigner.pos_iou_thr == 0.5  # RetinaNet's own rule inside

    torch.manual_seed(0)
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), pad_shape=(128, 128), batch_input_shape=(128, 128)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10., 50., 60.]]), labels=torch.tensor([3]))
    sample.ignored_instances = InstanceData(bboxes=torch.tensor([[60., 60., 120., 120.]]), labels=torch.tensor([0]))
    losses = model.loss(torch.rand(1, 3, 128, 128), [sample])
    total, _ = model.parse_losses(losses)  # RetinaNet's losses are lists over the FPN levels
    assert torch.isfinite(total) and total > 0


# The demo's tree configs and the tests' tiny configs (synthetic data) by the words in their names.
CPU_FAMILIES = {'trees': ('trees', ), 'tiny': ('tiny', 'r18')}


def cpu_family(path):
    return next((family for family, words in CPU_FAMILIES.items() if any(w in path.stem for w in words)), None)


@pytest.mark.parametrize('edited', sorted(CPU_FAMILIES))
def test_editing_the_tiny_or_tree_configs_changes_no_other_config(tmp_path, edited):
    """The tree and tiny configs are siblings on shared bases: editing a test config, or its _base_,
    cannot change the demo, nor the reverse, nor the COCO configs. Every top-level key of a config
    file reaches each config that inherits it, however indirectly: a new key in every file of one
    family must show in that family's configs and in no other."""
    configs = tmp_path / 'configs'
    shutil.copytree(CONFIGS, configs)
    edited_files = [p for p in configs.rglob('*.py') if cpu_family(p) == edited]
    assert any(p.parent.name == '_base_' for p in edited_files)
    for path in edited_files:
        with open(path, 'a') as f:
            f.write(f'\nedited_{path.stem} = True\n')
    for path in sorted(configs.glob('*.py')):
        edits = {key for key in Config.fromfile(str(path)) if key.startswith('edited_')}
        if cpu_family(path) == edited:
            assert f'edited_{path.stem}' in edits
        else:
            assert not edits, f'{path.name} inherits {sorted(edits)}'


@pytest.mark.parametrize('name, stride, sizes, min_chip, thresholds', [
    ('autofocus_faster_rcnn.py', 16, (5, 64, 90), 512, [0.02, 0.2]),
    ('autofocus_faster_rcnn_mnv2_trees_cpu.py', 8, (2, 20, 28), 256, [0.02, 0.15])])
def test_the_autofocus_configs_add_the_branch_and_test_coarse_to_fine(name, stride, sizes, min_chip, thresholds):
    import torch

    cfg = Config.fromfile(str(CONFIGS / name))
    sniper = Config.fromfile(str(CONFIGS / name.replace('autofocus', 'sniper')))
    # The same training: only the RoI head gains the branch.
    assert cfg.train_dataloader == sniper.train_dataloader and cfg.train_cfg == sniper.train_cfg
    assert cfg.tta_pipeline == sniper.tta_pipeline
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    head = model.roi_head.focus_head
    assert type(model.roi_head).__name__ == 'AutoFocusRoIHead' and head.stride == stride
    assert (head.sizes['min_size'], head.sizes['small_size'], head.sizes['ignore_size']) == sizes
    # The level the branch reads is at its stride: the neck's output there is the input / stride.
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 256, 256))
    assert feats[head.level].shape[-2:] == (256 // stride, 256 // stride)
    tta = MODELS.build({**cfg.tta_model, 'module': model})
    assert type(tta).__name__ == 'AutoFocusTestTimeAug'
    assert len(tta.focus_cfgs) == len(cfg.tta_pipeline[-1].scales) - 1
    assert [c['min_chip_size'] for c in tta.focus_cfgs] == [min_chip] * 2
    assert [c['threshold'] for c in tta.focus_cfgs] == thresholds and tta.edge_margin == 10
    assert tta.tta_cfg == sniper.tta_model.tta_cfg
