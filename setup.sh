#!/usr/bin/env bash
# One-shot, idempotent set-up for a fresh Debian 12 machine (run as root):
# simulators and FPGA tools from apt, a virtual environment in .venv, dpfm installed into it.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(iverilog yosys nextpnr-ice40 fpga-icestorm openfpgaloader verilator g++ make python3-venv)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# Skip pip entirely when the pinned set is already installed (keeps re-runs fast).
stamp=.venv/.dpfm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
fi
# The real MNIST for the mnist tasks (checked against its pinned hash; quick when already cached).
.venv/bin/dpfm data mnist >&2
echo "setup: ready (.venv/bin/dpfm)" >&2
