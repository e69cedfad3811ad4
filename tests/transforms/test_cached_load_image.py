import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile

from mmdet_sniper.testing.synthetic_coco import write_synthetic_coco
from mmdet_sniper.transforms import CachedLoadImageFromFile, cached_load_image


@pytest.fixture(scope='module')
def image_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    write_synthetic_coco(str(root), 3, seed=0, image_size=(64, 48))
    return [str(root / 'images' / f'{i:06d}.jpg') for i in range(3)]


def test_decodes_each_image_once_while_it_is_cached(image_paths, monkeypatch):
    expected = {path: LoadImageFromFile()(dict(img_path=path))['img'] for path in image_paths}
    decoded = []
    real = cached_load_image.LoadImageFromFile.transform
    monkeypatch.setattr(cached_load_image.LoadImageFromFile, 'transform',
                        lambda self, results: decoded.append(results['img_path']) or real(self, results))
    load = CachedLoadImageFromFile(cache_size=2)
    a, b, c = image_paths
    for path in (a, a, b, a, b, c, a, c):
        out = load(dict(img_path=path))
        np.testing.assert_array_equal(out['img'], expected[path])
        assert out['img_shape'] == out['ori_shape'] == (48, 64)
    # c evicts a, the least recently used (b was used after it); a is then decoded again.
    assert decoded == [a, b, c, a]


def test_the_cached_image_cannot_be_changed_in_place(image_paths):
    load = CachedLoadImageFromFile()
    img = load(dict(img_path=image_paths[0]))['img']
    with pytest.raises(ValueError, match='read-only'):
        img[0, 0] = 0
    assert load(dict(img_path=image_paths[0]))['img'] is img


def test_bad_arguments_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='cache_size'):
        CachedLoadImageFromFile(cache_size=0)
    with pytest.raises(FileNotFoundError, match='nothing.jpg'):
        CachedLoadImageFromFile()(dict(img_path=str(tmp_path / 'nothing.jpg')))
