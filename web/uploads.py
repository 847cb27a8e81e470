"""Evidence uploads: type by magic bytes, size limit, EXIF time and GPS, thumbnails, serving.

A file is checked before the engine stores it:

- **type** from its first bytes, never its name or the browser's Content-Type: JPEG, PNG and
  WebP photos (decoded with Pillow, so a renamed or truncated file is refused), and PDF
  documents for ``file`` fields;
- **size** at most :data:`engine.runtime.MAX_ATTACHMENT_BYTES` per file (the whole request is
  also capped by ``Settings.max_content_length``: 413 before anything reads it);
- **EXIF** ``DateTimeOriginal`` (read in ``OffsetTimeOriginal``'s zone, else business time,
  stored UTC) and GPS latitude/longitude of photos are kept on the attachment row.

The engine then stores the bytes under ``var_dir/attachments/<sha256[:2]>/<sha256>`` (shared by
every web process) and refuses an "after" photo identical to a "before" photo. Thumbnails
(JPEG, at most :data:`THUMB_SIZE` pixels, EXIF stripped and orientation applied) live beside the
originals under ``var_dir/attachments/thumbs/``; one missing (another process stored the
original, or thumbs were cleared) is made again when asked for.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import send_file
from PIL import ExifTags
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import NotFound as HttpNotFound
from werkzeug.wrappers import Response

from engine import runtime
from engine.config import Settings
from engine.errors import InvalidInput
from engine.models import Attachment

from .i18n import _

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
DOCUMENT_TYPES = ("application/pdf",)
#: what each attachment field type accepts
ACCEPTED = {"photo": IMAGE_TYPES, "file": (*IMAGE_TYPES, *DOCUMENT_TYPES)}
#: ``accept=`` attribute of the file inputs (a hint for the picker; the server checks the bytes)
ACCEPT_ATTR = {
    "photo": "image/jpeg,image/png,image/webp",
    "file": "image/jpeg,image/png,image/webp,application/pdf",
}
THUMB_SIZE = (320, 320)
#: photos larger than this many pixels are refused (decompression bombs)
MAX_PIXELS = 60_000_000
_EXIF_TIME = "%Y:%m:%d %H:%M:%S"


def max_file_bytes() -> int:
    """The largest single file accepted."""
    return runtime.MAX_ATTACHMENT_BYTES


@dataclass(frozen=True, slots=True)
class CheckedUpload:
    """A file that passed the checks, with what was read from it."""

    filename: str
    mime_type: str
    content: bytes
    exif_taken_at: dt.datetime | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None

    @property
    def is_image(self) -> bool:
        return self.mime_type in IMAGE_TYPES


def sniff(head: bytes) -> str | None:
    """The MIME type of a JPEG, PNG, WebP or PDF from its first bytes, else ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _kind_names(types: tuple[str, ...]) -> str:
    names = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "application/pdf": "PDF"}
    return "、".join(names[t] for t in types)


def _open_image(content: bytes) -> Image.Image:
    """Decode fully (refusing truncated, corrupt or oversized images)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(content))
        if image.width * image.height > MAX_PIXELS:
            raise Image.DecompressionBombError("too many pixels")
        image.load()
    return image


def _rational(value: object) -> float:
    return float(value)  # type: ignore[arg-type]  # IFDRational and plain numbers


def _gps_coordinate(values: object, ref: object, negative: str) -> float | None:
    try:
        degrees, minutes, seconds = (_rational(v) for v in values)  # type: ignore[attr-defined]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip().upper() == negative:
        result = -result
    return result if math.isfinite(result) else None


def read_exif(image: Image.Image, tz: ZoneInfo) -> tuple[dt.datetime | None, float | None, float | None]:
    """(taken at, latitude, longitude) from a photo's EXIF; ``None`` for each one missing or invalid."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except (AttributeError, KeyError, TypeError, ValueError, OSError):
        return None, None, None
    taken_at = None
    raw = sub.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    if isinstance(raw, str):
        try:
            naive = dt.datetime.strptime(raw.strip().rstrip("\x00"), _EXIF_TIME)
        except ValueError:
            naive = None
        if naive is not None:
            zone: dt.tzinfo = tz
            offset = sub.get(ExifTags.Base.OffsetTimeOriginal)
            if isinstance(offset, str):
                try:
                    zone = dt.datetime.strptime(offset.strip().rstrip("\x00"), "%z").tzinfo or tz
                except ValueError:
                    zone = tz
            taken_at = naive.replace(tzinfo=zone).astimezone(dt.UTC)
    lat = lon = None
    if gps:
        lat = _gps_coordinate(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "S")
        lon = _gps_coordinate(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "W")
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            lat = lon = None
    return taken_at, lat, lon


def check_upload(storage: FileStorage, *, field: str, field_type: str, tz: ZoneInfo) -> CheckedUpload:
    """Read and check one uploaded file for a ``photo`` or ``file`` field.

    :raises InvalidInput: keyed by ``field``: empty, too large, wrong type, or not a valid image.
    """
    filename = Path(storage.filename or "").name or "file"
    limit = max_file_bytes()
    content = storage.stream.read(limit + 1)
    if not content:
        raise InvalidInput({field: [_("文件 {name} 为空", name=filename)]})
    if len(content) > limit:
        raise InvalidInput(
            {field: [_("文件 {name} 超过 {mb} MB 上限", name=filename, mb=f"{limit / 1024 / 1024:g}")]}
        )
    accepted = ACCEPTED.get(field_type, ())
    mime = sniff(content[:16])
    if mime is None or mime not in accepted:
        raise InvalidInput(
            {
                field: [
                    _(
                        "文件 {name} 的类型不受支持，只接受 {kinds}",
                        name=filename,
                        kinds=_kind_names(accepted),
                    )
                ]
            }
        )
    if mime not in IMAGE_TYPES:
        return CheckedUpload(filename, mime, content)
    try:
        image = _open_image(content)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning):
        raise InvalidInput({field: [_("文件 {name} 不是有效的图片", name=filename)]}) from None
    taken_at, lat, lon = read_exif(image, tz)
    return CheckedUpload(filename, mime, content, taken_at, lat, lon)


# --- storage paths, thumbnails, serving -----------------------------------------------------------


def original_path(settings: Settings, attachment: Attachment) -> Path:
    return Path(settings.var_dir) / "attachments" / attachment.storage_key


def thumbnail_path(settings: Settings, attachment: Attachment) -> Path:
    return (
        Path(settings.var_dir) / "attachments" / "thumbs" / attachment.sha256[:2] / f"{attachment.sha256}.jpg"
    )


def make_thumbnail(settings: Settings, attachment: Attachment, content: bytes | None = None) -> Path | None:
    """Write the attachment's thumbnail if it is a photo and has none yet; its path, or ``None``."""
    if attachment.mime_type not in IMAGE_TYPES:
        return None
    target = thumbnail_path(settings, attachment)
    if target.exists():
        return target
    if content is None:
        source = original_path(settings, attachment)
        if not source.exists():
            return None
        content = source.read_bytes()
    try:
        image = ImageOps.exif_transpose(_open_image(content))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning):
        return None
    image.thumbnail(THUMB_SIZE)
    if image.mode not in ("RGB", "L"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{id(image)}.tmp")
    image.save(tmp, "JPEG", quality=80, optimize=True)
    tmp.replace(target)  # atomic: another process may be writing the same thumbnail
    return target


def send_attachment(settings: Settings, attachment: Attachment, *, thumbnail: bool = False) -> Response:
    """The file (or its thumbnail) as a response; photos and PDFs inline, anything else a download.

    :raises werkzeug.exceptions.NotFound: the stored file is missing.
    """
    if thumbnail:
        path = make_thumbnail(settings, attachment)
        if path is None:
            raise HttpNotFound()
        return send_file(path, mimetype="image/jpeg", max_age=0)
    path = original_path(settings, attachment)
    if not path.exists():
        raise HttpNotFound()
    inline = attachment.mime_type in (*IMAGE_TYPES, *DOCUMENT_TYPES)
    return send_file(
        path,
        mimetype=attachment.mime_type if inline else "application/octet-stream",
        as_attachment=not inline,
        download_name=attachment.filename,
        max_age=0,
    )
