"""The trainer checkpoint format: `meta` (JSON) and named arrays in one .npz, written atomically."""

import json
import os
import zipfile

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import atomic_path

FORMAT = "dpfm-golden-checkpoint/1"


def write_checkpoint(path, meta: dict, arrays: dict) -> None:
    """`meta` (JSON-serializable) and named arrays -> one .npz file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, format=np.array(FORMAT), meta=np.array(json.dumps(meta)), **arrays)


def read_checkpoint(path) -> tuple[dict, dict]:
    """The inverse of `write_checkpoint`; anything else is a DpfmError naming the file."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != FORMAT:
                raise DpfmError(f"{path} is not a dpfm golden checkpoint",
                                "resume from a file written by 'dpfm train --save'")
            meta = json.loads(str(z["meta"]))
            arrays = {name: z[name] for name in z.files if name not in ("format", "meta")}
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise DpfmError(f"cannot read checkpoint {path}: {exc}",
                        "check the path; resume from a file written by 'dpfm train --save'") from None
    return meta, arrays
