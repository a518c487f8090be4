#!/usr/bin/env bash
# Loads an ONNX file written by `host-trainer export --onnx F --profile crypten` with CrypTen
# (crypten.nn.from_onnx), encrypts model and input, and compares CrypTen's decrypted logits with
# onnxruntime's on the same inputs. Outside CI: it needs a Python venv with crypten (pulls in
# PyTorch), which CI machines do not have.
#
#   scripts/check-crypten.sh model.onnx [C,H,W]     (default input shape 1,8,8: the digits)
#
# Tolerance: CrypTen computes in 16-bit fixed point (CrypTen#304), so logits differ by ~1e-2;
# the check wants |diff| < 0.1 and the same argmax on every sample.
set -euo pipefail
model=${1:?usage: scripts/check-crypten.sh model.onnx [C,H,W]}
shape=${2:-1,8,8}
venv=${CRYPTEN_VENV:-.venv-crypten}
# (Re)install when the venv is missing or an earlier install stopped half-way.
if ! "$venv/bin/python" -c "import crypten, onnxruntime" 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || {
        echo "check-crypten: cannot create a venv at $venv (Debian/Ubuntu: apt install python3-venv)" >&2
        rm -rf "$venv"
        exit 1
    }
    # crypten 0.4.1 (the last release) imports torch.onnx._internal.registration, which newer
    # torch removed, and lists the deprecated `sklearn` package among its requirements; torch
    # 2.0.1 needs numpy 1.x, hence onnx, onnxruntime and pandas of that era. Checked 2026-12-04
    # with Python 3.11 from PyPI.
    SKLEARN_ALLOW_DEPRECATED_SKLEARN_PACKAGE_INSTALL=True "$venv/bin/pip" install --quiet \
        crypten==0.4.1 torch==2.0.1 "numpy<2" onnx==1.14.1 "onnxruntime<1.20" "pandas<2.2"
fi
"$venv/bin/python" - "$model" "$shape" <<'PY'
import sys
import numpy as np
import onnxruntime as ort
import torch
import crypten

path, shape = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
crypten.init()
x = np.random.RandomState(1).randn(8, *shape).astype(np.float32)
want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
with open(path, "rb") as f:
    model = crypten.nn.from_onnx(f)
model.encrypt()
model.eval()
got = model(crypten.cryptensor(torch.from_numpy(x))).get_plain_text().numpy()
diff = float(np.abs(got - want).max())
same = bool((got.argmax(1) == want.argmax(1)).all())
print(f"crypten vs onnxruntime on 8 inputs: max |diff| {diff:.4f}, argmax agree: {same}")
sys.exit(0 if diff < 0.1 and same else 1)
PY
