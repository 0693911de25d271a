"""``python -m trabecula.render.viewer install-assets [NODE_MODULES]``: copy the pinned NiiVue bundle from an
``npm ci`` tree into the package (run by ``./dev`` at set-up; see :mod:`trabecula.render.viewer.assets`)."""

import sys

from trabecula.render.viewer.assets import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "install-assets":
        print("usage: python -m trabecula.render.viewer install-assets [NODE_MODULES]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(args[1:]))
