"""Writes ``docs/explorer/demo_explorer.json``: the data of the interactive explorer the
documentation embeds (docs/explorer.rst), for the held-out scene ``captum-bilinear demo``
explains, with BilinearIntegratedInteractions and InteractionCAM on the bundled demo model.
The docs build (docs/conf.py) renders it with the page's current script and style into
``demo_explorer.html``. Run it again after a change to the model or the page's data:

    .venv/bin/python docs/explorer/make_demo_explorer.py
"""

import json
import os
import tempfile

from captum_bilinear.explain import explain_pair
from captum_bilinear.zoo import HELD_OUT_SEED, SceneGenerator

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 3  # the scene of `captum-bilinear demo`


def main() -> None:
    scene = SceneGenerator(HELD_OUT_SEED, mode="full").scene(SEED)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "scene.png")
        scene.pil().save(path)
        explanation = explain_pair(path, scene.caption, box=tuple(float(v) for v in scene.objects[0].box),
                                   method=["bii", "icam"], n_steps="auto", tolerance=1e-2, show_progress=False)
    data = explanation.page(explorer_id="cb-docs-demo").data
    path = os.path.join(HERE, "demo_explorer.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path) / 1e3:.0f} kB): {scene.caption}")


if __name__ == "__main__":
    main()
