#!/usr/bin/env python3
"""Copy the browser assets hazardloop serves from node_modules into web/static/vendor/.

Run after ``npm ci`` (``./bin/run`` and ``./bin/test`` do both). Only prebuilt files from the
packages' ``dist`` folders are copied, with their licence files: there is no bundler and no CDN,
Flask serves everything from ``web/static``. The script is idempotent (a file whose bytes are
unchanged is left alone), prints what it copied, writes ``web/static/vendor/manifest.json``
(package versions, logical asset names, file sizes and sha256 prefixes used for cache busting)
and removes files under ``web/static/vendor`` that are no longer listed. It needs only the
Python standard library, so it runs before the virtual environment exists.

Exit status: 0 on success, 1 if node_modules (or a listed file in it) is missing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "web" / "static" / "vendor"

# package -> [(source path inside the package, destination path under vendor/<package>/)].
# A source ending in "/" copies that folder's files (not recursively).
FILES: dict[str, list[tuple[str, str]]] = {
    "bpmn-js": [
        ("dist/bpmn-navigated-viewer.production.min.js", "bpmn-navigated-viewer.production.min.js"),
        ("dist/bpmn-modeler.production.min.js", "bpmn-modeler.production.min.js"),
        ("dist/assets/diagram-js.css", "assets/diagram-js.css"),
        ("dist/assets/bpmn-js.css", "assets/bpmn-js.css"),
        ("dist/assets/bpmn-font/css/bpmn.css", "assets/bpmn-font/css/bpmn.css"),
        ("dist/assets/bpmn-font/font/", "assets/bpmn-font/font/"),
        ("LICENSE", "LICENSE"),
    ],
    "htmx.org": [
        ("dist/htmx.min.js", "htmx.min.js"),
        ("LICENSE", "LICENSE"),
    ],
    "chart.js": [
        ("dist/chart.umd.min.js", "chart.umd.min.js"),
        ("LICENSE.md", "LICENSE.md"),
    ],
    "swagger-ui-dist": [
        ("swagger-ui-bundle.js", "swagger-ui-bundle.js"),
        ("swagger-ui-standalone-preset.js", "swagger-ui-standalone-preset.js"),
        ("swagger-ui.css", "swagger-ui.css"),
        ("LICENSE", "LICENSE"),
        ("NOTICE", "NOTICE"),
    ],
}

# Logical names that web/assets.py refers to -> path under web/static/.
ASSETS: dict[str, str] = {
    "bpmn-js/viewer.js": "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js",
    "bpmn-js/modeler.js": "vendor/bpmn-js/bpmn-modeler.production.min.js",
    "bpmn-js/diagram-js.css": "vendor/bpmn-js/assets/diagram-js.css",
    "bpmn-js/bpmn-js.css": "vendor/bpmn-js/assets/bpmn-js.css",
    "bpmn-js/bpmn-font.css": "vendor/bpmn-js/assets/bpmn-font/css/bpmn.css",
    "htmx.js": "vendor/htmx.org/htmx.min.js",
    "chart.js": "vendor/chart.js/chart.umd.min.js",
    "swagger-ui/bundle.js": "vendor/swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui/standalone-preset.js": "vendor/swagger-ui-dist/swagger-ui-standalone-preset.js",
    "swagger-ui/swagger-ui.css": "vendor/swagger-ui-dist/swagger-ui.css",
}


def fail(message: str) -> None:
    print(f"build_assets: {message}", file=sys.stderr)
    raise SystemExit(1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expand(package_dir: Path, source: str, dest: str) -> list[tuple[Path, str]]:
    """(absolute source file, destination relative to vendor/<package>/) pairs for one entry."""
    if not source.endswith("/"):
        return [(package_dir / source, dest)]
    folder = package_dir / source
    if not folder.is_dir():
        fail(f"{folder} is missing: run `npm ci` (or `./bin/test`, which runs it) first")
    return [(f, dest + f.name) for f in sorted(folder.iterdir()) if f.is_file()]


def main() -> int:
    if not NODE_MODULES.is_dir():
        fail(f"{NODE_MODULES} is missing: run `npm ci --no-audit --no-fund` first")
    packages: dict[str, str] = {}
    files: dict[str, dict[str, object]] = {}
    wanted: set[Path] = set()
    copied = unchanged = 0
    for package, entries in FILES.items():
        package_dir = NODE_MODULES / package
        package_json = package_dir / "package.json"
        if not package_json.is_file():
            fail(f"{package_json} is missing: run `npm ci --no-audit --no-fund` first")
        version = json.loads(package_json.read_text(encoding="utf-8"))["version"]
        packages[package] = version
        for entry_source, entry_dest in entries:
            for source, rel in expand(package_dir, entry_source, entry_dest):
                if not source.is_file():
                    fail(f"{source} is missing (is {package} {version} the version package.json pins?)")
                target = VENDOR / package / rel
                wanted.add(target)
                digest = sha256(source)
                if target.is_file() and sha256(target) == digest:
                    unchanged += 1
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                    copied += 1
                    print(f"copied {source.relative_to(ROOT)} -> {target.relative_to(ROOT)}")
                static_path = target.relative_to(VENDOR.parent).as_posix()
                files[static_path] = {
                    "package": package,
                    "version": version,
                    "size": source.stat().st_size,
                    "sha256": digest[:16],
                }
    for name, static_path in ASSETS.items():
        if static_path not in files:
            fail(f"asset {name} points at {static_path}, which is not among the copied files")
    # Remove stale files (from an older layout or version) so the folder is exactly the manifest.
    removed = 0
    for path in sorted(VENDOR.rglob("*"), reverse=True):
        if path.is_file() and path.name != "manifest.json" and path not in wanted:
            path.unlink()
            removed += 1
            print(f"removed stale {path.relative_to(ROOT)}")
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    manifest_path = VENDOR / "manifest.json"
    manifest = {"packages": packages, "assets": ASSETS, "files": files}
    text = json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if not manifest_path.is_file() or manifest_path.read_text(encoding="utf-8") != text:
        manifest_path.write_text(text, encoding="utf-8")
        print(f"wrote {manifest_path.relative_to(ROOT)}")
    versions = ", ".join(f"{p} {v}" for p, v in packages.items())
    print(f"vendor assets: {copied} copied, {unchanged} unchanged, {removed} removed ({versions})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
