"""Writes ``docs/explorer/demo_explorer.html``: the interactive explorer the documentation
embeds (docs/explorer.rst), for the held-out scene ``captum-bilinear demo`` explains, with
BilinearIntegratedInteractions and InteractionCAM on the bundled demo model. Run it again
after a change to the page or the model:

    .venv/bin/python docs/explorer/make_demo_explorer.py
"""

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
    fragment = explanation.page(explorer_id="cb-docs-demo").fragment()
    with open(os.path.join(HERE, "demo_explorer.html"), "w", encoding="utf-8") as out:
        out.write(fragment)
    print(f"wrote {os.path.join(HERE, 'demo_explorer.html')} ({len(fragment) / 1e3:.0f} kB): {scene.caption}")


if __name__ == "__main__":
    main()
