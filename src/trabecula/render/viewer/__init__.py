"""The browser viewer (``trabecula view``): linked MPR and 3-D views of several volumes on NiiVue.

NiiVue's JavaScript is installed from the npm registry at set-up time (pinned in ``package.json`` and
``package-lock.json``; see :mod:`.assets`) and served from the package — nothing is fetched at run time.
Volumes larger than a voxel budget are reduced for the browser (:mod:`.prepare`) and the page says so.

>>> from trabecula.render.viewer import view          # doctest: +SKIP
>>> srv = view([clinical, micro_ct], names=["clinical", "micro-CT"])   # opens the default browser
>>> srv.url, srv.close()
"""

from trabecula.render.viewer.assets import NIIVUE_VERSION, assets_installed, install_assets, require_assets
from trabecula.render.viewer.page import (
    asset_tags,
    embedded_fragment,
    start_script,
    viewer_fragment,
    viewer_page,
    write_standalone,
)
from trabecula.render.viewer.prepare import (
    DEFAULT_MAX_VOXELS,
    REPORT_MAX_VOXELS,
    ShownVolume,
    block_mean,
    fit_to_budget,
    nifti_bytes,
    reduction_factors,
)
from trabecula.render.viewer.server import ViewerServer, view

__all__ = [
    "NIIVUE_VERSION", "assets_installed", "install_assets", "require_assets",
    "asset_tags", "embedded_fragment", "start_script", "viewer_fragment", "viewer_page", "write_standalone",
    "DEFAULT_MAX_VOXELS", "REPORT_MAX_VOXELS", "ShownVolume", "block_mean", "fit_to_budget", "nifti_bytes",
    "reduction_factors", "ViewerServer", "view",
]
