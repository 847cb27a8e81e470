"""PDF from the printable HTML: headless Chromium's ``page.pdf()`` through Playwright (DESIGN §6).

The print page and the PDF are the same document (:func:`engine.notices.render_printable`): a
self-contained A4 HTML page with inline CSS. Chromium is Debian's ``/usr/bin/chromium`` (with a
CJK font installed: ``fonts-wqy-microhei``); Playwright only drives it (``playwright install``
is never needed). The page loads nothing from anywhere — every request it would make is aborted
— and runs no JavaScript.

When Chromium or Playwright is missing, or Chromium fails, :class:`PdfUnavailable` answers 503
(a Chinese page or JSON error pointing to the print page), never a 500.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from flask import current_app
from werkzeug.wrappers import Response

from .errors import WebError
from .export import content_disposition

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
#: milliseconds for launching, loading and printing
TIMEOUT_MS = 30_000
PDF_MIMETYPE = "application/pdf"


class PdfUnavailable(WebError):
    """No PDF can be made here now (Chromium or Playwright missing, or Chromium failed)."""

    status = 503
    code = "pdf_unavailable"
    message = "PDF 生成服务暂不可用（服务器未安装或无法启动 Chromium），请使用打印页面打印或另存为 PDF。"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "60"}


def chromium_path() -> str:
    """The Chromium executable (``HAZARDLOOP_CHROMIUM`` overrides the Debian path)."""
    return os.environ.get("HAZARDLOOP_CHROMIUM") or CHROMIUM


def available(executable: str | None = None) -> bool:
    """Whether Chromium and the Playwright package are here (not whether Chromium will start)."""
    path = executable or chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _abort(route: Any) -> None:
    route.abort()


def _print(html: str, path: str) -> bytes:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        try:
            context = browser.new_context(java_script_enabled=False, offline=True)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.route("**/*", _abort)  # nothing from outside: the document is self-contained
            page.set_content(html, wait_until="load")
            pdf: bytes = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        finally:
            browser.close()
    return pdf


def html_to_pdf(html: str, *, executable: str | None = None) -> bytes:
    """Print ``html`` to an A4 PDF (backgrounds printed, the page's ``@page`` size honoured).

    Playwright's sync API runs in a thread of its own: it refuses to start in a thread that has an
    asyncio loop running (an ASGI server, or another Playwright session in the same thread).

    :raises PdfUnavailable: Chromium or Playwright missing, or Chromium failed or timed out.
    """
    path = executable or chromium_path()
    if not available(path):
        raise PdfUnavailable()
    from playwright.sync_api import Error as PlaywrightError

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["pdf"] = _print(html, path)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="hazardloop-pdf", daemon=True)
    worker.start()
    worker.join(timeout=3 * TIMEOUT_MS / 1000)
    if worker.is_alive():
        logger.error("PDF rendering with %s timed out", path)
        raise PdfUnavailable()
    error = outcome.get("error")
    if isinstance(error, PlaywrightError | OSError):
        logger.error("PDF rendering with %s failed: %s", path, error)
        raise PdfUnavailable() from error
    if error is not None:
        raise error
    pdf: bytes = outcome["pdf"]
    return pdf


def pdf_response(pdf: bytes, filename: str) -> Response:
    """``application/pdf`` as a download named ``filename`` (UTF-8 per RFC 5987), never cached."""
    response = current_app.response_class(pdf, mimetype=PDF_MIMETYPE)
    response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["Cache-Control"] = "no-store"
    return response
