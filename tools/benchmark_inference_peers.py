"""Accuracy and cost of SNIPER's test against its peers, SAHI's sliced inference among them: the same
detector, checkpoints and images, in one run.

    python tools/benchmark_inference_peers.py configs/sniper_faster_rcnn_mnv2_trees_cpu.py \\
        --checkpoints seed0.pth seed1.pth seed2.pth [--tests single sniper sahi512 ...] [--images N] \\
        [--device cpu] [--out peers.json]

Reads the config, every checkpoint (one per training seed) and the config's test set
(``test_dataloader``; ``--data-root``/``--ann-file`` point it elsewhere, e.g. at the mosaic of
tools/dataset_converters/make_tree_mosaic.py). Per checkpoint, runs each test on every image and scores
it with the config's ``test_evaluator`` (pycocotools through mmdet's CocoMetric; the tree configs' counts
up to 300 detections per image). Tests (``--tests``):

- ``single``: the detector on the config's test pipeline (``model.test_step``), its own test_cfg;
- ``sniper``, ``sniper_flip``: SNIPER's multi-scale test (``SniperTestTimeAug``, the scales and valid
  ranges of the ``SniperTestViews`` in ``tta_pipeline``, flip off / on, ``tta_model``'s settings);
- ``sniper_sliced``: the same, each view in ``tta_model.chip_size`` tiles (``sliced=True``);
- ``autofocus``: ``tta_model`` as the config defines it, when its type is ``AutoFocusTestTimeAug``, on
  ``tta_pipeline`` (skipped otherwise, saying why);
- ``sahi<S>[@<K>x][+full]``: SAHI 0.12.8's ``get_sliced_prediction`` with SxS slices overlapping by
  --sahi-overlap, class-wise NMS (--sahi-match-metric, --sahi-match-threshold) to merge; ``+full`` adds
  SAHI's full-image pass (``perform_standard_pred``); ``@Kx`` runs on the image enlarged K times
  (bilinear, as the SNIPER scales are resized) and divides the boxes by K. SAHI runs the same
  in-memory detector (tools/misc/sahi_adapter.py) on every slice through the config's test pipeline,
  one slice per call (SAHI's mmdet model takes no batch), keeps predictions scoring at least
  --sahi-conf (default: the detector's own test score threshold) and the best --max-dets per image.
  The JSON's ``merge_ms_per_image`` is the part of the time SAHI spent merging (its own timing).

The time of a test is the wall time of its forward passes and merge, per image; the data pipeline
(decoding, SNIPER's resizes, the 2x enlargement for SAHI) runs once before timing and is not counted,
as in tools/benchmark_inference.py; SAHI cuts its slices and runs the test pipeline on each inside its
call, which is timed with it. ``cost`` is the time over the ``single`` test's time of the same
checkpoint in the same run (``single`` always runs). ``peak MiB`` is the process's peak resident memory
during the test (Linux's VmHWM, reset before each test). With --mem-limit-gb, an allocation beyond the
limit fails that test (reported as out of memory) instead of waking the kernel's OOM killer; some
libraries do not check an allocation and crash instead (oneDNN's convolution on the 2x view of a 4000 px
mosaic segfaulted under a 14 GB limit): --isolate runs each test in a process of its own, and a test
whose process dies is reported with the signal.
Prints a markdown table (mean and sample std over the checkpoints) and, with --out, writes every number
as JSON.

SAHI is an optional extra: ``pip install 'sahi==0.12.8'`` (or ``pip install '.[bench]'``).
"""
import argparse
import copy
import gc
import inspect
import json
import math
import os
import os.path as osp
import re
import resource
import statistics
import sys
import time

import numpy as np
import torch

from mmdet_sniper.compat import zip_strict

TOOLS = osp.dirname(osp.abspath(__file__))
SAHI_HINT = "SAHI is an optional extra of this benchmark: pip install 'sahi==0.12.8' (or pip install '.[bench]')"
DEFAULT_TESTS = ('single', 'sniper', 'sniper_flip', 'sniper_sliced', 'autofocus', 'sahi256', 'sahi256+full',
                 'sahi512', 'sahi512+full', 'sahi512@2x')
SAHI_TEST = re.compile(r'sahi(?P<slice>\d+)(?:@(?P<zoom>\d+(?:\.\d+)?)x)?(?P<full>\+full)?')
# The table's columns: (name, the evaluator's metric name after its prefix).
METRICS = (('AP', 'bbox_mAP'), ('AP50', 'bbox_mAP_50'), ('AP75', 'bbox_mAP_75'), ('AP_small', 'bbox_mAP_s'),
           ('AP_medium', 'bbox_mAP_m'))
OOM_MESSAGES = ('out of memory', "can't allocate memory", 'cannot allocate memory', 'bad_alloc')


def parse_test(name):
    """A test's settings from its name (see the module docstring)."""
    if name in ('single', 'autofocus'):
        return dict(name=name, kind=name)
    if name in ('sniper', 'sniper_flip', 'sniper_sliced'):
        return dict(name=name, kind='sniper', flip=name == 'sniper_flip', sliced=name == 'sniper_sliced')
    match = SAHI_TEST.fullmatch(name)
    if match is None:
        raise ValueError(f'--tests: unknown test {name!r}; tests are single, sniper, sniper_flip, sniper_sliced, '
                         'autofocus and sahi<S>[@<K>x][+full], e.g. sahi512, sahi256+full, sahi512@2x')
    zoom = float(match['zoom'] or 1)
    if int(match['slice']) < 1 or zoom <= 0:
        raise ValueError(f'--tests: {name!r} needs a slice size >= 1 px and an enlargement > 0')
    return dict(name=name, kind='sahi', slice=int(match['slice']), zoom=zoom, full=bool(match['full']))


def enlarge(image, zoom):
    """``image`` (H, W, C) enlarged ``zoom`` times, bilinear, and the ``(sx, sy)`` factors it was
    enlarged by, exact for its rounded size."""
    import cv2
    height, width = image.shape[:2]
    size = (max(1, round(width * zoom)), max(1, round(height * zoom)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), (size[0] / width, size[1] / height)


def summarise(runs, tests):
    """Per test, the mean and sample std over checkpoints of every metric, the ms per image and the
    cost (its time over ``single``'s, per checkpoint).

    Args:
        runs (dict): test name -> list, per checkpoint, of dicts with ``ms_per_image``, ``metrics`` (the
            METRICS names) and optionally ``peak_mib`` and ``error`` (a failed run: no numbers).
        tests (list[str]): the tests, in table order; ``runs['single']`` must hold every checkpoint.

    Returns:
        list[dict]: per test, ``test``, ``n`` (successful checkpoints), per metric and for ``ms`` and
        ``cost`` a ``(mean, std)`` pair (std None below 2 runs, both None without a run), ``peak_mib``
        (the most over the checkpoints, or None) and ``errors``.
    """
    def mean_std(values):
        values = [v for v in values if v is not None]
        if not values:
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None

    single = runs['single']
    rows = []
    for test in tests:
        ok = [(run, base) for run, base in zip_strict(runs[test], single) if run.get('error') is None]
        row = dict(test=test, n=len(ok), errors=[run['error'] for run in runs[test] if run.get('error') is not None])
        for name, _ in METRICS:
            row[name] = mean_std([run['metrics'][name] for run, _ in ok])
        row['ms'] = mean_std([run['ms_per_image'] for run, _ in ok])
        row['cost'] = mean_std([run['ms_per_image'] / base['ms_per_image'] for run, base in ok
                                if base.get('error') is None])
        peaks = [run['peak_mib'] for run in runs[test] if run.get('peak_mib') is not None]
        row['peak_mib'] = max(peaks) if peaks else None
        rows.append(row)
    return rows


def markdown_table(rows, labels):
    """The rows of :func:`summarise` as a markdown table; ``labels`` maps a test to its description."""
    def cell(pair, digits, suffix=''):
        mean, std = pair
        if mean is None:
            return '-'
        return f'{mean:.{digits}f}{suffix}' + ('' if std is None else f' ± {std:.{digits}f}')

    head = ['test', 'n'] + [name for name, _ in METRICS] + ['ms/img', 'cost', 'peak MiB']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        cells = [labels.get(row['test'], row['test']), str(row['n'])]
        cells += [cell(row[name], 3) for name, _ in METRICS]
        cells += [cell(row['ms'], 0), cell(row['cost'], 1, 'x'),
                  '-' if row['peak_mib'] is None else f'{row["peak_mib"]:.0f}']
        if row['errors']:
            cells[0] += f' (failed: {"; ".join(sorted(set(row["errors"])))})'
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='detector config (a SNIPER config: tta_model and tta_pipeline)')
    parser.add_argument('--checkpoints', nargs='+', required=True, help='one checkpoint per training seed')
    parser.add_argument('--tests', nargs='+', default=list(DEFAULT_TESTS), help=f'default: {" ".join(DEFAULT_TESTS)}')
    parser.add_argument('--images', type=int, help="test on the first N images of the test set (default: all)")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='torch device of the detector (default: cuda if available)')
    parser.add_argument('--data-root', help="the test set's folder (its data_root; images under its data_prefix)")
    parser.add_argument('--ann-file', help="the test set's COCO annotations, relative to the data root (default: "
                                           "the config's, annotations.json for the tree configs)")
    parser.add_argument('--max-dets', type=int,
                        help='detections kept per image by every test and counted by the evaluator (default: the '
                             "config's); the views of the SNIPER tests keep proportionally more")
    parser.add_argument('--sahi-overlap', type=float, default=0.2, help='overlap of the SAHI slices, as a ratio')
    parser.add_argument('--sahi-match-metric', choices=('IOU', 'IOS'), default='IOU', help="SAHI's NMS overlap")
    parser.add_argument('--sahi-match-threshold', type=float, default=0.5, help="SAHI's NMS threshold")
    parser.add_argument('--sahi-conf', type=float,
                        help="SAHI's confidence threshold (default: the detector's test score_thr)")
    parser.add_argument('--warmup', type=int, default=1, help='untimed images before each timed test')
    parser.add_argument('--repeat', type=int, default=1, help='timed passes over the images; the fastest counts')
    parser.add_argument('--mem-limit-gb', type=float,
                        help='address-space limit of this process: a test allocating beyond it fails as out of '
                             'memory instead of the kernel killing a process')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    parser.add_argument('--out', help='write every number to this JSON file')
    parser.add_argument('--isolate', action='store_true',
                        help='run each test in a process of its own: a test that crashes the process (a library '
                             'failing an allocation with a segfault) is reported instead of ending the run')
    parser.add_argument('--worker-json', help=argparse.SUPPRESS)  # --isolate's test process: its runs go here
    args = parser.parse_args(argv)
    for name in ('images', 'max_dets'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0 or args.repeat < 1:
        parser.error('--warmup must be >= 0 and --repeat >= 1')
    if not 0 <= args.sahi_overlap < 1:
        parser.error(f'--sahi-overlap must be in [0, 1), got {args.sahi_overlap}')
    try:
        names = args.tests if args.worker_json else ['single'] + args.tests
        args.specs = [parse_test(name) for name in dict.fromkeys(names)]
    except ValueError as error:
        parser.error(str(error))
    return args


def last_stage_cfg(model_cfg):
    """The detector config's test_cfg that caps its final detections (``rcnn`` of a two-stage one)."""
    test_cfg = model_cfg.test_cfg
    return test_cfg.rcnn if 'rcnn' in test_cfg else test_cfg


def load_config(args):
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset = cfg.test_dataloader.dataset
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, (list, tuple)):
        raise ValueError(f'{args.config}: test_evaluator must be one metric (CocoMetric), got a list')
    if args.data_root is not None:
        dataset.data_root = args.data_root
    if args.ann_file is not None:
        dataset.ann_file = args.ann_file
    if args.data_root is not None or args.ann_file is not None:
        evaluator.ann_file = osp.join(dataset.get('data_root', ''), dataset.ann_file)
    if args.max_dets is not None:
        old = last_stage_cfg(cfg.model).max_per_img
        last_stage_cfg(cfg.model).max_per_img = args.max_dets
        if 'max_dets' in evaluator:
            evaluator.max_dets = args.max_dets
        from mmdet_sniper.models.sniper_tta import VIEW_TEST_CFG
        tta = cfg.tta_model
        tta.setdefault('tta_cfg', {})['max_per_img'] = args.max_dets
        view = dict(tta.get('view_cfg') or VIEW_TEST_CFG)
        # A view holds the detections of every size before its valid-range filter: its cap grows with
        # the image's, in the config's proportion.
        view['max_per_img'] = max(view['max_per_img'], math.ceil(view['max_per_img'] * args.max_dets / old))
        tta.view_cfg = view
    return cfg


def views_cfg(cfg):
    """The config's SniperTestViews (the SNIPER tests' scales and valid ranges), or None."""
    for transform in cfg.get('tta_pipeline') or []:
        if transform['type'].split('.')[-1] == 'SniperTestViews':
            return transform
    return None


def sliced_chip_size(cfg):
    """The sliced test's tiles: tta_model's chip_size, else (an AutoFocus config's tta_model has none)
    the training chips' size, else SniperTestTimeAug's default."""
    train_dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    return cfg.tta_model.get('chip_size', train_dataset.get('chip_size', 512))


def skip_reason(spec, cfg):
    if spec['kind'] == 'autofocus':
        kind = (cfg.get('tta_model') or {}).get('type')
        if kind != 'AutoFocusTestTimeAug':
            return f"the config's tta_model is {kind}, not AutoFocusTestTimeAug"
        if 'tta_pipeline' not in cfg:
            return 'the config has no tta_pipeline'
    if spec['kind'] == 'sniper' and views_cfg(cfg) is None:
        return "the config's tta_pipeline has no SniperTestViews"
    return None


def pipeline_of(spec, cfg):
    """The data pipeline whose output a test's model takes (run before timing)."""
    if spec['kind'] == 'single':
        return cfg.test_dataloader.dataset.pipeline
    if spec['kind'] == 'autofocus':
        return cfg.tta_pipeline
    if spec['kind'] == 'sniper':
        return [t if t['type'].split('.')[-1] != 'SniperTestViews' else {**t, 'flip': spec['flip']}
                for t in cfg.tta_pipeline]
    return [t for t in cfg.test_dataloader.dataset.pipeline if t['type'].split('.')[-1] == 'LoadImageFromFile']


def prepare_inputs(spec, cfg, infos):
    """Per image, what the test's model takes: a pseudo_collate batch, or for SAHI the RGB image (enlarged
    for ``@Kx``) with its enlargement factors."""
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = Compose(copy.deepcopy(pipeline_of(spec, cfg)))
    inputs = []
    for info in infos:
        results = pipeline(copy.deepcopy(info))
        if spec['kind'] != 'sahi':
            inputs.append(pseudo_collate([results]))
            continue
        # SAHI takes RGB (and flips it back to BGR for mmdet).
        image = np.ascontiguousarray(results['img'][..., ::-1])
        image, scale = enlarge(image, spec['zoom']) if spec['zoom'] != 1 else (image, (1.0, 1.0))
        inputs.append(dict(image=image, scale=scale, meta=dict(img_id=info['img_id'], img_path=info['img_path'],
                                                               ori_shape=results['ori_shape'])))
    return inputs


def build_detector(cfg, checkpoint, device):
    from mmdet.registry import MODELS
    from mmengine.runner import load_checkpoint

    # mmengine 0.10.7 checkpoints pickle its message hub, which torch >= 2.6's default weights-only load
    # refuses: as tools/train.py and test.py (mmdet_sniper.engine.launch), load checkpoints that
    # mmengine wrote in full.
    os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    detector = MODELS.build(copy.deepcopy(cfg.model))
    load_checkpoint(detector, checkpoint, map_location='cpu', logger='current')
    return detector.to(device).eval()


def build_model(spec, cfg, detector, sahi_settings):
    """The callable that predicts one prepared input (a list of DetDataSamples out)."""
    from mmdet.registry import MODELS
    if spec['kind'] == 'single':
        return detector.test_step
    if spec['kind'] == 'autofocus':
        return MODELS.build({**cfg.tta_model, 'module': detector}).test_step
    if spec['kind'] == 'sniper':
        from mmdet_sniper.models.sniper_tta import SniperTestTimeAug
        accepted = set(inspect.signature(SniperTestTimeAug).parameters) - {'module', 'sliced'}
        settings = {k: v for k, v in cfg.tta_model.items() if k in accepted}
        settings['chip_size'] = sliced_chip_size(cfg)
        return SniperTestTimeAug(module=detector, sliced=spec['sliced'], **settings).test_step
    return sahi_predictor(spec, cfg, detector, sahi_settings)


def sahi_predictor(spec, cfg, detector, settings):
    from mmdet.structures import DetDataSample
    from sahi.predict import get_sliced_prediction
    from sahi_adapter import InMemoryMmdetModel, to_instances
    model = InMemoryMmdetModel(detector, cfg.test_dataloader.dataset.pipeline, settings['classes'], settings['conf'])

    def predict(item):
        result = get_sliced_prediction(
            item['image'], model, slice_height=spec['slice'], slice_width=spec['slice'],
            overlap_height_ratio=settings['overlap'], overlap_width_ratio=settings['overlap'],
            perform_standard_pred=spec['full'], postprocess_type='NMS', postprocess_match_metric=settings['metric'],
            postprocess_match_threshold=settings['threshold'], postprocess_class_agnostic=False, verbose=0)
        # SAHI times its merge (NMS over every slice's predictions): reported beside the whole.
        sample = DetDataSample(metainfo=dict(item['meta'], merge_s=result.durations_in_seconds['postprocess']))
        sample.pred_instances = to_instances(result.object_prediction_list, settings['max_dets'], item['scale'])
        return [sample]
    return predict


def memory_mib(field):
    """The process's resident memory now (``VmRSS``) or at its peak since :func:`reset_peak` (``VmHWM``), in
    MiB; None off Linux."""
    try:
        with open('/proc/self/status') as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(f'{field}:'))
    except (OSError, StopIteration):
        return None


def reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # Linux >= 4.0: VmHWM back to the current resident size
    except OSError:
        pass


def time_test(predict, inputs, warmup, repeat, device):
    """The predictions of every input and the fastest pass's seconds per input."""
    with torch.no_grad():
        for item in inputs[:warmup]:
            predict(item)  # allocator, lazy imports, oneDNN primitives
        best, outputs = math.inf, None
        for _ in range(repeat):
            start = time.perf_counter()
            outputs = [sample for item in inputs for sample in predict(item)]
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return outputs, best / len(inputs)


def evaluate(cfg, dataset_meta, outputs, img_ids):
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
    evaluator.dataset_meta = dataset_meta
    for metric in evaluator.metrics:
        # CocoMetric scores every image of its annotation file unless told which (--images).
        metric.img_ids = list(img_ids)
    evaluator.process(data_samples=outputs, data_batch=None)
    scores = {key.split('/')[-1]: value for key, value in evaluator.evaluate(len(outputs)).items()}
    return {name: scores[key] for name, key in METRICS}


def run_test(spec, cfg, detector, inputs, failure, args, sahi_settings, dataset_meta, img_ids):
    """One test of one checkpoint: its time, peak memory and metrics, or the out-of-memory failure."""
    run = dict(rss_before_mib=memory_mib('VmRSS'))
    if failure is not None:
        return dict(run, error=failure, peak_mib=memory_mib('VmHWM'))
    outputs = None
    try:
        predict = build_model(spec, cfg, detector, sahi_settings)
        reset_peak()
        outputs, seconds = time_test(predict, inputs, args.warmup, args.repeat, args.device)
        run.update(ms_per_image=1000 * seconds, peak_mib=memory_mib('VmHWM'))
        run['detections_per_image'] = statistics.fmean(len(o.pred_instances) for o in outputs)
        if 'merge_s' in outputs[0]:
            run['merge_ms_per_image'] = 1000 * statistics.fmean(o.merge_s for o in outputs)
        run['metrics'] = evaluate(cfg, dataset_meta, outputs, img_ids)
    except (MemoryError, RuntimeError) as error:
        if not is_oom(error):
            raise
        run.update(error=f'out of memory ({oom_detail(error)})', peak_mib=memory_mib('VmHWM'))
    del outputs
    gc.collect()
    return run


def oom_detail(error):
    """The failed allocation, as short as the table allows: torch names the bytes it tried."""
    match = re.search(r'tried to allocate (\d+) bytes', str(error))
    return f'{type(error).__name__}: {int(match[1]) / 2**30:.1f} GiB' if match else type(error).__name__


def is_oom(error):
    return isinstance(error, MemoryError) or any(m in str(error).lower() for m in OOM_MESSAGES)


def describe(spec, cfg):
    if spec['kind'] == 'single':
        return 'single-scale'
    if spec['kind'] == 'autofocus':
        return 'AutoFocus'
    if spec['kind'] == 'sniper':
        views = views_cfg(cfg)
        scales = ', '.join(f'{s[0]}x{s[1]} px' if isinstance(s, (list, tuple)) else f'{s:g}x' for s in views['scales'])
        text = f'SNIPER ({scales}{", flipped" if spec["flip"] else ""})'
        return text + (f', sliced {sliced_chip_size(cfg)} px' if spec['sliced'] else '')
    text = f'SAHI {spec["slice"]} px'
    text += f' on the image {spec["zoom"]:g}x' if spec['zoom'] != 1 else ''
    return text + (' + full image' if spec['full'] else '')


def run_isolated(spec, argv, checkpoints):
    """A test's runs from a process of its own (this tool, --worker-json), or per checkpoint the
    process's death."""
    import signal
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'runs.json')
        # The last --tests wins: the worker runs this test alone, with every other argument as given.
        code = subprocess.run([sys.executable, osp.abspath(__file__), *argv, '--tests', spec['name'],
                               '--worker-json', path]).returncode
        if code == 0 and osp.exists(path):
            with open(path) as f:
                return json.load(f)[spec['name']]
    cause = f'signal {signal.Signals(-code).name}' if code < 0 else f'exit status {code}'
    return [dict(checkpoint=checkpoint, error=f'the test process died ({cause})') for checkpoint in checkpoints]


def run_in_process(args, cfg, specs, infos, img_ids, sahi_settings, dataset_meta):
    """Every test's runs, per checkpoint, in this process."""
    detectors = [(checkpoint, build_detector(cfg, checkpoint, args.device)) for checkpoint in args.checkpoints]
    runs = {spec['name']: [] for spec in specs}
    for spec in specs:
        # One test's inputs at a time (SNIPER's 2x view of a large image is large), for every checkpoint.
        try:
            inputs, failure = prepare_inputs(spec, cfg, infos), None
        except (MemoryError, RuntimeError) as error:
            if not is_oom(error):
                raise
            inputs, failure = None, f'out of memory preparing the inputs ({oom_detail(error)})'
        for checkpoint, detector in detectors:
            run = run_test(spec, cfg, detector, inputs, failure, args, sahi_settings, dataset_meta, img_ids)
            runs[spec['name']].append(dict(checkpoint=checkpoint, **run))
            print(f'{osp.basename(checkpoint)} {spec["name"]}: {runs[spec["name"]][-1]}', flush=True)
        del inputs
        gc.collect()
    return runs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if any(spec['kind'] == 'sahi' for spec in args.specs):
        try:
            import sahi  # noqa: F401
        except ImportError:
            sys.exit(f'the SAHI tests need sahi, which is not installed. {SAHI_HINT}; or leave them out of --tests')
        sys.path.insert(0, osp.join(TOOLS, 'misc'))
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    import mmdet_sniper  # noqa: F401  (registers the SNIPER modules)
    register_all_modules()
    if args.mem_limit_gb is not None:
        limit = int(args.mem_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

    cfg = load_config(args)
    dataset = DATASETS.build({**cfg.test_dataloader.dataset, 'pipeline': []})
    count = len(dataset) if args.images is None else min(args.images, len(dataset))
    infos = [dataset.get_data_info(i) for i in range(count)]
    img_ids = [info['img_id'] for info in infos]
    max_dets = last_stage_cfg(cfg.model).max_per_img
    score_thr = last_stage_cfg(cfg.model).get('score_thr', 0.0)
    sahi_settings = dict(overlap=args.sahi_overlap, metric=args.sahi_match_metric, threshold=args.sahi_match_threshold,
                         conf=score_thr if args.sahi_conf is None else args.sahi_conf, max_dets=max_dets,
                         classes=dataset.metainfo['classes'])

    specs, skipped = [], {}
    for spec in args.specs:
        reason = skip_reason(spec, cfg)
        if reason is None:
            specs.append(spec)
        else:
            skipped[spec['name']] = reason
            print(f'skipping {spec["name"]}: {reason}')
    labels = {spec['name']: describe(spec, cfg) for spec in specs}
    if args.isolate and args.worker_json is None:
        runs = {spec['name']: run_isolated(spec, argv, args.checkpoints) for spec in specs}
    else:
        runs = run_in_process(args, cfg, specs, infos, img_ids, sahi_settings, dataset.metainfo)
    if args.worker_json is not None:
        with open(args.worker_json, 'w') as f:
            json.dump(runs, f)
        return

    rows = summarise(runs, [spec['name'] for spec in specs])
    print(f'\n{args.config}, {len(args.checkpoints)} checkpoint(s), {count} image(s) of '
          f'{cfg.test_dataloader.dataset.get("data_root", "")}, {args.device}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads; up to {max_dets} detections per image; SAHI: overlap '
          f'{sahi_settings["overlap"]}, NMS {sahi_settings["metric"]} {sahi_settings["threshold"]}, confidence '
          f'>= {sahi_settings["conf"]}; mean ± sample std over checkpoints\n')
    print(markdown_table(rows, labels))
    for name, reason in skipped.items():
        print(f'\n{name}: skipped, {reason}')
    if args.out is not None:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, checkpoints=args.checkpoints, device=args.device,
                           torch=torch.__version__, threads=torch.get_num_threads(), img_ids=img_ids, max_dets=max_dets,
                           sahi={k: v for k, v in sahi_settings.items() if k != 'classes'}, labels=labels,
                           skipped=skipped, runs=runs, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
