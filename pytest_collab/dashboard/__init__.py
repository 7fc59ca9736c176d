"""The lab dashboard: a web app over the lab, the registry, the runs and the live stream.

``publish`` is the pytest side (stdlib + pytest, loaded with the plugin); everything
else is the web app (Starlette, uvicorn), imported only by ``collab dashboard``.
"""
