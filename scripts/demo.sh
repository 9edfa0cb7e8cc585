#!/usr/bin/env bash
# Set up .venv and run Picasso on the bundled demo: the biased and the fair tank
# detectors explain the same photos with occlusion and saliency. Results (PNG
# overlays, raw .npy maps, JSON summaries) are written to ./picasso-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "all"
out="${1:-picasso-out}"
for model in tanks-biased tanks-fair; do
    .venv/bin/picasso explain --model "demo:$model" --method occlusion --window 8 --stride 4 \
        'demo:tank-*' 'demo:forest-*' --out "$out/$model"
    .venv/bin/picasso explain --model "demo:$model" --method saliency \
        'demo:tank-*' --out "$out/$model"
done
.venv/bin/picasso explain --model demo:digits --method occlusion --window 4 --stride 2 \
    --top-k 2 'demo:digit-*' --out "$out/digits"
echo
echo "Done. Open the PNG overlays in $out/ (e.g. $out/tanks-biased/tank-overcast.occlusion.png"
echo "next to $out/tanks-fair/tank-overcast.occlusion.png, and the .saliency.png pair):"
echo "the fair model looks at the tank, the biased one at the sky."
