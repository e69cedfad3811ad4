"""Runs a trained SNIPER RPN over every training image at each test scale and writes the proposals
that stage 2 mines negative chips from.

    python tools/extract_proposals.py configs/sniper_rpn.py work_dirs/sniper_rpn/epoch_4.pth --out proposals.pkl
    tools/dist_extract_proposals.sh configs/sniper_rpn.py work_dirs/sniper_rpn/epoch_4.pth 8 --out proposals.pkl

Reads the config's training images (the dataset inside its SniperDataset, with the same filtering,
so the file matches stage 2's images) and the checkpoint. Each image is resized to each of the
config's ``proposal_scales`` (factors or (short, long) pairs; the authors: (1400, 2000), (800, 1280),
(480, 512))
and the RPN keeps its top proposals after NMS (the config's ``model.test_cfg.rpn``: 300 at IoU 0.7).
Writes OUT (``.pkl`` or ``.json``): ``{image id: float32 [P, 5]}``, ``x1, y1, x2, y2, score`` in
original-image pixels, all scales pooled, highest score first; ``SniperDataset`` applies NMS at 0.7
again when it loads them. Logs and the dumped config go to the work dir.
"""
import require_sniper  # noqa: F401  isort: skip  (first: explains a Python without mmdet_sniper)
import argparse
import copy

from mmdet_sniper.engine.launch import add_launch_args, load_config, runner_of
from mmdet_sniper.transforms.test_scale import resize_args

COCO_PROPOSAL_SCALES = ((1400, 2000), (800, 1280), (480, 512))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the RPN config (its training set is the one to extract for)')
    parser.add_argument('checkpoint', help='the trained RPN checkpoint')
    parser.add_argument('--out', required=True, help='output file, .pkl or .json')
    parser.add_argument('--batch-size', type=int, default=1, help='images per batch and process')
    add_launch_args(parser)
    return parser.parse_args()


def images_at_scale(train_dataset: dict, scale) -> dict:
    """The training images (their dataset config, without the chips) resized to ``scale``: a factor
    or ``(short, long)`` sides."""
    dataset = copy.deepcopy(train_dataset)
    dataset['pipeline'] = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', keep_ratio=True, **resize_args(scale)),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    return dataset


def main():
    args = parse_args()
    cfg = load_config(args)
    train_dataset = cfg.train_dataloader.dataset
    if train_dataset.type == 'SniperDataset':
        train_dataset = train_dataset.dataset
    scales = cfg.get('proposal_scales', COCO_PROPOSAL_SCALES)
    cfg.load_from = args.checkpoint
    cfg.test_dataloader = dict(
        batch_size=args.batch_size, num_workers=cfg.train_dataloader.get('num_workers', 2),
        persistent_workers=False, drop_last=False, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ConcatDataset', datasets=[images_at_scale(train_dataset, s) for s in scales]))
    cfg.test_evaluator = dict(type='SniperProposalsDump', out_file=args.out,
                              proposals_per_view=cfg.model.test_cfg.rpn.max_per_img)
    cfg.test_cfg = dict(type='TestLoop')
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='TestProgressBarHook')]
    with runner_of(cfg) as runner:
        runner.test()


if __name__ == '__main__':
    main()
