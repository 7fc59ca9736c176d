"""Device program: fetch a model artifact from the lab registry (see collab_devicekit.fetch)."""
from collab_devicekit.fetch import main

raise SystemExit(main())
