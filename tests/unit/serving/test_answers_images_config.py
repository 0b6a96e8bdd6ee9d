"""Answer parsing, upload checks and config loading of the classifier service."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from foresight.api.classifierservice import DEFAULT_CATEGORIES, ClassifierServiceSpec
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier.answers import parse_answer
from foresight.serving.classifier.config import load_config
from foresight.serving.classifier.errors import ConfigError, ImageRejected
from foresight.serving.classifier.images import check_image, downscale_jpeg
from PIL import Image

CATS = list(DEFAULT_CATEGORIES)


@pytest.mark.parametrize(
    ("answer", "key", "confidence"),
    [
        ("pets", "pets", 1.0),
        ("  PETS.\n", "pets", 1.0),
        ("`travel_scenery`", "travel_scenery", 1.0),
        ("宠物", "pets", 0.9),
        ("Single person", "single_person", 1.0),
        ("Food", "foods", 0.9),
        ('{"category": "foods", "confidence": 0.83}', "foods", 0.83),
        ('```json\n{"category": "screenshot"}\n```', "screenshot", 1.0),
        ('Sure! {"key": "idcard"} is my answer', "idcard", 1.0),
        ("The category is: pets.", "pets", 0.7),
        ("这是一张美食照片", "foods", 0.7),
        ("It shows a pet; no other category fits", "pets", 0.7),
        ("I think it is food, or maybe travel scenery", "foods", 0.5),
        ("a spaceship", "other", 0.0),
        ("", "other", 0.0),
        ("other", "other", 1.0),
    ],
)
def test_parse_answer_reads_one_category(answer: str, key: str, confidence: float) -> None:
    parsed = parse_answer(answer, CATS)
    assert (parsed.category, parsed.confidence) == (key, pytest.approx(confidence))


@pytest.mark.parametrize(
    ("answer", "key", "certain"),
    [
        # negation: a negated category does not count
        ("This is not a pet.", "other", False),
        ("It's not a pet, it's food", "foods", True),
        ("neither food nor pets", "other", False),
        ("No ID card here, a screenshot", "screenshot", True),
        ("这不是宠物，是美食", "foods", True),
        ("不是美食", "other", False),
        ("不错的美食", "foods", True),  # 不错 ("not bad") is no negation
        # several categories: no clear winner, a guess
        ("Pets or food", "pets", False),
        ('["pets", "foods"]', "pets", False),
        ('{"category": "pets", "alternatives": "foods"}', "pets", True),
        # extra words, labels, plurals, both languages
        ("A pet. Definitely pets.", "pets", True),
        ("id cards", "idcard", True),
        ("a social activity with friends", "social_activities", True),
        ("社交活动", "social_activities", True),
        ("Category: Pets (宠物)", "pets", True),
        ("Answer: screenshot", "screenshot", True),
        # JSON-ish
        ("{'category': 'pets'}", "pets", True),
        ("{category: pets}", "pets", True),
        ("category = travel scenery", "travel_scenery", True),
        ('{"categories": ["pets"]}', "pets", True),
        ('{"category": "unsure"}', "other", False),
        ('{"label": "宠物", "confidence": 0.4}', "pets", True),
        ("", "other", False),
    ],
)
def test_parse_answer_says_when_the_answer_is_a_guess(answer: str, key: str, certain: bool) -> None:
    parsed = parse_answer(answer, CATS)
    assert (parsed.category, parsed.certain) == (key, certain)
    if not certain:
        assert parsed.confidence <= 0.5


def test_a_json_confidence_is_the_models_own() -> None:
    assert parse_answer('{"label": "宠物", "confidence": 0.4}', CATS).confidence == pytest.approx(0.4)


def _png(w: int = 32, h: int = 24, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def test_check_image_accepts_real_images_by_content() -> None:
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
        img = check_image(_png(fmt=fmt), max_bytes=1 << 20, max_pixels=10_000)
        assert (img.format, img.width, img.height) == (fmt, 32, 24)


def test_check_image_rejects_by_content_size_and_pixels() -> None:
    with pytest.raises(ImageRejected) as e:
        check_image(b"%PDF-1.4 not an image", max_bytes=1 << 20, max_pixels=10_000)
    assert e.value.status == 415
    with pytest.raises(ImageRejected) as e:
        check_image(_png()[:40], max_bytes=1 << 20, max_pixels=10_000)  # PNG magic, truncated body
    assert e.value.status == 415
    with pytest.raises(ImageRejected) as e:
        check_image(_png(), max_bytes=50, max_pixels=10_000)
    assert e.value.status == 413
    with pytest.raises(ImageRejected) as e:  # small file, huge canvas: refused before decoding
        check_image(_png(4000, 4000), max_bytes=1 << 20, max_pixels=1_000_000)
    assert (e.value.status, e.value.code) == (413, "too_many_pixels")


@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "BMP"])
def test_an_image_that_passes_the_check_but_is_truncated_is_refused_when_decoded(fmt: str) -> None:
    noisy = Image.effect_noise((120, 90), 60).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, format=fmt)
    truncated = out.getvalue()[: len(out.getvalue()) // 2]
    checked = check_image(truncated, max_bytes=1 << 20, max_pixels=10**6)  # headers are fine
    with pytest.raises(ImageRejected) as e:
        downscale_jpeg(checked, max_side=64)
    assert (e.value.status, e.value.code) == (415, "unsupported_media_type")
    assert "corrupt or truncated" in e.value.message


def test_downscale_caps_the_long_side() -> None:
    img = check_image(_png(3000, 1000, "JPEG"), max_bytes=1 << 22, max_pixels=10**8)
    small = Image.open(io.BytesIO(downscale_jpeg(img, max_side=1024)))
    assert small.format == "JPEG" and max(small.size) == 1024 and small.size[1] in (341, 342)


def test_config_loads_yaml_and_camel_case(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "backend:\n  dashscope:\n    baseUrl: http://127.0.0.1:1/api/v1\n    maxRetries: 1\n"
        "cache:\n  lruSize: 5\n",
        encoding="utf-8",
    )
    cfg = load_config(p)
    assert cfg.backend.dashscope.max_retries == 1 and cfg.cache.lru_size == 5
    assert [c.key for c in cfg.categories][-1] == "other"
    assert "pets (Pets / 宠物)" in cfg.render_prompt()


def test_a_config_without_categories_or_prompt_gets_the_classifierservice_apis_defaults() -> None:
    spec = ClassifierServiceSpec.model_validate({"backend": {"type": "dashscope"}})
    cfg = ClassifierConfig.model_validate({})
    assert cfg.categories == spec.categories == list(DEFAULT_CATEGORIES)
    assert cfg.prompt == spec.prompt


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"fallbackCategory": "nope"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="fallbackCategory 'nope'"):
        load_config(p)
    with pytest.raises(ValueError, match="redisUrl"):
        ClassifierConfig.model_validate({"cache": {"store": "redis"}})
