"""Run by every python3 of the image at start (through sandbox-startup.pth).

Matplotlib keeps its font list in MPLCONFIGDIR, which is on the executor's
tmpfs and so starts empty in every container: without help, the first
``import matplotlib.pyplot`` of each container spends a fifth of a second
rebuilding the list. The image carries the list built at build time; this
copies it into place when it is missing. A few stat calls otherwise.
"""

import os

SEED = "/opt/matplotlib-cache"


def seed_matplotlib_cache() -> None:
    target = os.environ.get("MPLCONFIGDIR")
    if not target or os.path.realpath(target) == SEED:
        return
    try:
        for name in os.listdir(SEED):
            destination = os.path.join(target, name)
            if os.path.exists(destination):
                continue
            os.makedirs(target, exist_ok=True)
            with open(os.path.join(SEED, name), "rb") as source:
                data = source.read()
            with open(destination, "xb") as copy:
                copy.write(data)
    except OSError:
        pass  # no seed, or nowhere to write: matplotlib then builds its own list


seed_matplotlib_cache()
