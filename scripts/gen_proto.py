"""Generate the Python code for proto/ into lockgate/v1/ (never edit those files by hand).

Usage: python scripts/gen_proto.py [--check]
--check regenerates into a temporary folder and exits 1 if the committed code differs.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

BIN = Path(sys.executable).parent

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_PACKAGE = Path("lockgate") / "v1"


def generate(out_root: Path) -> list[Path]:
    protos = sorted(PROTO_DIR.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out = out_root / OUT_PACKAGE
    doc = '"""Generated from proto/lockgate/v1 by scripts/gen_proto.py."""\n'
    (out / "__init__.py").write_text(doc)
    return sorted(p for p in out.iterdir() if p.is_file())


def main() -> int:
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = generate(Path(tmp))
            drift = [
                p.name
                for p in fresh
                if not (ROOT / OUT_PACKAGE / p.name).exists()
                or not filecmp.cmp(p, ROOT / OUT_PACKAGE / p.name, shallow=False)
            ]
        if drift:
            print("generated code drifted from proto/: " + ", ".join(drift))
            print("run: python scripts/gen_proto.py")
            return 1
        print("generated code matches proto/")
        return 0
    for path in generate(ROOT):
        print("wrote", path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
