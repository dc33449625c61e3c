"""Ray token authentication for a driver joining a remote cluster.

Ray 2.60 turns token auth on by default. A cluster created by KubeRay with
`authOptions.mode: token` reads its token from a Secret; the step that drives it must present the
same token. Ray reads it from `RAY_AUTH_MODE` / `RAY_AUTH_TOKEN` and caches it inside its C++
core per process, so a long-lived process (a test session, `dagster dev`) that talked to another
cluster before would keep presenting the old token: the cache is reset on the way in and out.
"""

import os

_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def _reset_ray_token_cache() -> None:
    from ray._raylet import AuthenticationTokenLoader, Config  # pyright: ignore[reportAttributeAccessIssue]

    Config.initialize("")  # as Ray's own test utilities do before dropping the cached token
    AuthenticationTokenLoader.instance().reset_cache()


def present_token(token: str) -> dict[str, str | None]:
    """Make this process present `token` to the next Ray connection; returns what to restore."""
    previous = {name: os.environ.get(name) for name in _VARIABLES}
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    _reset_ray_token_cache()
    return previous


def restore_token_settings(previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _reset_ray_token_cache()
