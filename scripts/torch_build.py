"""Chooses which torch build the venv gets and checks, in seconds, that its index answers.

Run by the system Python before any package is installed, so it uses the standard library
only. Prints the build on stdout (`cpu` and its index, or `cuda`); what it decided, and why,
on stderr. An index that cannot be reached is one line naming it and the variable to set,
exit 2, instead of an installer's DNS trace after retries.

  TORCH_BUILD=cpu    PyTorch's CPU index (small: torch alone, no CUDA wheels)
  TORCH_BUILD=cuda   PyPI's torch (the CUDA 13 build, 4.6 GB with its CUDA wheels; runs on CPU)
  TORCH_BUILD=auto   cpu where PyTorch's CPU index answers, else cuda (the default)

The index addresses come from the environment, so a mirror (or a test's stand-in) replaces
either: ML_ASSETS_TORCH_CPU_INDEX, and uv's own UV_DEFAULT_INDEX / UV_INDEX_URL for PyPI.
"""

import os
import sys
import urllib.error
import urllib.request

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
PROBE_TIMEOUT_S = 5.0
BUILDS = ("auto", "cpu", "cuda")


def cpu_index() -> str:
    return os.environ.get("ML_ASSETS_TORCH_CPU_INDEX", CPU_INDEX).rstrip("/")


def pypi_index() -> str:
    for variable in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if os.environ.get(variable):
            return os.environ[variable].rstrip("/")
    return PYPI_INDEX


def answers(index: str, project: str = "torch") -> str | None:
    """None when `index` serves `project`'s page, else why not (one short phrase)."""
    url = f"{index}/{project}/"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return str(reason) or type(reason).__name__


def choose(requested: str) -> str:
    """The build to install; raises SystemExit with one line when it cannot be had."""
    if requested not in BUILDS:
        raise SystemExit(f"TORCH_BUILD={requested!r} is not one of {', '.join(BUILDS)}")
    build = requested
    if requested in ("auto", "cpu"):
        why_not = answers(cpu_index())
        if why_not is None:
            build = "cpu"
        elif requested == "cpu":
            raise SystemExit(
                f"TORCH_BUILD=cpu, but PyTorch's CPU index {cpu_index()} did not answer "
                f"({why_not}); set TORCH_BUILD=cuda to take PyPI's torch instead"
            )
        else:
            build = "cuda"
            print(
                f"PyTorch's CPU index {cpu_index()} did not answer ({why_not}): taking PyPI's "
                "torch, the CUDA build (4.6 GB, runs on CPU too); TORCH_BUILD=cpu|cuda forces one",
                file=sys.stderr,
            )
    # Everything but the CPU build of torch comes from PyPI, so it must answer either way.
    why_not = answers(pypi_index())
    if why_not is not None:
        raise SystemExit(
            f"the package index {pypi_index()} did not answer ({why_not}); "
            "set UV_DEFAULT_INDEX to a PyPI mirror this machine reaches"
        )
    return build


def main() -> None:
    try:
        build = choose(os.environ.get("TORCH_BUILD") or "auto")
    except SystemExit as failure:
        print(f"error: {failure.code}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{build} {cpu_index()}" if build == "cpu" else build)


if __name__ == "__main__":
    main()
