#!/usr/bin/env bash
# Builds the OpenVINO Model Server model repository for the detector under deploy/ovms/models/:
#   models/ssdlite/1/ssdlite.xml, ssdlite.bin   the IR scripts/setup.sh converts (not committed)
#   models/ssdlite/1/mapping_config.json        renames the outputs to the names in
#                                               models/ssdlite.toml (OVMS otherwise reports
#                                               each output's first name, e.g. "add:0")
# The mapping is computed from the IR's own tensor names, so it stays right for a re-converted
# or quantized IR. Copy deploy/ovms/ (config.json + models/) into the OVMS image or volume.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
IR="${1:-models/ssdlite/ssdlite.xml}"
OUT="deploy/ovms/models/ssdlite/1"
[ -f "$IR" ] || { echo "error: $IR missing: run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$OUT"
cp "$IR" "$OUT/ssdlite.xml"
cp "${IR%.xml}.bin" "$OUT/ssdlite.bin"
.venv/bin/python - "$OUT/ssdlite.xml" models/ssdlite.toml "$OUT/mapping_config.json" <<'PY'
import json, sys, tomllib
import openvino as ov
ir, desc_path, out = sys.argv[1:]
desc = tomllib.load(open(desc_path, "rb"))
model = ov.Core().read_model(ir)
def mapping(ports, wanted):
    m = {}
    for want in wanted:
        port = next((p for p in ports if want in p.get_names()), None)
        if port is None:
            sys.exit(f"error: {ir} has no tensor named {want!r} ({desc_path})")
        m[port.get_any_name()] = want
    return m
config = {
    "inputs": mapping(model.inputs, [desc["input"]]),
    "outputs": mapping(model.outputs, list(desc["outputs"].values())),
}
json.dump(config, open(out, "w"), indent=2)
print(f"wrote {out}")
PY
echo "OVMS model repository ready: deploy/ovms/config.json + deploy/ovms/models/"
