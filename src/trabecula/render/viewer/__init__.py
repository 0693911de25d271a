"""The browser viewer (``trabecula view``): linked MPR and 3-D views of several volumes on NiiVue.

NiiVue's JavaScript is installed from the npm registry at set-up time (pinned in ``package.json`` and
``package-lock.json``; see :mod:`.assets`) and served from the package — nothing is fetched at run time.
Volumes larger than a voxel budget are reduced for the browser (:mod:`.prepare`) and the page says so.

>>> from trabecula.render.viewer import view          # doctest: +SKIP
>>> srv = view([clinical, micro_ct], names=["clinical", "micro-CT"])   # opens the default browser
>>> srv.url, srv.close()
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "assets": ["NIIVUE_VERSION", "assets_installed", "install_assets", "require_assets"],
        "page": ["asset_tags", "embedded_fragment", "start_script", "viewer_fragment", "viewer_page", "write_standalone"],
        "prepare": ["DEFAULT_MAX_VOXELS", "REPORT_MAX_VOXELS", "ShownVolume", "block_mean", "fit_to_budget",
                    "nifti_bytes", "reduction_factors"],
        "server": ["ViewerServer", "view"],
    },
)
