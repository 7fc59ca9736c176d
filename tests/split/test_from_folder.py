"""split.from_folder (--split-data): images of a folder as uint8 (N, C, H, W), the ImageNet
evaluation transform (shorter side resized, centre crop), and a clear error without images."""
from __future__ import annotations

import numpy as np
import pytest

from pytest_collab import split

Image = pytest.importorskip("PIL.Image")


def test_resize_centre_crop_and_cycle(tmp_path):
    # left half red, right half blue, 40 x 20: the crop keeps the middle, both colours
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "b.png")
    Image.fromarray(np.full((30, 30, 3), 90, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    out = split.from_folder(tmp_path, 3, (3, 16, 16))
    assert out.shape == (3, 3, 16, 16) and out.dtype == np.uint8
    assert (out[0] == 90).all() and np.array_equal(out[2], out[0])       # sorted, cycled
    assert out[1, 0, :, 0].min() == 255 and out[1, 2, :, -1].min() == 255 and out[1, 1].max() == 0
    grey = split.from_folder(tmp_path, 1, (1, 8, 8))
    assert grey.shape == (1, 1, 8, 8) and (grey == 90).all()


def test_a_folder_without_images_names_the_option(tmp_path):
    with pytest.raises(split.SplitError, match="--split-data .*: no images"):
        split.from_folder(tmp_path, 2, (3, 8, 8))
