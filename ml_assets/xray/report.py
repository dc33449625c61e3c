"""A self-contained HTML report of one X-Ray record: opens from disk, no server, no network."""

import base64
import datetime as dt
import html

from ml_assets.xray.plots import throughput_png, utilization_png
from ml_assets.xray.record import EVENTS, XRayRecord

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.ok{color:#17803d} .bad{color:#b42318} pre{background:#f6f6f6;padding:8px;overflow-x:auto;
font-size:12px;max-height:360px} img{max-width:100%}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def render_html(record: XRayRecord) -> str:
    from ml_assets.xray.plots import loss_curve_png

    escape = html.escape
    start = record.timeline.get("requested", min(record.timeline.values(), default=0.0))
    rows = []
    for event in EVENTS:
        if event in record.timeline:
            at = record.timeline[event]
            rows.append(
                f"<tr><td>{event}</td><td>{_when(at)}</td><td>+{at - start:.2f} s</td></tr>"
            )
    summary = "".join(
        f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>"
        for key, value in record.summary().items()
    )
    outcome_class = "ok" if record.outcome == "succeeded" else "bad"
    plots = []
    if record.samples:
        plots.append(_img(utilization_png(record.samples, start), "utilization over time"))
    if record.epochs:
        plots.append(_img(throughput_png(record.epochs), "training throughput"))
        if all("curve" in epoch for epoch in record.epochs):
            plots.append(_img(loss_curve_png(record.epochs), "training loss"))
    logs = "".join(
        f"<details><summary>{escape(name)}</summary><pre>{escape(text)}</pre></details>"
        for name, text in sorted(record.logs.items())
    )
    error = f'<h2>Error</h2><pre class="bad">{escape(record.error)}</pre>' if record.error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>X-Ray {escape(record.step)} {escape(record.run_id[:8])}</title><style>{STYLE}</style></head>
<body>
<h1>X-Ray: {escape(record.step)} on {escape(record.cluster)}
 <span class="{outcome_class}" id="outcome">{escape(record.outcome)}</span></h1>
<p>Dagster run <code id="run-id">{escape(record.run_id)}</code> &middot; mode {escape(record.mode)}
 &middot; profile {escape(str(record.profile))}</p>
<h2>Summary</h2><table id="summary">{summary}</table>
<h2>Lifecycle</h2><table id="timeline"><tr><th>event</th><th>at</th><th>since requested</th></tr>
{"".join(rows)}</table>
<h2>Plots</h2>{"".join(plots) or "<p>No samples were collected.</p>"}
{error}
<h2>Ray logs ({len(record.logs)} files, collected before teardown)</h2>{logs or "<p>none</p>"}
</body></html>
"""
