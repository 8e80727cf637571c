"""Running DripDrop in production: retention (:mod:`.retention`), ``dripdrop doctor``
(:mod:`.doctor`), health signals for orchestrators (:mod:`.health`) and the worker's
background duties (:mod:`.sidecar`)."""
