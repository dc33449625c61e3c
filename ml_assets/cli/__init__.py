"""`ml-assets`: the platform's command line (typer + rich). Exit codes: 0 ok, 1 failed, 2 usage."""

import typer

from ml_assets.cli import backfill, cluster, demo, models, run, xray

app = typer.Typer(
    no_args_is_help=True,
    help="Ads ranking on Dagster + Ray: run, inspect clusters, X-Ray runs, list models.",
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main() -> None:
    """Ads ranking on Dagster + Ray: run, inspect clusters, X-Ray runs, list models."""


app.command()(demo.demo)
app.command()(run.run)
app.command()(backfill.backfill)
app.add_typer(cluster.app, name="cluster")
app.command("xray")(xray.xray)
app.add_typer(models.app, name="models")
app.command()(models.reproduce)
