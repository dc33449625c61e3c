"""Errors that name the problem and the fix; raised by the pure code, surfaced by the assets."""


class DataValidationError(ValueError):
    """Input data does not match what the pipeline was configured to expect."""

    def __init__(self, *, partition: str | None, column: str | None, problem: str, fix: str):
        self.partition = partition
        self.column = column
        self.problem = problem
        self.fix = fix
        where = []
        if partition is not None:
            where.append(f"partition {partition}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(f"{prefix}{problem}. Fix: {fix}")
