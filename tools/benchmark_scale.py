"""The training data path at COCO's size: time and peak memory of each step from the annotation file
to the data loader workers, on a synthetic COCO-sized dataset.

Writes into ``--work-dir`` a COCO-format annotation file of ``--images`` images (widths 480..640,
heights 360..640; Poisson(7.3) boxes per image whose sqrt(area) is log-normal with about COCO's
41% / 34% / 24% small / medium / large; 80 categories with COCO's names, ids 1..80; 1% crowd) and,
with ``--proposals`` (the default), an RPN-like proposals pickle of 900 boxes per image (300 for
each of 3 test views). Every image is the same 640x640 JPEG hard-linked under all the file names:
disk use stays tiny, and every chip lies inside the decoded image whatever size the annotation
gives it. The files are reused by a later run with the same ``--images``, ``--seed`` and proposals.

Each step then runs in a fresh Python process, so that its wall time and peak RSS
(``ru_maxrss``) are its own:

- ``import``: ``register_all_modules()`` and ``import mmdet_sniper``, the baseline of every step;
- ``coco``: mmdet's ``CocoDataset`` with COCO's training filter, ``full_init()``;
- ``sniper-cold``: ``SniperDataset`` with the authors' COCO settings (and the proposals) over the
  same, with an empty chip cache; then the chip tables of epochs 0 and 1;
- ``sniper-warm``: the same with the cache that ``sniper-cold`` filled;
- ``loop``: ``ChipAwareSampler``, a DataLoader and ``ChipEpochTrainLoop`` (with a stand-in runner) over
  ``--epochs`` epochs, with only epoch 0's table cached; then the same loop with
  ``exact_max_iters=True``, which makes every other epoch's table;
- ``proposals``: ``load_proposals`` of the proposals file with NMS into an empty cache, then from the
  cache (a memory map), with the process's private memory once every page is read;
- ``negative``: one epoch's negative chips (pool and sampling) against its positive chips;
- ``workers``: 4 DataLoader workers running the COCO config's training pipeline over the first
  ``--chips`` chips of epoch 0: each worker's USS and PSS after the first batch and after the last;
- ``precision`` (only when named): the negative chip pools of epochs 0-2 from the cached, half
  precision proposals against pools from the file's float32 boxes after the same NMS.

Prints a markdown table and writes every figure to ``--out`` (JSON).

    python tools/benchmark_scale.py --images 1000
    python tools/benchmark_scale.py --images 118287 --steps import,coco,sniper-cold,proposals
"""
import argparse
import glob
import itertools
import json
import os
import os.path as osp
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEPS = ('import', 'coco', 'sniper-cold', 'sniper-warm', 'loop', 'proposals', 'negative', 'workers', 'precision')
DEFAULT_STEPS = STEPS[:-1]  # precision runs the NMS of the whole file again: asked for by name
NEEDS_PROPOSALS = ('proposals', 'negative', 'precision')
RESULT_PREFIX = 'BENCHMARK_SCALE_RESULT '
REPO = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = REPO / 'configs' / '_base_' / 'sniper_coco_chips.py'

# log(sqrt(area)) ~ N(MU, SIGMA) puts 41% of the boxes below 32 px and 24% above 96 px, as in COCO.
SIZE_MU, SIZE_SIGMA = 3.733, 1.177
BOXES_PER_IMAGE = 7.3
CROWD_FRACTION = 0.01
VIEWS, PROPOSALS_PER_VIEW = 3, 300
JPEG_SIDE = 640  # the largest width and height drawn
CHUNK_IMAGES = 8192  # proposals are drawn this many images at a time, to bound the temporaries


def gb(kib):
    return kib / 2**20


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def current_rss_kib():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:'))


# ---------------------------------------------------------------- the synthetic dataset


def draw_boxes(rng, count, widths, heights, mu=SIZE_MU, sigma=SIZE_SIGMA):
    """``count`` boxes (x1, y1, w, h), box ``k`` inside the image ``widths[k] x heights[k]``."""
    side = np.exp(rng.normal(mu, sigma, count))
    aspect = np.sqrt(np.exp(rng.uniform(np.log(0.5), np.log(2.0), count)))
    w = np.clip(side * aspect, 1.0, widths)
    h = np.clip(side / aspect, 1.0, heights)
    x1 = rng.uniform(0, 1, count) * (widths - w)
    y1 = rng.uniform(0, 1, count) * (heights - h)
    return np.round(np.stack([x1, y1, w, h], 1), 2)


def draw_proposals(rng, sizes, gt, gt_start, gt_count):
    """``VIEWS * PROPOSALS_PER_VIEW`` proposals (x1, y1, x2, y2, score) for each image of ``sizes``, as one
    array: per view, half near ground-truth boxes and half anywhere, the finest view favouring small
    boxes (what an RPN dump at three test scales looks like to the negative chip miner)."""
    n, per_view = len(sizes), PROPOSALS_PER_VIEW
    parts = []
    for view in range(VIEWS):
        near, anywhere = per_view // 2, per_view - per_view // 2
        image = np.repeat(np.arange(n), near)
        pick = gt_start[image] + (rng.uniform(0, 1, len(image)) * gt_count[image]).astype(np.int64)
        x, y, w, h = gt[pick].T
        jitter = rng.normal(0, 0.15, (4, len(image)))
        w2, h2 = w * np.exp(jitter[2]), h * np.exp(jitter[3])
        cx, cy = x + w / 2 + jitter[0] * w, y + h / 2 + jitter[1] * h
        near_boxes = np.stack([cx - w2 / 2, cy - h2 / 2, cx + w2 / 2, cy + h2 / 2, rng.uniform(0.5, 1, len(image))], 1)
        image2 = np.repeat(np.arange(n), anywhere)
        free = draw_boxes(rng, len(image2), sizes[image2, 0], sizes[image2, 1], mu=SIZE_MU + 0.7 * (view - 1))
        free_boxes = np.concatenate([free[:, :2], free[:, :2] + free[:, 2:], rng.uniform(0, 0.5, (len(image2), 1))], 1)
        parts.append(np.concatenate([near_boxes.reshape(n, near, 5), free_boxes.reshape(n, anywhere, 5)], 1))
    boxes = np.concatenate(parts, 1).reshape(-1, 5)
    image = np.repeat(np.arange(n), VIEWS * per_view)
    w, h = sizes[image, 0].astype(np.float64), sizes[image, 1].astype(np.float64)
    boxes[:, 0] = np.clip(boxes[:, 0], 0, w - 1)
    boxes[:, 1] = np.clip(boxes[:, 1], 0, h - 1)
    boxes[:, 2] = np.clip(np.maximum(boxes[:, 2], boxes[:, 0] + 1), 0, w)
    boxes[:, 3] = np.clip(np.maximum(boxes[:, 3], boxes[:, 1] + 1), 0, h)
    return boxes.astype(np.float32)


def link_all(source, targets):
    """Puts ``source`` under every name of ``targets``: a hard link, else a symlink, else a copy."""
    for target in targets:
        try:
            os.link(source, target)
        except OSError:
            try:
                os.symlink(source, target)
            except OSError:
                shutil.copyfile(source, target)


def write_dataset(work_dir, num_images, seed, with_proposals):
    """Writes the annotation file, the images and the proposals; returns the dataset's statistics."""
    import cv2
    from mmdet.datasets import CocoDataset

    meta_path = osp.join(work_dir, 'dataset_meta.json')
    wanted = dict(images=num_images, seed=seed, proposals=with_proposals, version=1)
    if osp.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get('wanted') == wanted:
            meta['stats']['reused'] = True
            return meta['stats']
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    widths = rng.integers(480, 641, num_images)
    heights = rng.integers(360, 641, num_images)
    counts = rng.poisson(BOXES_PER_IMAGE, num_images)
    total = int(counts.sum())
    image_of_box = np.repeat(np.arange(num_images), counts)
    boxes = draw_boxes(rng, total, widths[image_of_box], heights[image_of_box])
    crowd = rng.uniform(0, 1, total) < CROWD_FRACTION
    categories = rng.integers(1, 81, total)
    image_ids = np.arange(1, num_images + 1)

    classes = CocoDataset.METAINFO['classes']
    file_names = [f'{i:012d}.jpg' for i in image_ids]
    images = [dict(id=int(i), file_name=name, width=int(w), height=int(h))
              for i, name, w, h in zip(image_ids, file_names, widths, heights)]
    annotations = [dict(id=k + 1, image_id=int(image_ids[i]), category_id=int(c), bbox=b, area=round(b[2] * b[3], 2),
                        iscrowd=int(z), segmentation=[])
                   for k, (i, c, b, z) in enumerate(zip(image_of_box.tolist(), categories.tolist(), boxes.tolist(),
                                                        crowd.tolist()))]
    ann_file = osp.join(work_dir, 'annotations.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=k + 1, name=name) for k, name in enumerate(classes)]), f)
    del images, annotations

    image_dir = osp.join(work_dir, 'images')
    if osp.isdir(image_dir):
        shutil.rmtree(image_dir)
    os.makedirs(image_dir)
    source = osp.join(work_dir, 'source.jpg')
    # Texture rather than a flat colour, so that decoding costs about what a photo's does.
    picture = cv2.GaussianBlur(rng.integers(0, 256, (JPEG_SIDE, JPEG_SIDE, 3), dtype=np.uint8), (0, 0), 2)
    cv2.imwrite(source, picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    link_all(source, [osp.join(image_dir, name) for name in file_names])

    # mmdet drops images without annotations (filter_empty_gt), and load_proposals wants exactly the
    # dataset's images: the proposals cover the images kept.
    kept = np.flatnonzero(counts > 0)
    proposals_file = None
    if with_proposals:
        gt_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sizes = np.stack([widths, heights], 1)
        per_image = VIEWS * PROPOSALS_PER_VIEW
        proposals = {}
        for first in range(0, len(kept), CHUNK_IMAGES):
            chunk = kept[first:first + CHUNK_IMAGES]
            drawn = draw_proposals(rng, sizes[chunk], boxes, gt_start[chunk], counts[chunk])
            proposals.update(zip(image_ids[chunk].tolist(), np.split(drawn, len(chunk))))
            assert drawn.shape[0] == len(chunk) * per_image
        proposals_file = osp.join(work_dir, 'proposals.pkl')
        with open(proposals_file, 'wb') as f:
            pickle.dump(proposals, f, protocol=pickle.HIGHEST_PROTOCOL)
        del proposals
    np.save(osp.join(work_dir, 'kept_image_ids.npy'), image_ids[kept])

    side = np.sqrt(boxes[:, 2] * boxes[:, 3])
    stats = dict(images=num_images, images_with_boxes=int(len(kept)), boxes=total, boxes_per_image=total / num_images,
                 small=float(np.mean(side < 32)), medium=float(np.mean((side >= 32) & (side <= 96))),
                 large=float(np.mean(side > 96)), crowd=int(crowd.sum()),
                 annotation_mb=osp.getsize(ann_file) / 2**20,
                 proposals_mb=osp.getsize(proposals_file) / 2**20 if proposals_file else None,
                 write_s=time.perf_counter() - start, reused=False)
    with open(meta_path, 'w') as f:
        json.dump(dict(wanted=wanted, stats=stats), f)
    return stats


# ---------------------------------------------------------------- steps (each in its own process)


def setup(threads):
    import torch
    from mmdet.utils import register_all_modules
    torch.set_num_threads(threads)
    register_all_modules()
    import mmdet_sniper  # noqa: F401  registers SNIPER's modules


def coco_config(cfg, pipeline=()):
    return dict(type='CocoDataset', data_root=cfg['work_dir'], ann_file='annotations.json',
                data_prefix=dict(img='images/'), filter_cfg=dict(filter_empty_gt=True, min_size=32),
                pipeline=list(pipeline))


def sniper_dataset(cfg, cache_dir, pipeline=(), proposals=True):
    from mmdet_sniper.datasets import SniperDataset
    return SniperDataset(dataset=coco_config(cfg, pipeline), cache_dir=cache_dir, seed=0,
                         proposals_file=cfg['proposals_file'] if proposals else None,
                         chip_workers=cfg.get('chip_workers'))


def chip_inputs(dataset):
    """What the chip generator reads, in the form its methods take. Kept in one place: the dataset's
    attributes may change their form (packed boxes), ``dataset.chips`` is the stable way in."""
    chips = dataset.chips
    return chips.generator, chips.image_sizes, chips.gt_boxes, chips.gt_crowd, chips.proposals


def table_stats(table, num_images):
    summary = table.summary()
    return dict(chips=len(table), chips_per_image=len(table) / max(num_images, 1), positive=summary['positive'],
                negative=summary['negative'])


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def step_import(cfg):
    return {}


def step_coco(cfg):
    from mmdet.datasets import CocoDataset
    before = peak_rss_kib()

    def build():
        dataset = CocoDataset(**{k: v for k, v in coco_config(cfg).items() if k != 'type'}, lazy_init=True)
        dataset.full_init()
        return dataset

    dataset, seconds = timed(build)
    return dict(time_s=seconds, images=len(dataset), import_peak_rss_gb=gb(before),
                build_peak_rss_gb=gb(peak_rss_kib()))


def step_sniper(cfg, warm):
    cache_dir = cfg['cache_dir']
    cached = sorted(glob.glob(osp.join(cache_dir, '*.npz')))
    if not warm and cached:
        raise RuntimeError(f'the cold step needs an empty cache, {cache_dir} holds {len(cached)} tables')
    dataset, build_s = timed(lambda: sniper_dataset(cfg, cache_dir, proposals=cfg['proposals_file'] is not None))
    build_peak = peak_rss_kib()
    table0, table0_s = timed(lambda: dataset.chips.table(0))
    result = dict(time_s=build_s, build_s=build_s, build_peak_rss_gb=gb(build_peak), table0_s=table0_s,
                  images=len(dataset.image_sizes), cache_tables_before=len(cached),
                  epoch0=table_stats(table0, len(dataset.image_sizes)))
    if not warm:
        table1, result['table1_s'] = timed(lambda: dataset.chips.table(1))
        result['epoch1'] = table_stats(table1, len(dataset.image_sizes))
    return result


class FakeRunner:
    """What ``ChipEpochTrainLoop.__init__`` (through mmengine's ``EpochBasedTrainLoop``) reads of a runner,
    when it is given a built DataLoader."""

    def __init__(self):
        from types import SimpleNamespace
        self.visualizer = SimpleNamespace(dataset_meta=None)
        self.seed = 0
        self._randomness_cfg = {}


def step_loop(cfg):
    from torch.utils.data import DataLoader

    from mmdet_sniper.engine import ChipEpochTrainLoop
    from mmdet_sniper.samplers import ChipAwareSampler

    # Only epoch 0's table, as a run that has already counted epoch 0 (the sampler asks for it first).
    cache_dir = cfg['loop_cache_dir']
    os.makedirs(cache_dir, exist_ok=True)
    seeded = glob.glob(osp.join(cfg['cache_dir'], '*-epoch0.npz'))
    for path in seeded:
        shutil.copy(path, cache_dir)
    for path in glob.glob(osp.join(cfg['cache_dir'], 'proposals-*[!k]')):  # the pooled proposals, not the lock
        shutil.copytree(path, osp.join(cache_dir, osp.basename(path)), dirs_exist_ok=True)
    dataset, build_s = timed(lambda: sniper_dataset(cfg, cache_dir, proposals=cfg['proposals_file'] is not None))

    def build_loop(exact):
        sampler = ChipAwareSampler(dataset, seed=0)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, collate_fn=lambda x: x, num_workers=0)
        return ChipEpochTrainLoop(FakeRunner(), loader, max_epochs=cfg['epochs'], exact_max_iters=exact)

    loop, loop_s = timed(lambda: build_loop(False))
    exact, exact_s = timed(lambda: build_loop(True))
    return dict(time_s=loop_s, dataset_build_s=build_s, epoch0_cached=bool(seeded), epochs=cfg['epochs'],
                max_iters=loop.max_iters, exact_s=exact_s, exact_max_iters=exact.max_iters,
                epoch_lengths=exact.epoch_lengths,
                exact_s_per_epoch=exact_s / max(cfg['epochs'] - 1, 1))


def step_proposals(cfg):
    from mmdet_sniper.chips.proposals import load_proposals
    image_ids = np.load(osp.join(cfg['work_dir'], 'kept_image_ids.npy')).tolist()
    cache_dir = cfg['cache_dir'] + '_proposals'  # its own: the cold load must find no cache
    before = current_rss_kib()
    cold, cold_s = timed(lambda: load_proposals(cfg['proposals_file'], image_ids, 0.7, cache_dir))
    cold_peak = peak_rss_kib()
    del cold
    os.sync()  # the pages just written are clean afterwards, as they are for every later process
    warm, warm_s = timed(lambda: load_proposals(cfg['proposals_file'], image_ids, 0.7, cache_dir))
    checksum = float(np.asarray(warm.flat, dtype=np.float64).sum())  # touches every page of the map
    memory = mapping_mb(osp.basename(warm.flat.filename) if warm.flat.filename else 'boxes.npy')
    cached_mb = sum(osp.getsize(p) for p in glob.glob(osp.join(cache_dir, 'proposals-*', '*.npy'))) / 2**20
    return dict(time_s=cold_s, cold_s=cold_s, warm_s=warm_s, images=len(warm), checksum=checksum,
                file_mb=osp.getsize(cfg['proposals_file']) / 2**20, cached_mb=cached_mb,
                proposals_per_image=len(warm.flat) / max(len(warm), 1), cold_peak_rss_gb=gb(cold_peak),
                cold_peak_over_start_gb=gb(cold_peak - before), mapped_rss_mb=memory['rss'],
                mapped_dirty_mb=memory['dirty'])


def step_negative(cfg):
    dataset, build_s = timed(lambda: sniper_dataset(cfg, cfg['cache_dir']))
    generator, sizes, boxes, crowd, proposals = chip_inputs(dataset)
    positive, positive_s = timed(lambda: generator.generate_positive(sizes, boxes, crowd, seed=0, epoch=0))
    pool, pool_s = timed(lambda: generator.generate_negative(sizes, proposals, positive, boxes, crowd, seed=0,
                                                             epoch=0))
    sampled, sample_s = timed(lambda: generator.sample_negative(pool, seed=0, epoch=0))
    return dict(time_s=pool_s + sample_s, dataset_build_s=build_s, positive_s=positive_s, pool_s=pool_s,
                sample_s=sample_s, positive=len(positive), pool=len(pool), negative=len(sampled),
                proposals_per_image=sum(len(p) for p in proposals) / len(proposals))


def step_precision(cfg):
    from mmcv.ops import nms

    from mmdet_sniper.chips import RaggedArray
    dataset = sniper_dataset(cfg, cfg['cache_dir'])
    generator, sizes, boxes, crowd, half = chip_inputs(dataset)
    with open(cfg['proposals_file'], 'rb') as f:
        raw = pickle.load(f)
    full = []
    for image_id in dataset.image_ids.tolist():
        proposals = np.asarray(raw.pop(image_id), np.float32)
        full.append(proposals[nms(proposals[:, :4], proposals[:, 4], 0.7)[1], :4])
    full = RaggedArray.from_list(full, np.float32, (4,))
    epochs = []
    for epoch in range(3):
        pools = []
        for proposals in (full, half):
            positive = generator.generate_positive(sizes, boxes, crowd, seed=0, epoch=epoch)
            pool = generator.generate_negative(sizes, proposals, positive, boxes, crowd, seed=0, epoch=epoch)
            pools.append({(int(i), int(s), *c.tolist()): int(n) for i, s, c, n in
                          zip(pool.image_index, pool.scale_index, pool.chips, pool.box_count)})
        both = pools[0].keys() & pools[1].keys()
        epochs.append(dict(full=len(pools[0]), half=len(pools[1]), both=len(both),
                           other_count=sum(pools[0][k] != pools[1][k] for k in both)))
    return dict(half_dtype=str(half.flat.dtype), rounded_equal=bool(np.array_equal(
        full.flat.astype(half.flat.dtype), half.flat)), epochs=epochs)


def child_pids():
    me = os.getpid()
    pids = set()
    for path in glob.glob(f'/proc/{me}/task/*/children'):
        with open(path) as f:
            pids.update(int(p) for p in f.read().split())
    if pids:
        return sorted(pids)
    # Kernels without CONFIG_PROC_CHILDREN: the parent is the 4th field of /proc/<pid>/stat.
    for path in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(path) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            pids.add(int(path.split('/')[2]))
    return sorted(pids)


def mapping_mb(name):
    """Resident and dirty (copied) MB of this process's memory maps of files named ``name``. A read-only
    map's pages are the page cache's, shared by every process of the node that maps the same file;
    private dirty pages would be copies of its own (just-written pages the kernel has not flushed yet count
    as shared dirty, not here)."""
    totals, current = dict(rss=0.0, dirty=0.0), False
    with open('/proc/self/smaps') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and '-' in parts[0] and ':' in parts[3]:  # a mapping's header line
                current = len(parts) >= 6 and osp.basename(parts[-1]) == name
            elif current and parts[0] == 'Rss:':
                totals['rss'] += int(parts[1]) / 1024
            elif current and parts[0] == 'Private_Dirty:':
                totals['dirty'] += int(parts[1]) / 1024
    return totals


def memory_mb(pid):
    """USS (private pages) and PSS of a process, in MB."""
    values = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].rstrip(':') in ('Pss', 'Private_Clean', 'Private_Dirty'):
                values[parts[0].rstrip(':')] = int(parts[1]) / 1024
    return dict(uss=values['Private_Clean'] + values['Private_Dirty'], pss=values['Pss'])


def step_workers(cfg):
    from mmengine.config import Config
    from torch.utils.data import DataLoader, Sampler

    from mmdet_sniper.samplers import ChipAwareSampler

    class FirstKeys(Sampler):
        def __init__(self, sampler, count):
            self.sampler, self.count = sampler, count

        def __iter__(self):
            return itertools.islice(iter(self.sampler), self.count)

        def __len__(self):
            return min(self.count, len(self.sampler))

    pipeline = Config.fromfile(str(TRAIN_CONFIG)).sniper_train_pipeline
    dataset, build_s = timed(lambda: sniper_dataset(cfg, cfg['cache_dir'], pipeline,
                                                    proposals=cfg['proposals_file'] is not None))
    sampler = FirstKeys(ChipAwareSampler(dataset, seed=0), cfg['chips'])
    loader = DataLoader(dataset, batch_size=1, sampler=sampler, collate_fn=lambda x: x, num_workers=cfg['workers'],
                        persistent_workers=False)
    start = time.perf_counter()
    batches = iter(loader)
    next(batches)
    first_s = time.perf_counter() - start
    workers = child_pids()
    first = {pid: memory_mb(pid) for pid in workers}
    # Read before the iterator is exhausted: the workers exit at the StopIteration.
    for _ in range(len(sampler) - 1):
        next(batches)
    total_s = time.perf_counter() - start
    last = {pid: memory_mb(pid) for pid in workers}
    del batches
    growth = {kind: [last[p][kind] - first[p][kind] for p in workers] for kind in ('uss', 'pss')}
    return dict(time_s=total_s, dataset_build_s=build_s, first_batch_s=first_s, chips=len(sampler),
                chips_per_s=(len(sampler) - 1) / max(total_s - first_s, 1e-9), workers=len(workers),
                pipeline=[t['type'] for t in pipeline],
                first_mb={str(p): m for p, m in first.items()}, last_mb={str(p): m for p, m in last.items()},
                uss_first_mean_mb=float(np.mean([m['uss'] for m in first.values()])) if workers else None,
                pss_first_mean_mb=float(np.mean([m['pss'] for m in first.values()])) if workers else None,
                uss_growth_mean_mb=float(np.mean(growth['uss'])) if workers else None,
                uss_growth_max_mb=float(np.max(growth['uss'])) if workers else None,
                pss_growth_mean_mb=float(np.mean(growth['pss'])) if workers else None)


def run_step(name, cfg):
    start = time.perf_counter()
    setup(cfg['threads'])
    import_s = time.perf_counter() - start
    functions = {'import': step_import, 'coco': step_coco, 'sniper-cold': lambda c: step_sniper(c, warm=False),
                 'sniper-warm': lambda c: step_sniper(c, warm=True), 'loop': step_loop, 'proposals': step_proposals,
                 'negative': step_negative, 'workers': step_workers, 'precision': step_precision}
    result = functions[name](cfg)
    result.setdefault('time_s', import_s)
    result.update(import_s=import_s, wall_s=time.perf_counter() - start, peak_rss_gb=gb(peak_rss_kib()))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------- the driver


def spawn(name, cfg, verbose):
    command = [sys.executable, osp.abspath(__file__), '--step', name, '--step-config', json.dumps(cfg)]
    start = time.perf_counter()
    process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall_s = time.perf_counter() - start
    lines = process.stdout.splitlines()
    if verbose:
        print('\n'.join(line for line in lines if not line.startswith(RESULT_PREFIX)))
    results = [line[len(RESULT_PREFIX):] for line in lines if line.startswith(RESULT_PREFIX)]
    if process.returncode or not results:
        return dict(error=f'exit status {process.returncode}', output_tail='\n'.join(lines[-40:]),
                    process_wall_s=wall_s)
    return dict(json.loads(results[-1]), process_wall_s=wall_s)


def notes(name, r):
    if 'error' in r:
        return f'FAILED ({r["error"]}), see below'
    if name == 'import':
        return 'register_all_modules() + import mmdet_sniper'
    if name == 'coco':
        return f'{r["images"]} images after filter_cfg'
    if name.startswith('sniper'):
        e0 = r['epoch0']
        text = (f'build {r["build_s"]:.2f} s (peak {r["build_peak_rss_gb"]:.2f} GB); table(0) {r["table0_s"]:.2f} s'
                f'{" from cache" if name == "sniper-warm" and r["cache_tables_before"] else ""}')
        if 'table1_s' in r:
            text += f', table(1) {r["table1_s"]:.2f} s'
        text += (f'; epoch 0: {e0["chips"]} chips, {e0["chips_per_image"]:.2f}/image, {e0["positive"]} positive, '
                 f'{e0["negative"]} negative')
        if name == 'sniper-warm' and not r['cache_tables_before']:
            text += '; CACHE WAS EMPTY (run sniper-cold first)'
        return text
    if name == 'loop':
        return (f'ChipEpochTrainLoop over {r["epochs"]} epochs, epoch 0 '
                f'{"cached" if r["epoch0_cached"] else "NOT cached (fresh cache)"}: max_iters {r["max_iters"]}; '
                f'with exact_max_iters=True {r["exact_s"]:.1f} s ({r["exact_s_per_epoch"]:.2f} s per uncached '
                f'epoch), max_iters {r["exact_max_iters"]}; dataset build {r["dataset_build_s"]:.2f} s before')
    if name == 'proposals':
        return (f'load_proposals of {r["images"]} images ({r["file_mb"]:.0f} MB pickle): NMS and cache '
                f'{r["cold_s"]:.1f} s, peak {r["cold_peak_rss_gb"]:.2f} GB; from the cache {r["warm_s"]:.2f} s, '
                f'{r["cached_mb"]:.0f} MB on disk ({r["proposals_per_image"]:.0f} per image), mapped: resident '
                f'{r["mapped_rss_mb"]:.0f} MB, dirty {r["mapped_dirty_mb"]:.0f} MB')
    if name == 'negative':
        return (f'pool {r["pool_s"]:.2f} s + sampling {r["sample_s"]:.3f} s ({r["pool"]} in the pool, {r["negative"]} '
                f'sampled, {r["proposals_per_image"]:.0f} proposals/image after NMS); positive {r["positive_s"]:.2f} s '
                f'({r["positive"]} chips)')
    if name == 'precision':
        return f'proposals held as {r["half_dtype"]} (the float32 boxes rounded: {r["rounded_equal"]}); ' + '; '.join(
            f'epoch {i}: pool {e["full"]} from float32, {e["half"]} from {r["half_dtype"]}, {e["both"]} chips in both '
            f'({e["both"] / max(e["full"], 1):.1%}), {e["other_count"]} of those with another proposal count'
            for i, e in enumerate(r['epochs']))
    if name == 'workers':
        if not r['workers']:
            return f'{r["chips"]} chips, no worker process found'
        return (f'{r["workers"]} workers, {r["chips"]} chips, {r["chips_per_s"]:.1f} chips/s after the first batch '
                f'({r["first_batch_s"]:.1f} s); per worker after the first batch USS {r["uss_first_mean_mb"]:.0f} MB, '
                f'PSS {r["pss_first_mean_mb"]:.0f} MB; growth to the last chip USS {r["uss_growth_mean_mb"]:+.1f} MB '
                f'mean ({r["uss_growth_max_mb"]:+.1f} max), PSS {r["pss_growth_mean_mb"]:+.1f} MB')
    return ''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=1000)
    parser.add_argument('--work-dir', help='where the dataset, the chip caches and the JSON go; default: a temp dir')
    parser.add_argument('--proposals', action=argparse.BooleanOptionalAction, default=True,
                        help='write and use an RPN-like proposals file (negative chips)')
    parser.add_argument('--steps', default=','.join(DEFAULT_STEPS), help=f'comma list of {", ".join(STEPS)}')
    parser.add_argument('--epochs', type=int, default=14, help='max_epochs of the loop step')
    parser.add_argument('--chips', type=int, default=500, help='chips the workers step loads')
    parser.add_argument('--workers', type=int, default=4, help='DataLoader workers of the workers step')
    parser.add_argument('--threads', type=int, default=1, help='torch threads of each step')
    parser.add_argument('--chip-workers', type=int, help="processes making a chip table (SniperDataset's "
                        'chip_workers); default: its default, one per CPU, at most 8')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='JSON of every figure; default: <work-dir>/scale_<images>.json')
    parser.add_argument('--verbose', action='store_true', help="show each step's log")
    parser.add_argument('--cache-dir', help='the chip cache of an earlier run to reuse (sniper-warm without '
                        'sniper-cold); default: a new one')
    parser.add_argument('--write-only', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--step', choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument('--step-config', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step(args.step, json.loads(args.step_config))
        return

    steps = [s.strip() for s in args.steps.split(',') if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f'unknown steps {unknown}; choose from {", ".join(STEPS)}')
    work_dir = osp.abspath(args.work_dir or tempfile.mkdtemp(prefix='sniper_scale_'))
    os.makedirs(work_dir, exist_ok=True)
    print(f'writing {args.images} images into {work_dir} ...', flush=True)
    if args.write_only:
        print(RESULT_PREFIX + json.dumps(write_dataset(work_dir, args.images, args.seed, args.proposals)))
        return
    # Written in a child: every step is a child of this process, and a child's peak RSS starts from its
    # parent's RSS at the fork, which the writing would raise to gigabytes.
    command = [sys.executable, osp.abspath(__file__), '--images', str(args.images), '--work-dir', work_dir,
               '--seed', str(args.seed), '--write-only', '--proposals' if args.proposals else '--no-proposals']
    written = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()
    data = json.loads(next(line for line in written if line.startswith(RESULT_PREFIX))[len(RESULT_PREFIX):])
    print(f'{data["images"]} images ({data["images_with_boxes"]} with boxes), {data["boxes_per_image"]:.2f} boxes per '
          f'image ({data["small"]:.0%} small, {data["medium"]:.0%} medium, {data["large"]:.0%} large, '
          f'{data["crowd"]} crowd); annotations {data["annotation_mb"]:.1f} MB'
          + (f', proposals {data["proposals_mb"]:.0f} MB' if data['proposals_mb'] else '')
          + (' (reused)' if data['reused'] else f'; written in {data["write_s"]:.1f} s') + '\n', flush=True)

    # A fresh cache name per run: the cold step must find no table made by an earlier run.
    run_id = f'{os.getpid()}_{int(time.time())}'
    cfg = dict(work_dir=work_dir, proposals_file=osp.join(work_dir, 'proposals.pkl') if args.proposals else None,
               cache_dir=osp.abspath(args.cache_dir) if args.cache_dir else osp.join(work_dir, f'cache_{run_id}'),
               loop_cache_dir=osp.join(work_dir, f'cache_loop_{run_id}'),
               epochs=args.epochs, chips=args.chips, workers=args.workers, threads=args.threads,
               chip_workers=args.chip_workers)
    results = {}
    for name in steps:
        if name in NEEDS_PROPOSALS and not args.proposals:
            results[name] = dict(skipped='--no-proposals')
            continue
        print(f'step {name} ...', flush=True)
        results[name] = spawn(name, cfg, args.verbose)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    chip_workers = args.chip_workers or f'the default ({min(8, cpus)})'
    print(f'\n{args.images} images, {args.threads} torch thread(s) per step, {chip_workers} chip table worker(s), '
          'each step a fresh process\n')
    print('| step | time (s) | peak RSS (GB) | notes |')
    print('|---|---|---|---|')
    for name in steps:
        r = results[name]
        if 'skipped' in r:
            print(f'| {name} | | | skipped: {r["skipped"]} |')
        elif 'error' in r:
            print(f'| {name} | | | {notes(name, r)} |')
        else:
            print(f'| {name} | {r["time_s"]:.2f} | {r["peak_rss_gb"]:.2f} | {notes(name, r)} |')
    ratios = {}
    coco = results.get('coco', {})
    for name in ('sniper-cold', 'sniper-warm'):
        sniper = results.get(name, {})
        if 'time_s' in coco and 'build_s' in sniper:
            ratios[name] = dict(build_time=sniper['build_s'] / coco['time_s'],
                                build_peak_rss=sniper['build_peak_rss_gb'] / coco['build_peak_rss_gb'])
            print(f'\n{name} build / coco build: time {ratios[name]["build_time"]:.2f}x, peak RSS at the end of the '
                  f'build {ratios[name]["build_peak_rss"]:.2f}x')
    for name in steps:
        if 'error' in results[name]:
            print(f'\n{name} failed:\n{results[name]["output_tail"]}')

    out = args.out or osp.join(work_dir, f'scale_{args.images}.json')
    with open(out, 'w') as f:
        json.dump(dict(args={k: v for k, v in vars(args).items() if not k.startswith('step')}, dataset=data,
                       steps=results, ratios=ratios, python=sys.version.split()[0]), f, indent=1)
    print(f'\nfigures: {out}')


if __name__ == '__main__':
    main()
