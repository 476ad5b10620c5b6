# Sourced by scripts/bench_storeday.sh and scripts/soak.sh: sets DESC to the INT8 model
# description (making the IR cut before its post-processing when the INT8 IR predates it), or
# to the FP32 one when there is no INT8 IR (scripts/quantize.py quantize makes it).
# shellcheck shell=bash
DESC=models/ssdlite-int8.toml
if [ ! -f models/ssdlite/ssdlite-int8.xml ]; then
  echo "no INT8 IR (scripts/quantize.py quantize makes it): FP32 instead" >&2
  DESC=models/ssdlite.toml
elif [ ! -f models/ssdlite/ssdlite-int8-raw.xml ]; then # an INT8 IR quantized before the cut
  .venv/bin/python scripts/cut_postprocessing.py models/ssdlite/ssdlite-int8.xml models/ssdlite/ssdlite-int8-raw.xml >&2
fi
