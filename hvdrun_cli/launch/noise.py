"""Start-up noise a rank prints on every run and a user can do nothing about.

TensorFlow on a CPU-only machine logs, on every rank, that it found no CUDA driver
(``failed call to cuInit: ... UNKNOWN ERROR (303)``, ``cudart_stub.cc ... Could not find cuda
drivers``), that absl logging is not initialised yet, and which CPU instructions it was built
without. These lines are kept in the rank logs and hidden from the terminal; anything else from
TensorFlow (warnings about the user's model, errors) is shown.
"""
from __future__ import annotations

import re

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# absl / TF C++ log lines: "E0000 00:00:1796119197.860592   14086 cuda_platform.cc:52] ..." or
# "2026-12-01 10:00:00.123456: I tensorflow/core/util/port.cc:153] ...".
_CXX_LOG = re.compile(r"^(?:[IWE]\d{4} \d\d:\d\d:[\d.]+\s+\d+ |\d{4}-\d\d-\d\d [\d:.]+: [IWE] )(\S+?):\d+\] (.*)$")
_NOISY_SOURCES = re.compile(r"(?:^|/)(?:cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics|cuda_dnn|cuda_blas|"
                            r"cuda_fft|gpu_device|cpu_feature_guard|port|computation_placer|tf_trt)\.cc$")
_NOISY_MESSAGES = re.compile(
    r"cuInit|Could not find cuda drivers|Unable to register cu(?:DNN|FFT|BLAS) factory|TF-TRT Warning|"
    r"oneDNN custom operations are on|This TensorFlow binary is optimized to use available CPU instructions|"
    r"To enable the following instructions|Cannot dlopen some GPU libraries|"
    r"computation placer already registered|Skipping registering GPU devices"
)


def is_startup_noise(line: str) -> bool:
    """True for a known CPU-only start-up line of TensorFlow (and its absl preamble)."""
    if line.strip() == _ABSL_PREAMBLE:
        return True
    match = _CXX_LOG.match(line)
    if match:
        return bool(_NOISY_SOURCES.search(match.group(1)) and _NOISY_MESSAGES.search(match.group(2)))
    return bool(_NOISY_MESSAGES.match(line)) and ("rebuild TensorFlow" in line or "oneDNN" in line)
