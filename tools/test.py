"""Evaluates a trained detector, as mmdet's tools/test.py does, with SNIPER's multi-scale test.

    python tools/test.py configs/sniper_faster_rcnn.py work_dirs/sniper_faster_rcnn/epoch_14.pth
    tools/dist_test.sh configs/sniper_faster_rcnn.py work_dirs/sniper_faster_rcnn/epoch_14.pth 8 --out dets.pkl

Reads the config, the checkpoint and the config's test set; prints and logs the metrics of the
config's test_evaluator (CocoMetric: pycocotools' AP) into the work dir. When the config defines
``tta_model`` and ``tta_pipeline`` (SNIPER configs do: every test scale with its valid range,
full-image or sliced), they are used, as mmdet's ``--tta`` would; ``--single-scale`` tests the bare
model with ``test_dataloader``'s pipeline instead. ``--out`` also dumps the detections (a pickle of
mmdet's per-image results); ``--show-dir`` draws them (mmdet's DetVisualizationHook).
"""
import require_sniper  # noqa: F401  isort: skip  (first: explains a Python without mmdet_sniper)
import argparse

from mmengine.config import ConfigDict

from mmdet_sniper.engine.launch import add_launch_args, load_config, runner_of


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the detections to this pickle file')
    parser.add_argument('--show-dir', help='draw the detections of every test image into this folder (in the work dir)')
    parser.add_argument('--single-scale', action='store_true',
                        help="test with test_dataloader's pipeline, without the config's tta_model")
    add_launch_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show_dir is not None:
        # mmdet's DetVisualizationHook, as mmdet's tools/test.py --show-dir turns it on.
        cfg.default_hooks.visualization.update(draw=True, test_out_dir=args.show_dir)
    if 'tta_model' in cfg and not args.single_scale:
        if 'tta_pipeline' not in cfg:
            raise ValueError(f'{args.config} defines tta_model but no tta_pipeline (the test views)')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out!r}')
    with runner_of(cfg) as runner:
        if args.out is not None:
            from mmdet.evaluation import DumpDetResults
            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
        runner.test()


if __name__ == '__main__':
    main()
