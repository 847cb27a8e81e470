"""Evidence uploads: type by magic bytes, size limits, EXIF time and GPS, thumbnails, the
"after identical to before" refusal, and serving files only to those who may see the hazard."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse

from engine.demo import DemoWorld
from engine.errors import InvalidInput
from tests.web.test_tasks import AsUser
from tests.web.test_tasks import Loop
from tests.web.test_tasks import image_bytes
from tests.web.test_tasks import post
from tests.web.test_tasks import text
from tests.web.test_tasks import user_switcher
from web import uploads
from web.session import app_state

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def loop(app: Flask, world: DemoWorld) -> Loop:
    return Loop(app, world)


@pytest.fixture
def as_user(client: FlaskClient, login: Callable[..., TestResponse]) -> AsUser:
    return user_switcher(client, login)


def exif_jpeg(
    *,
    taken: str = "2026:05:01 09:30:00",
    offset: str | None = None,
    lat: tuple[float, float, float] = (31.0, 7.0, 30.0),
    lat_ref: str = "N",
    lon: tuple[float, float, float] = (119.0, 10.0, 12.0),
    lon_ref: str = "E",
    color: tuple[int, int, int] = (180, 40, 40),
    size: tuple[int, int] = (800, 600),
) -> bytes:
    """A JPEG photo with EXIF DateTimeOriginal (and OffsetTimeOriginal) and GPS, made with Pillow."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "hazardloop-test"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = lat_ref
    gps[ExifTags.GPS.GPSLatitude] = lat
    gps[ExifTags.GPS.GPSLongitudeRef] = lon_ref
    gps[ExifTags.GPS.GPSLongitude] = lon
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def upload(
    client: FlaskClient, item_id: int, content: bytes, name: str, field: str = "after_photos"
) -> TestResponse:
    """What static/js/tasks.js sends: one field, its files, JSON back."""
    return post(
        client,
        f"/tasks/{item_id}/attachments",
        {"field": field, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )


def fetch(client: FlaskClient, url: str) -> TestResponse:
    """GET a file, read it and close the response (a served file is an open handle until then)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


@pytest.fixture
def rectifying(loop: Loop, as_user: Callable[[str], FlaskClient]) -> tuple[int, int, FlaskClient]:
    """(hazard id, rectify item id, the rectifier's client)."""
    hazard_id = loop.planned()
    return hazard_id, loop.item(hazard_id, "rectify"), as_user("zhang_rectifier")


def test_photo_upload_keeps_exif_time_and_gps_and_makes_a_thumbnail(
    loop: Loop,
    rectifying: tuple[int, int, FlaskClient],
) -> None:
    _hazard_id, item_id, client = rectifying
    content = exif_jpeg()
    response = upload(client, item_id, content, "现场.jpg")
    assert response.status_code == 201, text(response)
    (body,) = response.get_json()["attachments"]
    assert body["mime_type"] == "image/jpeg" and body["phase"] == "after" and body["filename"] == "现场.jpg"
    assert body["exif_taken_at"] == "2026-05-01T01:30:00+00:00"  # 09:30 Beijing time
    assert body["gps_lat"] == pytest.approx(31.125) and body["gps_lon"] == pytest.approx(119.17)

    row = loop.attachment(body["id"])
    assert row.exif_taken_at == dt.datetime(2026, 5, 1, 1, 30, tzinfo=dt.UTC)
    assert (row.gps_lat, row.gps_lon) == (pytest.approx(31.125), pytest.approx(119.17))
    assert len(row.sha256) == 64 and row.size == len(content)
    settings = app_state(loop.app).settings
    assert uploads.original_path(settings, row).read_bytes() == content
    thumb = uploads.thumbnail_path(settings, row)
    assert thumb.exists() and thumb.parent.parent.name == "thumbs"
    with Image.open(thumb) as image:
        assert max(image.size) <= 320 and image.format == "JPEG"
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the location stays in the original

    served = fetch(client, body["thumb_url"])
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    original = fetch(client, body["url"])
    assert original.status_code == 200 and original.data == content
    assert original.headers["X-Content-Type-Options"] == "nosniff"


def test_a_missing_thumbnail_is_made_again(
    loop: Loop,
    rectifying: tuple[int, int, FlaskClient],
) -> None:
    _hazard_id, item_id, client = rectifying
    body = upload(client, item_id, image_bytes((1, 2, 3)), "a.png").get_json()["attachments"][0]
    thumb = uploads.thumbnail_path(app_state(loop.app).settings, loop.attachment(body["id"]))
    thumb.unlink()
    assert fetch(client, body["thumb_url"]).status_code == 200 and thumb.exists()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"just some text, not a photo", "photo.jpg", "类型不受支持"),
        (b"%PDF-1.4\n%...", "scan.pdf", "类型不受支持"),  # a PDF is a document, not a photo
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "broken.jpg", "不是有效的图片"),
        (b"", "empty.jpg", "为空"),
    ],
    ids=["text", "pdf", "truncated-jpeg", "empty"],
)
def test_wrong_type_or_broken_files_are_refused_by_their_bytes(
    rectifying: tuple[int, int, FlaskClient], content: bytes, name: str, message: str
) -> None:
    _hazard_id, item_id, client = rectifying
    response = upload(client, item_id, content, name)
    assert response.status_code == 422
    assert message in str(response.get_json()["errors"]["after_photos"])


def test_a_png_named_jpg_is_stored_as_png(rectifying: tuple[int, int, FlaskClient]) -> None:
    _hazard_id, item_id, client = rectifying
    response = upload(client, item_id, image_bytes((9, 9, 9)), "renamed.jpg")
    assert response.status_code == 201 and response.get_json()["attachments"][0]["mime_type"] == "image/png"


def test_oversize_files_are_refused(
    make_app: Callable[..., Flask],
    world: DemoWorld,
    login: Callable[..., TestResponse],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(max_content_length=64 * 1024)
    small = Loop(app, world)
    hazard_id = small.planned()
    item_id = small.item(hazard_id, "rectify")
    client = app.test_client()
    login(client, "zhang_rectifier")
    big = image_bytes((5, 5, 5), "BMP", size=(200, 200))  # ~120 KB
    response = upload(client, item_id, big, "big.bmp")
    assert response.status_code == 413 and response.get_json()["code"] == "payload_too_large"
    monkeypatch.setattr(uploads, "max_file_bytes", lambda: 1000)
    response = upload(client, item_id, exif_jpeg(size=(300, 300)), "large.jpg")
    assert response.status_code == 422 and "MB 上限" in str(response.get_json()["errors"])


def test_an_after_photo_identical_to_a_before_photo_is_refused(
    loop: Loop,
    rectifying: tuple[int, int, FlaskClient],
) -> None:
    hazard_id, item_id, client = rectifying
    same = image_bytes((77, 77, 77))
    loop.upload(hazard_id, same, phase="before")
    response = upload(client, item_id, same, "after.png")
    assert response.status_code == 422
    assert "完全相同" in str(response.get_json()["errors"])
    # with the form itself: refused, what was typed kept
    response = post(
        client,
        f"/tasks/{item_id}",
        {
            "summary": "已整改",
            "completed_on": loop.today(),
            "after_photos__files": (io.BytesIO(same), "a.png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "完全相同" in text(response) and "已整改" in text(response)
    assert loop.work_item(item_id).state == "open"


def test_without_script_the_upload_button_re_renders_the_form(
    loop: Loop,
    rectifying: tuple[int, int, FlaskClient],
) -> None:
    _hazard_id, item_id, client = rectifying
    response = post(
        client,
        f"/tasks/{item_id}/attachments",
        {"summary": "写了一半", "after_photos__files": (io.BytesIO(exif_jpeg()), "p.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    html = text(response)
    assert "写了一半" in html and 'name="after_photos" value="' in html and "/thumb" in html
    assert "拍摄于 2026-05-01 09:30" in html


def test_files_are_served_only_to_those_who_may_see_the_hazard(
    loop: Loop,
    rectifying: tuple[int, int, FlaskClient],
    as_user: Callable[[str], FlaskClient],
) -> None:
    _hazard_id, item_id, client = rectifying
    body = upload(client, item_id, exif_jpeg(), "p.jpg").get_json()["attachments"][0]
    other = as_user("zhao_gd")
    assert other.get(body["url"]).status_code == 404
    assert other.get(body["thumb_url"]).status_code == 404
    assert other.get("/attachments/999999").status_code == 404
    # the grid worker sees the hazard, so the evidence
    assert fetch(as_user("sun_grid"), body["url"]).status_code == 200
    # but may not add to a task they cannot do
    assert upload(as_user("sun_grid"), item_id, exif_jpeg(color=(1, 1, 1)), "x.jpg").status_code == 403


def test_uploading_for_an_unknown_field_is_422(rectifying: tuple[int, int, FlaskClient]) -> None:
    _hazard_id, item_id, client = rectifying
    assert upload(client, item_id, exif_jpeg(), "p.jpg", field="summary").status_code == 422
    response = post(
        client,
        f"/tasks/{item_id}/attachments",
        {"field": "after_photos"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 422


# --- the checks on their own -------------------------------------------------------------------------


def _storage(content: bytes, name: str = "f") -> FileStorage:
    return FileStorage(io.BytesIO(content), filename=name)


def test_file_fields_accept_pdf_and_photos_but_not_other_documents() -> None:
    pdf = uploads.check_upload(_storage(b"%PDF-1.7\n1 0 obj"), field="report", field_type="file", tz=SHANGHAI)
    assert pdf.mime_type == "application/pdf" and not pdf.is_image and pdf.exif_taken_at is None
    webp = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(webp, "WEBP")
    photo = uploads.check_upload(_storage(webp.getvalue()), field="report", field_type="file", tz=SHANGHAI)
    assert photo.mime_type == "image/webp"
    with pytest.raises(InvalidInput) as refused:
        uploads.check_upload(_storage(b"PK\x03\x04 zip"), field="report", field_type="file", tz=SHANGHAI)
    assert list(refused.value.messages) == ["report"]


def test_exif_offsets_and_hemispheres() -> None:
    checked = uploads.check_upload(
        _storage(
            exif_jpeg(
                taken="2026:01:02 03:04:05",
                offset="-05:00",
                lat=(33.0, 51.0, 0.0),
                lat_ref="S",
                lon=(151.0, 12.0, 0.0),
                lon_ref="W",
            )
        ),
        field="p",
        field_type="photo",
        tz=SHANGHAI,
    )
    assert checked.exif_taken_at == dt.datetime(2026, 1, 2, 8, 4, 5, tzinfo=dt.UTC)
    assert checked.gps_lat == pytest.approx(-33.85) and checked.gps_lon == pytest.approx(-151.2)
    plain = uploads.check_upload(_storage(image_bytes((3, 3, 3))), field="p", field_type="photo", tz=SHANGHAI)
    assert (plain.exif_taken_at, plain.gps_lat, plain.gps_lon) == (None, None, None)
    bad = uploads.check_upload(
        _storage(exif_jpeg(taken="not a time", lat=(200.0, 0.0, 0.0))),
        field="p",
        field_type="photo",
        tz=SHANGHAI,
    )
    assert (bad.exif_taken_at, bad.gps_lat, bad.gps_lon) == (None, None, None)
