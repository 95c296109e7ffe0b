from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unseg.data import Sample, discover, discover_slides, load_sample
from unseg.errors import InputError
from unseg.io import write_image, write_label_map

IMAGE = np.full((6, 8, 3), 90, dtype=np.uint8)
MASK = np.arange(48).reshape(6, 8) % 3


def _labelled(root: Path, image_ids: list[str], mask_ids: list[str]) -> Path:
    for image_id in image_ids:
        write_image(root / "img" / f"{image_id}.png", IMAGE)
    for mask_id in mask_ids:
        write_label_map(root / "mask" / f"{mask_id}.png", MASK)
    return root


def test_labelled_layout_pairs_by_stem(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["b", "a", "c"], ["a", "b"])
    np.save(root / "mask" / "c.npy", MASK)
    samples = discover([root])
    assert [s.id for s in samples] == ["a", "b", "c"]
    assert samples[0] == Sample("a", root / "img" / "a.png", root / "mask" / "a.png")
    assert samples[2].mask == root / "mask" / "c.npy"


def test_labelled_layout_with_a_missing_mask(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["a", "b"], ["a"])
    samples = discover([root])
    assert samples[0].mask == root / "mask" / "a.png"
    assert samples[1].mask is None


def test_labelled_layout_without_mask_folder(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["a"], [])
    assert discover([root]) == [Sample("a", root / "img" / "a.png", None)]


def test_plain_folder_is_sorted_skips_hidden_and_other_files(tmp_path: Path) -> None:
    for name in ("b.tif", "a.PNG", "c.jpeg", ".hidden.png"):
        write_image(tmp_path / name, IMAGE)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.png").mkdir()
    samples = discover([tmp_path])
    assert [s.image.name for s in samples] == ["a.PNG", "b.tif", "c.jpeg"]
    assert all(s.mask is None for s in samples)


def test_single_files_keep_input_order(tmp_path: Path) -> None:
    first = write_image(tmp_path / "z.png", IMAGE)
    second = write_image(tmp_path / "d" / "a.jpg", IMAGE)
    assert [s.image for s in discover([first, str(second)])] == [first, second]
    assert discover(first) == [Sample("z", first, None)]


def test_folders_keep_input_order(tmp_path: Path) -> None:
    write_image(tmp_path / "one" / "b.png", IMAGE)
    write_image(tmp_path / "two" / "a.png", IMAGE)
    assert [s.id for s in discover([tmp_path / "one", tmp_path / "two"])] == ["b", "a"]


def test_masks_folder_pairs_by_stem(tmp_path: Path) -> None:
    image = write_image(tmp_path / "imgs" / "x.png", IMAGE)
    write_image(tmp_path / "imgs" / "y.png", IMAGE)
    mask = write_label_map(tmp_path / "preds" / "x.png", MASK)
    samples = discover([tmp_path / "imgs"], masks=tmp_path / "preds")
    assert samples == [Sample("x", image, mask), Sample("y", tmp_path / "imgs" / "y.png", None)]
    assert discover([image], masks=tmp_path / "preds") == [Sample("x", image, mask)]


def test_masks_folder_replaces_the_layouts_own_masks(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["a"], ["a"])
    other = write_label_map(tmp_path / "other" / "a.png", MASK)
    assert discover([root], masks=tmp_path / "other")[0].mask == other


def test_missing_masks_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "imgs" / "x.png", IMAGE)
    with pytest.raises(InputError, match="mask folder not found") as info:
        discover([tmp_path / "imgs"], masks=tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as info:
        discover([tmp_path / "nope"])
    assert str(tmp_path / "nope") in str(info.value)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"no images found \(looked for .png, .jpg") as info:
        discover([tmp_path])
    assert str(tmp_path) in str(info.value)


def test_unsupported_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.bmp"
    path.write_bytes(b"BM")
    with pytest.raises(InputError, match=r"unsupported file type '.bmp'") as info:
        discover([path])
    assert str(path) in str(info.value)


def test_duplicate_ids_name_both_files(tmp_path: Path) -> None:
    first = write_image(tmp_path / "one" / "a.png", IMAGE)
    second = write_image(tmp_path / "two" / "a.tif", IMAGE)
    with pytest.raises(InputError) as info:
        discover([tmp_path / "one", tmp_path / "two"])
    message = str(info.value)
    assert str(first) in message and str(second) in message
    assert "rename" in message and "named by id" in message


def test_same_file_given_twice_is_a_duplicate(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", IMAGE)
    with pytest.raises(InputError, match="id 'a'"):
        discover([path, tmp_path])


def test_two_masks_for_one_id(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["a"], ["a"])
    np.save(root / "mask" / "a.npy", MASK)
    with pytest.raises(InputError, match="two masks"):
        discover([root])


def test_load_sample(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["a", "b"], ["a"])
    with_mask, without_mask = discover([root])
    image, mask = load_sample(with_mask)
    np.testing.assert_array_equal(image, IMAGE)
    assert mask is not None and mask.dtype == np.int32
    np.testing.assert_array_equal(mask, MASK)
    assert load_sample(without_mask)[1] is None


def test_load_sample_with_mask_of_the_wrong_size(tmp_path: Path) -> None:
    image = write_image(tmp_path / "img" / "a.png", np.zeros((120, 100, 3), np.uint8))
    mask = write_label_map(tmp_path / "mask" / "a.png", np.zeros((100, 120), np.int32))
    with pytest.raises(InputError) as info:
        load_sample(Sample("a", image, mask))
    assert str(info.value).startswith(str(mask))
    assert f"mask is 100x120 (HxW) but image {image} is 120x100" in str(info.value)


# Broken symbolic links --------------------------------------------------------------------------


def test_broken_link_in_a_folder_is_a_failed_input(tmp_path: Path) -> None:
    from unseg.workflows import Failures, read_images

    write_image(tmp_path / "a.png", IMAGE)
    target = tmp_path / "elsewhere" / "b.png"
    (tmp_path / "b.png").symlink_to(target)
    samples = discover([tmp_path])
    assert [s.id for s in samples] == ["a", "b"]  # listed, not skipped
    with pytest.raises(InputError) as info:
        load_sample(samples[1])
    assert str(info.value).startswith(str(tmp_path / "b.png"))
    assert f"broken symbolic link to {target}" in str(info.value)
    failures = Failures()
    assert len(list(read_images(samples, failures, "reading"))) == 1
    assert "b" in failures and f"broken symbolic link to {target}" in failures.messages["b"]


def test_broken_link_to_a_mask_fails_when_read(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", ["a"], [])
    (root / "mask").mkdir()
    (root / "mask" / "a.png").symlink_to("gone.png")
    (sample,) = discover([root])
    assert sample.mask == root / "mask" / "a.png"
    with pytest.raises(InputError, match="broken symbolic link to gone.png"):
        load_sample(sample)


def test_broken_link_given_directly_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.png").symlink_to("gone.png")
    with pytest.raises(InputError, match="broken symbolic link to gone.png"):
        discover([tmp_path / "x.png"])
    with pytest.raises(InputError, match="broken symbolic link to gone.png"):
        discover_slides([tmp_path / "x.png"])


def test_broken_link_in_a_slide_folder_fails_when_opened(tmp_path: Path) -> None:
    from unseg.io import open_slide

    for name in ("a.svs", "b.tif", "c.png"):  # a PNG in a slide folder is not a slide
        (tmp_path / name).symlink_to(f"gone-{name}")
    assert discover_slides([tmp_path]) == [tmp_path / "a.svs", tmp_path / "b.tif"]
    with pytest.raises(InputError, match="broken symbolic link to gone-b.tif"):
        open_slide(tmp_path / "b.tif")
